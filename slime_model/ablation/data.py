"""The ablation's data, made with the project's own chain: synth -> ingest -> mix, plus a held-out split.

OUT/data/synth/           `slime-data synth --kinds hatching --seed 0` (pages + caption set)
OUT/data/hatching/        the QA rows as a shard set (synth adapter)
OUT/data/captions/        the caption rows as a shard set (llava_pretrain adapter)
OUT/data/mix/, mix.json   the two-stage mix every arm trains on (pretrain: captions, sft: QA)
OUT/heldout/hatching_heldout/   seed 1, the benchmark `slime-model eval` scores
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from slime_data.ingest import ingest
from slime_data.mix.recipe import MixRecipe
from slime_data.mix.run import run_mix
from slime_data.synth import SynthConfig, generate_synth
from slime_data.synth.layout import INFO_FILE
from slime_model.ablation.config import AblationData

KIND = ("hatching",)
TRAIN_SEED, HELDOUT_SEED = 0, 1
BENCHMARK = "hatching_heldout"
QUESTIONS_PER_PAGE = 3


@dataclass(frozen=True)
class AblationInputs:
    manifest: Path  # the mix manifest every arm trains on
    heldout_root: Path  # holds BENCHMARK/


def prepare_data(spec: AblationData, out: Path, workers: int = 1) -> AblationInputs:
    """Write (or reuse, when complete) the training mix and the held-out split under `out`."""
    data, heldout = out / "data", out / "heldout"
    manifest = data / "mix.json"
    synth = data / "synth"
    if not manifest.is_file():
        generate_synth(
            synth,
            SynthConfig(n=spec.train_images, seed=TRAIN_SEED, kinds=KIND, captions=spec.captions),
            workers=workers,
        )
        for source, shards in (("synth", data / "hatching"), ("llava_pretrain", data / "captions")):
            ingest(source, synth, shards, workers=workers, force=True, command="slime-model ablate")
        recipe = MixRecipe.model_validate(
            {
                "name": "ablation-hatching",
                "max_repeats": 1,
                "stages": [
                    {
                        "name": "pretrain",
                        "weight": spec.captions,
                        "sources": [{"name": "captions", "input": str(data / "captions")}],
                    },
                    {
                        "name": "sft",
                        "weight": spec.train_images * QUESTIONS_PER_PAGE,
                        "sources": [{"name": "hatching", "input": str(data / "hatching")}],
                    },
                ],
            }
        )
        target = spec.captions + spec.train_images * QUESTIONS_PER_PAGE
        run_mix(recipe, target, out=data / "mix", manifest_path=manifest, recipe_dir=data, command="slime-model ablate")
    split = heldout / BENCHMARK
    if not (split / INFO_FILE).is_file():
        generate_synth(split, SynthConfig(n=spec.heldout_images, seed=HELDOUT_SEED, kinds=KIND, captions=0))
    return AblationInputs(manifest=manifest, heldout_root=heldout)
