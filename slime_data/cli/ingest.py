"""`slime-data sources` and `slime-data ingest`."""

from __future__ import annotations

import difflib
import shlex
import sys
import textwrap
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from slime_data.cli.executor_options import ExecutorKind, ExecutorOption, RayAddressOption, runs_on_executor
from slime_data.reject_ratio import DEFAULT_MAX_REJECT_RATIO
from slime_data.runner import UnitResult
from slime_data.ui import DEFAULT_WORKERS, UserError, console, progress, styled, user_errors

MAX_REJECT_RATIO_HELP = (
    "Fail when more than this share of the rows read could not be read (bad annotations, missing or broken "
    "images), or when no row is kept; filters, dedup and caps never count. 1 accepts anything."
)
MaxRejectRatio = Annotated[float, typer.Option("--max-reject-ratio", min=0, max=1, help=MAX_REJECT_RATIO_HELP)]


@user_errors
def sources(
    name: Annotated[str | None, typer.Argument(help="One source to show (default: all of them).")] = None,
) -> None:
    """List the source adapters, the splits SliME trained on, the licence and the native layout each expects.

    Printed to stdout, layouts as written (pipe it to a pager or grep).

    Examples:
      slime-data sources
      slime-data sources ai2d
    """
    from slime_data.sources import REGISTRY

    if name is not None and name not in REGISTRY:
        close = difflib.get_close_matches(name, list(REGISTRY), n=1)
        hint = f"did you mean {close[0]}? " if close else ""
        raise UserError(f"no source {name!r}; {hint}known sources: {', '.join(sorted(REGISTRY))}")
    for shown in [name] if name else sorted(REGISTRY):
        adapter = REGISTRY[shown]
        typer.echo(f"{shown}  (default splits: {', '.join(adapter.default_splits)}; licence: {adapter.license})")
        typer.echo(textwrap.indent(textwrap.dedent(adapter.layout).strip("\n"), "    "))
        typer.echo("")


@user_errors
@runs_on_executor
def ingest(
    source: Annotated[str, typer.Argument(help="Source adapter name (see `slime-data sources`).")],
    root: Annotated[Path, typer.Option("--root", help="The dataset's release root, or its inner folder.")],
    out: Annotated[Path, typer.Option("--out", help="Output shard-set folder.")],
    split: Annotated[
        list[str] | None,
        typer.Option(
            "--split",
            help="Split to read (repeatable); 'all' = every split present. Default: the split SliME trained on.",
        ),
    ] = None,
    limit: Annotated[
        int | None, typer.Option("--limit", min=1, help="Read at most N native items (for trials).")
    ] = None,
    workers: Annotated[
        int,
        typer.Option(
            "--workers", min=1, help="Processes for decoding and hashing images. The output is the same for any number."
        ),
    ] = DEFAULT_WORKERS,
    force: Annotated[bool, typer.Option("--force", help="Discard unfinished work in --out and start over.")] = False,
    chunk_size: Annotated[
        int, typer.Option("--chunk-size", min=1, help="Native items per unit of work (the resume granularity).")
    ] = 512,
    executor: ExecutorOption = ExecutorKind.local,
    ray_address: RayAddressOption = None,
    max_reject_ratio: MaxRejectRatio = DEFAULT_MAX_REJECT_RATIO,
) -> None:
    """Read one source in its native layout and write it as an Arrow shard set.

    Killed mid-way, a rerun of the same command resumes and gives byte-identical shards.

    Example: slime-data ingest scienceqa --root ~/datasets/ScienceQA --out data/scienceqa --workers 2
    """
    from slime_data.ingest import ingest as run_ingest
    from slime_data.ingest import plan_ingest

    plan = plan_ingest(source, root, split)
    console.print(styled((plan.adapter.name, "bold"), f": {plan.root} (splits: {', '.join(plan.splits)})"))
    with progress() as bar:
        task = bar.add_task(f"ingest {plan.adapter.name}", total=None)

        def advance(result: UnitResult) -> None:
            bar.advance(task, result.rows + result.rejects)

        summary = run_ingest(
            source,
            root,
            out,
            splits=split,
            limit=limit,
            workers=workers,
            force=force,
            chunk_size=chunk_size,
            command=shlex.join(["slime-data", *sys.argv[1:]]),
            on_unit_done=advance,
        )
    print_summary(summary.manifest, title=f"ingest {plan.adapter.name} -> {out}")
    if summary.units_skipped:
        console.print(f"resumed: {summary.units_skipped} of {summary.units_total} units were already done")
    check_rejects(summary.manifest, max_reject_ratio, out)


def check_rejects(manifest: dict, max_reject_ratio: float, out: Path) -> None:
    """Fail (one line, exit 2) above --max-reject-ratio; warn when an accepted run kept nothing."""
    from slime_data.reject_ratio import check_reject_ratio

    numbers = check_reject_ratio(manifest, max_reject_ratio, str(out))
    if numbers.read and not numbers.kept:
        console.print(styled((f"warning: every one of the {numbers.read} rows read was rejected", "bold red")))


def print_summary(manifest: dict, title: str) -> None:
    """The end-of-run table: per-step in/out/rejected, then rejects by reason."""
    table = Table(title=title)
    for column in ("step", "in", "out", "rejected"):
        table.add_column(column, justify="left" if column == "step" else "right")
    for count in manifest.get("steps", []):
        table.add_row(count["step"], str(count["in"]), str(count["out"]), str(count["rejected"]))
    console.print(table)
    by_step = manifest["rejects"]["by_step"]
    if by_step:
        reasons = Table(title="rejects by reason")
        for column in ("step", "reason", "rows"):
            reasons.add_column(column, justify="right" if column == "rows" else "left")
        for step, counts in by_step.items():
            for reason, n in counts.items():
                reasons.add_row(step, reason, str(n))
        console.print(reasons)
    console.print(
        styled(
            (
                f"wrote {manifest['num_rows']} rows in {len(manifest['shards'])} shard(s); "
                f"{manifest['rejects']['total']} rejected",
                "green",
            )
        )
    )


def register(app: typer.Typer) -> None:
    app.command("sources")(sources)
    app.command("ingest")(ingest)
