"""A stage's shards as a stream of micro-batches: rank × worker split, seeded shuffle, exact resume.

Order of an epoch (the same on every rank, computed from (seed, epoch) alone, no state):

1. the shards in a seeded random order, their rows back to back: the *stream*;
2. the stream cut into windows of `shuffle_buffer` rows, each permuted in memory (seeded by
   (seed, epoch, window)); with `group_by_length` each window is further cut into megabatches of
   `LENGTH_GROUP` global micro-steps, sorted by estimated length, and its micro-steps shuffled.

Position p of that order goes to rank r and stage-wide micro-batch m as p = k·G + r·b + j, with b the
micro-batch, G = b·world and k = m mod (micro-batches per epoch): every rank gets its own contiguous
slice of each global micro-step, and a global micro-step holds rows of similar length when grouped.
The tail of an epoch that does not fill a global micro-step is dropped, so every rank runs the same
number of steps. DataLoader worker w of W builds the micro-batches m ≡ w (mod W); the loader hands
them back in m order. The position to resume from is one integer, m, saved with the checkpoint.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import torch
from torch.utils.data import IterableDataset, get_worker_info

from slime_data.mix.references import is_reference, resolve
from slime_data.shards import ShardSet
from slime_model.training.recipe import DataSpec

LENGTH_GROUP = 8  # global micro-steps sorted together by length (LLaVA's megabatch idea)
CHARS_PER_TOKEN = 4  # rough text length estimate; only the ordering of lengths matters
READ_COLUMNS = ["id", "conversations", "image"]


@dataclass(frozen=True)
class RankSlice:
    """Which rows of a stage one rank reads, and in what micro-batches."""

    shard_rows: tuple[int, ...]
    micro_batch: int
    world_size: int
    rank: int

    @property
    def rows(self) -> int:
        return sum(self.shard_rows)

    @property
    def global_micro_batch(self) -> int:
        return self.micro_batch * self.world_size

    @property
    def micro_batches_per_epoch(self) -> int:
        return self.rows // self.global_micro_batch


class EpochOrder:
    """Global row index of every position of one epoch, computed window by window on demand."""

    def __init__(
        self,
        shard_rows: Sequence[int],
        seed: Sequence[int],
        epoch: int,
        spec: DataSpec,
        global_micro_batch: int,
        lengths: Callable[[np.ndarray], np.ndarray] | None = None,
    ) -> None:
        self.seed, self.epoch, self.spec = seed, epoch, spec
        self.global_micro_batch = global_micro_batch
        self.lengths = lengths
        rows = np.asarray(shard_rows, dtype=np.int64)
        self.total = int(rows.sum())
        shard_starts = np.concatenate([[0], np.cumsum(rows)[:-1]])
        shard_order = self._rng("shards").permutation(len(rows)) if spec.shuffle else np.arange(len(rows))
        # The stream: shards in `shard_order`, rows back to back. For stream position s, the shard
        # holding it is the last one whose stream start is <= s.
        self._stream_starts = np.concatenate([[0], np.cumsum(rows[shard_order])[:-1]])
        self._stream_shard_start = shard_starts[shard_order]
        self._window_size = spec.shuffle_buffer if spec.shuffle else self.total or 1
        self._cached: tuple[int, np.ndarray] | None = None

    def _rng(self, *key: str | int) -> np.random.Generator:
        words = [
            *self.seed,
            self.epoch,
            *(k if isinstance(k, int) else int.from_bytes(k.encode(), "little") for k in key),
        ]
        return np.random.default_rng(words)

    def _stream_to_row(self, stream: np.ndarray) -> np.ndarray:
        which = np.searchsorted(self._stream_starts, stream, side="right") - 1
        return self._stream_shard_start[which] + (stream - self._stream_starts[which])

    def _window(self, index: int) -> np.ndarray:
        """Global row indices of window `index`, in their shuffled (and length-grouped) order."""
        if self._cached is not None and self._cached[0] == index:
            return self._cached[1]
        start = index * self._window_size
        stream = np.arange(start, min(start + self._window_size, self.total), dtype=np.int64)
        if self.spec.shuffle:
            stream = stream[self._rng("window", index).permutation(len(stream))]
        rows = self._stream_to_row(stream)
        if self.spec.group_by_length and self.lengths is not None:
            rows = self._group_by_length(rows, self._rng("lengths", index))
        self._cached = (index, rows)
        return rows

    def _group_by_length(self, rows: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        size = self.global_micro_batch * LENGTH_GROUP
        lengths = self.lengths(rows)
        out = []
        for start in range(0, len(rows), size):
            mega, mega_len = rows[start : start + size], lengths[start : start + size]
            mega = mega[np.argsort(-mega_len, kind="stable")]
            blocks = [mega[i : i + self.global_micro_batch] for i in range(0, len(mega), self.global_micro_batch)]
            full = [b for b in blocks if len(b) == self.global_micro_batch]
            out += [full[i] for i in rng.permutation(len(full))] + blocks[len(full) :]
        return np.concatenate(out) if out else rows

    def rows(self, positions: np.ndarray) -> np.ndarray:
        """Positions of the epoch's order -> global row indices."""
        windows = positions // self._window_size
        out = np.empty(len(positions), dtype=np.int64)
        for window in np.unique(windows):
            where = windows == window
            out[where] = self._window(int(window))[positions[where] - window * self._window_size]
        return out


class StageStream(IterableDataset):
    """Micro-batches [start, stop) (stage-wide counter m, across epochs) of one rank, collated.

    `collate(m, rows)` turns the raw rows (dicts with id, conversations, image) into what the
    trainer consumes; it runs in the DataLoader workers, so image decoding and slicing do too.
    """

    def __init__(
        self,
        stage_dir: Path,
        layout: RankSlice,
        spec: DataSpec,
        seed: Sequence[int],
        start: int,
        stop: int,
        collate: Callable[[int, list[dict[str, Any]]], Any],
        lengths: Callable[[pa.Table], np.ndarray] | None = None,
    ) -> None:
        if layout.micro_batches_per_epoch == 0:
            raise ValueError(
                f"{stage_dir} has {layout.rows} rows, fewer than one global micro-batch of {layout.global_micro_batch} "
                f"({layout.micro_batch} per rank × {layout.world_size} ranks)"
            )
        self.stage_dir, self.layout, self.spec, self.seed = stage_dir, layout, spec, seed
        self.start, self.stop = start, stop
        self.collate = collate
        self.shard_lengths = lengths
        self._shards: ShardSet | None = None  # opened lazily: in each worker, after the fork
        self._lengths: dict[int, np.ndarray] = {}  # per shard, computed on first use
        self._record_batches: dict[int, tuple[list[pa.RecordBatch], np.ndarray]] = {}  # per shard, see _batches

    def __len__(self) -> int:
        return max(0, self.stop - self.start)

    @property
    def shards(self) -> ShardSet:
        if self._shards is None:
            self._shards = ShardSet(self.stage_dir)
        return self._shards

    def micro_batch_rows(self, m: int, order: EpochOrder) -> np.ndarray:
        k = m % self.layout.micro_batches_per_epoch
        first = k * self.layout.global_micro_batch + self.layout.rank * self.layout.micro_batch
        return order.rows(np.arange(first, first + self.layout.micro_batch, dtype=np.int64))

    def order(self, epoch: int) -> EpochOrder:
        lengths = self._row_lengths if self.shard_lengths is not None else None
        return EpochOrder(self.layout.shard_rows, self.seed, epoch, self.spec, self.layout.global_micro_batch, lengths)

    def _row_lengths(self, rows: np.ndarray) -> np.ndarray:
        shard_of, local = self._locate(rows)
        out = np.empty(len(rows), dtype=np.int64)
        for shard in np.unique(shard_of):
            where = shard_of == shard
            if shard not in self._lengths:
                self._lengths[shard] = self.shard_lengths(self.shards.table(int(shard)))
            out[where] = self._lengths[shard][local[where]]
        return out

    def _locate(self, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        starts = np.concatenate([[0], np.cumsum(self.layout.shard_rows)[:-1]])
        shard_of = np.searchsorted(starts, rows, side="right") - 1
        return shard_of, rows - starts[shard_of]

    def read(self, rows: np.ndarray) -> list[dict[str, Any]]:
        """The rows' id, conversations and image, in the order given.

        Each row is a zero-copy one-row slice of its record batch: `Table.take` concatenates a
        shard's chunks first, which costs the whole shard (hundreds of MB) per call."""
        shard_of, local = self._locate(rows)
        out = []
        for shard, row in zip(shard_of.tolist(), local.tolist(), strict=True):
            batches, starts = self._batches(shard)
            which = int(np.searchsorted(starts, row, side="right")) - 1
            item = batches[which].slice(row - int(starts[which]), 1).to_pylist()[0]
            if is_reference(item["image"]):  # a by-reference mix: the image lives in its input shard
                item["image"] = resolve(item["image"], self.stage_dir)
            out.append(item)
        return out

    def _batches(self, shard: int) -> tuple[list[pa.RecordBatch], np.ndarray]:
        """A shard's record batches (the columns read, zero-copy over the memory map) and their first rows."""
        if shard not in self._record_batches:
            batches = [batch.select(READ_COLUMNS) for batch in self.shards.table(shard).to_batches()]
            starts = np.cumsum([0] + [batch.num_rows for batch in batches[:-1]])
            self._record_batches[shard] = (batches, starts)
        return self._record_batches[shard]

    def __iter__(self) -> Iterator[Any]:
        info = get_worker_info()
        worker, workers = (info.id, info.num_workers) if info is not None else (0, 1)
        per_epoch = self.layout.micro_batches_per_epoch
        order: EpochOrder | None = None
        for m in range(self.start + worker, self.stop, workers):
            epoch = m // per_epoch
            if order is None or order.epoch != epoch:
                order = self.order(epoch)
            yield self.collate(m, self.read(self.micro_batch_rows(m, order)))


def estimated_lengths(visual_tokens: Callable[[int, int], int]) -> Callable[[pa.Table], np.ndarray]:
    """Per-row length estimate of a shard table: conversation characters / 4 + the image's visual tokens."""

    def lengths(table: pa.Table) -> np.ndarray:
        turns = table.column("conversations").combine_chunks()
        values = pc.struct_field(pc.list_flatten(turns), "value")
        chars = np.bincount(
            pc.list_parent_indices(turns).to_numpy(),
            weights=pc.utf8_length(values).to_numpy(zero_copy_only=False),
            minlength=len(table),
        )
        widths = table.column("width").fill_null(0).to_numpy()
        heights = table.column("height").fill_null(0).to_numpy()
        visual = [visual_tokens(int(w), int(h)) if w > 0 and h > 0 else 0 for w, h in zip(widths, heights, strict=True)]
        return (chars // CHARS_PER_TOKEN).astype(np.int64) + np.asarray(visual, dtype=np.int64)

    return lengths


def make_loader(stream: StageStream, num_workers: int) -> torch.utils.data.DataLoader:
    """Micro-batches in m order; the loader's own generator leaves the global torch RNG untouched,
    so a resumed run draws the same gate/selector noise as an uninterrupted one."""
    return torch.utils.data.DataLoader(
        stream,
        batch_size=None,
        num_workers=num_workers,
        generator=torch.Generator(),
        prefetch_factor=4 if num_workers else None,
        in_order=True,
    )
