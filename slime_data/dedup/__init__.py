"""Deduplication algorithms, independent of steps and files.

- ``text``: question normalisation and the text each record is judged by
- ``shingles``: character shingles and token n-grams over many rows at once
- ``minhash``: numpy MinHash signatures and LSH band keys
- ``hamming``: multi-index hashing for 64-bit perceptual hashes
- ``unionfind``: vectorised union-find
- ``signatures``: compact per-row signatures read from Arrow batches (pass 1)
- ``plan``: exact and near dedup plans (pass 2)
"""

from slime_data.dedup.hamming import MultiIndexHash
from slime_data.dedup.minhash import MinHasher, band_keys, estimated_jaccard
from slime_data.dedup.plan import DropPlan, ExactDedup, NearDedup, NearDedupParams, keepers
from slime_data.dedup.signatures import SIGNATURE_COLUMNS, Signatures, signatures_from_batches, signatures_from_records
from slime_data.dedup.text import dedup_text, human_text, normalize_text, tokens
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
    "estimated_jaccard",
    "human_text",
    "keepers",
    "normalize_text",
    "signatures_from_batches",
    "signatures_from_records",
    "tokens",
]
