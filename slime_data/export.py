"""Export a shard set to LLaVA's JSON format so it also feeds the original LLaVA/SliME trainers."""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable
from pathlib import Path

from slime_data.images import probe
from slime_data.mix.references import resolved_bytes
from slime_data.record import RecordError, id_problem
from slime_data.shards import ShardSet, fsync_write, row_id_problems
from slime_data.ui import UserError

_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")
_EXTENSIONS = {"JPEG": ".jpg", "PNG": ".png", "WEBP": ".webp", "GIF": ".gif", "BMP": ".bmp", "TIFF": ".tif"}


def image_file_name(record_id: str, source: str, image_bytes: bytes) -> str:
    """``source/native/1`` -> ``source/native_1.jpg``: one folder per source, a safe flat file name.

    A row whose id or source could name another folder (``..``, an absolute path) is refused:
    rows are validated when written, but a shard set may come from elsewhere.
    """
    problem = id_problem(record_id, source)
    if problem is not None:
        raise RecordError(f"cannot export this row: {problem}")
    rest = record_id[len(source) + 1 :]
    extension = _EXTENSIONS.get(probe(image_bytes).format, ".img")
    return f"{_UNSAFE.sub('_', source)}/{_UNSAFE.sub('_', rest)}{extension}"


def _inside(image_dir: Path, name: str) -> Path:
    """``image_dir/name``, checked lexically to stay inside ``image_dir`` (belt and braces)."""
    target = Path(os.path.normpath(image_dir / name))
    if not target.is_relative_to(os.path.normpath(image_dir)) or target == Path(os.path.normpath(image_dir)):
        raise RecordError(f"cannot export image {name!r}: it would be written outside {image_dir}")
    return target


def export_llava(
    shard_set: ShardSet, out: Path, image_dir: Path, on_row: Callable[[], None] | None = None
) -> tuple[int, int]:
    """Write ``out`` (a JSON list of ``{id, image, conversations[, presentation]}``) and the images; returns
    (rows, images).

    Every row's id and source are checked before anything is written (they become file names).
    """
    problems = row_id_problems(shard_set)
    if problems:
        raise UserError(f"refusing to export {shard_set.root}: {'; '.join(problems)}")
    entries = []
    n_images = 0
    for record in shard_set:
        entry: dict = {"id": record.id}
        image = record.image
        data = resolved_bytes({"bytes": image.bytes, "path": image.path}, shard_set.root) if image is not None else None
        if data:  # a by-reference mix's pointer is followed into the input shard
            name = image_file_name(record.id, record.source, data)
            target = _inside(image_dir, name)
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(data)
            entry["image"] = name
            n_images += 1
        entry["conversations"] = record.conversations
        if "presentation" in record.meta:  # lineage of the gpt turns; LLaVA's loader reads only id/image/conversations
            entry["presentation"] = record.meta["presentation"]
        entries.append(entry)
        if on_row is not None:
            on_row()
    out.parent.mkdir(parents=True, exist_ok=True)
    fsync_write(out, json.dumps(entries, ensure_ascii=False, indent=1).encode("utf-8"))
    return len(entries), n_images
