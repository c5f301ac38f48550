"""All pairs of 64-bit hashes within Hamming distance t, without comparing every pair.

Multi-index hashing (Norouzi et al., CVPR 2012): cut the 64 bits into m blocks. If two hashes
differ in at most t bits, then by pigeonhole some block differs in at most r = t // m bits.
So for each block and each bit mask of at most r bits, join ``block ^ mask`` against the block
values by sorting (no Python dict per bucket), and verify each candidate's full distance with
a popcount. ``choose_blocks`` picks m from a cost model; with m = t + 1, r = 0 and candidates
share a block exactly (the classic form).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterator

import numpy as np

from slime_data.dedup.pairs import SortedKeys

HASH_BITS = 64
# Masks enumerated per block at most: beyond this a search is hopeless, use more blocks.
MAX_MASKS_PER_BLOCK = 100_000
# Rough relative costs for choosing the number of blocks: one sorted-array lookup per query
# per join vs one popcount verification per candidate pair.
_JOIN_COST = 8.0
_PAIR_COST = 1.0

PairChunk = tuple[np.ndarray, np.ndarray, np.ndarray]  # (left, right, distance)


def hamming(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Elementwise Hamming distance of uint64 arrays (uint8)."""
    return np.bitwise_count(np.asarray(a, np.uint64) ^ np.asarray(b, np.uint64))


def block_layout(blocks: int) -> list[tuple[int, int]]:
    """(shift, width) of each block, widths as equal as possible, covering all 64 bits."""
    if not 1 <= blocks <= HASH_BITS:
        raise ValueError(f"blocks must be 1..{HASH_BITS}, got {blocks}")
    base, extra = divmod(HASH_BITS, blocks)
    widths = [base + (i < extra) for i in range(blocks)]
    shifts = [sum(widths[:i]) for i in range(blocks)]
    return list(zip(shifts, widths))


def _masks(width: int, radius: int) -> np.ndarray:
    """All ``width``-bit values with at most ``radius`` bits set, 0 first."""
    masks = [0]
    for k in range(1, radius + 1):
        masks += [sum(1 << b for b in bits) for bits in itertools.combinations(range(width), k)]
    return np.array(masks, dtype=np.uint64)


def _mask_count(width: int, radius: int) -> int:
    return sum(math.comb(width, k) for k in range(radius + 1))


def choose_blocks(n_query: int, n_target: int, max_distance: int) -> int:
    """The block count with the least estimated work, assuming uniformly spread hashes."""
    best, best_cost = min(max_distance + 1, HASH_BITS), math.inf
    for blocks in range(1, min(max_distance + 1, HASH_BITS) + 1):
        radius = max_distance // blocks
        joins = candidates = 0.0
        if _mask_count(block_layout(blocks)[0][1], radius) > MAX_MASKS_PER_BLOCK:
            continue
        for _, width in block_layout(blocks):
            n_masks = _mask_count(width, radius)
            joins += n_masks
            candidates += n_masks * n_query * n_target / 2.0**width
        cost = joins * n_query * _JOIN_COST + candidates * _PAIR_COST
        if cost < best_cost:
            best, best_cost = blocks, cost
    return best


class MultiIndexHash:
    """An index over ``hashes`` (n,) uint64 for pairs within ``max_distance`` bits.

    ``blocks`` fixes the number of blocks; by default each search picks the cheapest for its
    sizes (``choose_blocks``).
    """

    def __init__(self, hashes: np.ndarray, max_distance: int, blocks: int | None = None) -> None:
        if max_distance < 0:
            raise ValueError(f"max_distance must be >= 0, got {max_distance}")
        self.hashes = np.ascontiguousarray(hashes, dtype=np.uint64)
        self.max_distance = max_distance
        self.blocks = blocks
        self._sorted: dict[tuple[int, int], SortedKeys] = {}  # (shift, width) -> block values, for queries

    def __len__(self) -> int:
        return len(self.hashes)

    def _layout(self, n_query: int) -> tuple[list[tuple[int, int]], int]:
        blocks = self.blocks or choose_blocks(n_query, len(self.hashes), self.max_distance)
        layout, radius = block_layout(blocks), self.max_distance // blocks
        masks = _mask_count(layout[0][1], radius)
        if masks > MAX_MASKS_PER_BLOCK:
            raise ValueError(
                f"{blocks} block(s) for distance {self.max_distance} means {masks} bit masks per block; use more blocks"
            )
        return layout, radius

    @staticmethod
    def _block(hashes: np.ndarray, shift: int, width: int) -> np.ndarray:
        return (hashes >> np.uint64(shift)) & np.uint64((1 << width) - 1)

    def _first_close_block(
        self, a: np.ndarray, b: np.ndarray, layout: list[tuple[int, int]], radius: int
    ) -> np.ndarray:
        """For hash pairs, the first block where they differ in at most ``radius`` bits."""
        close = np.stack([hamming(self._block(a, s, w), self._block(b, s, w)) <= radius for s, w in layout])
        return np.argmax(close, axis=0)

    def self_pairs(self) -> Iterator[PairChunk]:
        """Chunks of (i, j, distance), i < j: every pair within ``max_distance``, exactly once."""
        h = self.hashes
        layout, radius = self._layout(len(h))
        for b, (shift, width) in enumerate(layout):
            block = self._block(h, shift, width)
            index = SortedKeys(block, width)
            for mask in _masks(width, radius):
                if mask == 0:
                    candidates = index.self_join()
                else:  # v_i ^ mask == v_j finds each pair from both ends: keep i < j
                    candidates = ((i[i < j], j[i < j]) for i, j in index.join(block ^ mask))
                for i, j in candidates:
                    distance = hamming(h[i], h[j])
                    keep = distance <= self.max_distance
                    i, j, distance = i[keep], j[keep], distance[keep]
                    # Emit each pair once: at the first block where it is within the radius.
                    keep = self._first_close_block(h[i], h[j], layout, radius) == b
                    if keep.any():
                        yield i[keep], j[keep], distance[keep]

    def query(self, queries: np.ndarray) -> Iterator[PairChunk]:
        """Chunks of (query index, index in this set, distance): every pair within ``max_distance`` once."""
        queries = np.ascontiguousarray(queries, dtype=np.uint64)
        h = self.hashes
        layout, radius = self._layout(1)  # the cost per query does not depend on how many there are
        for b, (shift, width) in enumerate(layout):
            if (shift, width) not in self._sorted:
                self._sorted[shift, width] = SortedKeys(self._block(h, shift, width), width)
            index = self._sorted[shift, width]
            query_block = self._block(queries, shift, width)
            for mask in _masks(width, radius):
                for q, t in index.join(query_block ^ mask):
                    distance = hamming(queries[q], h[t])
                    close = distance <= self.max_distance
                    q, t, distance = q[close], t[close], distance[close]
                    keep = self._first_close_block(queries[q], h[t], layout, radius) == b
                    if keep.any():
                        yield q[keep], t[keep], distance[keep]
