"""Inputs a recipe makes before the build: the synthetic source and companion shard sets."""

from __future__ import annotations

import json
from pathlib import Path

from slime_data.build.pipeline import BuildContext
from slime_data.ingest import ingest
from slime_data.synth.generate import SynthConfig, generate_synth
from slime_data.synth.layout import GENERATOR_VERSION, INFO_FILE
from slime_data.ui import console


def ensure_synth(out: Path, config: SynthConfig, workers: int) -> bool:
    """Generate the synthetic set unless ``out`` already holds exactly this one; True if generated."""
    info_file = out / INFO_FILE
    if info_file.is_file():
        info = json.loads(info_file.read_text(encoding="utf-8"))
        wanted = {**config.model_dump(mode="json"), "version": GENERATOR_VERSION}  # SynthInfo records each field
        if all(info.get(k) == v for k, v in wanted.items()):
            return False
    generate_synth(out, config, workers=workers)
    return True


def prepare_inputs(ctx: BuildContext) -> None:
    recipe = ctx.recipe
    if recipe.synth is not None:
        spec = recipe.synth
        config = spec.config()
        synth_out = ctx.expand(spec.out)
        if ensure_synth(synth_out, config, ctx.workers):
            images, captions = (
                config.n + sum(config.extra.values()),
                config.captions + sum(config.extra_captions.values()),
            )
            console.print(f"generated the synthetic source in {synth_out} ({images} images, {captions} captions)")
    for companion in recipe.companions:
        companion_out = ctx.expand(companion.out)
        summary = ingest(
            companion.source,
            ctx.expand(companion.root),
            companion_out,
            workers=ctx.workers,
            force=ctx.force,
            command=f"{ctx.command}  # companion {companion.source}",
        )
        console.print(f"companion {companion.source}: {summary.manifest['num_rows']} rows in {companion_out}")
