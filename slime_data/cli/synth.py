"""`slime-data synth`: generate the synthetic detail-heavy source and its caption set."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from slime_data.ui import UserError, console, progress, styled, user_errors


def parse_kinds(text: str) -> tuple[str, ...]:
    """``"chart,table"`` -> ``("chart", "table")``; UserError naming an unknown kind."""
    from slime_data.synth import KINDS

    kinds = tuple(k.strip() for k in text.split(",") if k.strip())
    unknown = [k for k in kinds if k not in KINDS]
    if unknown or not kinds:
        raise UserError(f"unknown kind {', '.join(unknown) or repr(text)}; choose from {', '.join(KINDS)}")
    if len(set(kinds)) != len(kinds):
        raise UserError(f"--kinds lists a kind twice: {text}")
    return kinds


@user_errors
def synth(
    out: Annotated[Path, typer.Option("--out", help="Output folder (replaced if it holds an earlier synth output).")],
    n: Annotated[
        int, typer.Option("--n", min=0, help="Number of QA images, shared round-robin among the kinds.")
    ] = 200,
    seed: Annotated[int, typer.Option("--seed", help="Seed: the same seed gives byte-identical files.")] = 0,
    kinds: Annotated[
        str, typer.Option("--kinds", help="Comma-separated kinds: chart, table, document, geometry.")
    ] = "chart,table,document,geometry",
    captions: Annotated[
        int, typer.Option("--captions", min=0, help="Images in the LLaVA-558K-format caption set.")
    ] = 64,
    workers: Annotated[
        int, typer.Option("--workers", min=1, help="Processes rendering images (output does not depend on it).")
    ] = min(4, os.cpu_count() or 1),
) -> None:
    """Generate high-resolution charts, tables, document pages and geometry sheets with exact questions, answers and
    step-by-step rationales, plus a small caption set.

    Writes DIR/synth.jsonl (one question per line), DIR/figures.jsonl (the data behind each image),
    DIR/images/<kind>/*.png and DIR/LLaVA-Pretrain/ (a caption set in the LLaVA-558K release layout). Read them with
    `slime-data ingest synth --root DIR` and `slime-data ingest llava_pretrain --root DIR`.

    Example: slime-data synth --out data/raw/synth --n 200 --seed 0 --workers 2
    """
    from slime_data.synth import SynthConfig, generate_synth

    config = SynthConfig(n=n, seed=seed, kinds=parse_kinds(kinds), captions=captions)
    with progress() as bar:
        task = bar.add_task("synth", total=n + captions)
        summary = generate_synth(out, config, workers=workers, on_job_done=lambda: bar.advance(task))

    info = summary.info
    table = Table(title=f"slime-data synth -> {out}")
    for column in ("kind", "images", "questions", "multiple choice", "long side (px)"):
        table.add_column(column, justify="left" if column == "kind" else "right")
    for kind in config.kinds:
        low, high = summary.sizes.get(kind, (0, 0))
        table.add_row(
            kind,
            str(info.images.get(kind, 0)),
            str(info.questions.get(kind, 0)),
            str(info.multiple_choice.get(kind, 0)),
            f"{low}-{high}" if high else "-",
        )
    table.add_row("captions", str(info.captions), "-", "-", "-")
    console.print(table)
    total = sum(info.questions.values())
    console.print(
        styled(
            (
                f"wrote {sum(info.images.values())} images, {total} questions "
                f"and {info.captions} captions in {summary.seconds:.1f}s",
                "green",
            )
        )
    )


def register(app: typer.Typer) -> None:
    app.command("synth")(synth)
