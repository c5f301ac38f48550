"""`slime-data mix`, and what `inspect` / `validate` do when given a mix manifest."""

from __future__ import annotations

import shlex
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from slime_data.cli.executor_options import ExecutorKind, ExecutorOption, RayAddressOption, runs_on_executor
from slime_data.paths import PIPELINES_DIR
from slime_data.ui import DEFAULT_WORKERS, console, progress, styled, user_errors

DEFAULT_RECIPE = PIPELINES_DIR / "mix-2m.yaml"


@user_errors
@runs_on_executor
def mix(
    target: Annotated[
        str, typer.Option("--target", help="Rows in the whole mix, all stages together: 2M, 1.5M, 500k, 2000000.")
    ],
    config: Annotated[Path, typer.Option("--config", help="Mix recipe (YAML).")] = DEFAULT_RECIPE,
    out: Annotated[Path, typer.Option("--out", help="Output folder: one shard set per stage.")] = Path("data/mix"),
    manifest: Annotated[Path, typer.Option("--manifest", help="The mix manifest to write.")] = Path(
        "manifests/mix.json"
    ),
    seed: Annotated[int | None, typer.Option("--seed", help="Overrides the recipe's seed.")] = None,
    workers: Annotated[
        int,
        typer.Option(
            "--workers",
            min=1,
            help="Processes for hygiene (dedup signatures, decontamination) and "
            "for writing output shards. The output is the same for any number.",
        ),
    ] = DEFAULT_WORKERS,
    by_reference: Annotated[
        bool,
        typer.Option(
            "--by-reference",
            help="Store no image bytes: each row points at its image in the input shard "
            "(the recipe's `images: reference`); the inputs must stay where they are.",
        ),
    ] = False,
    executor: ExecutorOption = ExecutorKind.local,
    ray_address: RayAddressOption = None,
) -> None:
    """Build the training mixture: allocate the target over stages and sources, dedup and decontaminate across all
    inputs, shuffle each stage, and write Arrow shard sets plus manifests/mix.json.

    Killed mid-way, rerunning the same command writes only the missing shards; the same inputs and seed always give
    byte-identical shards.

    Examples:
      slime-data mix --target 2M --workers 8
      slime-data mix --config pipelines/mix-demo.yaml --target 2k
      slime-data mix --target 2M --by-reference     # writes text and pointers only; images stay in the inputs
    """
    from slime_data.mix.recipe import load_mix_recipe, parse_target
    from slime_data.mix.run import run_mix

    rows = parse_target(target)
    recipe = load_mix_recipe(config)
    if seed is not None:
        recipe = recipe.model_copy(update={"seed": seed})
    if by_reference:
        recipe = recipe.model_copy(update={"images": "reference"})
    console.print(styled((f"mix {recipe.name}", "bold"), f": {rows:,} rows, seed {recipe.seed}, recipe {config}"))
    with progress(transient=True) as bar:
        planning = bar.add_task("dedup, decontaminate, plan", total=None)
        writing = None

        def on_plan(plan, rows_left: int) -> None:
            nonlocal writing
            bar.update(planning, total=1, completed=1)
            writing = bar.add_task("write shards", total=rows_left)

        result = run_mix(
            recipe,
            rows,
            out=out,
            manifest_path=manifest,
            workers=workers,
            recipe_dir=config.parent,
            command=shlex.join(["slime-data", *sys.argv[1:]]),
            on_plan=on_plan,
            on_rows=lambda n: bar.advance(writing, n),
        )
    from slime_data.mix.manifest import load_mix_manifest

    print_composition(load_mix_manifest(result.manifest_path))
    if result.plan_reused:
        console.print(
            f"resumed: reused the saved plan; {result.shards_resumed} "
            f"of {result.shards_total} shards were already written"
        )
    timings = ", ".join(f"{phase} {seconds:.1f}s" for phase, seconds in result.timings.items())
    console.print(styled((f"wrote {rows:,} rows under {out} and {result.manifest_path}", "green"), f" ({timings})"))


def print_composition(manifest) -> None:
    from slime_data.mix.report import composition

    table = Table(title=f"mix {manifest.data['recipe']['name']}: {manifest.data['target']:,} rows")
    for column in ("stage", "source", "rule", "in", "dropped", "available", "out", "repeats", "% stage", "% mix"):
        table.add_column(column, justify="left" if column in ("stage", "source", "rule") else "right")
    for row in composition(manifest):
        table.add_row(
            row.stage,
            row.source,
            row.rule,
            f"{row.rows_in:,}",
            f"{row.dropped:,}",
            f"{row.available:,}",
            f"{row.rows_out:,}",
            f"x{row.repeats:.2f}",
            f"{100 * row.share_of_stage:.1f}",
            f"{100 * row.share_of_mix:.1f}",
        )
    console.print(table)
    by_step = manifest.data["hygiene"]["by_step"]
    if by_step:
        hygiene = Table(title=f"hygiene across all inputs ({manifest.data['hygiene']['dropped']:,} rows dropped)")
        for column in ("step", "reason", "rows"):
            hygiene.add_column(column)
        for step, reasons in by_step.items():
            for reason, n in reasons.items():
                hygiene.add_row(step, reason, f"{n:,}")
        console.print(hygiene)


def inspect_mix(path: Path, plot: Path | None = None) -> None:
    """`slime-data inspect manifests/mix.json`: the composition table, per-stage shards, and a PNG plot."""
    from slime_data.mix.manifest import load_mix_manifest
    from slime_data.mix.report import plot_composition

    manifest = load_mix_manifest(path)
    console.print(
        styled(
            (str(path), "bold"),
            f": {manifest.data['target']:,} rows, seed {manifest.data['seed']}, made by: {manifest.data['command']}",
        )
    )
    print_composition(manifest)
    stages = Table(title="stages")
    for column in ("stage", "rows", "shards", "bytes", "folder"):
        stages.add_column(column)
    for name, info in manifest.data["stages"].items():
        stages.add_row(
            name,
            f"{info['rows']:,}",
            str(len(info["shards"])),
            f"{sum(s['bytes'] for s in info['shards']):,}",
            info["path"],
        )
    console.print(stages)
    written = plot_composition(manifest, plot or path.with_suffix(".png"))
    console.print(f"composition plot: {written}")


def validate_mix_cli(path: Path) -> None:
    """`slime-data validate manifests/mix.json`: schema, shard files, counts and checksums."""
    from slime_data.mix.manifest import input_drift, load_mix_manifest, validate_mix

    problems = validate_mix(path)
    for problem in problems:
        console.print(styled(("✗", "red"), f" {problem}"))
    if problems:
        raise typer.Exit(1)
    for note in input_drift(load_mix_manifest(path)):
        console.print(styled(("note:", "yellow"), f" {note}"))
    console.print(styled(("✓", "green"), f" {path}: schema, shard files, row counts and sha256 check out"))


def register(app: typer.Typer) -> None:
    app.command("mix")(mix)
