"""What ``report.html`` shows, gathered from a shard set: compact columns, the manifest, ``rejects.jsonl``,
the recipe's filter thresholds, duplicate clusters, and a few sample rows per source and task
(the only images decoded, for thumbnails)."""

from __future__ import annotations

import base64
import io
import json
import re
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from PIL import Image

from slime_data.shards import ShardSet
from slime_data.steps.quality import QualityParams
from slime_data.steps.resolution import ResolutionParams

SAMPLES_PER_GROUP = 3
MAX_GROUPS = 40  # (source, task) pairs shown in the gallery
THUMBNAIL_SIDE = 360
DEDUP_STEPS = ("exact_dedup", "near_dedup")
_KEPT_ID = re.compile(r"(?:as|to) (\S+) \(kept")  # from the dedup steps' reject detail


@dataclass
class Sample:
    id: str
    source: str
    task: str
    question: str
    answer: str
    rationale: str | None
    size: tuple[int, int] | None  # (width, height); None for a text-only row
    thumbnail: str | None  # data: URL of a small JPEG


@dataclass
class Cluster:
    step: str
    kept: str
    dropped: list[str]


@dataclass
class ReportData:
    widths: np.ndarray  # (n_images,)
    heights: np.ndarray
    blur: np.ndarray  # (n_scored,) Laplacian variance, from meta["quality"]
    pixel_std: np.ndarray
    question_words: np.ndarray  # (n_human_turns,)
    answer_words: np.ndarray  # (n_gpt_turns,)
    kept: Counter[str]  # rows by source
    rejected: Counter[str]  # rejects by source
    text_only: Counter[str]  # kept rows without an image, by source
    tasks_by_source: dict[str, Counter[str]]
    rejects: dict[str, Counter[str]]  # step -> reason -> rows
    reject_examples: dict[tuple[str, str], list[dict[str, str]]]  # (step, reason) -> first rejects
    clusters: list[Cluster]
    thresholds: dict[str, dict[str, Any]]  # filter step -> its parameters, from the recipe
    samples: list[Sample] = field(default_factory=list)

    @property
    def read(self) -> Counter[str]:
        return self.kept + self.rejected


_FILTERS = {"resolution": ResolutionParams, "quality": QualityParams}


def recipe_thresholds(config: Any) -> dict[str, dict[str, Any]]:
    """``{"resolution": {...}, "quality": {...}}``: the filters' parameters (defaults filled in) from
    the recipe in the manifest; enabled steps only, and none for a set that was not built."""
    steps = config.get("steps", []) if isinstance(config, dict) else []
    filters = [s for s in steps if isinstance(s, dict) and s.get("step") in _FILTERS and s.get("enabled", True)]
    params = {spec["step"]: {k: v for k, v in spec.items() if k not in ("step", "enabled")} for spec in filters}
    return {step: _FILTERS[step](**values).model_dump() for step, values in params.items()}


def _words(text: str) -> int:
    return len(text.replace("<image>", " ").split())


def collect(shard_set: ShardSet) -> ReportData:
    widths, heights, blur, pixel_std, question_words, answer_words = [], [], [], [], [], []
    kept: Counter[str] = Counter()
    text_only: Counter[str] = Counter()
    tasks: dict[str, Counter[str]] = defaultdict(Counter)
    groups: dict[tuple[str, str], list[int]] = defaultdict(list)
    index = 0
    columns = ["source", "task", "width", "height", "conversations", "meta"]
    for batch in shard_set.iter_batches(columns=columns):
        rows = batch.to_pydict()
        for source, task, w, h, conversation, meta in zip(*(rows[c] for c in columns), strict=True):
            kept[source] += 1
            tasks[source][task] += 1
            groups[(source, task)].append(index)
            index += 1
            if w and h:
                widths.append(w)
                heights.append(h)
            else:
                text_only[source] += 1
            for turn in conversation:
                (question_words if turn["from"] == "human" else answer_words).append(_words(turn["value"]))
            quality = json.loads(meta or "{}").get("quality", {})
            if "blur" in quality:
                blur.append(quality["blur"])
                pixel_std.append(quality.get("std", np.nan))
    rejected: Counter[str] = Counter()
    by_reason: dict[str, Counter[str]] = defaultdict(Counter)
    examples: dict[tuple[str, str], list[dict[str, str]]] = defaultdict(list)
    clusters: dict[tuple[str, str], list[str]] = defaultdict(list)
    for reject in shard_set.rejects():
        rejected[reject["source"]] += 1
        by_reason[reject["step"]][reject["reason"]] += 1
        if len(examples[(reject["step"], reject["reason"])]) < 2:
            examples[(reject["step"], reject["reason"])].append(reject)
        match = _KEPT_ID.search(reject.get("detail", "")) if reject["step"] in DEDUP_STEPS else None
        if match:
            clusters[(reject["step"], match[1])].append(reject["id"])
    return ReportData(
        widths=np.array(widths),
        heights=np.array(heights),
        blur=np.array(blur),
        pixel_std=np.array(pixel_std),
        question_words=np.array(question_words),
        answer_words=np.array(answer_words),
        kept=kept,
        rejected=rejected,
        text_only=text_only,
        tasks_by_source=dict(tasks),
        rejects=dict(by_reason),
        reject_examples=dict(examples),
        clusters=sorted(
            (Cluster(step, k, ids) for (step, k), ids in clusters.items()), key=lambda c: (-len(c.dropped), c.kept)
        ),
        thresholds=recipe_thresholds(shard_set.manifest.get("config")),
        samples=samples(shard_set, groups),
    )


def thumbnail_url(data: bytes, side: int = THUMBNAIL_SIDE) -> str | None:
    """A small JPEG of ``data`` as a ``data:`` URL (the page needs no side files); None if unreadable."""
    try:
        with Image.open(io.BytesIO(data)) as image:
            image.draft("RGB", (side, side))  # JPEG: decode at reduced scale
            small = image.convert("RGB")
            small.thumbnail((side, side))
    except (OSError, ValueError, Image.DecompressionBombError):
        return None
    out = io.BytesIO()
    small.save(out, format="JPEG", quality=80)
    return "data:image/jpeg;base64," + base64.b64encode(out.getvalue()).decode("ascii")


def _spread(indices: list[int], k: int) -> list[int]:
    """``k`` indices spread evenly over the group (first, middle, last…): deterministic, not just the head."""
    if len(indices) <= k:
        return indices
    return [indices[round(i * (len(indices) - 1) / (k - 1))] for i in range(k)] if k > 1 else indices[:1]


def samples(shard_set: ShardSet, groups: dict[tuple[str, str], list[int]]) -> list[Sample]:
    out = []
    for source, task in sorted(groups)[:MAX_GROUPS]:
        for index in _spread(groups[(source, task)], SAMPLES_PER_GROUP):
            record = shard_set[index]
            answer = next((t["value"] for t in record.conversations if t["from"] == "gpt"), "")
            has_image = record.image is not None and record.image.bytes
            out.append(
                Sample(
                    id=record.id,
                    source=source,
                    task=task,
                    question=record.question,
                    answer=answer,
                    rationale=record.rationale,
                    size=(record.width, record.height) if has_image else None,
                    thumbnail=thumbnail_url(record.image.bytes) if has_image else None,
                )
            )
    return out
