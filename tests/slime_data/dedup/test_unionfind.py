"""Vectorised union-find and the keep rule (most pixels, then lowest id)."""

from __future__ import annotations

import numpy as np

from slime_data.dedup.plan import keepers
from slime_data.dedup.unionfind import UnionFind


def reference_roots(n: int, pairs: list[tuple[int, int]]) -> list[int]:
    parent = list(range(n))

    def find(x: int) -> int:
        while parent[x] != x:
            x = parent[x]
        return x

    for a, b in pairs:
        ra, rb = find(a), find(b)
        parent[max(ra, rb)] = min(ra, rb)
    return [find(x) for x in range(n)]


def test_chain_star_and_random_pairs_match_a_reference() -> None:
    rng = np.random.default_rng(0)
    cases = [
        [(i, i + 1) for i in range(50)][::-1],  # a long chain, arriving backwards
        [(0, i) for i in range(1, 30)] + [(40, 35), (35, 31)],
        [tuple(p) for p in rng.integers(0, 200, size=(150, 2)).tolist()],
    ]
    for pairs in cases:
        union = UnionFind(200)
        left, right = np.array([p[0] for p in pairs]), np.array([p[1] for p in pairs])
        union.union(left[: len(left) // 2], right[: len(right) // 2])  # unions may come in chunks
        union.union(left[len(left) // 2 :], right[len(right) // 2 :])
        assert union.roots().tolist() == reference_roots(200, pairs)


def test_root_is_the_smallest_member_whatever_the_order() -> None:
    a, b = UnionFind(6), UnionFind(6)
    a.union(np.array([5, 4, 3]), np.array([4, 3, 2]))
    b.union(np.array([2, 3, 4]), np.array([3, 4, 5]))
    assert a.roots().tolist() == b.roots().tolist() == [0, 1, 2, 2, 2, 2]
    a.union(np.array([], dtype=np.int64), np.array([], dtype=np.int64))
    assert len(a) == 6


def test_keepers_prefer_resolution_then_lowest_id() -> None:
    roots = np.array([0, 0, 0, 3, 3, 5])
    pixels = np.array([100, 400, 400, 0, 0, 7])
    id_rank = np.array([0, 2, 1, 4, 3, 5])  # row 2's id sorts before row 1's; row 4's before row 3's
    assert keepers(roots, pixels, id_rank).tolist() == [2, 2, 2, 4, 4, 5]
