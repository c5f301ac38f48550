"""Windows over many rows at once: character shingles for MinHash and their exact Jaccard, token
n-grams for decontamination.

Rows (strings, token lists) are laid end to end in one flat array; ``row_windows`` gives the
start of every length-``k`` window that stays inside its row, so one numpy expression handles
a whole batch without a Python loop per row.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pyarrow as pa

# splitmix64's finaliser constants: a cheap, well-mixing bijection on 64-bit integers.
_MIX1 = np.uint64(0xBF58476D1CE4E5B9)
_MIX2 = np.uint64(0x94D049BB133111EB)
GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_LOW_BYTES = np.array([2 ** (8 * b) - 1 for b in range(9)], dtype=np.uint64)  # [b]: the low b bytes set
_CODE_BITS = 40  # shingle_jaccard: bits of a k-gram's code; the pair index takes the 24 above them


def mix64(x: np.ndarray) -> np.ndarray:
    """splitmix64 finaliser, elementwise on uint64 (wrapping arithmetic): a new array."""
    x = np.array(x, dtype=np.uint64)  # a copy, so the steps below can work in place
    with np.errstate(over="ignore"):
        x ^= x >> np.uint64(30)
        x *= _MIX1
        x ^= x >> np.uint64(27)
        x *= _MIX2
        x ^= x >> np.uint64(31)
    return x


def row_windows(lengths: np.ndarray, k: int, short_rows: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """Windows of ``k`` items over rows of ``lengths`` items laid end to end.

    Returns ``(starts, rows)``, both (W,) int64: the flat offset of every window that fits
    inside its row, and that row's index, in row order. With ``short_rows`` a row shorter than
    ``k`` gets one window at its start (so every row has at least one, and ``rows`` can feed
    ``np.minimum.reduceat``); without, it gets none.
    """
    lengths = np.asarray(lengths, dtype=np.int64)
    counts = np.maximum(lengths - k + 1, 1 if short_rows else 0)
    first = np.cumsum(counts) - counts  # each row's first window
    row_offsets = np.cumsum(lengths) - lengths
    rows = np.repeat(np.arange(len(lengths), dtype=np.int64), counts)
    # Window w of row r starts at row_offsets[r] + (w - first[r]).
    return np.arange(int(counts.sum()), dtype=np.int64) + (row_offsets - first)[rows], rows


def first_of_each_row(rows: np.ndarray) -> np.ndarray:
    """Index of each row's first window, for rows that all have one (``short_rows=True``)."""
    return np.flatnonzero(np.r_[True, rows[1:] != rows[:-1]])


def string_buffer(texts: Sequence[str] | pa.Array) -> tuple[np.ndarray, np.ndarray]:
    """UTF-8 bytes of ``texts`` laid end to end (uint8) and each text's length in bytes (int64)."""
    array = texts if isinstance(texts, pa.Array) else pa.array(texts, type=pa.large_string())
    if array.type != pa.large_string():
        array = array.cast(pa.large_string())
    offsets = np.frombuffer(array.buffers()[1], dtype=np.int64)[array.offset : array.offset + len(array) + 1]
    data_buffer = array.buffers()[2]
    data = np.frombuffer(data_buffer, dtype=np.uint8) if data_buffer is not None else np.zeros(0, np.uint8)
    return data[offsets[0] : offsets[-1]], np.diff(offsets)


def packed_kgrams(texts: Sequence[str] | pa.Array, k: int) -> tuple[np.ndarray, np.ndarray]:
    """The byte k-grams (k <= 8) of every text, each packed little-endian into a uint64.

    Returns ``(packed (W,) uint64, rows (W,) int64)``: the k-grams in text order and the text
    each belongs to. A text shorter than ``k`` bytes is one k-gram of its own bytes
    (zero-padded), so an empty or very short text still has one.
    """
    if not 1 <= k <= 8:
        raise ValueError(f"shingle size must be 1..8 bytes, got {k}")
    data, lengths = string_buffer(texts)
    starts, rows = row_windows(lengths, k)
    # The 8 bytes at every offset of the buffer, read as one little-endian uint64: an
    # unaligned view with a stride of one byte, no copy. Masking keeps the first k.
    padded = np.concatenate([data, np.zeros(8, dtype=np.uint8)])
    words = np.ndarray(len(data) + 1, dtype="<u8", buffer=padded, strides=(1,))
    packed = words[starts] & _LOW_BYTES[k]
    # Texts shorter than k: their single k-gram must not see the next text's bytes.
    short = np.flatnonzero(lengths < k)
    packed[np.searchsorted(rows, short)] &= _LOW_BYTES[lengths[short]]
    return packed, rows


def char_shingles(texts: Sequence[str] | pa.Array, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Hashed byte k-grams of every text: ``(shingles (W,) uint64, first (n,) int64)``, where
    text i's shingles are ``shingles[first[i]:first[i + 1]]`` (see ``packed_kgrams``)."""
    packed, rows = packed_kgrams(texts, k)
    return mix64(packed), first_of_each_row(rows)


def shingle_jaccard(left: pa.Array, right: pa.Array, k: int, chunk: int = 2**14) -> np.ndarray:
    """(pairs,) float64: the Jaccard similarity of the byte k-gram *sets* of left[i] and right[i].

    Exact for k <= 5 (a k-gram is its own 40-bit code); longer k-grams compare by 40-bit
    fingerprints, so two different k-grams of one pair coincide with probability ~1e-8.
    Vectorised over ``chunk`` pairs at a time: each k-gram is tagged with its pair in the top
    24 bits, and a sort finds the (pair, k-gram) codes both sides share.
    """
    if chunk > 2 ** (64 - _CODE_BITS):
        raise ValueError(f"at most {2 ** (64 - _CODE_BITS)} pairs per chunk, got {chunk}")
    out = np.empty(len(left), dtype=np.float64)
    for start in range(0, len(left), chunk):
        pieces = left.slice(start, chunk), right.slice(start, chunk)
        out[start : start + len(pieces[0])] = _jaccard_chunk(*pieces, k)
    return out


def _jaccard_chunk(left: pa.Array, right: pa.Array, k: int) -> np.ndarray:
    left_codes, right_codes = _tagged_kgram_set(left, k), _tagged_kgram_set(right, k)
    both = np.sort(np.concatenate([left_codes, right_codes]))
    shared = both[1:][both[1:] == both[:-1]]  # a code both sides hold sits twice in a row
    intersection, size_left, size_right = (
        _count_per_pair(codes, len(left)) for codes in (shared, left_codes, right_codes)
    )
    return intersection / (size_left + size_right - intersection)


def _tagged_kgram_set(texts: pa.Array, k: int) -> np.ndarray:
    """Sorted distinct (row << 40 | k-gram code) of every row of ``texts`` (at most 2^24 rows)."""
    packed, rows = packed_kgrams(texts, k)
    code = packed if 8 * k <= _CODE_BITS else mix64(packed) >> np.uint64(64 - _CODE_BITS)
    tagged = np.sort(code | (rows.astype(np.uint64) << np.uint64(_CODE_BITS)))
    return tagged[np.r_[True, tagged[1:] != tagged[:-1]]]


def _count_per_pair(tagged: np.ndarray, pairs: int) -> np.ndarray:
    """(pairs,) how many of the tagged codes belong to each pair."""
    return np.bincount((tagged >> np.uint64(_CODE_BITS)).astype(np.int64), minlength=pairs)


def ngram_keys(ids: np.ndarray, lengths: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Keys of every token n-gram of rows of token ids (int64, -1 = unknown token) laid end to end.

    Returns ``(keys (W,) uint64, row (W,) int64)`` for the n-grams that fit inside their row and
    contain no unknown token. Equal id sequences give equal keys (a polynomial hash, mixed).
    """
    ids = np.asarray(ids, dtype=np.int64)
    starts, rows = row_windows(lengths, n, short_rows=False)
    if starts.size == 0:
        return np.zeros(0, np.uint64), np.zeros(0, np.int64)
    window = ids[starts[:, None] + np.arange(n)]  # (W, n)
    known = (window >= 0).all(axis=1)
    window, rows = window[known].astype(np.uint64), rows[known]
    key = np.zeros(len(window), dtype=np.uint64)
    with np.errstate(over="ignore"):
        for i in range(n):
            key = mix64(key * GOLDEN + window[:, i])
    return key, rows
