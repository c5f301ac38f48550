"""Inputs a recipe makes before the build: the synthetic source and companion shard sets."""

from __future__ import annotations

import json
from pathlib import Path

from slime_data.build.pipeline import BuildContext
from slime_data.paths import expand_path
from slime_data.ui import console
from slime_data.ingest import ingest
from slime_data.synth.generate import SynthConfig, generate_synth
from slime_data.synth.layout import GENERATOR_VERSION, INFO_FILE


def ensure_synth(out: Path, config: SynthConfig, workers: int) -> bool:
    """Generate the synthetic set unless ``out`` already holds exactly this one; True if generated."""
    info_file = out / INFO_FILE
    if info_file.is_file():
        info = json.loads(info_file.read_text(encoding="utf-8"))
        wanted = {"seed": config.seed, "n": config.n, "captions": config.captions, "kinds": list(config.kinds), "version": GENERATOR_VERSION}
        if all(info.get(k) == v for k, v in wanted.items()):
            return False
    generate_synth(out, config, workers=workers)
    return True


def prepare_inputs(ctx: BuildContext) -> None:
    recipe = ctx.recipe
    if recipe.synth is not None:
        spec = recipe.synth
        config = SynthConfig(n=spec.n, seed=spec.seed, captions=spec.captions)
        if ensure_synth(expand_path(spec.out), config, ctx.workers):
            console.print(f"generated the synthetic source in {spec.out} ({spec.n} images, {spec.captions} captions)")
    for companion in recipe.companions:
        summary = ingest(
            companion.source, expand_path(companion.root), companion.out, workers=ctx.workers, force=ctx.force,
            command=f"{ctx.command}  # companion {companion.source}",
        )
        console.print(f"companion {companion.source}: {summary.manifest['num_rows']} rows in {companion.out}")
