"""The plan: which input row lands where, decided from row pointers alone, and saved for resume.

Per source: the rows left after hygiene are drawn without replacement when the quota is
smaller than what is available; otherwise every row appears ``whole_repeats`` times plus a
seeded ``remainder`` drawn without replacement. Per stage the drawn pointers are shuffled
globally. Each source and each stage gets its own random stream derived from the seed
(``SeedSequence(seed, spawn_key=...)``), so changing one source never reshuffles another.

Saved under ``OUT/.work``: ``<stage>.npy`` (the pointers, ``POINTER`` dtype, in output order),
``<stage>.rejects.jsonl`` (what hygiene dropped from that stage's inputs) and, last,
``plan.json`` (its presence marks a complete plan; it carries the fingerprint of the inputs,
recipe, target and seed it was made for).
"""

from __future__ import annotations

import io
import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from slime_data.mix.allocate import SourceQuota, StageQuota
from slime_data.mix.hygiene import Hygiene
from slime_data.mix.inputs import MixInput
from slime_data.mix.write import pointers_path
from slime_data.record import Reject
from slime_data.shards import fsync_write

# One output row: which input (recipe order), which shard of it, which row of that shard, which
# repeat, and its image's size in bytes (so writers bound their batches without reading rows).
POINTER = np.dtype([("input", "<i4"), ("shard", "<i4"), ("row", "<i8"), ("repeat", "<i4"), ("bytes", "<i8")])
PLAN = "plan.json"


def draw(kept: np.ndarray, quota: SourceQuota, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """``quota.rows`` of the ``kept`` row indices: whole repeats plus a seeded remainder; and each one's repeat
    index."""
    n, whole, remainder = len(kept), quota.whole_repeats, quota.remainder
    rows = [np.tile(kept, whole)]
    repeats = [np.repeat(np.arange(whole, dtype=np.int32), n)]
    if remainder:
        chosen = np.sort(rng.choice(n, size=remainder, replace=False))
        rows.append(kept[chosen])
        repeats.append(np.full(remainder, whole, dtype=np.int32))
    return np.concatenate(rows), np.concatenate(repeats)


def plan_stage(stage_index: int, quota: StageQuota, inputs: list[MixInput], hygiene: Hygiene, seed: int) -> np.ndarray:
    """The stage's pointers in output order (``POINTER`` array of ``quota.rows`` entries)."""
    parts = []
    by_name = {i.name: i for i in inputs}
    for source_index, source_quota in enumerate(quota.sources):
        mix_input = by_name[source_quota.source]
        kept = np.setdiff1d(
            np.arange(len(mix_input), dtype=np.int64), hygiene.dropped[mix_input.index], assume_unique=True
        )
        rng = np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(stage_index, source_index)))
        rows, repeats = draw(kept, source_quota, rng)
        part = np.empty(len(rows), dtype=POINTER)
        part["input"] = mix_input.index
        part["shard"], part["row"] = mix_input.pointers(rows)
        part["repeat"] = repeats
        part["bytes"] = mix_input.image_bytes()[rows]
        parts.append(part)
    pointers = np.concatenate(parts) if parts else np.empty(0, dtype=POINTER)
    order = np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(stage_index,))).permutation(len(pointers))
    return pointers[order]


@dataclass
class Plan:
    """Everything the writer and the manifest need once planning is done (JSON-serialisable but the pointers)."""

    fingerprint: str
    stages: list[
        dict[str, Any]
    ]  # {"name", "rows", "shards": number of output shards, "sources": [SourceQuota as dict]}
    inputs: list[dict[str, Any]]  # {"index", "stage", "name", "input", "manifest", "sha256", "rows", "shard_paths"}
    hygiene_steps: list[dict[str, Any]]
    dropped: dict[str, int]  # source name -> rows hygiene dropped from its input

    def save(self, work_dir: Path, pointers: dict[str, np.ndarray], rejects: dict[str, list[Reject]]) -> None:
        work_dir.mkdir(parents=True, exist_ok=True)
        for stage in self.stages:
            buffer = io.BytesIO()
            np.save(buffer, pointers[stage["name"]], allow_pickle=False)
            fsync_write(pointers_path(work_dir, stage["name"]), buffer.getvalue())
            lines = "".join(
                json.dumps(r.to_json(), ensure_ascii=False, sort_keys=True) + "\n" for r in rejects[stage["name"]]
            )
            fsync_write(work_dir / f"{stage['name']}.rejects.jsonl", lines.encode("utf-8"))
        fsync_write(work_dir / PLAN, json.dumps(asdict(self), indent=1).encode("utf-8"))

    @classmethod
    def load(cls, work_dir: Path, fingerprint: str) -> Plan | None:
        """The saved plan, if one is complete and was made for ``fingerprint``."""
        path = work_dir / PLAN
        if not path.is_file():
            return None
        plan = cls(**json.loads(path.read_text(encoding="utf-8")))
        return plan if plan.fingerprint == fingerprint else None

    def rejects(self, work_dir: Path, stage: str) -> list[dict[str, Any]]:
        with open(work_dir / f"{stage}.rejects.jsonl", encoding="utf-8") as f:
            return [json.loads(line) for line in f]
