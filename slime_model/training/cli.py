"""`slime-model train`: the thin command over `slime_model.training.runner.train`.

One process: `slime-model train --data manifests/mix.json`. Several (the same command, any launcher):

    torchrun --nproc_per_node 8 -m slime_model.training --data manifests/mix.json \
        --recipe pipelines/train/slime-vicuna-7b.yaml
    deepspeed --num_gpus 8 --module slime_model.training --data manifests/mix.json --recipe ...
    deepspeed --hostfile hostfile --module slime_model.training --data ... --out /shared/runs/7b   # multi-node

Multi-node runs need `--out` (and the mix) on a filesystem every node sees: each stage starts from
the checkpoint rank 0 wrote at the end of the stage before.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from slime_data.ui import UserError, console, progress, styled, user_errors


class ConsoleCallbacks:
    """A rich progress bar per stage and a summary table at each stage's end (rank 0)."""

    def __init__(self) -> None:
        self._bar = None
        self._task = None

    def stage_started(self, name: str, total_steps: int, done_steps: int) -> None:
        self._bar = progress()
        self._bar.start()
        self._task = self._bar.add_task(f"stage {name}", total=total_steps, completed=done_steps)

    def step_done(self, record: dict[str, Any]) -> None:
        loss = "skipped" if record["loss"] is None else f"{record['loss']:.4f}"
        self._bar.update(self._task, advance=1, description=f"step {record['step']} loss {loss}")

    def stage_finished(self, result) -> None:
        if self._bar is not None:
            self._bar.stop()
            self._bar = None
        console.print(stage_table(result))

    def run_finished(self, results) -> None:
        console.print(runs_table(results))


def _loss(value: float | None) -> str:
    return "-" if value is None else f"{value:.4f}"


def stage_table(result) -> Table:
    table = Table(title=f"stage {result.name} ({result.status})", show_header=False)
    table.add_column("", style="bold")
    table.add_column("")
    rate = result.samples / result.seconds if result.seconds else 0.0
    dropped = ", ".join(f"{reason}: {n}" for reason, n in result.dropped_rows.items()) or "0"
    for name, value in [
        ("optimizer steps", str(result.steps)),
        ("samples / tokens", f"{result.samples} / {result.tokens}"),
        ("loss first → last", f"{_loss(result.first_loss)} → {_loss(result.final_loss)}"),
        ("time / samples per s", f"{result.seconds:.1f} s / {rate:.2f}"),
        ("skipped (non-finite) steps", str(result.skipped_steps)),
        ("skipped empty steps (every row dropped)", str(result.empty_steps)),
        ("dropped rows", dropped),
        ("batches given a dummy image", str(result.dummy_batches)),
        ("checkpoint", result.checkpoint),
        ("loss plot", result.plot),
    ]:
        table.add_row(name, value)
    return table


def runs_table(results) -> Table:
    table = Table(title="slime-model train")
    for column in ("stage", "status", "steps", "final loss", "time (s)", "checkpoint"):
        table.add_column(column)
    for r in results:
        table.add_row(r.name, r.status, str(r.steps), _loss(r.final_loss), f"{r.seconds:.1f}", r.checkpoint)
    return table


@user_errors
def train(
    data: Annotated[Path, typer.Option("--data", help="The mix manifest written by `slime-data mix`.")] = Path(
        "manifests/mix.json"
    ),
    recipe: Annotated[
        Path | None,
        typer.Option("--recipe", help="Training recipe; default pipelines/train/tiny.yaml (tiny model, CPU, minutes)."),
    ] = None,
    out: Annotated[Path | None, typer.Option("--out", help="Output folder; default runs/<recipe name>.")] = None,
    resume: Annotated[
        bool, typer.Option("--resume", help="Continue an interrupted stage from its last checkpoint.")
    ] = False,
    verify: Annotated[
        bool | None,
        typer.Option(
            "--verify/--no-verify",
            help="sha256 of every shard before the first step (default: for "
            "mix stages up to 2 GiB; size, footer and schema always).",
        ),
    ] = None,
    override: Annotated[
        list[str] | None,
        typer.Option(
            "--override",
            help="Change an unfinished stage's optimizer setting (or max_bad_steps / max_drop_ratio / "
            "max_weight_growth) in a started run, e.g. 1b.lr=1e-4; recorded in OUT/train.json. Repeatable.",
        ),
    ] = None,
    report_to: Annotated[
        str, typer.Option("--report-to", help="none, tensorboard or wandb (needs that package).")
    ] = "none",
    local_rank: Annotated[
        int | None, typer.Option("--local_rank", "--local-rank", hidden=True, help="Set by the deepspeed launcher.")
    ] = None,
) -> None:
    """Train SliME stage by stage (DeepSpeed) on a mix; finished stages are skipped on a rerun.

    Example: slime-model train --data manifests/mix.json

    Example (after "non-finite gradients" in stage 1b): slime-model train --data manifests/mix.json --resume --override
    1b.lr=1e-4

    Example (8 GPUs):
      torchrun --nproc_per_node 8 -m slime_model.training --data manifests/mix.json \
          --recipe pipelines/train/slime-vicuna-7b.yaml
    """
    from transformers.utils import logging as transformers_logging

    from slime_model.training.overrides import parse_overrides
    from slime_model.training.recipe import load_recipe
    from slime_model.training.runner import TrainingAborted
    from slime_model.training.runner import train as run_training
    from slime_model.training.telemetry import REPORT_TO

    if report_to not in REPORT_TO:
        raise UserError(f"--report-to {report_to!r} is not one of {', '.join(REPORT_TO)}")
    if not data.is_file():
        raise UserError(f"--data {data} not found: make it with `slime-data mix --target 2M`")
    loaded = load_recipe(recipe)
    out = out or Path("runs") / loaded.name
    transformers_logging.disable_progress_bar()  # one rich bar per stage instead of one tqdm bar per load/save
    try:
        run_training(
            data,
            loaded,
            out,
            resume=resume,
            verify=verify,
            overrides=parse_overrides(override or []),
            report_to=report_to,
            callbacks=ConsoleCallbacks(),
        )
    except TrainingAborted as err:
        console.print(styled(("training stopped:", "bold red"), f" {err}"))
        raise typer.Exit(1) from None


def register(app: typer.Typer) -> None:
    app.command("train")(train)
