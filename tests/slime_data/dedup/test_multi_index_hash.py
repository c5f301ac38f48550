"""Multi-index hashing finds exactly the pairs brute force finds, each once."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from slime_data.dedup import pairs as pairs_module
from slime_data.dedup.hamming import MultiIndexHash, block_layout, choose_blocks, hamming


def planted_hashes(n: int, seed: int = 0, max_flips: int = 12) -> np.ndarray:
    """Random 64-bit hashes, a fifth of them copies of others with a few bits flipped."""
    rng = np.random.default_rng(seed)
    hashes = rng.integers(0, 2**64, size=n, dtype=np.uint64)
    copies = n // 5
    for k, source in enumerate(rng.integers(0, n - copies, size=copies)):
        flips = rng.choice(64, size=int(rng.integers(0, max_flips + 1)), replace=False)
        hashes[n - 1 - k] = hashes[source] ^ np.uint64(sum(1 << int(b) for b in flips))
    hashes[:10] = hashes[10]  # a run of identical hashes
    return hashes


def brute_force(a: np.ndarray, b: np.ndarray, t: int, self_join: bool) -> set[tuple[int, int]]:
    distance = hamming(a[:, None], b[None, :])
    i, j = np.nonzero(distance <= t)
    keep = i < j if self_join else np.ones(len(i), bool)
    return set(zip(i[keep].tolist(), j[keep].tolist()))


def collect(chunks) -> list[tuple[int, int]]:
    return [pair for i, j, _ in chunks for pair in zip(i.tolist(), j.tolist())]


@pytest.mark.parametrize(
    ("t", "blocks"), [(0, None), (3, None), (6, None), (10, None), (0, 1), (3, 4), (10, 4), (6, 7)]
)
def test_self_pairs_equal_brute_force(t: int, blocks: int | None) -> None:
    hashes = planted_hashes(1500)
    found = collect(MultiIndexHash(hashes, t, blocks=blocks).self_pairs())
    assert len(found) == len(set(found))  # each pair once
    assert set(found) == brute_force(hashes, hashes, t, self_join=True)


def test_distances_are_reported() -> None:
    hashes = planted_hashes(500)
    for i, j, d in MultiIndexHash(hashes, 8).self_pairs():
        assert np.array_equal(d, hamming(hashes[i], hashes[j]))


@pytest.mark.parametrize("t", [0, 4, 8])
def test_query_equals_brute_force(t: int) -> None:
    hashes = planted_hashes(2000, seed=1)
    index, queries = MultiIndexHash(hashes[:1200], t), hashes[1200:]
    found = collect(index.query(queries))
    assert len(found) == len(set(found))
    assert set(found) == brute_force(queries, hashes[:1200], t, self_join=False)
    assert set(collect(index.query(queries))) == set(found)  # the cached block index is reused


def test_small_pair_chunks_give_the_same_pairs(monkeypatch: pytest.MonkeyPatch) -> None:
    hashes = planted_hashes(800, seed=3)
    expected = set(collect(MultiIndexHash(hashes, 5).self_pairs()))
    monkeypatch.setattr(pairs_module, "PAIR_CHUNK", 3)
    found = collect(MultiIndexHash(hashes, 5, blocks=2).self_pairs())  # radius 2: masks go through join()
    assert len(found) == len(set(found)) and set(found) == expected


def test_block_layout_and_choice() -> None:
    for blocks in (1, 5, 7, 64):
        layout = block_layout(blocks)
        assert sum(w for _, w in layout) == 64 and layout[0][0] == 0
        assert all(s + w == s2 for (s, w), (s2, _) in itertools.pairwise(layout))
    assert choose_blocks(1000, 1000, 0) == 1
    assert 1 <= choose_blocks(200_000, 200_000, 8) <= 9
    with pytest.raises(ValueError):
        block_layout(65)
    with pytest.raises(ValueError):
        MultiIndexHash(np.zeros(3, np.uint64), -1)
    with pytest.raises(ValueError, match="bit masks per block"):  # radius 10 over all 64 bits
        next(MultiIndexHash(np.zeros(3, np.uint64), 10, blocks=1).self_pairs())


def test_empty_and_single() -> None:
    assert collect(MultiIndexHash(np.zeros(0, np.uint64), 4).self_pairs()) == []
    assert collect(MultiIndexHash(np.zeros(1, np.uint64), 4).self_pairs()) == []
    assert collect(MultiIndexHash(np.zeros(0, np.uint64), 4).query(np.ones(3, np.uint64))) == []


def test_sorted_key_joins() -> None:
    from slime_data.dedup.minhash import lsh_pairs
    from slime_data.dedup.pairs import SortedKeys

    keys = np.array([5, 3, 5, 5, 9, 3], dtype=np.uint64)
    self_pairs = {p for i, j in SortedKeys(keys).self_join() for p in zip(i.tolist(), j.tolist())}
    assert self_pairs == {(0, 2), (0, 3), (2, 3), (1, 5)}
    joined = {
        p
        for q, k in SortedKeys(keys, width=4).join(np.array([3, 7, 9], np.uint64))
        for p in zip(q.tolist(), k.tolist())
    }
    assert joined == {(0, 1), (0, 5), (2, 4)}
    bands = np.array([[1, 7], [1, 7], [2, 7], [3, 8]], dtype=np.uint64)
    found = [p for i, j in lsh_pairs(bands) for p in zip(i.tolist(), j.tolist())]
    assert sorted(found) == [(0, 1), (0, 2), (1, 2)]  # (0, 1) shares both bands, reported once
