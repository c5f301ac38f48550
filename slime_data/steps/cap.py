"""``cap``: deterministic per-source sampling down to the recipe's counts (seeded)."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Collection

import xxhash
from pydantic import BaseModel, ConfigDict, Field

from slime_data.shards import ShardSet
from slime_data.steps.base import GlobalStep, register_step


class CapParams(BaseModel):
    model_config = ConfigDict(extra="forbid")
    caps: dict[str, int] = Field(default_factory=dict, description="source -> max rows kept")
    seed: int = 0


@register_step
class Cap(GlobalStep):
    """Keep, per capped source, the ``cap`` rows with the smallest seeded hash of their id.

    A hash order (not "the first N") spreads the kept rows over the whole source, and does not
    depend on how many rows earlier steps dropped elsewhere.
    """

    name = "cap"
    context_keys = ("caps", "seed")  # the build recipe's

    def __init__(self, **params: object) -> None:
        super().__init__()
        self.params = CapParams(**params)

    def plan(self, shard_set: ShardSet, exclude: Collection[str] = ()) -> dict[str, tuple[str, str]]:
        ranked: dict[str, list[tuple[int, str]]] = defaultdict(list)
        for batch in shard_set.iter_batches(columns=["id", "source"]):
            for record_id, source in zip(batch.column("id").to_pylist(), batch.column("source").to_pylist()):
                if source in self.params.caps and record_id not in exclude:
                    ranked[source].append(
                        (xxhash.xxh3_64_intdigest(record_id.encode(), seed=self.params.seed), record_id)
                    )
        drops = {}
        for source, rows in ranked.items():
            cap = self.params.caps[source]
            if len(rows) > cap:
                rows.sort()
                for _, record_id in rows[cap:]:
                    drops[record_id] = ("over_cap", f"{source} has {len(rows)} rows, cap {cap}")
        self.drops = drops
        return drops
