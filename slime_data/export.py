"""Export a shard set to LLaVA's JSON format so it also feeds the original LLaVA/SliME trainers."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path

from slime_data.images import probe
from slime_data.mix.references import resolved_bytes
from slime_data.shards import ShardSet, fsync_write

_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")
_EXTENSIONS = {"JPEG": ".jpg", "PNG": ".png", "WEBP": ".webp", "GIF": ".gif", "BMP": ".bmp", "TIFF": ".tif"}


def image_file_name(record_id: str, image_bytes: bytes) -> str:
    """``source/native/1`` -> ``source/native_1.jpg``: one folder per source, a safe flat file name."""
    source, _, rest = record_id.partition("/")
    extension = _EXTENSIONS.get(probe(image_bytes).format, ".img")
    return f"{_UNSAFE.sub('_', source)}/{_UNSAFE.sub('_', rest)}{extension}"


def export_llava(
    shard_set: ShardSet, out: Path, image_dir: Path, on_row: Callable[[], None] | None = None
) -> tuple[int, int]:
    """Write ``out`` (a JSON list of ``{id, image, conversations}``) and the images; returns (rows, images)."""
    entries = []
    n_images = 0
    for record in shard_set:
        entry: dict = {"id": record.id}
        image = record.image
        data = resolved_bytes({"bytes": image.bytes, "path": image.path}, shard_set.root) if image is not None else None
        if data:  # a by-reference mix's pointer is followed into the input shard
            name = image_file_name(record.id, data)
            target = image_dir / name
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(data)
            entry["image"] = name
            n_images += 1
        entry["conversations"] = record.conversations
        entries.append(entry)
        if on_row is not None:
            on_row()
    out.parent.mkdir(parents=True, exist_ok=True)
    fsync_write(out, json.dumps(entries, ensure_ascii=False, indent=1).encode("utf-8"))
    return len(entries), n_images
