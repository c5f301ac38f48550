"""Writing the planned rows: one output shard = one job, gathered from the inputs by memory map.

A job reads its slice of the stage's pointers, opens the input shards it needs by memory map,
cuts each needed row out as a zero-copy one-row slice of its record batch and copies only
those rows into output batches of at most ``BATCH_ROWS`` rows / ``BATCH_BYTES`` bytes. A
worker's memory is therefore one output batch plus the input pages it touches, whatever the
size of the mix. Rows keep every field but two:

* ``id``: a row's first appearance keeps its id; repeat ``r >= 1`` gets ``<id>@rep<r>``, so ids
  stay unique when a source is upsampled;
* ``meta``: gains ``lineage: {input, source, id, repeat}`` (the input shard set as named in
  the recipe, the record's source, its original id and the repeat index).

The shard is written under a temporary name, fsynced and renamed, then a ``.done`` marker with
its rows/bytes/sha256/counts is written under ``.work``: after a kill -9 a rerun redoes only
shards without a marker. Output bytes depend only on the plan and the inputs, not on which
worker wrote them or in what order.
"""

from __future__ import annotations

import json
import os
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from slime_data.record import ARROW_SCHEMA
from slime_data.shards import BATCH_BYTES, BATCH_ROWS, fsync_write, sha256_file, shard_name

REPEAT_SUFFIX = "@rep"
# Characters json.dumps(ensure_ascii=False) escapes inside a string.
_NEEDS_ESCAPE = r'[\x00-\x1f"\\]'
COUNTED = ("source", "split", "task")


@dataclass(frozen=True)
class ShardJob:
    work_dir: str
    stage_dir: str
    stage: str
    index: int  # output shard number within the stage
    total: int  # output shards in the stage
    start: int  # pointer slice [start, stop) of the stage's plan
    stop: int
    inputs: tuple[tuple[str, tuple[str, ...]], ...]  # per input (recipe order): (name for lineage, shard file paths)

    @property
    def marker(self) -> Path:
        return marker_path(Path(self.work_dir), self.stage, self.index)


def pointers_path(work_dir: Path, stage: str) -> Path:
    """The stage's planned pointers (``plan.POINTER`` array, output order), memory-mapped by each job."""
    return work_dir / f"{stage}.npy"


def marker_path(work_dir: Path, stage: str, index: int) -> Path:
    return work_dir / stage / f"shard-{index:05d}.done"


def _batch_starts(path: str) -> np.ndarray:
    """First row of every record batch of an input shard; cached per worker while the file is unchanged."""
    stat = os.stat(path)
    return _batch_starts_of(path, stat.st_mtime_ns, stat.st_size)


@lru_cache(maxsize=4096)
def _batch_starts_of(path: str, mtime_ns: int, size: int) -> np.ndarray:
    with pa.memory_map(path, "r") as source:
        reader = pa.ipc.open_file(source)
        sizes = [reader.get_batch(b).num_rows for b in range(reader.num_record_batches)]
    return np.concatenate([[0], np.cumsum(sizes, dtype=np.int64)[:-1]]).astype(np.int64)


class _Gatherer:
    """Rows by pointer from memory-mapped input shards, opened on first use and closed with the job."""

    def __init__(self, inputs: tuple[tuple[str, tuple[str, ...]], ...]) -> None:
        self.inputs = inputs
        self._readers: dict[tuple[int, int], pa.ipc.RecordBatchFileReader] = {}
        self._batches: dict[tuple[int, int, int], pa.RecordBatch] = {}

    def _batch(self, key: tuple[int, int, int]) -> pa.RecordBatch:
        """An input record batch, zero-copy over the memory-mapped shard."""
        batch = self._batches.get(key)
        if batch is None:
            reader = self._readers.get(key[:2])
            if reader is None:
                path = self.inputs[key[0]][1][key[1]]
                reader = self._readers[key[:2]] = pa.ipc.open_file(pa.memory_map(path, "r"))
            batch = self._batches[key] = reader.get_batch(key[2])
        return batch

    def batches(self, pointers: np.ndarray) -> Iterator[tuple[int, int, pa.RecordBatch]]:
        """Output batches in pointer order: (first pointer, end pointer, the rows copied into one batch).

        A batch closes at ``BATCH_ROWS`` rows or before its images pass ``BATCH_BYTES``.
        """
        batch_of = np.empty(len(pointers), dtype=np.int64)
        offset = np.empty(len(pointers), dtype=np.int64)
        keys = pointers["input"].astype(np.int64) << 32 | pointers["shard"].astype(np.int64)
        for key in np.unique(keys):
            where = np.flatnonzero(keys == key)
            starts = _batch_starts(self.inputs[int(key >> 32)][1][int(key & 0xFFFFFFFF)])
            batch_of[where] = np.searchsorted(starts, pointers["row"][where], side="right") - 1
            offset[where] = pointers["row"][where] - starts[batch_of[where]]
        rows: list[pa.RecordBatch] = []
        size = first = 0
        columns = (pointers["input"].tolist(), pointers["shard"].tolist(), batch_of.tolist(), offset.tolist(), pointers["bytes"].tolist())
        for i, (input_index, shard, batch, row, image_bytes) in enumerate(zip(*columns)):
            if rows and (len(rows) == BATCH_ROWS or size + image_bytes > BATCH_BYTES):
                yield first, i, pa.concat_batches(rows)
                rows, size, first = [], 0, i
            rows.append(self._batch((input_index, shard, batch)).slice(row, 1))  # zero-copy view of one row
            size += image_bytes
        if rows:
            yield first, len(pointers), pa.concat_batches(rows)

    def close(self) -> None:
        self._batches.clear()
        self._readers.clear()


def _json_strings(values: pa.Array) -> pa.Array:
    """Each string as a JSON string literal, exactly as ``json.dumps(v, ensure_ascii=False)`` writes it."""
    if pc.any(pc.match_substring_regex(values, _NEEDS_ESCAPE)).as_py():
        return pa.array([json.dumps(v, ensure_ascii=False) for v in values.to_pylist()], pa.string())
    return pc.binary_join_element_wise('"', values, '"', "")


def _meta_objects(meta: pa.Array) -> pa.Array:
    """``meta`` as JSON objects without a ``lineage`` key, kept byte for byte where they already are."""
    spliceable = pc.and_(pc.starts_with(meta, "{"), pc.ends_with(meta, "}"))
    if pc.all(pc.and_(spliceable, pc.invert(pc.match_substring(meta, '"lineage"')))).as_py():
        return meta
    cleaned = []
    for text in meta.to_pylist():
        fields = json.loads(text) if text else {}
        fields.pop("lineage", None)
        cleaned.append(json.dumps(fields, sort_keys=True, ensure_ascii=False))
    return pa.array(cleaned, pa.string())


def with_lineage(batch: pa.RecordBatch, pointers: np.ndarray, input_names: list[str]) -> pa.RecordBatch:
    """Suffix repeated ids and append ``"lineage": {"id", "input", "repeat", "source"}`` to ``meta``.

    Vectorised: the meta object keeps its bytes and gains the lineage as its last key (an
    existing ``lineage`` is replaced). Every other column is passed through untouched.
    """
    ids, meta = batch.column("id"), _meta_objects(batch.column("meta").fill_null("{}"))
    repeats = pa.array(pointers["repeat"])
    repeat_text = pc.cast(repeats, pa.string())
    new_ids = pc.if_else(pc.equal(repeats, 0), ids, pc.binary_join_element_wise(ids, REPEAT_SUFFIX, repeat_text, ""))
    inputs = _json_strings(pa.array(input_names, pa.string())).take(pa.array(pointers["input"]))
    lineage = pc.binary_join_element_wise(
        '{"id": ', _json_strings(ids), ', "input": ', inputs, ', "repeat": ', repeat_text, ', "source": ', _json_strings(batch.column("source")), "}", ""
    )
    body = pc.utf8_slice_codeunits(meta, 0, -1)  # the object without its closing brace
    separator = pc.if_else(pc.equal(meta, "{}"), "", ", ")
    new_meta = pc.binary_join_element_wise(body, separator, '"lineage": ', lineage, "}", "")
    columns = list(batch.columns)
    columns[ARROW_SCHEMA.get_field_index("id")] = new_ids
    columns[ARROW_SCHEMA.get_field_index("meta")] = new_meta
    return pa.RecordBatch.from_arrays(columns, schema=ARROW_SCHEMA)


def write_shard(job: ShardJob) -> dict[str, Any]:
    """Gather and write one output shard atomically, then its marker; returns the marker's content."""
    pointers = np.load(pointers_path(Path(job.work_dir), job.stage), mmap_mode="r")[job.start : job.stop]
    pointers = np.ascontiguousarray(pointers)
    stage_dir = Path(job.stage_dir)
    final = stage_dir / shard_name(job.index, job.total)
    tmp = stage_dir / f".{final.name}.tmp"
    counts: dict[str, Counter[str]] = {key: Counter() for key in COUNTED}
    names = [name for name, _ in job.inputs]
    gatherer = _Gatherer(job.inputs)
    try:
        with pa.OSFile(str(tmp), "wb") as sink, pa.ipc.new_file(sink, ARROW_SCHEMA) as writer:
            for first, end, batch in gatherer.batches(pointers):
                writer.write_batch(with_lineage(batch, pointers[first:end], names))
                for key in COUNTED:
                    for entry in pc.value_counts(batch.column(key)).to_pylist():
                        counts[key][entry["values"]] += entry["counts"]
    finally:
        gatherer.close()
    with open(tmp, "rb+") as f:
        os.fsync(f.fileno())
    os.replace(tmp, final)
    done = {
        "shard": {"file": final.name, "rows": len(pointers), "bytes": final.stat().st_size, "sha256": sha256_file(final)},
        "counts": {key: dict(counter) for key, counter in counts.items()},
    }
    job.marker.parent.mkdir(parents=True, exist_ok=True)
    fsync_write(job.marker, json.dumps(done).encode("utf-8"))
    return done


def read_marker(work_dir: Path, stage: str, index: int) -> dict[str, Any] | None:
    path = marker_path(work_dir, stage, index)
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else None
