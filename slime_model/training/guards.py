"""What stops a stage, or keeps a step from counting, with the message saying what to do.

- non-finite gradients: ZeRO's overflow check discards the step (on every rank alike); past
  `max_bad_steps` such steps the stage stops.
- a step left without a single sample (every row dropped): handed to the same check by a NaN loss,
  so nothing is learnt from nothing; logged with loss null and counted as empty.
- dropped rows past `max_drop_ratio` of the rows the stage reads: stop as soon as the count is over
  (the share can only grow).
- divergence with finite values (a learning rate far too high: weights in the millions, loss flat):
  the trainable weights' RMS, checked at every checkpoint and at the end against the stage's start,
  may grow `max_weight_growth` times; the state is neither saved nor passed on past that.
"""

from __future__ import annotations

import math
from pathlib import Path

import torch

from slime_model.training.distributed import all_reduce

WEIGHT_RMS_FLOOR = 0.01  # growth is measured from at least this RMS (zero-initialised groups start at 0)


class TrainingAborted(RuntimeError):
    """Training cannot go on (e.g. too many non-finite steps); the message says why and what to do."""


def no_samples(samples: int) -> bool:
    """Collective: no rank has a sample left in this optimizer step."""
    return all_reduce(torch.tensor([float(samples)]))[0].item() == 0


def poisoned_loss(out) -> torch.Tensor:
    """A loss whose gradients are NaN in every trainable parameter, so ZeRO's overflow check discards
    the step. The dummy sample has no labelled token, so the loss alone reaches no parameter; the
    last hidden state [B, L, H] does (every trainable group lies upstream of it)."""
    return (out.loss + out.hidden_states[-1].float().mean()) * float("nan")


def check_bad_steps(stage: str, recipe_stage: str, skipped: int, limit: int) -> None:
    if skipped > limit:
        raise TrainingAborted(
            f"stage {stage}: {skipped} optimizer steps had non-finite gradients and were skipped "
            f"(max_bad_steps is {limit}); check the data, or rerun with a lower learning rate: "
            f"--resume --override {recipe_stage}.lr=LOWER"
        )


def check_drops(
    stage: str, dropped: int, reasons: dict[str, int], planned_rows: int, max_ratio: float, rank: int, stage_dir: Path
) -> None:
    """`dropped`: rows dropped so far on all ranks; `reasons`: this rank's counts by reason."""
    if dropped > max_ratio * planned_rows:
        listed = ", ".join(f"{reason}: {n}" for reason, n in sorted(reasons.items()))
        raise TrainingAborted(
            f"stage {stage}: {dropped} rows dropped so far, more than max_drop_ratio {max_ratio} of the {planned_rows} "
            f"rows the stage reads (rank {rank}: {listed}; each row in {stage_dir / 'dropped-rank*.jsonl'}); "
            "repair the data and train into a new --out, "
            "or rerun with --resume --override max_drop_ratio=R to accept the losses"
        )


def weight_rms(module: torch.nn.Module) -> float:
    """Collective: root mean square of the trainable weights (ZeRO-3: of every rank's partition)."""
    square_sum, count = 0.0, 0
    for param in module.parameters():
        if param.requires_grad:
            data = getattr(param, "ds_tensor", param.data)
            square_sum += float(data.double().square().sum())
            count += data.numel()
    totals = all_reduce(torch.tensor([square_sum, float(count)]))  # ZeRO-2: every rank the same, ratio unchanged
    return math.sqrt(totals[0].item() / max(totals[1].item(), 1.0))


def check_weight_growth(
    stage: str, recipe_stage: str, start: float, now: float, growth: float, lr: float, step: int, stage_dir: Path
) -> None:
    if growth and (not math.isfinite(now) or now > growth * max(start, WEIGHT_RMS_FLOOR)):
        raise TrainingAborted(
            f"stage {stage}: the trainable weights' RMS grew from {start:.3g} to {now:.3g} by step {step}, more than "
            f"max_weight_growth ({growth:g}x): learning rate {lr:g} is likely too high; "
            f"delete {stage_dir} and rerun with --override {recipe_stage}.lr=LOWER"
        )
