"""A stage's statistics: one optimizer step's, summed over micro-batches and then over ranks, and the
stage's running totals (saved with each resumable checkpoint)."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch

from slime_model.training.collate import MicroBatch
from slime_model.training.distributed import all_reduce

STAT_FIELDS = (
    "loss_sum",
    "finite",
    "micro",
    "samples",
    "tokens",
    "visual_tokens",
    "kept_sum",
    "kept_images",
    "dummy",
    "dropped",
    "vision_tokens",
)


@dataclass
class StepStats:
    values: dict[str, float] = field(default_factory=lambda: dict.fromkeys(STAT_FIELDS, 0.0))
    ids: list[str] = field(default_factory=list)
    dropped: list[tuple[str, str]] = field(default_factory=list)

    def add(self, batch: MicroBatch, out, loss: float, vision_tokens: int) -> None:
        v = self.values
        real = slice(0, -1) if batch.dummy_image else slice(None)  # the dummy is the last sample and image
        finite = math.isfinite(loss)
        v["loss_sum"] += loss if finite else 0.0
        v["finite"] += finite
        v["micro"] += 1
        v["samples"] += len(batch.ids)
        v["tokens"] += float(out.attention_mask[real].sum())  # merged sequence: text + visual tokens
        v["visual_tokens"] += float(out.image_token_counts[real].sum())
        if out.local_keep_ratio is not None:
            v["kept_sum"] += float(out.local_keep_ratio[real].sum())
            v["kept_images"] += len(out.local_keep_ratio[real])
        v["dummy"] += batch.dummy_image
        v["dropped"] += len(batch.dropped)
        v["vision_tokens"] += vision_tokens
        self.ids += batch.ids
        self.dropped += batch.dropped

    def reduced(self) -> dict[str, float]:
        """Collective: the sums over all ranks."""
        totals = all_reduce(torch.tensor([self.values[k] for k in STAT_FIELDS]))
        return dict(zip(STAT_FIELDS, totals.tolist(), strict=True))

    def mean_loss(self, totals: dict[str, float]) -> float | None:
        """Mean micro-batch loss over the step, None when any micro-batch was not finite or no sample was left."""
        usable = totals["finite"] == totals["micro"] and totals["samples"] > 0
        return totals["loss_sum"] / totals["micro"] if usable else None


@dataclass
class StageCounters:
    """Running totals of a stage; saved with each resumable checkpoint."""

    samples: int = 0
    tokens: int = 0
    skipped_steps: int = 0  # non-finite gradients
    empty_steps: int = 0  # no sample left on any rank: not applied either
    dummy_batches: int = 0
    seconds: float = 0.0
    first_loss: float | None = None
    final_loss: float | None = None
    dropped: dict[str, int] = field(default_factory=dict)  # this rank's, by reason
    dropped_rows: int = 0  # all ranks
    start_weight_rms: float | None = None  # the trainable weights' RMS when the stage started

    def add(
        self, totals: dict[str, float], stats: StepStats, seconds: float, applied: bool, loss: float | None
    ) -> None:
        self.samples += int(totals["samples"])
        self.tokens += int(totals["tokens"])
        self.dummy_batches += int(totals["dummy"])
        empty = totals["samples"] == 0
        self.empty_steps += empty
        self.skipped_steps += not applied and not empty
        self.dropped_rows += int(totals["dropped"])
        self.seconds += seconds
        for _, reason in stats.dropped:
            self.dropped[reason] = self.dropped.get(reason, 0) + 1
        if loss is not None:
            self.first_loss = loss if self.first_loss is None else self.first_loss
            self.final_loss = loss


def sum_over_ranks(counts: dict[str, int]) -> dict[str, int]:
    """Collective: per-reason counts added up over all ranks."""
    import deepspeed.comm as dist

    gathered: list[dict[str, int] | None] = [None] * dist.get_world_size()
    dist.all_gather_object(gathered, counts)
    total: dict[str, int] = {}
    for part in gathered:
        for reason, n in part.items():
            total[reason] = total.get(reason, 0) + n
    return dict(sorted(total.items()))
