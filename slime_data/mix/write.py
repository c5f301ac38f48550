"""Writing the planned rows: one output shard = one job, gathered from the inputs by memory map.

A job reads its slice of the stage's pointers and maps the input shards it needs. It cuts its
rows into output batches of at most ``BATCH_ROWS`` rows / ``BATCH_BYTES`` image bytes and
gathers several batches at a time (up to ``GATHER_ROWS`` rows, ``slime_data.mix.gather``).
Each output batch then takes its rows from its group's. A worker's memory is therefore one
group plus the input pages it touches, whatever the size of the mix. Rows keep every field
but two:

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
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from slime_data.executor import unit_of_work
from slime_data.memory import system_allocator
from slime_data.mix.gather import GATHER_ROWS, IMAGE_BYTES, Rows
from slime_data.mix.references import reference
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
    by_reference: bool = False  # rows point at their image in the input shard (slime_data.mix.references)

    @property
    def marker(self) -> Path:
        return marker_path(Path(self.work_dir), self.stage, self.index)


def pointers_path(work_dir: Path, stage: str) -> Path:
    """The stage's planned pointers (``plan.POINTER`` array, output order), memory-mapped by each job."""
    return work_dir / f"{stage}.npy"


def marker_path(work_dir: Path, stage: str, index: int) -> Path:
    return work_dir / stage / f"shard-{index:05d}.done"


def _written_batches(rows: Rows, pointers: np.ndarray, job: ShardJob) -> Iterator[pa.RecordBatch]:
    """A job's output batches, their rows in pointer order with lineage, gathered group by group.

    Each output batch takes its rows from its group's, so that it owns buffers of exactly its
    size, as the IPC writer must see them to write the same bytes as a batch built alone. Lineage
    is added to a whole group when that gives every row the bytes it gets in its own batch. In a
    by-reference mix batches are cut by rows alone (no image bytes are written) and each image
    becomes a pointer.
    """
    input_names = [name for name, _ in job.inputs]
    image_bytes = np.zeros(len(pointers), dtype=np.int64) if job.by_reference else pointers["bytes"]
    for group in gather_groups(output_batches(image_bytes), image_bytes):
        start, stop = group[0][0], group[-1][1]
        gathered, order = rows.gather(start, stop)
        rowwise = _lineage_is_rowwise(gathered)
        if rowwise:
            gathered = with_lineage(gathered, pointers[start:stop][order], input_names)
        position = np.argsort(order)  # (stop - start,) each pointer's row in ``gathered``
        for first, end in group:
            batch = gathered.take(pa.array(position[first - start : end - start]))
            batch = batch if rowwise else with_lineage(batch, pointers[first:end], input_names)
            yield with_references(batch, pointers[first:end], job) if job.by_reference else batch


def output_batches(image_bytes: np.ndarray) -> list[tuple[int, int]]:
    """Rows ``(first, end)`` of each output batch: it closes at ``BATCH_ROWS`` rows or before its images pass
    ``BATCH_BYTES``.

    ``image_bytes``: (n,) int64 per row. A row whose image alone passes the limit is a batch.
    """
    total = np.concatenate([[0], np.cumsum(image_bytes)])
    batches: list[tuple[int, int]] = []
    first = 0
    while first < len(image_bytes):
        passing = int(np.searchsorted(total, total[first] + BATCH_BYTES, side="right")) - 1  # first row that would pass
        end = max(first + 1, min(first + BATCH_ROWS, passing))
        batches.append((first, end))
        first = end
    return batches


def gather_groups(batches: list[tuple[int, int]], image_bytes: np.ndarray) -> Iterator[list[tuple[int, int]]]:
    """Consecutive output batches gathered together: up to ``GATHER_ROWS`` rows and ``BATCH_BYTES`` of images, or one
    batch."""
    total = np.concatenate([[0], np.cumsum(image_bytes)])
    group: list[tuple[int, int]] = []
    for first, end in batches:
        if group and (end - group[0][0] > GATHER_ROWS or total[end] - total[group[0][0]] > BATCH_BYTES):
            yield group
            group = []
        group.append((first, end))
    if group:
        yield group


def _json_strings(values: pa.Array) -> pa.Array:
    """Each string as a JSON string literal, exactly as ``json.dumps(v, ensure_ascii=False)`` writes it."""
    if pc.any(pc.match_substring_regex(values, _NEEDS_ESCAPE)).as_py():
        return pa.array([json.dumps(v, ensure_ascii=False) for v in values.to_pylist()], pa.string())
    return pc.binary_join_element_wise('"', values, '"', "")


def _meta_spliceable(meta: pa.Array) -> bool:
    """Whether every ``meta`` is the text of a JSON object without ``lineage``: then all are kept byte for byte."""
    spliceable = pc.and_(pc.starts_with(meta, "{"), pc.ends_with(meta, "}"))
    return pc.all(pc.and_(spliceable, pc.invert(pc.match_substring(meta, '"lineage"')))).as_py()


def _meta_objects(meta: pa.Array) -> pa.Array:
    """``meta`` as JSON objects without a ``lineage`` key, kept byte for byte where they already are."""
    if _meta_spliceable(meta):
        return meta
    cleaned = []
    for text in meta.to_pylist():
        fields = json.loads(text) if text else {}
        fields.pop("lineage", None)
        cleaned.append(json.dumps(fields, sort_keys=True, ensure_ascii=False))
    return pa.array(cleaned, pa.string())


def _lineage_is_rowwise(batch: pa.RecordBatch) -> bool:
    """Whether ``with_lineage`` gives each row of ``batch`` the bytes it gives it in any other batch.

    It does when every meta is kept byte for byte; otherwise the batch's metas are all
    re-serialised, so a row's bytes depend on its batch's other rows.
    """
    return _meta_spliceable(batch.column("meta").fill_null("{}"))


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
        '{"id": ',
        _json_strings(ids),
        ', "input": ',
        inputs,
        ', "repeat": ',
        repeat_text,
        ', "source": ',
        _json_strings(batch.column("source")),
        "}",
        "",
    )
    body = pc.utf8_slice_codeunits(meta, 0, -1)  # the object without its closing brace
    separator = pc.if_else(pc.equal(meta, "{}"), "", ", ")
    new_meta = pc.binary_join_element_wise(body, separator, '"lineage": ', lineage, "}", "")
    columns = list(batch.columns)
    columns[ARROW_SCHEMA.get_field_index("id")] = new_ids
    columns[ARROW_SCHEMA.get_field_index("meta")] = new_meta
    return pa.RecordBatch.from_arrays(columns, schema=ARROW_SCHEMA)


def with_references(batch: pa.RecordBatch, pointers: np.ndarray, job: ShardJob) -> pa.RecordBatch:
    """The batch with each image replaced by a pointer to its row in the input shard (bytes null)."""
    keys = pointers["input"].astype(np.int64) << 32 | pointers["shard"].astype(np.int64)
    files, file_of = np.unique(keys, return_inverse=True)
    stage_dir = os.path.abspath(job.stage_dir)
    prefixes = [reference(job.inputs[int(key >> 32)][1][int(key & 0xFFFFFFFF)], 0, stage_dir)[:-1] for key in files]
    paths = pc.binary_join_element_wise(
        pa.array(prefixes, pa.string()).take(pa.array(file_of)), pc.cast(pa.array(pointers["row"]), pa.string()), ""
    )
    image = batch.column("image")
    kind = image.type
    pointer = pa.StructArray.from_arrays(
        [pa.nulls(len(image), kind.field("bytes").type), paths], fields=list(kind), mask=pc.is_null(image)
    )
    return batch.set_column(ARROW_SCHEMA.get_field_index("image"), ARROW_SCHEMA.field("image"), pointer)


@unit_of_work(
    num_cpus=1, memory_gib=2, describe=lambda job: f"mix shard {job.stage}/{job.index} (rows {job.start}-{job.stop})"
)
def write_shard(job: ShardJob) -> dict[str, Any]:
    """Gather and write one output shard atomically, then its marker; returns the marker's content."""
    pointers = np.load(pointers_path(Path(job.work_dir), job.stage), mmap_mode="r")[job.start : job.stop]
    pointers = np.ascontiguousarray(pointers)
    stage_dir = Path(job.stage_dir)
    final = stage_dir / shard_name(job.index, job.total)
    tmp = stage_dir / f".{final.name}.tmp"
    counts: dict[str, Counter[str]] = {key: Counter() for key in COUNTED}
    rows = Rows(job.inputs, pointers, IMAGE_BYTES if job.by_reference else frozenset())
    try:
        with system_allocator(), pa.OSFile(str(tmp), "wb") as sink, pa.ipc.new_file(sink, ARROW_SCHEMA) as writer:
            for batch in _written_batches(rows, pointers, job):
                writer.write_batch(batch)
                for key in COUNTED:
                    for entry in pc.value_counts(batch.column(key)).to_pylist():
                        counts[key][entry["values"]] += entry["counts"]
    finally:
        rows.close()
    with open(tmp, "rb+") as f:
        os.fsync(f.fileno())
    os.replace(tmp, final)
    done = {
        "shard": {
            "file": final.name,
            "rows": len(pointers),
            "bytes": final.stat().st_size,
            "sha256": sha256_file(final),
        },
        "counts": {key: dict(counter) for key, counter in counts.items()},
    }
    job.marker.parent.mkdir(parents=True, exist_ok=True)
    fsync_write(job.marker, json.dumps(done).encode("utf-8"))
    return done


def read_marker(work_dir: Path, stage: str, index: int) -> dict[str, Any] | None:
    path = marker_path(work_dir, stage, index)
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else None
