"""Allocation: how many rows each stage and each source contributes to a target total.

The target is shared across stages, then each stage's rows across its sources, in two levels
of the same rule: members with a fixed ``count`` take it; the rest share what is left in
proportion to their weights. Integer counts come from largest-remainder rounding (ties to the
member listed first), so the parts always add up to exactly the target.

A source's weight is its explicit ``weight``, or comes from the stage's ``sampling`` rule over
the rows it has after hygiene (n_i):

* ``proportional``: n_i — the sources are simply concatenated (what the paper's training did);
* ``sqrt``: sqrt(n_i). The released SliME code (``LazySupervisedDataset`` in
  ``llava/train/train.py``) computes ``np.sqrt(size) / np.sqrt(len(self.list_data_dict))`` per
  dataset, i.e. sqrt(n_i) / sqrt(sum_j n_j); the common denominator cancels once the shares are
  normalised, leaving sqrt(n_i) / sum_j sqrt(n_j). (It then copies that value onto every sample
  of the dataset but never hands it to a sampler, so the released runs trained on the plain
  concatenation; were the copied per-sample values used as sampler weights, a source's mass
  would be n_i ** 1.5, not sqrt.)
* ``temperature: τ``: n_i ** (1 / τ) (τ = 1 is proportional, τ = 2 is sqrt).

Each source may appear at most ``max_repeats`` times over: when a quota needs more, the whole
allocation fails before anything is written, saying what is available and which knob to turn.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from slime_data.mix.recipe import MixRecipe, MixSource, MixStage, Temperature


class AllocationError(ValueError):
    """The target cannot be met with this recipe and these inputs (the message says why and what to change)."""


@dataclass(frozen=True)
class SourceQuota:
    stage: str
    source: str
    available: int  # rows left after hygiene
    rows: int  # rows this source contributes
    share: float  # the fraction of its stage that the recipe asked for
    rule: str  # 'count', 'weight', 'proportional', 'sqrt', 'temperature=τ'
    max_repeats: int

    @property
    def whole_repeats(self) -> int:
        """Times every available row appears (0 when downsampling)."""
        return self.rows // self.available if self.available else 0

    @property
    def remainder(self) -> int:
        """Rows drawn without replacement on top of the whole repeats."""
        return self.rows - self.whole_repeats * self.available


@dataclass(frozen=True)
class StageQuota:
    name: str
    rows: int
    sources: list[SourceQuota]


def split_exactly(total: int, weights: Sequence[float]) -> list[int]:
    """Integers proportional to ``weights`` that add up to ``total`` (largest remainder, ties to the first)."""
    if total == 0:
        return [0] * len(weights)
    mass = math.fsum(weights)
    if not weights or mass <= 0:
        raise AllocationError(f"cannot share {total} rows: no member has a positive weight")
    exact = [total * w / mass for w in weights]
    parts = [math.floor(x) for x in exact]
    order = sorted(range(len(weights)), key=lambda i: (-(exact[i] - parts[i]), i))
    for i in order[: total - sum(parts)]:
        parts[i] += 1
    return parts


def _share(total: int, members: Sequence[MixSource | MixStage], weights: Sequence[float], what: str) -> list[int]:
    """Fixed counts first, then ``weights`` over the members without a count."""
    fixed = sum(m.count for m in members if m.count is not None)
    free = [i for i, m in enumerate(members) if m.count is None]
    if fixed > total:
        raise AllocationError(f"the fixed counts of {what} add up to {fixed:,}, more than the {total:,} rows to share")
    if not free and fixed != total:
        raise AllocationError(
            f"the fixed counts of {what} add up to {fixed:,} but {total:,} "
            "rows are to be shared: give one a weight instead of a count"
        )
    counts = [m.count or 0 for m in members]
    for i, n in zip(free, split_exactly(total - fixed, [weights[i] for i in free])):
        counts[i] = n
    return counts


def rule_weights(stage: MixStage, available: Sequence[int]) -> list[float]:
    """Weights of the stage's sources: explicit, or from its sampling rule over ``available``."""
    if stage.rule == "weight":
        return [s.weight or 0.0 for s in stage.sources]
    power = (
        1 / stage.sampling.temperature
        if isinstance(stage.sampling, Temperature)
        else {"proportional": 1.0, "sqrt": 0.5}[stage.sampling]
    )
    return [float(n) ** power for n in available]


def requested_shares(stage: MixStage, rows: int, weights: Sequence[float]) -> list[float]:
    """The fraction of the stage each source was asked for (before rounding)."""
    if rows == 0:
        return [0.0] * len(stage.sources)
    fixed = sum(s.count or 0 for s in stage.sources)
    free_mass = math.fsum(w for w, s in zip(weights, stage.sources) if s.count is None)
    return [
        s.count / rows if s.count is not None else (rows - fixed) / rows * (w / free_mass if free_mass else 0.0)
        for s, w in zip(stage.sources, weights)
    ]


def _quotas(recipe: MixRecipe, target: int, available: dict[str, int]) -> list[StageQuota]:
    stage_rows = _share(target, recipe.stages, [s.weight or 1.0 for s in recipe.stages], "the stages")
    stages = []
    for stage, rows in zip(recipe.stages, stage_rows):
        have = [available[s.name] for s in stage.sources]
        weights = rule_weights(stage, have)
        free = [i for i, s in enumerate(stage.sources) if s.count is None]
        if rows > sum(s.count or 0 for s in stage.sources) and not any(have[i] for i in free):
            raise AllocationError(
                f"stage {stage.name} needs {rows:,} rows but its sources have none left after dedup/decontamination"
            )
        counts = _share(rows, stage.sources, weights, f"stage {stage.name}")
        quotas = [
            SourceQuota(
                stage=stage.name,
                source=source.name,
                available=n_have,
                rows=n_rows,
                share=share,
                rule="count" if source.count is not None else stage.rule,
                max_repeats=recipe.repeats_cap(source),
            )
            for source, n_rows, n_have, share in zip(
                stage.sources, counts, have, requested_shares(stage, rows, weights)
            )
        ]
        stages.append(StageQuota(stage.name, rows, quotas))
    return stages


def _over_cap(stages: list[StageQuota]) -> list[SourceQuota]:
    return [q for stage in stages for q in stage.sources if q.rows > q.max_repeats * q.available]


def allocate(recipe: MixRecipe, target: int, available: dict[str, int]) -> list[StageQuota]:
    """Rows per stage and per source for ``target`` rows in all; ``available`` maps source name -> rows after
    hygiene."""
    if target < 1:
        raise AllocationError(f"--target must be at least 1, got {target}")
    stages = _quotas(recipe, target, available)
    over = _over_cap(stages)
    if over:
        raise AllocationError(_over_cap_message(recipe, target, available, over))
    return stages


def _over_cap_message(recipe: MixRecipe, target: int, available: dict[str, int], over: list[SourceQuota]) -> str:
    first = over[0]
    cap = first.max_repeats * first.available
    reachable = _largest_feasible_target(recipe, target, available)
    hint = f"--target {reachable:,} is the most these weights allow" if reachable else "no target fits these weights"
    more = f" (and {len(over) - 1} more source(s))" if len(over) > 1 else ""
    return (
        f"--target {target:,} cannot be met: source {first.source} "
        f"(stage {first.stage}) would need {first.rows:,} rows but has "
        f"{first.available:,} after dedup/decontamination, at most {cap:,} with max_repeats {first.max_repeats}{more}; "
        f"{sum(available.values()):,} rows are available in all. Raise max_repeats (for the recipe or that source), "
        f"lower --target ({hint}), or give {first.source} a smaller weight"
    )


def _largest_feasible_target(recipe: MixRecipe, target: int, available: dict[str, int]) -> int:
    """The largest target below ``target`` that fits every cap with these weights (0 if none does)."""

    def fits(t: int) -> bool:
        try:
            return not _over_cap(_quotas(recipe, t, available))
        except AllocationError:
            return False

    low, high = 0, target - 1
    while low < high:  # quotas only grow with the target, so feasibility is monotone
        mid = (low + high + 1) // 2
        if fits(mid):
            low = mid
        else:
            high = mid - 1
    return low if low and fits(low) else 0
