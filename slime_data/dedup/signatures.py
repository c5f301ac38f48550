"""Compact per-row signatures: what dedup needs to know about a row, about 200 bytes of it.

Pass 1 of a dedup reads only the small columns of a shard set (``SIGNATURE_COLUMNS``: never
the image bytes) and keeps, per row, numpy values instead of records:

==============  ===============  ============================================================
field           dtype            what
==============  ===============  ============================================================
ids             pyarrow string   the record id (Arrow keeps it compact: bytes + offsets)
has_image       bool             the row has an image (its ``image_hash`` is set)
image_key       uint64           xxh3-64 of ``image_hash`` (0 without an image)
phash           uint64           the 64-bit perceptual hash (0 without an image)
pixels          int64            width x height (0 without an image): the tie-breaker
text_key        uint64           xxh3-64 of the normalised dedup text (``text.dedup_text``)
minhash         uint16 (n, P)    MinHash of the normalised dedup text (``minhash.MinHasher``);
                                 128 bytes at P = 64, none for exact dedup
==============  ===============  ============================================================

So 2M rows take about 400 MB, whatever the images weigh.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import xxhash

from slime_data.dedup.minhash import MinHasher
from slime_data.dedup.text import dedup_text, normalize_text
from slime_data.record import ARROW_SCHEMA, Record

SIGNATURE_COLUMNS = ["id", "image_hash", "phash", "width", "height", "conversations"]
# Rows whose texts are MinHashed together: big enough to amortise numpy calls over the
# 256-row batches of a shard, small enough to bound the working memory.
_TEXT_CHUNK = 32_768


@dataclass
class Signatures:
    ids: pa.Array
    has_image: np.ndarray
    image_key: np.ndarray
    phash: np.ndarray
    pixels: np.ndarray
    text_key: np.ndarray
    minhash: np.ndarray

    def __len__(self) -> int:
        return len(self.ids)

    @property
    def nbytes(self) -> int:
        arrays = (self.has_image, self.image_key, self.phash, self.pixels, self.text_key, self.minhash)
        return self.ids.nbytes + sum(a.nbytes for a in arrays)

    def id_rank(self) -> np.ndarray:
        """(n,) the position of each row's id in sorted (code-point) order."""
        order = pc.sort_indices(self.ids).to_numpy()
        rank = np.empty(len(order), dtype=np.int64)
        rank[order] = np.arange(len(order))
        return rank


def signatures_from_batches(
    batches: Iterable[pa.RecordBatch], hasher: MinHasher | None = None, exclude: Collection[str] = ()
) -> Signatures:
    """Signatures of every row of ``batches`` (which need ``SIGNATURE_COLUMNS``), minus ``exclude`` ids.

    Use ``ShardSet.iter_batches(columns=SIGNATURE_COLUMNS)``: images are never read. Without a
    ``hasher`` no MinHash is computed (``minhash`` has 0 columns; exact dedup needs none).
    """
    excluded = pa.array(sorted(exclude), type=pa.string())
    parts: dict[str, list] = {k: [] for k in ("ids", "has_image", "image_key", "phash", "pixels", "text_key", "minhash")}
    pending: list[str] = []  # normalised texts not MinHashed yet

    def flush() -> None:
        parts["minhash"].append(hasher.signatures(pending) if hasher else np.zeros((len(pending), 0), np.uint16))
        pending.clear()

    for batch in batches:
        missing = [c for c in SIGNATURE_COLUMNS if c not in batch.schema.names]
        if missing:
            raise ValueError(f"signature batches need the columns {SIGNATURE_COLUMNS}; missing {missing}")
        if len(excluded):
            batch = batch.filter(pc.invert(pc.is_in(batch.column("id"), value_set=excluded)))
        if batch.num_rows == 0:
            continue
        image_hash = batch.column("image_hash")
        has_image = image_hash.is_valid().to_numpy(zero_copy_only=False)
        parts["ids"].append(batch.column("id"))
        parts["has_image"].append(has_image)
        parts["image_key"].append(
            np.array([xxhash.xxh3_64_intdigest(h.encode()) if h is not None else 0 for h in image_hash.to_pylist()], dtype=np.uint64)
        )
        parts["phash"].append(_filled(batch.column("phash"), np.uint64))
        width, height = _filled(batch.column("width"), np.int64), _filled(batch.column("height"), np.int64)
        parts["pixels"].append(np.where(has_image, width * height, 0))
        texts = [
            normalize_text(dedup_text(conversation or [], bool(with_image)))
            for conversation, with_image in zip(batch.column("conversations").to_pylist(), has_image)
        ]
        parts["text_key"].append(np.array([xxhash.xxh3_64_intdigest(t.encode()) for t in texts], dtype=np.uint64))
        pending.extend(texts)
        if len(pending) >= _TEXT_CHUNK:
            flush()
    if pending:
        flush()
    if not parts["ids"]:
        return _empty(hasher.num_perm if hasher else 0)
    return Signatures(
        ids=pa.concat_arrays(parts["ids"]),
        **{k: np.concatenate(v) for k, v in parts.items() if k != "ids"},
    )


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


def _filled(column: pa.Array, dtype: type) -> np.ndarray:
    return pc.fill_null(column, 0).to_numpy(zero_copy_only=False).astype(dtype)


def _empty(num_perm: int) -> Signatures:
    z64 = np.zeros(0, np.uint64)
    return Signatures(
        ids=pa.array([], type=pa.string()),
        has_image=np.zeros(0, bool),
        image_key=z64,
        phash=z64,
        pixels=np.zeros(0, np.int64),
        text_key=z64,
        minhash=np.zeros((0, num_perm), np.uint16),
    )
