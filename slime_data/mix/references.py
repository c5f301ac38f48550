"""Images by reference: a mix whose rows point at their image in the input shard instead of copying it.

With `images: reference` in a mix recipe (or `slime-data mix --by-reference`) each output row keeps
every column but the image bytes: its `image` struct holds `bytes = null` and
`path = "<input shard file, relative to the output shard's folder>#<row in that file>"`. Every image
is then stored once, in the shard set it was built into, however often the mix repeats it; the mix
writes only text, ids and pointers. Readers resolve a pointer by memory-mapping the input shard
(`ImageResolver`): the trainer, `export llava` and `validate` do. The mix manifest records each input
shard set's manifest sha256, and `validate` refuses a mix whose inputs changed.

What other tools show: `pyarrow` and `polars` read the rows as they are (image bytes null, the
pointer in `image.path`); `datasets.load_dataset("arrow", ...)` loads them, but decoding the image
column fails (the path is not a file): load with `.cast_column("image", datasets.Image(decode=False))`
or export first.
"""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

SEPARATOR = "#"


def reference(input_shard: str | Path, row: int, stage_dir: str | Path) -> str:
    """The pointer text of `row` of `input_shard`, relative to the output folder `stage_dir`."""
    return f"{os.path.relpath(input_shard, stage_dir)}{SEPARATOR}{row}"


def is_reference(image: dict[str, Any] | None) -> bool:
    """Whether an `image` struct value is a pointer (no bytes, a `file.arrow#row` path)."""
    if not image or image.get("bytes") is not None or not image.get("path"):
        return False
    file, _, row = image["path"].rpartition(SEPARATOR)
    return file.endswith(".arrow") and row.isdigit()


class ReferenceError(ValueError):
    """A pointer that does not resolve: the input shard moved, shrank or is not an Arrow file."""


@lru_cache(maxsize=64)
def _opened(path: str) -> tuple[list[pa.RecordBatch], np.ndarray]:
    """An input shard's record batches (image column only, zero-copy over a memory map) and their first rows."""
    try:
        reader = pa.ipc.open_file(pa.memory_map(path, "r"))
    except (OSError, pa.ArrowInvalid) as err:
        raise ReferenceError(f"image pointer into {path}: {err}") from None
    batches = [reader.get_batch(i).select(["image"]) for i in range(reader.num_record_batches)]
    starts = np.cumsum([0] + [b.num_rows for b in batches[:-1]])
    return batches, starts


def resolve(image: dict[str, Any], stage_dir: str | Path) -> dict[str, Any]:
    """The referenced image struct (`bytes`, `path` as stored in the input shard)."""
    file, _, row_text = image["path"].rpartition(SEPARATOR)
    path = os.path.normpath(os.path.join(stage_dir, file))
    batches, starts = _opened(path)
    row = int(row_text)
    total = int(starts[-1]) + batches[-1].num_rows if batches else 0
    if row >= total:
        raise ReferenceError(f"image pointer {image['path']}: {path} has {total} rows")
    which = int(np.searchsorted(starts, row, side="right")) - 1
    value = batches[which].column(0)[row - int(starts[which])].as_py()
    if value is None or value.get("bytes") is None:
        raise ReferenceError(f"image pointer {image['path']}: that row of {path} has no image bytes")
    return value


def resolved_bytes(image: dict[str, Any] | None, stage_dir: str | Path) -> bytes | None:
    """The image bytes of a row's `image` value, following a pointer when it is one."""
    if image is None:
        return None
    return resolve(image, stage_dir)["bytes"] if is_reference(image) else image.get("bytes")


def release() -> None:
    """Unmap every input shard opened so far."""
    _opened.cache_clear()
