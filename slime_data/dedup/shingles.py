"""Windows over many rows at once: character shingles for MinHash, token n-grams for decontamination.

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


def mix64(x: np.ndarray) -> np.ndarray:
    """splitmix64 finaliser, elementwise on uint64 (wrapping arithmetic)."""
    x = np.asarray(x, dtype=np.uint64)
    with np.errstate(over="ignore"):
        x = (x ^ (x >> np.uint64(30))) * _MIX1
        x = (x ^ (x >> np.uint64(27))) * _MIX2
        return x ^ (x >> np.uint64(31))


def row_windows(lengths: np.ndarray, k: int, short_rows: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """Windows of ``k`` items over rows of ``lengths`` items laid end to end.

    Returns ``(starts, rows)``, both (W,) int64: the flat offset of every window that fits
    inside its row, and that row's index, in row order. With ``short_rows`` a row shorter than
    ``k`` gets one window at its start (so every row has at least one, and ``rows`` can feed
    ``np.minimum.reduceat``); without, it gets none.
    """
    lengths = np.asarray(lengths, dtype=np.int64)
    counts = np.maximum(lengths - k + 1, 1 if short_rows else 0)
    row_offsets = np.cumsum(lengths) - lengths
    first = np.cumsum(counts) - counts
    within = np.arange(int(counts.sum()), dtype=np.int64) - np.repeat(first, counts)
    rows = np.repeat(np.arange(len(lengths), dtype=np.int64), counts)
    return row_offsets[rows] + within, rows


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


def char_shingles(texts: Sequence[str] | pa.Array, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Hashed byte k-grams (k <= 8) of every text: ``(shingles (W,) uint64, first (n,) int64)``.

    A text shorter than ``k`` bytes is one shingle of its own bytes (zero-padded), so an empty
    or very short text still has a signature.
    """
    if not 1 <= k <= 8:
        raise ValueError(f"shingle size must be 1..8 bytes, got {k}")
    data, lengths = string_buffer(texts)
    starts, rows = row_windows(lengths, k)
    # Pack the k bytes at every offset of the buffer with contiguous shifted slices, then pick
    # the window starts: far cheaper than gathering k bytes per window.
    padded = np.concatenate([data, np.zeros(k, dtype=np.uint8)]).astype(np.uint64)
    at_offset = np.zeros(len(data) + 1, dtype=np.uint64)
    for i in range(k):
        at_offset |= padded[i : i + len(data) + 1] << np.uint64(8 * i)
    packed = at_offset[starts]
    # Rows shorter than k: their single window must not see the next row's bytes.
    short = np.flatnonzero(lengths[rows] < k)
    if short.size:
        keep_bits = lengths[rows[short]].astype(np.uint64) * np.uint64(8)
        packed[short] &= (np.uint64(1) << keep_bits) - np.uint64(1)
    return mix64(packed), first_of_each_row(rows)


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
