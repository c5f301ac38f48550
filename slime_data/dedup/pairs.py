"""Equality joins on uint64 keys by sorting: the candidate generator under MIH and LSH.

Sorting keys once and binary-searching (or, for narrow keys, table-looking-up) the queries
replaces per-bucket Python dicts: memory is a few arrays of n, and pairs come out in chunks
of about ``PAIR_CHUNK`` so a huge bucket never materialises all its pairs at once.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

# Candidate pairs materialised at once; bounds memory whatever the bucket sizes.
PAIR_CHUNK = 2**20
# Keys up to this many bits are looked up in a table of 2^bits + 1 offsets (8 MiB at 20).
TABLE_BITS = 20


def repeated(keys: np.ndarray) -> np.ndarray:
    """(n,) bool: the key occurs more than once in ``keys`` (n,) uint64.

    One ``np.sort`` of the keys (no argsort: several times faster) finds the repeated values,
    and a hash lookup (``pc.is_in``) marks their rows. When few keys repeat, whatever groups or
    joins the keys next can run on those rows alone.
    """
    ordered = np.sort(keys)
    values = np.unique(ordered[1:][ordered[1:] == ordered[:-1]])
    if not values.size:
        return np.zeros(len(keys), dtype=bool)
    return pc.is_in(pa.array(keys), value_set=pa.array(values)).to_numpy(zero_copy_only=False)


def groups(keys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Group equal keys: ``(group (n,) int64, first (g,) int64)``, each row's group and each group's first row.

    Groups are numbered in order of their first row; the same partition as ``np.unique(keys,
    return_index=True, return_inverse=True)``, but only the rows whose key repeats are sorted.
    """
    representative = np.arange(len(keys))
    shared = np.flatnonzero(repeated(keys))
    order = shared[np.argsort(keys[shared], kind="stable")]
    starts = np.r_[True, keys[order][1:] != keys[order][:-1]] if order.size else np.zeros(0, bool)
    representative[order] = order[starts][np.cumsum(starts) - 1]
    is_first = representative == np.arange(len(keys))
    return (np.cumsum(is_first) - 1)[representative], np.flatnonzero(is_first)


class SortedKeys:
    """``keys`` (n,) uint64 sorted once. ``width``: the keys' bit width, if narrow (block values)."""

    def __init__(self, keys: np.ndarray, width: int | None = None) -> None:
        self.order = np.argsort(keys, kind="stable")
        self.sorted = keys[self.order]
        self.table = None
        if width is not None and width <= TABLE_BITS:
            self.table = np.searchsorted(self.sorted, np.arange(2**width + 1, dtype=np.uint64))

    def _bounds(self, query: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        if self.table is not None:
            at = query.astype(np.int64)
            return self.table[at], self.table[at + 1]
        return np.searchsorted(self.sorted, query, side="left"), np.searchsorted(self.sorted, query, side="right")

    def join(self, query: np.ndarray) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """Chunks of (query index, key index) for every equal pair."""
        lo, hi = self._bounds(query)
        hits = np.flatnonzero(hi > lo)
        if hits.size == 0:
            return
        counts = (hi - lo)[hits]
        ends = np.cumsum(counts)
        start = 0
        while start < len(hits):
            # Take whole queries until the chunk holds PAIR_CHUNK pairs (at least one query).
            done = int(ends[start - 1]) if start else 0
            stop = max(int(np.searchsorted(ends, done + PAIR_CHUNK, side="right")), start + 1)
            q, c = hits[start:stop], counts[start:stop]
            first = np.cumsum(c) - c
            within = np.arange(int(c.sum()), dtype=np.int64) - np.repeat(first, c)
            yield np.repeat(q, c), self.order[np.repeat(lo[q], c) + within]
            start = stop

    def self_join(self) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """Chunks of (i, j), i < j, for every pair of equal keys, each pair once.

        Equal keys sit in runs of the sorted array; step d pairs each position with the one d
        further on while both are still in the same run, so the work is the number of pairs.
        """
        keys, n = self.sorted, len(self.sorted)
        at = np.flatnonzero(keys[1:] == keys[:-1])
        distance, lefts, rights, held = 1, [], [], 0
        while at.size:
            left, right = self.order[at], self.order[at + distance]
            lefts.append(np.minimum(left, right))
            rights.append(np.maximum(left, right))
            held += len(at)
            if held >= PAIR_CHUNK:  # long runs give many small steps: hand them out together
                yield np.concatenate(lefts), np.concatenate(rights)
                lefts, rights, held = [], [], 0
            distance += 1
            at = at[at + distance < n]
            at = at[keys[at] == keys[at + distance]]
        if held:
            yield np.concatenate(lefts), np.concatenate(rights)
