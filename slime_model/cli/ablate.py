"""`slime-model ablate`: the paper's claims in miniature (slime_model.ablation)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from slime_data.ui import UserError, console, progress, user_errors


@user_errors
def ablate(
    config: Annotated[
        Path | None, typer.Option("--config", help="Ablation file; default pipelines/ablation/claims.yaml.")
    ] = None,
    out: Annotated[Path, typer.Option("--out", help="Output folder (runs, scores, summary, plot).")] = Path(
        "runs/ablation"
    ),
    quick: Annotated[
        bool, typer.Option("--quick", help="A few minutes: small data, one seed, 10% of the steps (checks the chain).")
    ] = False,
    workers: Annotated[int, typer.Option("--workers", min=1, help="Runs trained at once (one CPU thread each).")] = 2,
) -> None:
    """Train the tiny SliME from scratch under every arm of every claim, several seeds each, and score each
    run with `slime-model eval` on a held-out split of a detail task only the local view can read.

    Claims (the paper's, pipelines/ablation/claims.yaml): (a) global view only vs global + local; (b) local
    top-p 1.0 vs 0.75 vs 0.5; (c) alternating stages vs end-to-end; (d) mixture of adapters vs MLP only
    vs resampler only. Writes OUT/summary.md (mean ± 95% interval over seeds, chance, each arm against
    the reference), OUT/summary.json and OUT/claims.png. Finished runs are kept in OUT/scores.jsonl: a
    stopped run resumes where it was by running the same command again.

    Example: slime-model ablate --out runs/ablation            # ~30 minutes on 2 cores

    Example: slime-model ablate --quick --out runs/ablation-quick
    """
    from transformers.utils import logging as transformers_logging

    from slime_model.ablation.config import load_ablation
    from slime_model.ablation.data import BENCHMARK, prepare_data
    from slime_model.ablation.runner import run_all, write_summary

    if config is not None and not config.is_file():
        raise UserError(f"--config {config}: no such file")
    loaded = load_ablation(config)
    data, seeds, step_scale = (
        (loaded.quick.data, loaded.quick.seeds, loaded.quick.step_scale) if quick else (loaded.data, loaded.seeds, 1.0)
    )
    out.mkdir(parents=True, exist_ok=True)
    transformers_logging.disable_progress_bar()
    started = time.perf_counter()
    console.print(f"preparing the data under {out} ({data.train_images} train pages, {data.heldout_images} held out)")
    inputs = prepare_data(data, out, workers=workers)
    arms = loaded.arm_names()
    with progress() as bar:  # a Ctrl-C stops the runs at once; finished ones stay in OUT/scores.jsonl
        task = bar.add_task("runs (arm x seed)", total=len(arms) * len(seeds))
        scores = run_all(loaded, inputs, out, seeds, step_scale, workers, on_done=lambda score: bar.advance(task))
    summaries, table_path, plot_path = write_summary(loaded, scores, out)

    table = Table(title=f"slime-model ablate: {BENCHMARK} accuracy (%), {len(seeds)} seed(s)")
    for column in ("claim", "arm", "mean", "95% interval", "seeds", "chance"):
        table.add_column(column, justify="left" if column in ("claim", "arm") else "right")
    for summary in summaries:
        interval = f"{summary.low:.1f} – {summary.high:.1f}" if summary.n > 1 else "n=1"
        table.add_row(
            summary.claim, summary.arm, f"{summary.mean:.1f}", interval, str(summary.n), f"{summary.chance:.1f}"
        )
    console.print(table)
    minutes = (time.perf_counter() - started) / 60
    console.print(f"{len(scores)} runs in {minutes:.1f} min; table: {table_path}; plot: {plot_path}")


def register(app: typer.Typer) -> None:
    app.command("ablate")(ablate)
