"""Deduplication algorithms, independent of steps and files.

- ``text``: question normalisation and the text each record is judged by (per row, and from Arrow)
- ``shingles``: character shingles (and their exact Jaccard) and token n-grams over many rows at once
- ``minhash``: numpy MinHash signatures (one-permutation hashing) and LSH band keys
- ``hamming``: multi-index hashing for 64-bit perceptual hashes
- ``unionfind``: vectorised union-find
- ``signatures``: compact per-row signatures read from Arrow batches or shard files (pass 1)
- ``plan``: exact and near dedup plans (pass 2)
"""

from slime_data.dedup.hamming import MultiIndexHash
from slime_data.dedup.minhash import MinHasher, band_keys, estimated_jaccard
from slime_data.dedup.plan import DropPlan, ExactDedup, NearDedup, NearDedupParams, keepers
from slime_data.dedup.shingles import shingle_jaccard
from slime_data.dedup.signatures import (
    SIGNATURE_COLUMNS,
    Signatures,
    signatures_from_batches,
    signatures_from_records,
    signatures_of_files,
)
from slime_data.dedup.text import dedup_text, dedup_texts, human_text, normalize_text, tokens
from slime_data.dedup.unionfind import UnionFind

__all__ = [
    "SIGNATURE_COLUMNS",
    "DropPlan",
    "ExactDedup",
    "MinHasher",
    "MultiIndexHash",
    "NearDedup",
    "NearDedupParams",
    "Signatures",
    "UnionFind",
    "band_keys",
    "dedup_text",
    "dedup_texts",
    "estimated_jaccard",
    "human_text",
    "keepers",
    "normalize_text",
    "shingle_jaccard",
    "signatures_from_batches",
    "signatures_from_records",
    "signatures_of_files",
    "tokens",
]
