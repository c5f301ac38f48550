"""Compact per-row signatures: what dedup needs to know about a row, about 250 bytes of it.

Pass 1 of a dedup reads only the small columns of a shard set (``SIGNATURE_COLUMNS``: never
the image bytes) and keeps, per row, numpy values instead of records, plus a table of the
normalised texts the rows point into (rows that ask the same question share one entry):

==============  ===============  ============================================================
field           dtype            what
==============  ===============  ============================================================
ids             pyarrow string   the record id (Arrow keeps it compact: bytes + offsets)
has_image       bool             the row has an image (its ``image_hash`` is set)
image_key       uint64           xxh3-64 of ``image_hash`` (0 without an image)
phash           uint64           the 64-bit perceptual hash (0 without an image)
pixels          int64            width x height (0 without an image): the tie-breaker
text_key        uint64           xxh3-64 of the normalised dedup text (``text.dedup_text``)
text_index      int64            the row's entry in ``texts`` and ``minhash``
--------------  ---------------  ------------------------------------------------------------
texts           pyarrow          normalised dedup texts, one per entry (large_string); equal
                large_string     texts from different chunks may have separate entries
minhash         uint16 (m, P)    MinHash of each entry (``minhash.MinHasher``); 128 bytes at
                                 P = 64, none (P = 0) when no hasher is given
==============  ===============  ============================================================

So 2M rows with distinct ~50-byte questions take about 550 MB, whatever the images weigh; rows
that repeat a question template cost ~60 bytes each.

The text of a batch is read from Arrow without building Python dicts (``text.dedup_texts``);
within a chunk of rows each distinct raw text is normalised and xxh3-hashed once, each distinct
normalised text MinHashed once. ``signatures_of_files`` reads shard files in worker processes.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Iterator, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import xxhash

from slime_data.dedup.minhash import MinHasher
from slime_data.dedup.text import dedup_texts, normalize_text
from slime_data.executor import unit_of_work
from slime_data.parallel import map_in_processes
from slime_data.record import ARROW_SCHEMA, Record

SIGNATURE_COLUMNS = ["id", "image_hash", "phash", "width", "height", "conversations"]
# Rows whose texts are extracted, normalised and MinHashed together: big enough to amortise
# numpy and Arrow calls over the 256-row batches of a shard, small enough to bound the memory.
_ROWS_PER_CHUNK = 32_768
_ROW_FIELDS = {
    "has_image": bool,
    "image_key": np.uint64,
    "phash": np.uint64,
    "pixels": np.int64,
    "text_key": np.uint64,
    "text_index": np.int64,
}


@dataclass
class Signatures:
    ids: pa.Array
    has_image: np.ndarray
    image_key: np.ndarray
    phash: np.ndarray
    pixels: np.ndarray
    text_key: np.ndarray
    text_index: np.ndarray
    texts: pa.Array
    minhash: np.ndarray

    def __len__(self) -> int:
        return len(self.ids)

    @property
    def nbytes(self) -> int:
        arrays = [getattr(self, name) for name in _ROW_FIELDS] + [self.minhash]
        return self.ids.nbytes + self.texts.nbytes + sum(a.nbytes for a in arrays)

    def take(self, rows: np.ndarray) -> Signatures:
        """The signatures of ``rows`` (indices, in that order); the text table is shared, not copied."""
        per_row = {name: getattr(self, name)[rows] for name in _ROW_FIELDS}
        return replace(self, ids=self.ids.take(pa.array(rows, type=pa.int64())), **per_row)

    def without(self, ids: Collection[str]) -> Signatures:
        """The signatures of the rows whose id is not in ``ids`` (``self`` when none is)."""
        if not ids:
            return self
        excluded = pa.array(list(ids), type=pa.string())
        dropped = pc.is_in(self.ids, value_set=excluded).to_numpy(zero_copy_only=False)
        return self.take(np.flatnonzero(~dropped)) if dropped.any() else self


def signatures_from_batches(batches: Iterable[pa.RecordBatch], hasher: MinHasher | None = None) -> Signatures:
    """Signatures of every row of ``batches`` (which need ``SIGNATURE_COLUMNS``).

    Use ``ShardSet.iter_batches(columns=SIGNATURE_COLUMNS)``: images are never read. Without a
    ``hasher`` no MinHash is computed (``minhash`` has 0 columns; exact dedup needs none).
    """
    parts = [_chunk_signatures(chunk, hasher) for chunk in _chunks(batches)]
    return _joined(parts, sum(len(part) for part in parts), hasher)


def signatures_of_files(paths: Sequence[Path], rows: int, hasher: MinHasher | None, workers: int = 1) -> Signatures:
    """Signatures of the ``rows`` rows of the shard files ``paths``, in order: one file per job, in ``workers``
    processes."""
    return _joined(map_in_processes(_file_signatures, [(str(path), hasher) for path in paths], workers), rows, hasher)


def _joined(parts: Iterable[Signatures], rows: int, hasher: MinHasher | None) -> Signatures:
    """The signatures of ``parts`` (``rows`` rows in all) one after the other, text indices shifted.

    Each part is copied into place as it arrives (from worker processes: while they work on),
    so memory holds the result and a part, never all parts and the result.
    """
    num_perm = hasher.num_perm if hasher else 0
    per_row = {name: np.empty(rows, dtype=dtype) for name, dtype in _ROW_FIELDS.items()}
    # At most one entry per row; the pages of entries never written are never touched.
    minhash = np.empty((rows, num_perm), dtype=np.uint16)
    ids, texts, row, entry = [], [], 0, 0
    for part in parts:
        stop, entries = row + len(part), entry + len(part.texts)
        if stop > rows:
            raise ValueError(f"the shard files hold more than the {rows} rows expected")
        for name, column in per_row.items():
            column[row:stop] = getattr(part, name)
        per_row["text_index"][row:stop] += entry
        minhash[entry:entries] = part.minhash
        ids.append(part.ids)
        texts.append(part.texts)
        row, entry = stop, entries
    if row != rows:
        raise ValueError(f"the shard files hold {row} rows, expected {rows}")
    return Signatures(
        ids=pa.concat_arrays(ids) if ids else pa.array([], type=pa.string()),
        texts=pa.concat_arrays(texts) if texts else pa.array([], type=pa.large_string()),
        minhash=minhash[:entry],
        **per_row,
    )


@unit_of_work(num_cpus=1, memory_gib=1, describe=lambda job: f"dedup signatures of {job[0]}")
def _file_signatures(job: tuple[str, MinHasher | None]) -> Signatures:
    path, hasher = job
    with pa.memory_map(path, "r") as source:
        reader = pa.ipc.open_file(source)
        return signatures_from_batches((reader.get_batch(i) for i in range(reader.num_record_batches)), hasher)


def signatures_from_records(records: Iterable[Record], hasher: MinHasher | None = None) -> Signatures:
    """Signatures of in-memory records (tests, small sets): the same path as shard batches."""
    return signatures_from_batches(record_batches(records), hasher)


def record_batches(records: Iterable[Record], rows: int = 4096) -> Iterable[pa.RecordBatch]:
    """The ``SIGNATURE_COLUMNS`` of records, as Arrow batches (image bytes are left out)."""
    schema = pa.schema([ARROW_SCHEMA.field(c) for c in SIGNATURE_COLUMNS])
    chunk: list[dict] = []
    for record in records:
        chunk.append({c: getattr(record, c) for c in SIGNATURE_COLUMNS})
        if len(chunk) == rows:
            yield pa.RecordBatch.from_pylist(chunk, schema=schema)
            chunk = []
    if chunk:
        yield pa.RecordBatch.from_pylist(chunk, schema=schema)


def _chunks(batches: Iterable[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
    """``batches`` regrouped into batches of about ``_ROWS_PER_CHUNK`` rows, checked for the signature columns."""
    pending: list[pa.RecordBatch] = []
    rows = 0
    for batch in batches:
        missing = [c for c in SIGNATURE_COLUMNS if c not in batch.schema.names]
        if missing:
            raise ValueError(f"signature batches need the columns {SIGNATURE_COLUMNS}; missing {missing}")
        pending.append(batch.select(SIGNATURE_COLUMNS))
        rows += batch.num_rows
        if rows >= _ROWS_PER_CHUNK:
            yield pa.concat_batches(pending)
            pending, rows = [], 0
    if rows:
        yield pa.concat_batches(pending)


def _chunk_signatures(batch: pa.RecordBatch, hasher: MinHasher | None) -> Signatures:
    image_hash = batch.column("image_hash")
    has_image = image_hash.is_valid().to_numpy(zero_copy_only=False)
    width, height = _filled(batch.column("width"), np.int64), _filled(batch.column("height"), np.int64)
    # Normalise each distinct raw text once, then give each distinct normalised text one entry.
    raw = pc.dictionary_encode(dedup_texts(batch.column("conversations"), has_image))
    normalized = [normalize_text(text) for text in raw.dictionary.to_pylist()]
    key_of_raw = np.array([xxhash.xxh3_64_intdigest(text.encode()) for text in normalized], dtype=np.uint64)
    entries = pc.dictionary_encode(pa.array(normalized, type=pa.large_string()))
    raw_index = raw.indices.to_numpy(zero_copy_only=False)
    texts = entries.dictionary
    return Signatures(
        ids=batch.column("id"),
        has_image=has_image,
        image_key=np.array(
            [xxhash.xxh3_64_intdigest(h.encode()) if h is not None else 0 for h in image_hash.to_pylist()],
            dtype=np.uint64,
        ),
        phash=_filled(batch.column("phash"), np.uint64),
        pixels=np.where(has_image, width * height, 0),
        text_key=key_of_raw[raw_index],
        text_index=entries.indices.to_numpy(zero_copy_only=False).astype(np.int64)[raw_index],
        texts=texts,
        minhash=hasher.signatures(texts) if hasher else np.zeros((len(texts), 0), np.uint16),
    )


def _filled(column: pa.Array, dtype: type) -> np.ndarray:
    return pc.fill_null(column, 0).to_numpy(zero_copy_only=False).astype(dtype)
