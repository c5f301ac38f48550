"""Steps ``exact_dedup`` and ``near_dedup``: global steps over the joined shard set.

``plan`` reads the compact signature columns (never images), decides the drop set with
``slime_data.dedup`` and keeps it in ``self.drops``; ``run`` (from ``GlobalStep``) then drops
those ids as the records stream past. ``self.stats`` says how many pairs and clusters were
found. Recipe entries::

    - step: exact_dedup
    - step: near_dedup
      max_hamming: 6     # perceptual-hash bits that may differ
      min_jaccard: 0.8   # MinHash Jaccard of the questions
"""

from __future__ import annotations

from collections.abc import Collection

from pydantic import BaseModel, ConfigDict

from slime_data.dedup.plan import ExactDedup, NearDedup, NearDedupParams
from slime_data.dedup.signatures import SIGNATURE_COLUMNS, signatures_from_batches
from slime_data.shards import ShardSet
from slime_data.steps.base import GlobalStep, register_step


class ExactDedupParams(BaseModel):
    model_config = ConfigDict(extra="forbid")


@register_step
class ExactDedupStep(GlobalStep):
    """Same image content hash and same normalised question: keep one (most pixels, then lowest id)."""

    name = "exact_dedup"

    def __init__(self, **params: object) -> None:
        super().__init__()
        self.params = ExactDedupParams(**params)
        self.stats: dict[str, int] = {}

    def plan(self, shard_set: ShardSet, exclude: Collection[str] = ()) -> dict[str, tuple[str, str]]:
        sigs = signatures_from_batches(shard_set.iter_batches(columns=SIGNATURE_COLUMNS), None, exclude)
        result = ExactDedup().plan(sigs)
        self.drops, self.stats = result.drops, result.stats
        return self.drops


@register_step
class NearDedupStep(GlobalStep):
    """Perceptual hash within ``max_hamming`` bits and question Jaccard >= ``min_jaccard``: keep one."""

    name = "near_dedup"

    def __init__(self, **params: object) -> None:
        super().__init__()
        self.dedup = NearDedup(NearDedupParams(**params))
        self.stats: dict[str, int] = {}

    def plan(self, shard_set: ShardSet, exclude: Collection[str] = ()) -> dict[str, tuple[str, str]]:
        batches = shard_set.iter_batches(columns=SIGNATURE_COLUMNS)
        result = self.dedup.plan(signatures_from_batches(batches, self.dedup.hasher, exclude))
        self.drops, self.stats = result.drops, result.stats
        return self.drops
