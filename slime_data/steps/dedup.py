"""Steps ``exact_dedup`` and ``near_dedup``: global steps over the joined shard set.

``plan`` reads the compact signature columns (never images), decides the drop set with
``slime_data.dedup`` and keeps it in ``self.drops``; ``run`` (from ``GlobalStep``) then drops
those ids as the records stream past. ``self.stats`` says how many pairs and clusters were
found. Recipe entries::

    - step: exact_dedup
    - step: near_dedup
      max_hamming: 6     # perceptual-hash bits that may differ
      min_jaccard: 0.8   # Jaccard of the questions' character shingles

Both steps read one signature pass (``shared_signatures``): computed once per shard set, one
shard file per job in ``workers`` processes (a context key: the mix passes its ``--workers``,
the build leaves it at 1); near_dedup searches its LSH bands in as many threads.
``exact_dedup`` needs no MinHash but computes the default one along (a small part of the
pass), so that the ``near_dedup`` after it reuses the pass; a ``near_dedup`` with other
hashing settings hashes again. Each step then leaves out the ids
earlier steps drop (``exclude``), exactly as if it had read the rows without them.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import ClassVar
from weakref import WeakKeyDictionary

from pydantic import BaseModel, ConfigDict

from slime_data.dedup.minhash import MinHasher
from slime_data.dedup.plan import ExactDedup, NearDedup, NearDedupParams
from slime_data.dedup.signatures import Signatures, signatures_of_files
from slime_data.shards import ShardSet
from slime_data.steps.base import GlobalStep, register_step

# shard set (or the mix's InputsView) -> (the MinHasher settings of its signatures, the
# signatures). Weak keys: the signatures go when the shard set does, or earlier with
# ``release_signatures``.
_SHARED: WeakKeyDictionary[ShardSet, tuple[tuple[int, int, int], Signatures]] = WeakKeyDictionary()


def shared_signatures(shard_set: ShardSet, hasher: MinHasher | None, workers: int = 1) -> Signatures:
    """The signatures of every row of ``shard_set``, computed once while it (the object) lives.

    ``hasher``: the MinHash the caller needs; None takes the signatures held, whatever their
    MinHash, or computes them with the default ``MinHasher()``.
    """
    held = _SHARED.get(shard_set)
    if held is not None and (hasher is None or held[0] == hasher.settings):
        return held[1]
    release_signatures(shard_set)  # before the new pass: never two sets of signatures at once
    hasher = hasher or MinHasher()
    signatures = signatures_of_files(shard_set.shard_paths, len(shard_set), hasher, workers)
    _SHARED[shard_set] = (hasher.settings, signatures)
    return signatures


def release_signatures(shard_set: ShardSet) -> None:
    """Forget the signatures held for ``shard_set``: once no later step reads them, their memory is free."""
    _SHARED.pop(shard_set, None)


class SignatureStep(GlobalStep):
    """A dedup step: plans with ``self.dedup`` over the shared signatures, minus the excluded ids."""

    context_keys: ClassVar[tuple[str, ...]] = ("workers",)
    dedup: ExactDedup | NearDedup
    hasher: MinHasher | None = None  # the MinHash the plan needs, if any

    def __init__(self, workers: int = 1) -> None:
        super().__init__()
        self.workers = workers
        self.stats: dict[str, int] = {}

    def plan(self, shard_set: ShardSet, exclude: Collection[str] = ()) -> dict[str, tuple[str, str]]:
        signatures = shared_signatures(shard_set, self.hasher, self.workers).without(exclude)
        result = self.dedup.plan(signatures)
        self.drops, self.stats = result.drops, result.stats
        return self.drops


class ExactDedupParams(BaseModel):
    model_config = ConfigDict(extra="forbid")


@register_step
class ExactDedupStep(SignatureStep):
    """Same image content hash and same normalised question: keep one (most pixels, then lowest id)."""

    name = "exact_dedup"

    def __init__(self, workers: int = 1, **params: object) -> None:
        super().__init__(workers)
        self.params = ExactDedupParams(**params)
        self.dedup = ExactDedup()


@register_step
class NearDedupStep(SignatureStep):
    """Perceptual hash within ``max_hamming`` bits and question Jaccard >= ``min_jaccard``: keep one."""

    name = "near_dedup"

    def __init__(self, workers: int = 1, **params: object) -> None:
        super().__init__(workers)
        self.dedup = NearDedup(NearDedupParams(**params), threads=workers)
        self.hasher = self.dedup.hasher
