"""`slime-model plan`: memory, micro-batch and GPU-hours of every stage of a recipe (slime_model.planning)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from slime_data.ui import UserError, console, styled, user_errors


def parse_memory(text: str) -> float:
    """'80GB', '141 GB', '80' -> gigabytes."""
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*(?:GB|G|GiB)?\s*", text, flags=re.IGNORECASE)
    if match is None:
        raise UserError(f"--gpu-memory {text!r}: give gigabytes, e.g. 80GB")
    return float(match.group(1))


@user_errors
def plan(
    recipe: Annotated[Path, typer.Option("--recipe", help="Training recipe (pipelines/train/*.yaml).")],
    gpus: Annotated[int, typer.Option("--gpus", min=1, help="GPUs in the run (all nodes).")] = 8,
    gpu_memory: Annotated[str, typer.Option("--gpu-memory", help="Memory of one GPU.")] = "80GB",
    gpu: Annotated[
        str | None, typer.Option("--gpu", help="GPU kind for peak FLOP/s (pipelines/plan.yaml: A100, H100, H200).")
    ] = None,
    mfu: Annotated[
        float | None, typer.Option("--mfu", min=0.01, max=1.0, help="Model FLOPs utilisation assumed for the hours.")
    ] = None,
) -> None:
    """Size a training recipe on N GPUs: memory per GPU, largest micro-batch and GPU-hours of every stage.

    Per stage: parameters, trainable parameters, memory per GPU under the stage's ZeRO config, activation
    memory per sample, the largest micro-batch that fits, FLOPs per sample and GPU-hours for one epoch.

    Assumptions (samples, tokens and image sizes per mix stage, GPU peaks, default MFU) are in
    pipelines/plan.yaml; the formulas in slime_model/planning.py.

    Example: slime-model plan --recipe pipelines/train/slime-llama3-70b-lora.yaml --gpus 64 --gpu-memory 80GB
    """
    from slime_model.planning import Hardware, anchor_gpu_hours, load_assumptions, plan_recipe
    from slime_model.training.recipe import load_recipe

    if not recipe.is_file():
        raise UserError(f"--recipe {recipe}: no such file")
    assumptions = load_assumptions()
    gpu = gpu or assumptions["default_gpu"]
    if gpu not in assumptions["gpus"]:
        raise UserError(f"--gpu {gpu!r} is not one of {', '.join(assumptions['gpus'])} (pipelines/plan.yaml)")
    mfu = mfu or assumptions["default_mfu"]
    hardware = Hardware(
        gpus=gpus,
        memory_gb=parse_memory(gpu_memory),
        peak_flops=float(assumptions["gpus"][gpu]),
        mfu=mfu,
        reserve=float(assumptions["memory_reserve"]),
    )
    loaded = load_recipe(recipe)
    stages = plan_recipe(loaded, hardware, assumptions)

    table = Table(title=f"slime-model plan: {loaded.name} on {gpus} x {gpu} {hardware.memory_gb:g} GB, MFU {mfu:.0%}")
    for column in (
        "stage",
        "ZeRO",
        "params",
        "trainable",
        "GPU GB (w/g/opt)",
        "CPU GB",
        "act GB/sample",
        "micro-batch (recipe / fits)",
        "tokens/sample",
        "TFLOP/sample",
        "samples",
        "GPU-hours",
    ):
        table.add_column(column, justify="left" if column == "stage" else "right")
    for s in stages:
        zero = f"{s.zero}" + (f" +offload {'/'.join(s.offload)}" if s.offload else "")
        fits = str(s.max_micro_batch) + ("" if s.max_micro_batch >= s.recipe_micro_batch else " (recipe's too big)")
        table.add_row(
            s.name,
            zero,
            f"{sum(s.params.values()) / 1e9:.2f}B",
            f"{s.trainable / 1e6:.1f}M",
            "/".join(f"{v:.1f}" for v in s.per_gpu_gb.values()),
            f"{s.cpu_gb:.1f}",
            f"{s.activation_gb_per_sample:.2f}",
            f"{s.recipe_micro_batch} / {fits}",
            str(s.tokens_per_sample),
            f"{s.flops_per_sample / 1e12:.1f}",
            f"{s.samples:,}",
            f"{s.gpu_hours:,.0f}",
        )
    console.print(table)
    for s in stages:
        for note in s.notes:
            console.print(styled(("note:", "yellow"), f" stage {s.name}: {note}"))
    hours, reported = anchor_gpu_hours(assumptions, mfu)
    console.print(
        f"total {sum(s.gpu_hours for s in stages):,.0f} {gpu}-hours "
        f"({sum(s.gpu_hours for s in stages) / gpus:,.1f} h wall on {gpus} GPUs); "
        f"anchor: {assumptions['anchor']['name']} by the same formulas {hours:,.0f} vs reported ~{reported:,.0f} "
        f"{assumptions['anchor']['gpu']}-hours"
    )


def register(app: typer.Typer) -> None:
    app.command("plan")(plan)
