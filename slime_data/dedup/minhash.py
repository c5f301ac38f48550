"""MinHash signatures by one-permutation hashing, and LSH band keys, in numpy.

Signature of a text, ``num_perm`` = P slots: each of the text's byte shingles (``packed_kgrams``)
gets one 64-bit hash x, keyed by the seed. Its high 32 bits pick a bin, ``(x_hi * P) >> 32``
(uniform for any P), and each bin keeps the minimum of the low 31 bits of the shingles that
fell into it: one hash per shingle, O(shingles) work instead of the O(shingles x P) of P
separate permutations (one-permutation hashing, Li, Owen & Zhang 2012).

Short texts leave bins empty (a 50-byte question has 46 shingles for 64 bins: about 31 empty).
Optimal densification (Shrivastava, ICML 2017) fills each empty bin with the value of the first
non-empty bin along its own probe sequence, a random ordering of the other bins drawn from the
seed, the same for every text. For two texts, the first bin along that sequence that is
non-empty for either text decides the slot for both, so slots still agree with probability J
(the Jaccard similarity of the shingle sets), and different bins probe in independent orders,
which keeps the variance close to that of P independent permutations.

Only the low 16 bits of each slot are kept ("b-bit minwise hashing", Li & König 2010): slots
agree with probability J + (1 - J) / 2^16, at 2 bytes per slot, 128 bytes for 64 slots.

LSH: the signature is cut into ``bands`` bands of ``rows`` slots; two texts are candidates when
all slots of some band agree. With 4 slots of 16 bits a band key *is* the band's 8 bytes read as
one uint64 (no copy, no hashing, no false band collisions), and candidates are found by sorting
band keys (``lsh_pairs``), not by dict buckets.
P(candidate) = 1 - (1 - J^rows)^bands: 0.9998 at J = 0.8 and 0.988 at J = 0.7 for 16 x 4 (the
densified slots are not quite independent; tests/slime_data/dedup/test_minhash.py measures it).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pyarrow as pa

from slime_data.dedup.pairs import SortedKeys, repeated
from slime_data.dedup.shingles import GOLDEN, mix64, packed_kgrams, string_buffer

# Text bytes hashed at once (about as many shingles); the working arrays take ~40 bytes per
# shingle, so ~5 MiB: small enough to stay in cache, large enough to amortise numpy calls.
_CHUNK_BYTES = 2**17
_CHUNK_ROWS = 2**14  # and at most this many texts (empty ones have no bytes)
_SLOT_BITS = 16
_VALUE_MASK = np.uint32(2**31 - 1)  # bins keep 31-bit values ...
_EMPTY = np.uint32(2**32 - 1)  # ... so that this marks an empty bin


class MinHasher:
    """Signatures with ``num_perm`` slots over ``shingle``-byte shingles; the seed fixes the hashing."""

    def __init__(self, num_perm: int = 64, shingle: int = 5, seed: int = 0) -> None:
        if num_perm < 1:
            raise ValueError(f"num_perm must be positive, got {num_perm}")
        self.num_perm, self.shingle, self.seed = num_perm, shingle, seed
        rng = np.random.default_rng(seed)
        self._salt = rng.integers(0, 2**64, dtype=np.uint64)
        # Bin i's probe sequence: a random ordering of the bins other than i. Stored step-major,
        # as offsets from bin i, so that step t of a flat (row, bin) position p is p + _steps[t][bin].
        bins = np.arange(num_perm)
        order = rng.permuted(np.tile(bins[:-1], (num_perm, 1)), axis=1)  # (P, P - 1)
        probes = order + (order >= bins[:, None])
        self._steps = np.ascontiguousarray((probes - bins[:, None]).T, dtype=np.int32)

    @property
    def settings(self) -> tuple[int, int, int]:
        """What fixes the signatures: equal settings give equal signatures."""
        return self.num_perm, self.shingle, self.seed

    def signatures(self, texts: Sequence[str] | pa.Array) -> np.ndarray:
        """(len(texts), num_perm) uint16 signatures of normalised texts.

        Texts are hashed in chunks of about ``_CHUNK_BYTES`` bytes and at most ``_CHUNK_ROWS``
        texts (at least one text each), so working memory stays bounded however many there are.
        """
        array = texts if isinstance(texts, pa.Array) else pa.array(texts, type=pa.large_string())
        out = np.empty((len(array), self.num_perm), dtype=np.uint16)
        ends = string_buffer(array)[1].cumsum()  # (n,) end of each text, in bytes
        row = 0
        while row < len(array):
            start_byte = ends[row - 1] if row else 0
            stop = int(np.searchsorted(ends, start_byte + _CHUNK_BYTES, side="right"))
            stop = min(max(stop, row + 1), row + _CHUNK_ROWS)
            out[row:stop] = self._densified(self._bin_minima(array.slice(row, stop - row)))
            row = stop
        return out

    def _bin_minima(self, texts: pa.Array) -> np.ndarray:
        """(rows * P,) uint32, row-major: each bin's minimum 31-bit value, ``_EMPTY`` where no shingle fell."""
        kgrams, rows = packed_kgrams(texts, self.shingle)
        x = mix64(kgrams ^ self._salt)  # (W,) the seed's hash of every shingle
        bins = ((x >> np.uint64(32)) * np.uint64(self.num_perm)) >> np.uint64(32)
        at = rows * self.num_perm + bins.astype(np.intp)  # flat (row, bin) position
        minima = np.full(len(texts) * self.num_perm, _EMPTY, dtype=np.uint32)
        np.minimum.at(minima, at, x.astype(np.uint32) & _VALUE_MASK)
        return minima

    def _densified(self, minima: np.ndarray) -> np.ndarray:
        """(rows, P) uint16 slots: the low bits of every bin, empty bins filled along their probe sequence."""
        slots = minima.astype(np.uint16)  # the low 16 bits
        pending = np.flatnonzero(minima == _EMPTY).astype(np.int32)  # flat (row, bin) positions still empty
        # Every row has a shingle, so a non-empty bin turns up within P - 1 probes.
        for step in self._steps:
            if not pending.size:
                break
            value = minima[pending + step[pending % self.num_perm]]
            slots[pending] = value  # final once found; an empty probe is overwritten at a later step
            pending = pending[value == _EMPTY]
        return slots.reshape(-1, self.num_perm)


def band_keys(signatures: np.ndarray, bands: int, rows: int) -> np.ndarray:
    """(n, bands) uint64 keys: band b is slots [b*rows, (b+1)*rows). Equal bands give equal keys.

    With 4 slots per band the keys are a view of the signatures (no copy).
    """
    n, num_perm = signatures.shape
    if bands * rows > num_perm:
        raise ValueError(f"{bands} bands x {rows} rows need {bands * rows} slots, the signature has {num_perm}")
    used = signatures[:, : bands * rows]
    if rows * _SLOT_BITS == 64:  # the band's 8 bytes are the key
        return np.ascontiguousarray(used).view(np.uint64)
    slots = used.reshape(n, bands, rows)
    key = np.zeros((n, bands), dtype=np.uint64)
    packed = rows * _SLOT_BITS < 64  # the slots fit side by side: exact, no collisions
    with np.errstate(over="ignore"):
        for r in range(rows):  # one (n, bands) slice at a time keeps memory at two key arrays
            slot = slots[:, :, r].astype(np.uint64)
            key = key | (slot << np.uint64(r * _SLOT_BITS)) if packed else mix64(key * GOLDEN + slot)
    return key


def lsh_pairs(
    bands: np.ndarray, rows: np.ndarray | None = None, threads: int = 1
) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Chunks of (i, j), i < j: rows that agree on at least one band of ``bands`` (n, B), each pair once.

    ``rows``: search only these rows of ``bands`` (i and j are then positions in ``rows``).
    Each band costs one sort of its keys, and only the rows whose key repeats are paired up.
    Bands are searched in ``threads`` threads (numpy and Arrow release the GIL while they sort
    and look up); pairs come out in band order all the same.
    """
    rows = np.arange(len(bands)) if rows is None else rows

    def repeating(band: int) -> tuple[np.ndarray, np.ndarray]:
        """The positions in ``rows`` whose key in ``band`` repeats, and those keys."""
        keys = bands[rows, band]
        at = np.flatnonzero(repeated(keys))
        return at, keys[at]

    with ThreadPoolExecutor(threads) as pool:
        for band, (at, keys) in enumerate(pool.map(repeating, range(bands.shape[1]))):
            for i, j in SortedKeys(keys).self_join():
                i, j = at[i], at[j]
                # Found at an earlier band already: skip.
                keep = (bands[rows[i], :band] != bands[rows[j], :band]).all(axis=1)
                if keep.any():
                    yield i[keep], j[keep]


def estimated_jaccard(signatures: np.ndarray, left: np.ndarray, right: np.ndarray, chunk: int = 2**16) -> np.ndarray:
    """Fraction of equal slots for each pair (left[i], right[i]): (pairs,) float32.

    Pairs are compared ``chunk`` at a time, so the gathered signature rows stay small.
    """
    out = np.empty(len(left), dtype=np.float32)
    for start in range(0, len(left), chunk):
        stop = start + chunk
        out[start:stop] = (signatures[left[start:stop]] == signatures[right[start:stop]]).mean(axis=1, dtype=np.float32)
    return out
