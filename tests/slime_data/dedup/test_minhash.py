"""Character shingles, their exact Jaccard, one-permutation MinHash: accuracy, LSH recall, stable chunking."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest

from slime_data.dedup import minhash as minhash_module
from slime_data.dedup.minhash import MinHasher, band_keys, estimated_jaccard, lsh_pairs
from slime_data.dedup.shingles import char_shingles, ngram_keys, packed_kgrams, row_windows, shingle_jaccard


def reference_shingles(text: str, k: int) -> set[bytes]:
    data = text.encode()
    return {data} if len(data) < k else {data[i : i + k] for i in range(len(data) - k + 1)}


def reference_jaccard(a: str, b: str, k: int = 5) -> float:
    sa, sb = reference_shingles(a, k), reference_shingles(b, k)
    return len(sa & sb) / len(sa | sb)


TEXTS = [
    "what is the value of the largest bar",
    "ab",  # shorter than a shingle: must not see the next row's bytes
    "what is the value of the smallest bar",
    "",
    "ab",
    "größe des balkens",  # multi-byte UTF-8
    "what is the value of the largest bar",
]


def planted_pairs(n: int, words: int, seed: int) -> tuple[list[str], list[str]]:
    """``n`` random questions of ``words`` words, and a copy of each with 0-3 words replaced:
    pairs spread over Jaccard 0.2..1 (texts like the benchmark's, ~50 bytes at 8 words)."""
    rng = np.random.default_rng(seed)
    letters = np.array(list("abcdefghijklmnopqrstuvwxyz"))
    vocabulary = np.array(["".join(rng.choice(letters, rng.integers(3, 10))) for _ in range(5000)])
    question = rng.integers(0, len(vocabulary), (n, words))
    copy = question.copy()
    for edit in range(3):
        edited = rng.integers(0, 4, n) > edit  # 0, 1, 2 or 3 edits, as many pairs each
        copy[edited, rng.integers(0, words, edited.sum())] = rng.integers(0, len(vocabulary), edited.sum())
    return [" ".join(vocabulary[q]) for q in question], [" ".join(vocabulary[c]) for c in copy]


@pytest.fixture(scope="module")
def pairs() -> dict[str, np.ndarray]:
    """Planted pairs: exact Jaccard, MinHash estimate, and whether LSH (16 x 4) makes them candidates."""
    left, right = planted_pairs(6000, 8, seed=1)
    long_left, long_right = planted_pairs(3000, 25, seed=2)
    left, right = pa.array(left + long_left, pa.large_string()), pa.array(right + long_right, pa.large_string())
    n = len(left)
    signatures = MinHasher().signatures(pa.concat_arrays([left, right]))
    bands = band_keys(signatures, 16, 4)
    return {
        "exact": shingle_jaccard(left, right, 5),
        "estimate": estimated_jaccard(signatures, np.arange(n), np.arange(n) + n),
        "candidate": (bands[:n] == bands[n:]).any(axis=1),
    }


def test_row_windows_stay_inside_rows() -> None:
    starts, rows = row_windows(np.array([3, 1, 0, 5]), 2)
    assert rows.tolist() == [0, 0, 1, 2, 3, 3, 3, 3]
    assert starts.tolist() == [0, 1, 3, 4, 4, 5, 6, 7]
    starts, rows = row_windows(np.array([3, 1, 0, 5]), 2, short_rows=False)
    assert rows.tolist() == [0, 0, 3, 3, 3, 3]
    assert starts.tolist() == [0, 1, 4, 5, 6, 7]


@pytest.mark.parametrize("k", range(1, 9))
def test_packed_kgrams_are_the_bytes_of_every_window(k: int) -> None:
    packed, rows = packed_kgrams(TEXTS, k)
    for i, text in enumerate(TEXTS):
        data = text.encode()
        windows = [data] if len(data) < k else [data[j : j + k] for j in range(len(data) - k + 1)]
        assert packed[rows == i].tolist() == [int.from_bytes(w, "little") for w in windows]
    assert np.all(np.diff(rows) >= 0)


def test_char_shingles_are_exactly_the_byte_kgrams() -> None:
    shingles, first = char_shingles(TEXTS, 5)
    ends = np.r_[first[1:], len(shingles)]
    for i, text in enumerate(TEXTS):
        assert len(set(shingles[first[i] : ends[i]].tolist())) == len(reference_shingles(text, 5))
    # Equal texts give equal shingle sets; "ab" is the same wherever it sits.
    assert set(shingles[first[0] : ends[0]].tolist()) == set(shingles[first[6] : ends[6]].tolist())
    assert shingles[first[1]] == shingles[first[4]]


@pytest.mark.parametrize("k", [3, 5, 8])
def test_shingle_jaccard_is_the_jaccard_of_the_shingle_sets(k: int) -> None:
    left, right = planted_pairs(300, 6, seed=k)
    left += ["", "ab", "ab", "ha ha ha ha", "größe des balkens"]
    right += ["", "ab", "abc", "ha ha ha", "grösse des balkens"]
    got = shingle_jaccard(pa.array(left, pa.large_string()), pa.array(right, pa.large_string()), k, chunk=64)
    assert got.tolist() == pytest.approx([reference_jaccard(a, b, k) for a, b in zip(left, right)], abs=1e-12)


def test_estimates_are_unbiased_at_every_jaccard(pairs: dict[str, np.ndarray]) -> None:
    exact, error = pairs["exact"], pairs["estimate"] - pairs["exact"]
    assert exact.min() < 0.3 and exact.max() == 1.0
    for low, high in [(0.2, 0.5), (0.5, 0.7), (0.7, 0.8), (0.8, 0.9), (0.9, 1.0)]:
        band = (exact >= low) & (exact < high)
        assert band.sum() >= 200, (low, high)
        # 64 independent permutations give sd sqrt(J (1 - J) / 64); optimal densification matches it.
        ideal = np.sqrt(np.mean(exact[band] * (1 - exact[band])) / 64)
        assert abs(error[band].mean()) < 0.01, (low, high)
        assert error[band].std() < 1.05 * ideal, (low, high)  # rotation densification: 1.08 at J 0.5..0.7
    assert np.all(pairs["estimate"][exact == 1.0] == 1.0)


def test_lsh_finds_pairs_at_high_jaccard(pairs: dict[str, np.ndarray]) -> None:
    exact, candidate = pairs["exact"], pairs["candidate"]
    assert candidate[exact >= 0.8].mean() >= 0.999  # 1 - (1 - J^4)^16 >= 0.9998 at J = 0.8
    assert candidate[(exact >= 0.7) & (exact < 0.8)].mean() >= 0.98
    assert candidate[exact < 0.4].mean() < 0.4


def test_unrelated_texts_are_almost_never_candidates() -> None:
    texts, _ = planted_pairs(20_000, 8, seed=5)
    found = sum(len(i) for i, _ in lsh_pairs(band_keys(MinHasher().signatures(texts), 16, 4)))
    assert found < 1e-5 * 20_000 * 19_999 / 2  # ~1e-6 of pairs: those sharing a word or two


def test_a_single_shingle_fills_every_slot() -> None:
    # "abc" (shorter than a shingle) has one shingle: one bin is set, densification copies it everywhere.
    signature = MinHasher().signatures(["abc", ""])
    assert len(set(signature[0].tolist())) == 1 and len(set(signature[1].tolist())) == 1


def test_signatures_are_deterministic_and_seeded() -> None:
    a = MinHasher(seed=1).signatures(TEXTS)
    assert a.shape == (len(TEXTS), 64) and a.dtype == np.uint16
    assert np.array_equal(a, MinHasher(seed=1).signatures(TEXTS))
    assert not np.array_equal(a, MinHasher(seed=2).signatures(TEXTS))
    assert np.array_equal(a[0], a[6]) and np.array_equal(a[1], a[4])
    assert MinHasher().signatures([]).shape == (0, 64)
    assert MinHasher(num_perm=100).signatures(TEXTS).shape == (len(TEXTS), 100)  # any number of slots


def test_chunking_does_not_change_signatures(monkeypatch: pytest.MonkeyPatch) -> None:
    texts = TEXTS * 20 + [""] * 30 + ["a much longer text than any chunk " * 5] + TEXTS
    whole = MinHasher().signatures(texts)
    monkeypatch.setattr(minhash_module, "_CHUNK_BYTES", 40)  # about one text per chunk, the long one alone
    assert np.array_equal(MinHasher().signatures(texts), whole)
    monkeypatch.setattr(minhash_module, "_CHUNK_ROWS", 3)  # the 30 empty texts in 10 chunks
    assert np.array_equal(MinHasher().signatures(texts), whole)


def test_band_keys() -> None:
    signatures = np.arange(2 * 8, dtype=np.uint16).reshape(2, 8)
    signatures[1, :4] = signatures[0, :4]
    keys = band_keys(signatures, bands=2, rows=4)
    assert keys.shape == (2, 2) and keys[0, 0] == keys[1, 0] and keys[0, 1] != keys[1, 1]
    assert np.shares_memory(keys, signatures)  # 4 slots of 16 bits are read as one uint64
    # 2 slots fit side by side; 8 slots do not fit 64 bits: the key is hashed, still equal exactly when the band is.
    assert band_keys(signatures, bands=4, rows=2)[0, 0] == int(signatures[0, 0]) | int(signatures[0, 1]) << 16
    wide = band_keys(np.tile(signatures, (1, 2)), bands=2, rows=8)
    assert wide[0, 0] != wide[1, 0]
    equal = band_keys(np.tile(signatures[:1], (2, 2)), bands=2, rows=8)
    assert equal[0, 0] == equal[1, 0] and equal[0, 1] == equal[1, 1]
    with pytest.raises(ValueError, match="exceeds|need"):
        band_keys(signatures, bands=3, rows=4)


def test_lsh_pairs_over_some_rows_only() -> None:
    bands = np.array([[1, 7], [1, 7], [2, 7], [3, 8], [3, 9]], dtype=np.uint64)
    found = sorted(p for i, j in lsh_pairs(bands) for p in zip(i.tolist(), j.tolist()))
    assert found == [(0, 1), (0, 2), (1, 2), (3, 4)]  # (0, 1) shares both bands, reported once
    # Rows 4, 2, 0 only: positions in that list come back.
    found = sorted(p for i, j in lsh_pairs(bands, np.array([4, 2, 0])) for p in zip(i.tolist(), j.tolist()))
    assert found == [(1, 2)]


def test_lsh_pairs_in_threads_are_the_same_pairs_in_the_same_order() -> None:
    rng = np.random.default_rng(6)
    bands = rng.integers(0, 50, size=(2000, 16)).astype(np.uint64)  # many chance agreements
    one = [(i.tolist(), j.tolist()) for i, j in lsh_pairs(bands)]
    assert one == [(i.tolist(), j.tolist()) for i, j in lsh_pairs(bands, threads=3)]
    pairs = {p for i, j in one for p in zip(i, j)}
    agree = np.triu((bands[:, None, :] == bands[None, :, :]).any(axis=2), k=1)  # brute force, (2000, 2000)
    expected = set(zip(*(side.tolist() for side in np.nonzero(agree))))
    assert pairs == expected and sum(len(i) for i, _ in one) == len(expected)  # each pair once


def test_ngram_keys_skip_unknown_tokens_and_row_edges() -> None:
    ids = np.array([1, 2, 3, 4, 1, 2, 3, -1, 1, 2], dtype=np.int64)
    keys, rows = ngram_keys(ids, np.array([4, 4, 2]), 3)
    # row 0: (1,2,3) (2,3,4); row 1: (1,2,3) only, (2,3,-1) has an unknown token; row 2 too short
    assert rows.tolist() == [0, 0, 1]
    assert keys[0] == keys[2] and keys[0] != keys[1]
