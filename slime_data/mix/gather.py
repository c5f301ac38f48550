"""Gathering rows from memory-mapped input shards, many at a time, without Arrow's per-row costs.

numpy reads each value's offsets, validity bit and first bytes straight from the mapped files, at
positions known from the layout of every input record batch's buffers, and Arrow copies the strings
in (as views cast to strings). A gather thus costs a few dozen calls whatever its size, not a few
per row. (Arrow's own ``take`` over a shard's record batches concatenates each whole column first —
pyarrow 26, even for int32 — and one-row slices cost ~17 µs a row: both measured, both too slow for
2M rows of small images.) ``Rows`` locates a job's pointers in its input files and gathers any
slice of them as one record batch; fields named in ``skip`` (the image bytes of a by-reference mix)
come back all null without being read.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import pyarrow as pa

from slime_data.record import ARROW_SCHEMA
from slime_data.shards import BATCH_ROWS


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
IMAGE_BYTES = frozenset({_IMAGE.children[_IMAGE.type.get_field_index("bytes")].slot})
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


class Rows:
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
