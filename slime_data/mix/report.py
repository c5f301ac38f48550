"""The composition of a mix, from its manifest alone: table rows and a PNG plot."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from slime_data.mix.manifest import MixManifest  # noqa: E402


@dataclass(frozen=True)
class CompositionRow:
    stage: str
    source: str
    rule: str
    weight: float  # share of the stage the recipe asked for
    rows_in: int
    dropped: int
    available: int
    rows_out: int
    repeats: float  # rows_out / available
    share_of_stage: float
    share_of_mix: float


def composition(manifest: MixManifest) -> list[CompositionRow]:
    data = manifest.data
    rows = []
    for stage, info in data["stages"].items():
        for source, s in info["sources"].items():
            rows.append(
                CompositionRow(
                    stage=stage,
                    source=source,
                    rule=s["rule"],
                    weight=s["weight"],
                    rows_in=s["rows_in"],
                    dropped=s["dropped"],
                    available=s["available"],
                    rows_out=s["rows_out"],
                    repeats=s["repeats"]["factor"],
                    share_of_stage=s["rows_out"] / info["rows"] if info["rows"] else 0.0,
                    share_of_mix=s["rows_out"] / data["target"],
                )
            )
    return rows


def plot_composition(manifest: MixManifest, path: Path) -> Path:
    """One horizontal bar per stage, split by source (rows out), annotated with the repeat factor."""
    rows = composition(manifest)
    stages = manifest.stages
    colors = plt.get_cmap("tab10")
    fig, ax = plt.subplots(figsize=(9, 1.2 + 0.8 * len(stages)))
    sources = list(dict.fromkeys(r.source for r in rows))
    for row in rows:
        y = stages.index(row.stage)
        left = sum(
            r.rows_out for r in rows if r.stage == row.stage and sources.index(r.source) < sources.index(row.source)
        )
        ax.barh(y, row.rows_out, left=left, color=colors(sources.index(row.source) % 10), edgecolor="white")
        if row.rows_out:
            ax.text(
                left + row.rows_out / 2,
                y,
                f"{row.source}\n{row.rows_out:,} (x{row.repeats:.2f})",
                ha="center",
                va="center",
                fontsize=8,
            )
    ax.set_yticks(range(len(stages)), stages)
    ax.invert_yaxis()
    ax.set_xlabel("rows")
    ax.set_title(f"{manifest.data['recipe']['name']}: {manifest.data['target']:,} rows (seed {manifest.data['seed']})")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path
