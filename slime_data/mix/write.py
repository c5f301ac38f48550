"""Writing the planned rows: one output shard = one job, gathered from the inputs by memory map.

A job reads its slice of the stage's pointers and maps the input shards it needs. It cuts its
rows into output batches of at most ``BATCH_ROWS`` rows / ``BATCH_BYTES`` image bytes and
gathers several batches at a time (up to ``GATHER_ROWS`` rows): numpy reads each value's
offsets, validity bit and first bytes straight from the mapped files, at positions known from
the layout of every input record batch's buffers, and Arrow copies the strings in (as views
cast to strings). A gather thus costs a few dozen calls whatever its size, not a few per row.
(Arrow's own ``take`` over a shard's record batches concatenates each whole column first —
pyarrow 26, even for int32 — and one-row slices cost ~17 µs a row: both measured, both too slow
for 2M rows of small images.)
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
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from slime_data.executor import unit_of_work
from slime_data.memory import system_allocator
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


@dataclass(frozen=True)
class _Field:
    """A field of ``ARROW_SCHEMA`` and where its buffers sit among a record batch's buffers (Arrow's pre-order)."""

    type: pa.DataType
    slot: int  # its validity bitmap; offsets (strings, lists) or values at slot + 1; string bytes at slot + 2
    children: tuple[_Field, ...]


def _fields(types: list[pa.DataType], slot: int) -> tuple[tuple[_Field, ...], int]:
    """The fields of ``types`` laid out from buffer ``slot`` on, and the slot after them."""
    fields = []
    for kind in types:
        if not (
            pa.types.is_integer(kind)
            or pa.types.is_string(kind)
            or pa.types.is_binary(kind)
            or pa.types.is_list(kind)
            or pa.types.is_struct(kind)
        ):
            raise TypeError(f"the mix writer cannot gather {kind} columns")
        children, end = _fields([kind.field(i).type for i in range(kind.num_fields)], slot + kind.num_buffers)
        fields.append(_Field(kind, slot, children))
        slot = end
    return tuple(fields), slot


_COLUMNS, _BUFFERS = _fields(ARROW_SCHEMA.types, 0)
# The image struct's `bytes` child: not gathered at all in a by-reference mix.
_IMAGE = _COLUMNS[ARROW_SCHEMA.get_field_index("image")]
_IMAGE_BYTES = frozenset({_IMAGE.children[_IMAGE.type.get_field_index("bytes")].slot})
# Arrow's binary_view layout: 16 bytes per value, its int32 length and then either the value
# itself (up to 12 bytes, zero-padded) or its first 4 bytes, a buffer index and an int32 offset.
_INLINE = 12
# Views give offsets as int32, so each input file is lent to them as 2 GiB windows starting
# every GiB: a value of up to 1 GiB lies inside the window its first byte falls in.
_WINDOW_STEP = 1 << 30
# Output batches are gathered together up to this many rows (and BATCH_BYTES of images, or one
# batch): a gather costs a few dozen numpy and Arrow calls whatever its size, so gathering
# several batches at once shares them.
GATHER_ROWS = 16 * BATCH_ROWS


@dataclass(frozen=True)
class _Layout:
    """Where an input shard keeps its record batches: their first rows and the file position of every buffer."""

    starts: np.ndarray  # (batches,) int64
    buffers: np.ndarray  # (batches, _BUFFERS) int64 byte position in the file; -1: no validity bitmap (no nulls)


def _file_key(path: str) -> tuple[int, int, int]:
    """What tells a file from a rewritten one: inode, mtime and size."""
    stat = os.stat(path)
    return stat.st_ino, stat.st_mtime_ns, stat.st_size


@lru_cache(maxsize=4096)
def _layout(path: str, key: tuple[int, int, int]) -> _Layout:
    """An input shard's layout, cached per worker while the file is unchanged (``key``)."""
    size = key[2]
    with pa.memory_map(path, "r") as source:
        base = source.read_buffer().address
        reader = pa.ipc.open_file(source)
        batches = [reader.get_batch(b) for b in range(reader.num_record_batches)]
        positions = [
            _position(buffer, base, size, path)
            for batch in batches
            for column in batch.columns
            for buffer in column.buffers()
        ]
    sizes = np.array([batch.num_rows for batch in batches], dtype=np.int64)
    return _Layout(np.cumsum(sizes) - sizes, np.array(positions, dtype=np.int64).reshape(len(batches), _BUFFERS))


def _position(buffer: pa.Buffer | None, base: int, size: int, path: str) -> int:
    """A buffer's byte position in its memory-mapped file (any for an empty one, whose bytes are never read)."""
    if buffer is None:
        return -1
    if buffer.size == 0:
        return 0
    position = buffer.address - base
    if not 0 <= position <= size - buffer.size:
        raise ValueError(f"{path}: record batch buffers are not in the file's memory map (compressed shard?)")
    return position


# Input shards stay memory-mapped from one job to the next while the jobs read them: mapping
# them anew for every job would fault their pages in again each time, which costs more than
# the whole gather once the inputs are large (2M rows). Maps of shards a job no longer reads
# are dropped when it starts, so a worker maps no more than one job's inputs.
_MAPPED: dict[str, tuple[tuple[int, int, int], pa.Buffer]] = {}


def _mapped(paths: list[str]) -> list[tuple[tuple[int, int, int], pa.Buffer]]:
    """Each file's key and whole content, memory-mapped (the buffer keeps the map alive)."""
    keys = {path: _file_key(path) for path in paths}
    for path in [path for path, (key, _) in _MAPPED.items() if keys.get(path) != key]:
        del _MAPPED[path]
    for path in paths:
        if path not in _MAPPED:
            with pa.memory_map(path, "r") as source:
                _MAPPED[path] = (keys[path], source.read_buffer())
    return [_MAPPED[path] for path in paths]


def release_input_maps() -> None:
    """Unmap every input shard this process still holds (the caller of single-process jobs, when done)."""
    _MAPPED.clear()


class _Inputs:
    """The input shards a job reads, memory-mapped, with the buffer positions of all their record batches stacked."""

    def __init__(self, paths: list[str]) -> None:
        mapped = _mapped(paths)
        layouts = [_layout(path, key) for path, (key, _) in zip(paths, mapped)]
        self.starts = [layout.starts for layout in layouts]
        self.first_batch = np.cumsum(
            [0] + [len(layout.starts) for layout in layouts]
        )  # (files + 1,) stacked row of each file's batch 0
        self.buffers = np.concatenate(
            [np.empty((0, _BUFFERS), np.int64), *(layout.buffers for layout in layouts)]
        ).T.copy()  # (_BUFFERS, all batches)
        self._files = [file for _, file in mapped]
        windows = [
            [file.slice(start, min(2 * _WINDOW_STEP, file.size - start)) for start in range(0, file.size, _WINDOW_STEP)]
            for file in self._files
        ]
        self.windows = [window for file_windows in windows for window in file_windows]  # variadic buffers of views
        self.first_window = np.cumsum([0] + [len(file_windows) for file_windows in windows])[:-1]
        self._unaligned: dict[tuple[int, str], np.ndarray] = {}

    def read(self, files: np.ndarray, positions: np.ndarray, dtype: str) -> np.ndarray:
        """The ``dtype`` value at each byte position (last axis: items, grouped by file as ``files`` bounds them)."""
        out = np.empty(positions.shape, dtype)
        for f, (lo, hi) in enumerate(zip(files[:-1].tolist(), files[1:].tolist())):
            if hi > lo:
                out[..., lo:hi] = self._at_every_byte(f, dtype)[positions[..., lo:hi]]
        return out

    def _at_every_byte(self, f: int, dtype: str) -> np.ndarray:
        """File f read as ``dtype`` values starting at every byte (a zero-copy, unaligned strided view)."""
        key = (f, dtype)
        if key not in self._unaligned:
            itemsize = np.dtype(dtype).itemsize
            self._unaligned[key] = np.ndarray(
                (self._files[f].size - itemsize + 1,), dtype, buffer=self._files[f], strides=(1,)
            )
        return self._unaligned[key]

    def close(self) -> None:
        """Drop the job's views of the files (the maps themselves stay for the next job)."""
        self._unaligned.clear()
        self.windows.clear()
        self._files.clear()


@dataclass(frozen=True)
class _Items:
    """The values of one nesting level (rows, or the items of a list column), grouped by input file.

    Value i is element ``index[i]`` of its array in record batch ``batch[i]`` (a column of
    ``_Inputs.buffers``); the values from file f are ``[files[f], files[f + 1])``.
    """

    batch: np.ndarray  # (n,) int64
    index: np.ndarray  # (n,) int64
    files: np.ndarray  # (input files + 1,) int64

    def file(self) -> np.ndarray:
        """(n,) int64: the input file of each value."""
        return np.repeat(np.arange(len(self.files) - 1), np.diff(self.files))


def _flat(fields: tuple[_Field, ...]) -> list[_Field]:
    """``fields`` and, recursively, the fields of their structs: all the fields that share one level's items."""
    return [g for f in fields for g in [f, *(_flat(f.children) if pa.types.is_struct(f.type) else [])]]


def _is_string(kind: pa.DataType) -> bool:
    return pa.types.is_string(kind) or pa.types.is_binary(kind)


def _word_width(kind: pa.DataType) -> int:
    """Bytes per item in the buffer after the validity bitmap: values, or int32 offsets (a struct has none)."""
    return kind.byte_width if pa.types.is_integer(kind) else 0 if pa.types.is_struct(kind) else 4


# By inline length (0 to 12): masks keeping an inline value's bytes in a view's two uint64 words
# (bytes 0-3 in the first word's high half, after the length; bytes 4-11 in the second word).
_HEAD_MASKS = np.array([0xFFFFFFFF | ((1 << 8 * min(k, 4)) - 1) << 32 for k in range(_INLINE + 1)], dtype=np.uint64)
_TAIL_MASKS = np.array([(1 << 8 * max(k - 4, 0)) - 1 for k in range(_INLINE + 1)], dtype=np.uint64)


class _Level:
    """The arrays of the fields that share one level's items, read in two vectorised rounds.

    Round 1 reads the 8 bytes at every field's value or offsets (and the byte holding the
    validity bit, for fields with a bitmap in some of the items' batches); round 2 the first 16
    bytes of every string. A list's items form the next level. Arrays below are (fields, n).
    """

    def __init__(self, fields: tuple[_Field, ...], items: _Items, inputs: _Inputs, skip: frozenset[int]) -> None:
        self.items, self.inputs, self.skip = items, inputs, skip
        flat = _flat(fields)
        self.row = {f.slot: k for k, f in enumerate(flat)}  # a field's row in the (fields, n) arrays
        slots = np.array([f.slot for f in flat], dtype=np.int64)[:, None]
        bitmaps = inputs.buffers[slots, items.batch]  # (fields, n) int64 position of each item's batch's bitmap
        with_bitmap = np.flatnonzero((bitmaps >= 0).any(axis=1))
        widths = np.array([_word_width(f.type) for f in flat], dtype=np.int64)[:, None]
        words = np.maximum(inputs.buffers[slots + 1, items.batch], 0) + items.index * widths  # a struct's is never used
        bits = np.where(bitmaps[with_bitmap] < 0, 0, bitmaps[with_bitmap] + (items.index >> 3))
        read = inputs.read(items.files, np.concatenate([words, bits]), "<u8")
        self.words = read[: len(flat)]  # (fields, n) uint64: the value, or the offsets pair (start, end)
        self.valid = bitmaps < 0  # (fields, n) bool
        self.valid[with_bitmap] |= ((read[len(flat) :] >> (items.index & 7).astype(np.uint64)) & 1) == 1
        strings = [f for f in flat if _is_string(f.type)]
        self.string = {f.slot: k for k, f in enumerate(strings)}
        self.views = self._views(strings, np.array([f.slot for f in strings], dtype=np.int64)[:, None])

    def _span(self, fields: list[_Field]) -> tuple[np.ndarray, np.ndarray]:
        """(fields, n) int64 start and length of each item's strings or lists, from their offsets pairs."""
        offsets = self.words[[self.row[f.slot] for f in fields]]
        start = (offsets & 0xFFFFFFFF).astype(np.int64)
        return start, (offsets >> 32).astype(np.int64) - start

    def _views(self, strings: list[_Field], slots: np.ndarray) -> np.ndarray:
        """(strings, n, 2) uint64 binary_view cells of the strings, pointing into the input files."""
        start, length = self._span(strings)
        if length.size and length.max() > _WINDOW_STEP:
            raise ValueError(f"a value of {length.max()} bytes: the mix writer gathers values of up to 1 GiB")
        position = np.maximum(self.inputs.buffers[slots + 2, self.items.batch], 0) + start  # (strings, n) in the file
        heads = self.inputs.read(self.items.files, position, "V16").view("<u8").reshape(*position.shape, 2)
        kept = np.minimum(length, _INLINE)
        views = np.empty((*position.shape, 2), dtype=np.uint64)
        views[..., 0] = (length.astype(np.uint64) | heads[..., 0] << np.uint64(32)) & _HEAD_MASKS[kept]
        inline = (heads[..., 0] >> np.uint64(32) | heads[..., 1] << np.uint64(32)) & _TAIL_MASKS[kept]
        window = (self.inputs.first_window[self.items.file()] + position // _WINDOW_STEP).astype(np.uint64)
        views[..., 1] = np.where(
            length > _INLINE, window | (position % _WINDOW_STEP).astype(np.uint64) << np.uint64(32), inline
        )
        return views

    def array(self, field: _Field) -> pa.Array:
        valid = self.valid[self.row[field.slot]]
        null_count = len(valid) - int(np.count_nonzero(valid))
        buffers: list[pa.Buffer | None] = [pa.py_buffer(np.packbits(valid, bitorder="little")) if null_count else None]
        if field.slot in self.skip:
            return pa.nulls(len(valid), field.type)
        if pa.types.is_integer(field.type):
            values = self.words[self.row[field.slot]].astype(f"<u{field.type.byte_width}")  # keeps the low bytes
            return pa.Array.from_buffers(field.type, len(valid), [*buffers, pa.py_buffer(values)], null_count)
        if pa.types.is_struct(field.type):
            children = [self.array(child) for child in field.children]
            return pa.Array.from_buffers(field.type, len(valid), buffers, null_count, children=children)
        if pa.types.is_list(field.type):
            return self._list(field, buffers, null_count)
        view = pa.string_view() if pa.types.is_string(field.type) else pa.binary_view()
        views = pa.py_buffer(self.views[self.string[field.slot]])
        return pa.Array.from_buffers(view, len(valid), [*buffers, views, *self.inputs.windows], null_count).cast(
            field.type
        )

    def _list(self, field: _Field, buffers: list[pa.Buffer | None], null_count: int) -> pa.Array:
        start, length = (span[0] for span in self._span([field]))
        offsets = np.concatenate([[0], np.cumsum(length)])
        values = _Items(
            batch=np.repeat(self.items.batch, length),
            index=np.repeat(start - offsets[:-1], length) + np.arange(offsets[-1]),
            files=offsets[self.items.files],
        )
        (child,) = _gather(field.children, values, self.inputs, self.skip)
        return pa.Array.from_buffers(
            field.type, len(length), [*buffers, pa.py_buffer(offsets.astype(np.int32))], null_count, children=[child]
        )


def _gather(
    fields: tuple[_Field, ...], items: _Items, inputs: _Inputs, skip: frozenset[int] = frozenset()
) -> list[pa.Array]:
    """The arrays of ``fields`` (a record batch's columns, or a list's value field) at ``items``, in item order;
    fields whose slot is in ``skip`` come back all null without being read."""
    level = _Level(fields, items, inputs, skip)
    return [level.array(field) for field in fields]


class _Rows:
    """A job's pointers located in its input shards: which file, which record batch, which row in it."""

    def __init__(
        self, inputs: tuple[tuple[str, tuple[str, ...]], ...], pointers: np.ndarray, skip: frozenset[int]
    ) -> None:
        self.skip = skip
        keys = pointers["input"].astype(np.int64) << 32 | pointers["shard"].astype(np.int64)
        files, file_of = np.unique(keys, return_inverse=True)
        self.inputs = _Inputs([inputs[int(key >> 32)][1][int(key & 0xFFFFFFFF)] for key in files])
        self.batch = np.empty(len(pointers), dtype=np.int64)  # row of the stacked buffer table
        self.index = np.empty(len(pointers), dtype=np.int64)
        for f, starts in enumerate(self.inputs.starts):
            where = np.flatnonzero(file_of == f)
            batch = np.searchsorted(starts, pointers["row"][where], side="right") - 1
            self.batch[where] = self.inputs.first_batch[f] + batch
            self.index[where] = pointers["row"][where] - starts[batch]

    def gather(self, start: int, stop: int) -> tuple[pa.RecordBatch, np.ndarray]:
        """Rows ``[start, stop)`` in one record batch, sorted by input file and position, and their order.

        Sorted, each file's rows are read in one pass, in file order. ``order``: (stop - start,)
        int64, the pointer (from ``start``) of each row.
        """
        batch, index = self.batch[start:stop], self.index[start:stop]
        order = np.lexsort((index, batch))
        items = _Items(batch[order], index[order], np.searchsorted(batch[order], self.inputs.first_batch))
        return pa.RecordBatch.from_arrays(_gather(_COLUMNS, items, self.inputs, self.skip), schema=ARROW_SCHEMA), order

    def close(self) -> None:
        self.inputs.close()


def _written_batches(rows: _Rows, pointers: np.ndarray, job: ShardJob) -> Iterator[pa.RecordBatch]:
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
    rows = _Rows(job.inputs, pointers, _IMAGE_BYTES if job.by_reference else frozenset())
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
