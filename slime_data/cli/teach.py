"""`slime-data teach`: run the teacher LLM over a shard set and write a new shard set."""

from __future__ import annotations

import logging
import shlex
import sys
from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.logging import RichHandler
from rich.table import Table

from slime_data.cli.executor_options import ExecutorKind, ExecutorOption, RayAddressOption, runs_on_executor
from slime_data.ui import UserError, console, progress, styled, user_errors

if TYPE_CHECKING:
    from slime_data.shards import ShardSet
    from slime_data.steps.teacher import TeacherStep

# Exit status when --max-requests / --max-cost stopped the run (2 is a user mistake).
EXIT_BUDGET = 3


class Mode(str, Enum):
    rationale = "rationale"
    qa = "qa"
    verify = "verify"


class Rewrite(str, Enum):
    missing = "missing"
    poor = "poor"
    all = "all"


def usage_table(usage: dict) -> Table:
    table = Table(title="teacher usage (this run)")
    table.add_column("")
    table.add_column("value", justify="right")
    cost = usage["estimated_cost_usd"]
    for label, value in (
        ("requests sent", usage["requests_sent"]),
        ("retries", usage["retries"]),
        ("new answers (cached now)", usage["responses"]),
        ("answers from the cache (free)", usage["cache_hits"]),
        ("prompt tokens", usage["prompt_tokens"]),
        ("completion tokens", usage["completion_tokens"]),
        ("estimated cost (USD)", "unknown (no price for the model)" if cost is None else f"{cost:.4f}"),
    ):
        table.add_row(label, str(value))
    return table


@user_errors
@runs_on_executor
def teach(
    input_dir: Annotated[Path, typer.Argument(help="Input shard-set folder (or its manifest.json).")],
    out: Annotated[Path, typer.Option("--out", help="Output shard-set folder.")],
    mode: Annotated[
        Mode,
        typer.Option(
            "--mode",
            help="rationale: reasoning for rows with a gold answer; qa: detail questions from "
            "high-resolution images; verify: drop rows whose rationale a judge calls wrong.",
        ),
    ],
    model: Annotated[
        str | None, typer.Option("--model", help="Model name on the server (default: the teacher config's).")
    ] = None,
    base_url: Annotated[
        str | None,
        typer.Option(
            "--base-url",
            help="OpenAI-compatible URL, e.g. http://127.0.0.1:8000/v1 (default: $OPENAI_BASE_URL, else OpenAI).",
        ),
    ] = None,
    concurrency: Annotated[int | None, typer.Option("--concurrency", min=1, help="Requests in flight at once.")] = None,
    rpm: Annotated[float | None, typer.Option("--rpm", min=0.001, help="Requests per minute limit.")] = None,
    tpm: Annotated[float | None, typer.Option("--tpm", min=0.001, help="Tokens per minute limit.")] = None,
    max_requests: Annotated[
        int | None,
        typer.Option("--max-requests", min=0, help="Stop after sending N requests (cached answers are free)."),
    ] = None,
    max_cost: Annotated[
        float | None,
        typer.Option(
            "--max-cost",
            min=0,
            help="A ceiling on this run's estimated cost in USD: each request reserves its worst case "
            "(prompt estimate + max_tokens) before it is sent (needs the model's price in the config).",
        ),
    ] = None,
    config: Annotated[
        Path | None,
        typer.Option("--config", help="Your teacher YAML, overriding pipelines/teacher.yaml (may hold api_key)."),
    ] = None,
    cache: Annotated[
        Path | None, typer.Option("--cache", help="Response cache (SQLite). Default: ~/.cache/slime/teacher.sqlite.")
    ] = None,
    questions: Annotated[int, typer.Option("--questions", min=1, max=20, help="qa: questions asked per image.")] = 3,
    min_short_side: Annotated[
        int, typer.Option("--min-short-side", min=1, help="qa: only images whose shorter side is at least this.")
    ] = 672,
    thumbnail_check: Annotated[
        bool,
        typer.Option(
            "--thumbnail-check/--no-thumbnail-check",
            help="qa: drop questions answerable from a 336-px thumbnail (one more request per image).",
        ),
    ] = False,
    rewrite: Annotated[
        Rewrite,
        typer.Option("--rewrite", help="rationale: which rows get one — missing, poor (missing or short), all."),
    ] = Rewrite.poor,
    executor: ExecutorOption = ExecutorKind.local,
    ray_address: RayAddressOption = None,
) -> None:
    """Ask a teacher LLM for rationales, detail-heavy QA, or a verdict on existing rationales.

    The API key comes from $OPENAI_API_KEY or `api_key:` in --config, never from the command line.

    Answers are cached on disk: rerunning the same command after a crash, Ctrl-C or a budget stop sends no request twice
    and gives the same shards.

    When --max-requests or --max-cost stops the run, nothing final is written to --out and the exit status is 3: rerun
    the same command (again, or with a higher budget) to continue.

    Example: slime-data teach data/sophisticated --out data/sophisticated-rationale --mode rationale --concurrency 16
    --max-cost 20
    """
    from slime_data.cli.ingest import print_summary
    from slime_data.runner import ValidateRecords, apply_steps
    from slime_data.shards import ShardSet, ShardWriter, load_manifest
    from slime_data.steps.teacher import TeacherStep
    from slime_data.teacher.errors import BudgetExhausted

    shard_set = ShardSet(input_dir)
    if out.resolve() == shard_set.root.resolve():
        raise UserError("--out must be a different folder from the input shard set")
    step = TeacherStep(
        mode=mode.value,
        config=config,
        model=model,
        base_url=base_url,
        concurrency=concurrency,
        rpm=rpm,
        tpm=tpm,
        max_requests=max_requests,
        max_cost_usd=max_cost,
        cache=cache,
        questions=questions,
        min_short_side=min_short_side,
        thumbnail_check=thumbnail_check,
        rewrite=rewrite.value,
    )
    _show_teacher_logs()
    settings = step.summary()
    console.print(
        styled(
            (f"teach {mode.value}", "bold"),
            f": {len(shard_set)} rows from {shard_set.root} with {step.config.model} "
            f"at {settings['settings']['base_url']} (cache {settings['settings']['cache']})",
        )
    )
    run_config = {
        "mode": mode.value,
        "params": step.params.model_dump(mode="json", exclude_none=True),
        "teacher": settings["settings"],
    }
    if executor is ExecutorKind.ray:
        return _teach_in_batches(shard_set, step, out, run_config)
    try:
        with (
            progress() as bar,
            ShardWriter(out, command=shlex.join(["slime-data", *sys.argv[1:]]), config=run_config) as writer,
        ):
            task = bar.add_task(f"teach {mode.value}", total=len(shard_set))
            step.on_record_done = lambda: bar.advance(task)
            stream, counts = apply_steps(iter(shard_set), [step, ValidateRecords()])
            writer.add_all(stream)
            writer.step_counts = [count.to_json() for count in counts]
            writer.extra["teacher"] = {
                **step.summary(),
                "input": {"path": str(shard_set.root), "num_rows": len(shard_set)},
            }
    except BudgetExhausted as err:
        console.print(usage_table(step.usage.to_json()))
        console.print(
            styled(
                (f"stopped: {err}.", "yellow"),
                f" Nothing final was written to {out}; the {step.usage.responses} answers "
                f"received are cached in {step.config.resolved_cache()}. Rerun the same command to continue: "
                "cached answers are free.",
            )
        )
        raise typer.Exit(EXIT_BUDGET) from None
    _, manifest = load_manifest(out)
    print_summary(manifest, title=f"teach {mode.value} -> {out}")
    console.print(usage_table(step.usage.to_json()))


def _teach_in_batches(shard_set: ShardSet, step: TeacherStep, out: Path, run_config: dict) -> None:
    """``--executor ray``: batches of rows as Ray tasks sharing one limiter, budget and cache; the same output."""
    from slime_data.cli.ingest import print_summary
    from slime_data.teacher.batches import teach_in_batches
    from slime_data.teacher.errors import BudgetExhausted

    mode = step.params.mode
    try:
        with progress() as bar:
            task = bar.add_task(f"teach {mode} (ray)", total=len(shard_set))
            manifest = teach_in_batches(
                shard_set,
                step,
                out,
                command=shlex.join(["slime-data", *sys.argv[1:]]),
                config=run_config,
                on_rows=lambda rows: bar.advance(task, rows),
            )
    except BudgetExhausted as err:
        console.print(
            styled(
                (f"stopped: {err}.", "yellow"),
                f" Nothing final was written to {out}; finished batches are kept under "
                f"{out / '.work'} and every answer received is cached. Rerun the same command to continue.",
            )
        )
        raise typer.Exit(EXIT_BUDGET) from None
    print_summary(manifest, title=f"teach {mode} -> {out}")
    console.print(usage_table(manifest["teacher"]["usage"]))


def _show_teacher_logs() -> None:
    """Retries and fallbacks are warnings worth seeing; show them above the progress bar."""
    logger = logging.getLogger("slime_data.teacher")
    if not logger.handlers:
        logger.addHandler(RichHandler(console=console, show_path=False, show_time=False))
        logger.setLevel(logging.WARNING)
        logger.propagate = False


def register(app: typer.Typer) -> None:
    app.command("teach")(teach)
