"""`slime-data build`, `slime-data merge` and `slime-data report`."""

from __future__ import annotations

import difflib
import re
import shlex
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from slime_data.cli.executor_options import ExecutorKind, ExecutorOption, RayAddressOption, runs_on_executor
from slime_data.cli.ingest import MaxRejectRatio, check_rejects, print_summary
from slime_data.paths import PIPELINES_DIR
from slime_data.reject_ratio import DEFAULT_MAX_REJECT_RATIO
from slime_data.ui import DEFAULT_WORKERS, UserError, console, progress, styled, user_errors


def parse_shard(value: str | None) -> tuple[int, int] | None:
    if value is None:
        return None
    match = re.fullmatch(r"(\d+)/(\d+)", value)
    if not match or not 0 <= int(match[1]) < int(match[2]):
        raise UserError(f"--shard must be I/N with 0 <= I < N, got {value!r}")
    return int(match[1]), int(match[2])


def default_recipe(name: str, root: Path | None) -> Path:
    """``pipelines/NAME.yaml``; with no --root, the embedded demo ``pipelines/NAME-demo.yaml``."""
    demo = PIPELINES_DIR / f"{name}-demo.yaml"
    path = demo if root is None and demo.is_file() else PIPELINES_DIR / f"{name}.yaml"
    if not path.is_file():
        known = build_recipe_names()
        close = difflib.get_close_matches(name, known, n=1)
        hint = f"did you mean {close[0]}? " if close else ""
        demo = " (its bundled demo without --root)"
        listed = [f"{n}{demo}" if (PIPELINES_DIR / f"{n}-demo.yaml").is_file() else n for n in known]
        raise UserError(f"no build recipe {path}; {hint}give --config FILE or one of: {', '.join(listed)}")
    return path


def build_recipe_names() -> list[str]:
    """The shipped build recipes (``pipelines/NAME.yaml`` with sources and steps; demos are implied by their NAME)."""
    from slime_data.recipes import load_yaml

    names = []
    for path in sorted(PIPELINES_DIR.glob("*.yaml")):
        recipe = load_yaml(path)
        if isinstance(recipe, dict) and {"sources", "steps"} <= recipe.keys() and not path.stem.endswith("-demo"):
            names.append(path.stem)
    return names


@user_errors
@runs_on_executor
def build(
    name: Annotated[str, typer.Argument(help="What to build: the recipe pipelines/NAME.yaml (e.g. sophisticated).")],
    config: Annotated[
        Path | None,
        typer.Option(
            "--config", help="Recipe YAML (default: pipelines/NAME.yaml; with no --root either, the bundled demo)."
        ),
    ] = None,
    root: Annotated[
        Path | None, typer.Option("--root", help="Folder holding every source's release under its own name.")
    ] = None,
    out: Annotated[
        Path | None,
        typer.Option(
            "--out",
            help="Output shard set (default data/NAME). Inputs the recipe generates ({data}/... in it: "
            "the demo's synthetic source and caption set) go beside it; nothing else is written.",
        ),
    ] = None,
    workers: Annotated[
        int,
        typer.Option(
            "--workers",
            min=1,
            help="Processes for the per-record steps and the global ones (dedup, "
            "decontamination). The output is the same for any number.",
        ),
    ] = DEFAULT_WORKERS,
    force: Annotated[bool, typer.Option("--force", help="Rebuild from scratch, ignoring finished units.")] = False,
    shard: Annotated[
        str | None,
        typer.Option("--shard", help="Run slice I of N (0-based), e.g. 3/16; join with `slime-data merge`."),
    ] = None,
    executor: ExecutorOption = ExecutorKind.local,
    ray_address: RayAddressOption = None,
    max_reject_ratio: MaxRejectRatio = DEFAULT_MAX_REJECT_RATIO,
) -> None:
    """Build a dataset from a recipe: sources -> per-record steps -> dedup/decontamination/caps -> shards + report.

    With no --config and no --root it builds the bundled demo (real-format samples + synthetic images)
    in well under a minute. Killed mid-way, rerunning the same command redoes only unfinished units.

    Examples:
      slime-data build sophisticated
      slime-data build sophisticated --root ~/datasets --workers 8
      slime-data build sophisticated --root /shared/datasets --out /shared/data/sophisticated --executor ray
      slime-data build sophisticated --root ~/datasets --shard 3/16 --out slices/3   # then: slime-data merge slices/*
      --out data/sophisticated
    """
    from slime_data.build.pipeline import STAGE1, BuildContext, finish, resolve_sources, run_phase1
    from slime_data.build.prepare import prepare_inputs
    from slime_data.build.recipe import load_recipe

    recipe_path = config or default_recipe(name, root)
    recipe, raw = load_recipe(recipe_path)
    slice_ = parse_shard(shard)
    out = out or Path("data") / name
    command = shlex.join(["slime-data", *sys.argv[1:]])
    ctx = BuildContext(recipe, raw, root, out, workers, force, command)
    console.print(styled((f"build {name}", "bold"), f" from {recipe_path} -> {out}"))
    prepare_inputs(ctx)
    sources = resolve_sources(ctx)  # every missing source named before any work starts
    with progress() as bar:
        task = bar.add_task("per-record steps", total=None)
        target = out if slice_ else out / STAGE1
        advance = lambda r: bar.advance(task, r.rows + r.rejects)  # noqa: E731
        stage1 = run_phase1(ctx, target, slice_, on_unit_done=advance, sources=sources)
    for warning in ctx.warnings:
        console.print(styled(("warning:", "yellow"), f" {warning}"))
    if slice_:
        print_summary(stage1, title=f"slice {slice_[0]}/{slice_[1]} -> {out}")
        check_rejects(stage1, max_reject_ratio, out)
        console.print(f"join the slices with: slime-data merge <slice dirs> --out data/{name}")
        return
    console.print("global steps: planning and filtering…")
    manifest = finish(recipe, raw, out / STAGE1, out, command, workers)
    print_summary(manifest, title=f"build {name} -> {out}")
    print_presentation(manifest)
    console.print(f"report: {out / 'report.html'}")
    check_rejects(manifest, max_reject_ratio, out)


@user_errors
def merge(
    slices: Annotated[list[Path], typer.Argument(help="Slice folders made with `build --shard I/N`.")],
    out: Annotated[Path, typer.Option("--out", help="Output shard set.")],
    workers: Annotated[
        int,
        typer.Option(
            "--workers",
            min=1,
            help="Processes for the global steps (dedup, decontamination). The output is the same for any number.",
        ),
    ] = DEFAULT_WORKERS,
) -> None:
    """Join the slices of a sharded build and run its global steps (dedup across slices, decontamination, caps).

    Example: slime-data merge slices/0 slices/1 slices/2 --out data/sophisticated
    """
    from slime_data.build.pipeline import STAGE1, finish, join_slices
    from slime_data.build.recipe import BuildRecipe
    from slime_data.shards import load_manifest

    command = shlex.join(["slime-data", *sys.argv[1:]])
    with progress() as bar:
        bar.add_task(f"joining {len(slices)} slices", total=None)
        stage1 = join_slices(slices, out / STAGE1, command)
    raw = load_manifest(slices[0])[1]["config"]["recipe"]
    manifest = finish(BuildRecipe(**raw), raw, out / STAGE1, out, command, workers)
    print_summary(manifest, title=f"merge {len(slices)} slices ({stage1['num_rows']} rows) -> {out}")
    print_presentation(manifest)


def print_presentation(manifest: dict) -> None:
    """Rows per source and presentation template, when the build ran the ``present`` step."""
    stats = manifest.get("global_steps", {}).get("present")
    if not stats:
        return
    table = Table(title="assistant turns by template (present)")
    for column in ("source", "template", "row", "rows"):
        table.add_column(column, justify="right" if column == "rows" else "left")
    for row in stats["rows"]:
        table.add_row(row["source"], row["template"], row["row"], str(row["rows"]))
    console.print(table)


@user_errors
def report(path: Annotated[Path, typer.Argument(help="A built shard set.")]) -> None:
    """Regenerate report.html (one self-contained page: tables, figures, sample rows) for a shard set.

    Example: slime-data report data/sophisticated
    """
    from slime_data.build.report import write_report

    target = write_report(path)
    console.print(styled((f"wrote {target}", "green")))


def register(app: typer.Typer) -> None:
    app.command("build")(build)
    app.command("merge")(merge)
    app.command("report")(report)
