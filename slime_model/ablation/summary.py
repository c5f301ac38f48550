"""Summaries of an ablation: per-arm mean and 95% interval over seeds, differences to a reference arm, table, plot.

An ablation trains the tiny model once per (claim, arm, seed) and scores each run on the same held-out items; this
module only aggregates those scores. Intervals are Student t intervals over seeds (few seeds: the normal 1.96 would
be far too narrow). A difference to the claim's reference arm pairs runs by seed when both arms ran the same seeds
(same seed, same data order and initialization: the pairing removes that shared noise), else it is Welch's interval.
The t quantile is computed here (regularized incomplete beta by continued fraction) since scipy is no dependency.
"""

from __future__ import annotations

import math
import textwrap
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from statistics import fmean, stdev
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator  # noqa: E402


@dataclass(frozen=True)
class Claim:
    """One claim of the paper, tested by comparing arms; the first arm is the reference the others are compared to."""

    key: str  # e.g. "a"
    title: str  # e.g. "Global only vs global + local"
    arms: tuple[str, ...]
    paper: str  # one line: what the paper reports


@dataclass(frozen=True)
class RunScore:
    """One trained-and-evaluated run; percentages as ``slime-model eval`` writes them in results.json."""

    claim: str
    arm: str
    seed: int
    accuracy: float  # percent, 0..100
    chance: float  # percent, chance level of the same benchmark items

    def __post_init__(self) -> None:
        for name in ("accuracy", "chance"):
            if not 0.0 <= getattr(self, name) <= 100.0:
                raise ValueError(f"run {self.claim}/{self.arm}/seed {self.seed}: {name} is a percentage in 0..100")


@dataclass(frozen=True)
class ArmSummary:
    """One arm of one claim over its seeds; ``half_width`` is the 95% t interval's, 0.0 when ``n == 1``."""

    claim: str
    arm: str
    n: int
    mean: float
    half_width: float
    low: float
    high: float
    chance: float
    seeds: tuple[int, ...]  # ascending
    scores: tuple[float, ...]  # accuracy per seed, in the order of ``seeds``


class _ArmEntry(BaseModel):
    # The ablation runner reads the arm's other keys (its training settings); the summary needs only the name.
    model_config = ConfigDict(extra="ignore")
    name: str = Field(min_length=1)


class _ClaimEntry(BaseModel):
    model_config = ConfigDict(extra="forbid")
    key: str = Field(min_length=1)
    title: str = Field(min_length=1)
    paper: str = Field(min_length=1)
    arms: list[str | _ArmEntry] = Field(min_length=2)

    @field_validator("arms")
    @classmethod
    def _distinct_names(cls, arms: list[str | _ArmEntry]) -> list[str | _ArmEntry]:
        names = [arm if isinstance(arm, str) else arm.name for arm in arms]
        if len(set(names)) != len(names) or "" in names:
            raise ValueError(f"arm names must be non-empty and distinct, got {names}")
        return arms


class _ClaimsFile(BaseModel):
    # Other top-level keys (task, sizes, seeds) belong to the runner.
    model_config = ConfigDict(extra="ignore")
    claims: list[_ClaimEntry] = Field(min_length=1)


def load_claims(data: Mapping[str, Any]) -> list[Claim]:
    """The claims of an ablation config (a mapping with a ``claims:`` list); ValueError naming the bad field."""
    try:
        parsed = _ClaimsFile.model_validate(data)
    except ValidationError as error:
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in error.errors())
        raise ValueError(f"bad ablation claims: {problems}") from None
    keys = [entry.key for entry in parsed.claims]
    if len(set(keys)) != len(keys):
        raise ValueError(f"bad ablation claims: claims.key must be distinct, got {keys}")
    return [
        Claim(e.key, e.title, tuple(a if isinstance(a, str) else a.name for a in e.arms), e.paper)
        for e in parsed.claims
    ]


def _incomplete_beta_fraction(a: float, b: float, x: float) -> float:
    """Continued fraction of I_x(a, b) by the modified Lentz method (converges fast for x < (a+1)/(a+b+2))."""
    tiny = 1e-300
    c, d = 1.0, 1.0 - (a + b) * x / (a + 1.0)
    d = 1.0 / (d if abs(d) > tiny else tiny)
    result = d
    for m in range(1, 100_000):
        even = m * (b - m) * x / ((a + 2 * m - 1) * (a + 2 * m))
        odd = -(a + m) * (a + b + m) * x / ((a + 2 * m) * (a + 2 * m + 1))
        for coefficient in (even, odd):
            d = 1.0 + coefficient * d
            d = 1.0 / (d if abs(d) > tiny else tiny)
            c = 1.0 + coefficient / c
            c = c if abs(c) > tiny else tiny
            result *= c * d
        if abs(c * d - 1.0) < 1e-15:
            return result
    raise ArithmeticError(f"incomplete beta did not converge for a={a}, b={b}, x={x}")


def _regularized_incomplete_beta(a: float, b: float, x: float) -> float:
    if x <= 0.0 or x >= 1.0:
        return 0.0 if x <= 0.0 else 1.0
    log_front = math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b) + a * math.log(x) + b * math.log1p(-x)
    if x < (a + 1.0) / (a + b + 2.0):
        return math.exp(log_front) * _incomplete_beta_fraction(a, b, x) / a
    return 1.0 - math.exp(log_front) * _incomplete_beta_fraction(b, a, 1.0 - x) / b


def t_critical_95(df: float) -> float:
    """Two-sided 95% Student t quantile: t with P(|T| > t) = 0.05 for ``df`` degrees of freedom (any df > 0, so
    also Welch's fractional ones). P(|T| > t) = I_{df/(df+t^2)}(df/2, 1/2), solved for t by bisection."""
    if not df > 0:
        raise ValueError(f"degrees of freedom must be > 0, got {df}")
    if df > 1e7:  # the t distribution is the normal one to far below the table's 3 decimals
        return 1.959963984540054

    def two_sided_tail(t: float) -> float:
        return _regularized_incomplete_beta(df / 2.0, 0.5, df / (df + t * t))

    low, high = 0.0, 2.0
    while two_sided_tail(high) > 0.05:
        low, high = high, 2.0 * high
    while high - low > 1e-12 * high:
        middle = (low + high) / 2.0
        low, high = (middle, high) if two_sided_tail(middle) > 0.05 else (low, middle)
    return (low + high) / 2.0


def _mean_and_half_width(values: list[float]) -> tuple[float, float]:
    if len(values) < 2:
        return fmean(values), 0.0
    return fmean(values), t_critical_95(len(values) - 1) * stdev(values) / math.sqrt(len(values))


def summarize(runs: list[RunScore], claims: list[Claim]) -> list[ArmSummary]:
    """One summary per (claim, arm), in the order of ``claims`` and of each claim's arms."""
    arms_of = {claim.key: claim.arms for claim in claims}
    groups: dict[tuple[str, str], dict[int, RunScore]] = {(c.key, arm): {} for c in claims for arm in c.arms}
    for run in runs:
        if run.claim not in arms_of:
            raise ValueError(f"run of arm {run.arm!r} names unknown claim {run.claim!r} (claims: {list(arms_of)})")
        if run.arm not in arms_of[run.claim]:
            raise ValueError(f"claim {run.claim!r} has no arm {run.arm!r} (its arms: {list(arms_of[run.claim])})")
        group = groups[run.claim, run.arm]
        if run.seed in group:
            raise ValueError(f"claim {run.claim!r}, arm {run.arm!r}: two runs with seed {run.seed}")
        group[run.seed] = run
    summaries = []
    for (claim, arm), by_seed in groups.items():
        if not by_seed:
            raise ValueError(f"claim {claim!r}, arm {arm!r}: no runs")
        seeds = tuple(sorted(by_seed))
        scores = tuple(by_seed[seed].accuracy for seed in seeds)
        mean, half_width = _mean_and_half_width(list(scores))
        chance = fmean(run.chance for run in by_seed.values())
        summary = ArmSummary(
            claim, arm, len(seeds), mean, half_width, mean - half_width, mean + half_width, chance, seeds, scores
        )
        summaries.append(summary)
    return summaries


def _difference(a: ArmSummary, b: ArmSummary) -> tuple[float, float, bool, bool]:
    """(mean of a - b, 95% half width, paired, whether an interval exists at all: not with a single seed)."""
    if a.seeds == b.seeds:
        mean, half_width = _mean_and_half_width([x - y for x, y in zip(a.scores, b.scores)])
        return mean, half_width, True, a.n > 1
    mean = a.mean - b.mean
    if min(a.n, b.n) < 2:
        return mean, 0.0, False, False
    var_a, var_b = stdev(a.scores) ** 2 / a.n, stdev(b.scores) ** 2 / b.n
    if var_a + var_b == 0.0:
        return mean, 0.0, False, True
    df = (var_a + var_b) ** 2 / (var_a**2 / (a.n - 1) + var_b**2 / (b.n - 1))  # Welch–Satterthwaite
    return mean, t_critical_95(df) * math.sqrt(var_a + var_b), False, True


def difference(a: ArmSummary, b: ArmSummary) -> tuple[float, float, float]:
    """Mean of ``a`` minus ``b`` and its 95% interval (low, high): a paired t interval on per-seed differences when
    both arms ran the same seeds, else Welch's. With a single seed (or pair) the interval is the point itself."""
    mean, half_width, _, _ = _difference(a, b)
    return mean, mean - half_width, mean + half_width


def _arms_by_claim(summaries: list[ArmSummary], claims: list[Claim]) -> list[tuple[Claim, list[ArmSummary]]]:
    found = {(s.claim, s.arm): s for s in summaries}
    missing = [f"{c.key}/{arm}" for c in claims for arm in c.arms if (c.key, arm) not in found]
    if missing:
        raise ValueError(f"no summary for arm(s) {', '.join(missing)}")
    return [(claim, [found[claim.key, arm] for arm in claim.arms]) for claim in claims]


def _number(value: float, sign: bool = False) -> str:
    rounded = round(value, 1) + 0.0  # + 0.0 turns a rounded -0.0 into 0.0
    return f"{rounded:+.1f}" if sign and rounded else f"{rounded:.1f}"


def _cell(text: str) -> str:
    return text.replace("|", "\\|")


def _versus(arm: ArmSummary, reference: ArmSummary) -> str:
    if arm is reference:
        return "reference"
    mean, half_width, paired, has_interval = _difference(arm, reference)
    spread = f"± {_number(half_width)} ({'paired' if paired else 'Welch'})" if has_interval else "(n=1)"
    return f"{_number(mean, sign=True)} {spread}"


def markdown_table(summaries: list[ArmSummary], claims: list[Claim]) -> str:
    """The ablation as a markdown table, one row per arm, the paper's statement on each claim's reference row."""
    lines = [
        "| claim | arm | accuracy (mean ± 95% CI) | seeds | chance | vs reference arm | paper says |",
        "|---|---|---|---|---|---|---|",
    ]
    for claim, arms in _arms_by_claim(summaries, claims):
        for arm in arms:
            accuracy = f"{_number(arm.mean)} " + (f"± {_number(arm.half_width)}" if arm.n > 1 else "(n=1)")
            paper = claim.paper if arm is arms[0] else ""
            cells = [claim.key, arm.arm, accuracy, str(arm.n), _number(arm.chance), _versus(arm, arms[0]), paper]
            lines.append("| " + " | ".join(_cell(cell) for cell in cells) + " |")
    return "\n".join(lines) + "\n"


PANEL_WIDTH, PANEL_HEIGHT, DPI = 4.0, 3.8, 100  # inches; the PNG is 400 px per claim by 380 px
SEED_DOTS = {"s": 12, "color": "#555555", "alpha": 0.7, "zorder": 3}
MEAN_AND_INTERVAL = {"fmt": "o", "color": "#2e86c1", "capsize": 6, "markersize": 7, "zorder": 4}
CHANCE_LINE = {"colors": "#c0392b", "linestyles": "--", "linewidth": 1.5}


def plot(summaries: list[ArmSummary], claims: list[Claim], path: Path) -> Path:
    """One panel per claim: each arm's mean with its 95% interval, its seeds' scores as dots, chance dashed."""
    grouped = _arms_by_claim(summaries, claims)
    figure, axes = plt.subplots(1, len(grouped), figsize=(PANEL_WIDTH * len(grouped), PANEL_HEIGHT), squeeze=False)
    for ax, (claim, arms) in zip(axes[0], grouped):
        xs = range(len(arms))
        for x, arm in zip(xs, arms):
            # Seeds right of the interval (not hidden by the mean's marker), spread so equal scores stay visible.
            offsets = [0.2 + 0.1 * i / max(arm.n - 1, 1) for i in range(arm.n)]
            ax.scatter([x + o for o in offsets], arm.scores, **SEED_DOTS, label="seeds" if x == 0 else None)
            label = "mean ± 95% CI" if x == 0 else None
            ax.errorbar(x, arm.mean, yerr=arm.half_width, **MEAN_AND_INTERVAL, label=label)
        # Segments one arm wide join into a single line when the arms share their items (the usual case).
        ax.hlines([a.chance for a in arms], [x - 0.5 for x in xs], [x + 0.5 for x in xs], **CHANCE_LINE, label="chance")
        ax.set_xticks(xs, [arm.arm for arm in arms], rotation=15, ha="right")
        ax.set(xlim=(-0.5, len(arms) - 0.5), ylim=(0, 100), ylabel="held-out accuracy (%)")
        ax.set_title("\n".join(textwrap.wrap(claim.title, 38)), fontsize=10)
        ax.legend(loc="best", fontsize=7)
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, format="png", dpi=DPI)
    plt.close(figure)
    return path
