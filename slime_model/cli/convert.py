"""`slime-model convert`: a released SliME checkpoint -> this package's Hugging Face format."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from slime_data.ui import UserError, console, progress, user_errors
from slime_model.templates import CHAT_TEMPLATE_NAMES

DTYPES = ("bfloat16", "float16", "float32")


@user_errors
def convert(
    from_official: Annotated[
        Path,
        typer.Option("--from-official", help="Released SliME checkpoint folder (config.json, weights, tokenizer)."),
    ],
    out: Annotated[
        Path, typer.Option("--out", help="Output folder: safetensors shards, config.json, processor and tokenizer.")
    ],
    vision_tower: Annotated[
        Path | None,
        typer.Option(
            "--vision-tower", help="CLIP checkpoint folder, for checkpoints saved without vision-tower weights."
        ),
    ] = None,
    tokenizer: Annotated[
        Path | None, typer.Option("--tokenizer", help="Tokenizer folder when --from-official has none.")
    ] = None,
    chat_template: Annotated[
        str | None,
        typer.Option(
            "--chat-template", help=f"One of {', '.join(CHAT_TEMPLATE_NAMES)}; default from the LLM vocabulary."
        ),
    ] = None,
    dtype: Annotated[str, typer.Option("--dtype", help=f"Weight dtype: {', '.join(DTYPES)}.")] = "bfloat16",
    max_shard_gb: Annotated[
        float, typer.Option("--max-shard-gb", min=0.001, help="Largest output shard in GiB.")
    ] = 5.0,
) -> None:
    """Map a released SliME checkpoint's weights to SliMEForConditionalGeneration and save them as safetensors.

    Unknown, missing or mis-shaped keys are listed and stop the conversion (exit code 2).

    Example: slime-model convert --from-official ~/ckpt/SliME-Llama3-8B --out models/slime-llama3-8b
    """
    import torch

    from slime_model.conversion import ConversionError, convert_official

    if chat_template is not None and chat_template not in CHAT_TEMPLATE_NAMES:
        raise UserError(f"--chat-template {chat_template!r} is not one of {', '.join(CHAT_TEMPLATE_NAMES)}")
    if dtype not in DTYPES:
        raise UserError(f"--dtype {dtype!r} is not one of {', '.join(DTYPES)}")
    if not from_official.is_dir():
        raise UserError(f"--from-official {from_official} is not a folder")
    with progress() as bar:
        task = bar.add_task("convert", total=None)
        try:
            report = convert_official(
                from_official,
                out,
                vision_dir=vision_tower,
                tokenizer_dir=tokenizer,
                chat_template=chat_template,
                dtype=getattr(torch, dtype),
                max_shard_bytes=int(max_shard_gb * 1024**3),
                on_tensor=lambda done, total: bar.update(task, completed=done, total=total),
            )
        except ConversionError as error:
            bar.stop()
            table = Table(title=f"{len(error.problems)} key problem(s) in {from_official}")
            table.add_column("problem")
            for problem in error.problems:
                table.add_row(problem)
            console.print(table)
            raise UserError(
                f"conversion stopped: {len(error.problems)} unknown, missing or mis-shaped key(s)"
            ) from None

    table = Table(title=f"convert {from_official} -> {out}")
    table.add_column("item", style="bold")
    table.add_column("value")
    table.add_row("tensors", f"{report.tensors:,}")
    table.add_row("parameters", f"{report.parameters:,}")
    table.add_row("bytes", f"{report.bytes_written:,} ({dtype})")
    table.add_row("shards", ", ".join(report.shards))
    table.add_row("ignored keys", ", ".join(report.ignored) or "none")
    for name, value in report.config.items():
        table.add_row(name, str(value))
    console.print(table)


def register(app: typer.Typer) -> None:
    app.command("convert")(convert)
