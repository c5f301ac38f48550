"""``group``: merge several QAs about one image into one multi-turn conversation (optional step).

VQA sources ask many questions per image (ChartQA, DVQA); LLaVA-style training packs them into one
multi-turn sample, so the image is encoded once. Rows of one source with the same image content
hash form a group (at most ``max_turns`` questions each, in id order); the first row keeps its id
and receives the others' question/answer turns, the others are counted out with reason
``grouped`` naming the row they joined. Each member's gold ``answer``/``choices``/``rationale``
stays available in the merged row's ``meta["grouped"]``.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Collection, Iterable, Iterator

from pydantic import BaseModel, ConfigDict, Field

from slime_data.record import IMAGE_TOKEN, Record, Reject
from slime_data.shards import ShardSet
from slime_data.steps.base import GlobalStep, register_step


class GroupParams(BaseModel):
    model_config = ConfigDict(extra="forbid")
    max_turns: int = Field(8, ge=2, description="questions per merged conversation at most")
    sources: list[str] | None = Field(None, description="only group these sources (default: all)")


@register_step
class Group(GlobalStep):
    name = "group"

    def __init__(self, **params: object) -> None:
        super().__init__()
        self.params = GroupParams(**params)
        self.members: dict[str, list[str]] = {}  # keeper id -> the ids merged into it, in order
        self.turns: dict[str, dict] = {}  # merged id -> its conversation and golds
        self.stats: dict[str, int] = {}

    def plan(self, shard_set: ShardSet, exclude: Collection[str] = ()) -> dict[str, tuple[str, str]]:
        by_image: dict[tuple[str, str], list[str]] = defaultdict(list)
        for batch in shard_set.iter_batches(columns=["id", "source", "image_hash"]):
            for record_id, source, image_hash in zip(
                *(batch.column(c).to_pylist() for c in ("id", "source", "image_hash"))
            ):
                if (
                    image_hash
                    and record_id not in exclude
                    and (self.params.sources is None or source in self.params.sources)
                ):
                    by_image[(source, image_hash)].append(record_id)
        drops = {}
        for ids in by_image.values():
            ids.sort()
            for start in range(0, len(ids), self.params.max_turns):
                keeper, *rest = ids[start : start + self.params.max_turns]
                if rest:
                    self.members[keeper] = rest
                    drops.update({i: ("grouped", f"merged into {keeper}") for i in rest})
        merged = set(drops)
        if merged:  # keep the merged rows' text (never their images) until their keeper is written
            for batch in shard_set.iter_batches(columns=["id", "conversations", "answer", "choices", "rationale"]):
                for row in batch.to_pylist():
                    if row["id"] in merged:
                        self.turns[row["id"]] = row
        self.drops = drops
        self.stats = {"groups": len(self.members), "rows_merged": len(drops)}
        return drops

    def run(self, records: Iterable[Record]) -> Iterator[Record | Reject]:
        for out in super().run(records):
            if isinstance(out, Record) and out.id in self.members:
                out = self._merge(out)
            yield out

    def _merge(self, keeper: Record) -> Record:
        conversations = list(keeper.conversations)
        grouped = []
        for member_id in self.members[keeper.id]:
            row = self.turns[member_id]
            for turn in row["conversations"]:
                value = turn["value"].replace(IMAGE_TOKEN, "").strip() if turn["from"] == "human" else turn["value"]
                conversations.append({"from": turn["from"], "value": value})
            grouped.append({k: row[k] for k in ("id", "answer", "choices", "rationale")})
        keeper.conversations = conversations
        keeper.meta = {**keeper.meta, "grouped": grouped}
        return keeper
