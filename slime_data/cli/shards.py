"""`slime-data inspect`, `slime-data validate` and `slime-data export llava`: commands over shard sets."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from slime_data.ui import UserError, console, progress, styled, user_errors


@user_errors
def inspect(
    path: Annotated[Path, typer.Argument(help="A shard-set folder (or its manifest.json), or a mix manifest.")],
    rows: Annotated[int, typer.Option("--rows", min=0, help="How many rows to show.")] = 3,
) -> None:
    """Show a shard set: counts by source/task/split, the schema, a few rows, rejects by reason.

    Example: slime-data inspect data/scienceqa --rows 5
    (Given a mix manifest, e.g. manifests/mix.json: its composition table, and a PNG plot beside it.)
    """
    from slime_data.mix.manifest import is_mix_manifest
    from slime_data.shards import ShardSet

    if is_mix_manifest(path):
        from slime_data.cli.mix import inspect_mix

        return inspect_mix(path)

    shard_set = ShardSet(path)
    manifest = shard_set.manifest
    console.print(
        styled(
            (str(shard_set.root), "bold"),
            f": {len(shard_set)} rows in {len(shard_set.shard_paths)} shard(s), schema {manifest['schema_version']}",
        )
    )
    console.print(f"made by: {manifest['command']}")
    for key, counts in manifest["counts"].items():
        table = Table(title=f"rows by {key}")
        table.add_column(key)
        table.add_column("rows", justify="right")
        for name, n in counts.items():
            table.add_row(name, str(n))
        console.print(table)
    schema = Table(title="schema")
    schema.add_column("column")
    schema.add_column("type")
    for field in shard_set.table(0).schema:
        schema.add_row(field.name, str(field.type))
    console.print(schema)
    for i in range(min(rows, len(shard_set))):
        record = shard_set[i]
        image = f"{record.width}x{record.height} {len(record.image.bytes or b'')} bytes" if record.image else "none"
        console.print(
            styled((f"#{i} {record.id}", "bold"), f" task={record.task} image={image} answer={record.answer!r}")
        )
        for turn in record.conversations[:4]:
            console.print(f"  {turn['from']}: {turn['value'][:200]!r}")
    if manifest["rejects"]["by_step"]:
        table = Table(title=f"rejects ({manifest['rejects']['total']})")
        for column in ("step", "reason", "rows"):
            table.add_column(column)
        for step, reasons in manifest["rejects"]["by_step"].items():
            for reason, n in reasons.items():
                table.add_row(step, reason, str(n))
        console.print(table)


@user_errors
def validate(
    path: Annotated[Path, typer.Argument(help="A shard-set folder (or its manifest.json), or a mix manifest.")],
) -> None:
    """Check a shard set: schema, row counts and every shard's sha256. Exit 0 only if all check out.

    Example: slime-data validate data/scienceqa
    (Given a mix manifest, e.g. manifests/mix.json: schema, shard files, counts and sha256 of the mix.)
    """
    from slime_data.mix.manifest import is_mix_manifest
    from slime_data.shards import validate_shard_set

    if is_mix_manifest(path):
        from slime_data.cli.mix import validate_mix_cli

        return validate_mix_cli(path)

    problems = validate_shard_set(path)
    for problem in problems:
        console.print(styled(("✗", "red"), f" {problem}"))
    if problems:
        raise typer.Exit(1)
    console.print(styled(("✓", "green"), f" {path}: schema, row counts and sha256 check out"))


export_app = typer.Typer(help="Export a shard set to other trainers' formats.", no_args_is_help=True)


@export_app.command("llava")
@user_errors
def export_llava(
    path: Annotated[Path, typer.Argument(help="A shard-set folder.")],
    out: Annotated[Path, typer.Option("--out", help="The LLaVA JSON file to write.")],
    image_dir: Annotated[Path, typer.Option("--image-dir", help="Folder the image files are written to.")],
) -> None:
    """Write LLaVA-format JSON (id, image, conversations) plus image files, for the original LLaVA/SliME trainers.

    Example: slime-data export llava data/scienceqa --out scienceqa_llava.json --image-dir images/
    """
    from slime_data.export import export_llava as run_export
    from slime_data.shards import ShardSet

    shard_set = ShardSet(path)
    if out.suffix != ".json":
        raise UserError(f"--out must be a .json file, got {out}")
    with progress() as bar:
        task = bar.add_task("export llava", total=len(shard_set))
        n_rows, n_images = run_export(shard_set, out, image_dir, on_row=lambda: bar.advance(task))
    console.print(styled((f"wrote {n_rows} conversations to {out} and {n_images} images under {image_dir}", "green")))


def register(app: typer.Typer) -> None:
    app.command("inspect")(inspect)
    app.command("validate")(validate)
    app.add_typer(export_app, name="export")
