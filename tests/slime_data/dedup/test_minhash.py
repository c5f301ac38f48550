"""Character shingles and numpy MinHash: exact shingle sets, unbiased estimates, stable chunking."""

from __future__ import annotations

import numpy as np
import pytest

from slime_data.dedup import minhash as minhash_module
from slime_data.dedup.minhash import MinHasher, band_keys, estimated_jaccard
from slime_data.dedup.shingles import char_shingles, ngram_keys, row_windows


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


def test_row_windows_stay_inside_rows() -> None:
    starts, rows = row_windows(np.array([3, 1, 0, 5]), 2)
    assert rows.tolist() == [0, 0, 1, 2, 3, 3, 3, 3]
    assert starts.tolist() == [0, 1, 3, 4, 4, 5, 6, 7]
    starts, rows = row_windows(np.array([3, 1, 0, 5]), 2, short_rows=False)
    assert rows.tolist() == [0, 0, 3, 3, 3, 3]


def test_char_shingles_are_exactly_the_byte_kgrams() -> None:
    shingles, first = char_shingles(TEXTS, 5)
    ends = np.r_[first[1:], len(shingles)]
    for i, text in enumerate(TEXTS):
        assert len(set(shingles[first[i] : ends[i]].tolist())) == len(reference_shingles(text, 5))
    # Equal texts give equal shingle sets; "ab" is the same wherever it sits.
    assert set(shingles[first[0] : ends[0]].tolist()) == set(shingles[first[6] : ends[6]].tolist())
    assert shingles[first[1]] == shingles[first[4]]


def test_signatures_estimate_jaccard() -> None:
    hasher = MinHasher(num_perm=256, seed=3)
    pairs = [
        ("what is the value of the largest bar in the chart", "what is the value of the largest bar in this chart"),
        ("what is the value of the largest bar", "how many bars are shown in the figure"),
        ("the quick brown fox jumps over the lazy dog", "the quick brown fox jumped over a lazy dog"),
    ]
    signatures = hasher.signatures([t for pair in pairs for t in pair])
    estimates = estimated_jaccard(signatures, np.arange(0, 6, 2), np.arange(1, 6, 2))
    truth = [reference_jaccard(a, b) for a, b in pairs]
    assert np.allclose(estimates, truth, atol=0.1)


def test_signatures_are_deterministic_and_seeded() -> None:
    a = MinHasher(seed=1).signatures(TEXTS)
    assert a.shape == (len(TEXTS), 64) and a.dtype == np.uint16
    assert np.array_equal(a, MinHasher(seed=1).signatures(TEXTS))
    assert not np.array_equal(a, MinHasher(seed=2).signatures(TEXTS))
    assert np.array_equal(a[0], a[6]) and np.array_equal(a[1], a[4])
    assert MinHasher().signatures([]).shape == (0, 64)


def test_chunking_does_not_change_signatures(monkeypatch: pytest.MonkeyPatch) -> None:
    texts = TEXTS * 20 + [""] * 30 + ["a much longer text than any chunk " * 5] + TEXTS
    whole = MinHasher().signatures(texts)
    monkeypatch.setattr(minhash_module, "_MAX_WINDOW_SLOTS", 64 * 7)  # 7 shingles per chunk
    assert np.array_equal(MinHasher().signatures(texts), whole)


def test_band_keys() -> None:
    signatures = np.arange(2 * 8, dtype=np.uint16).reshape(2, 8)
    signatures[1, :4] = signatures[0, :4]
    keys = band_keys(signatures, bands=2, rows=4)
    assert keys.shape == (2, 2) and keys[0, 0] == keys[1, 0] and keys[0, 1] != keys[1, 1]
    assert keys[0, 0] == sum(int(v) << (16 * i) for i, v in enumerate(signatures[0, :4]))
    # 8 slots do not fit 64 bits: the key is hashed, still equal exactly when the band is.
    wide = band_keys(np.tile(signatures, (1, 2)), bands=2, rows=8)
    assert wide[0, 0] != wide[1, 0]
    equal = band_keys(np.tile(signatures[:1], (2, 2)), bands=2, rows=8)
    assert equal[0, 0] == equal[1, 0] and equal[0, 1] == equal[1, 1]
    with pytest.raises(ValueError, match="exceeds|need"):
        band_keys(signatures, bands=3, rows=4)


def test_ngram_keys_skip_unknown_tokens_and_row_edges() -> None:
    ids = np.array([1, 2, 3, 4, 1, 2, 3, -1, 1, 2], dtype=np.int64)
    keys, rows = ngram_keys(ids, np.array([4, 4, 2]), 3)
    # row 0: (1,2,3) (2,3,4); row 1: (1,2,3) only, (2,3,-1) has an unknown token; row 2 too short
    assert rows.tolist() == [0, 0, 1]
    assert keys[0] == keys[2] and keys[0] != keys[1]
