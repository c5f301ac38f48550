"""Builders for the trainer tests (a unique module name: tests run in pytest's prepend mode).

The data is a learnable synthetic task: each image is one flat colour with a darker square, its
caption names the colour, and the SFT question asks for it. A tiny mix of it is made with the real
data pipeline (`ShardWriter` input sets -> `run_mix` -> manifests/mix.json).
"""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
from PIL import Image

from slime_data.images import content_hash
from slime_data.mix.recipe import MixRecipe, MixSource, MixStage
from slime_data.mix.run import run_mix
from slime_data.record import ImageRef, Record
from slime_data.shards import write_shard_set
from slime_model.training.distributed import LAUNCHER_VARIABLES
from slime_model.training.recipe import load_recipe

REPO = Path(__file__).resolve().parents[3]
COLORS = {"red": (220, 40, 40), "green": (40, 180, 60), "blue": (40, 60, 220), "yellow": (230, 210, 40)}


def color_png(color: str, width: int, height: int) -> bytes:
    pixels = np.zeros((height, width, 3), dtype=np.uint8)
    pixels[:] = COLORS[color]
    pixels[height // 4 : height // 2, width // 4 : width // 2] //= 2
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG")
    return buffer.getvalue()


def _image_record(
    source: str, index: int, color: str, size: tuple[int, int], question: str, answer: str, data: bytes | None = None
) -> Record:
    data = data if data is not None else color_png(color, *size)
    return Record(
        id=f"{source}/{index}",
        source=source,
        split="train",
        task="caption" if source == "captions" else "general",
        conversations=[{"from": "human", "value": f"<image>\n{question}"}, {"from": "gpt", "value": answer}],
        image=ImageRef(bytes=data, path=f"{index}.png"),
        width=size[0],
        height=size[1],
        image_hash=content_hash(data),
    )


def synthetic_records(
    source: str, n: int, seed: int = 0, text_only_every: int = 0, corrupt: tuple[int, ...] = ()
) -> list[Record]:
    """`captions` rows ("a red picture.") or `vqa` rows ("What colour is the picture?" -> "red").

    text_only_every=k makes every k-th row text-only; `corrupt` rows get truncated PNG bytes."""
    rng = np.random.default_rng(seed)
    records = []
    for i in range(n):
        color = list(COLORS)[int(rng.integers(len(COLORS)))]
        if text_only_every and i % text_only_every == text_only_every - 1:
            a, b = int(rng.integers(10)), int(rng.integers(10))
            records.append(
                Record(
                    id=f"{source}/{i}",
                    source=source,
                    split="train",
                    conversations=[
                        {"from": "human", "value": f"What is {a} + {b}?"},
                        {"from": "gpt", "value": str(a + b)},
                    ],
                )
            )
            continue
        size = (int(rng.integers(60, 300)), int(rng.integers(60, 300)))
        data = color_png(color, *size)[:60] if i in corrupt else None
        if source == "captions":
            records.append(_image_record(source, i, color, size, "Describe the image.", f"a {color} picture.", data))
        else:
            records.append(_image_record(source, i, color, size, "What colour is the picture?", color, data))
    return records


def build_mix(
    root: Path, pretrain: list[Record], sft: list[Record], rows_per_shard: int = 64, images: str = "copy"
) -> Path:
    """Input shard sets -> `run_mix` -> root/manifests/mix.json (stages pretrain and sft, every row once)."""
    write_shard_set(root / "inputs" / "captions", pretrain, command="test")
    write_shard_set(root / "inputs" / "vqa", sft, command="test")
    recipe = MixRecipe(
        name="trainer-test",
        seed=0,
        rows_per_shard=rows_per_shard,
        images=images,
        stages=[
            MixStage(
                name="pretrain",
                count=len(pretrain),
                sources=[MixSource(name="captions", input=str(root / "inputs" / "captions"))],
            ),
            MixStage(name="sft", count=len(sft), sources=[MixSource(name="vqa", input=str(root / "inputs" / "vqa"))]),
        ],
    )
    manifest = root / "manifests" / "mix.json"
    run_mix(recipe, len(pretrain) + len(sft), out=root / "mix", manifest_path=manifest, command="test")
    return manifest


def write_recipe(path: Path, **changes) -> Path:
    """The tiny recipe with top-level `changes`; `stages` may be a list of per-stage overrides or
    replace the stage list (then each item is a full stage)."""
    recipe = load_recipe().model_dump(mode="json")
    recipe["max_drop_ratio"] = 0.25  # the test mix's SFT stage has one corrupt image in 24 rows
    stage_changes = changes.pop("stage_changes", None)
    recipe.update(changes)
    if stage_changes is not None:
        recipe["stages"] = [{**stage, **stage_changes} for stage in recipe["stages"]]
    for stage in recipe["stages"]:  # the shipped configs, wherever this recipe is written
        if not Path(stage["deepspeed"]).is_absolute():
            stage["deepspeed"] = str(REPO / "pipelines" / "deepspeed" / Path(stage["deepspeed"]).name)
    path.write_text(json.dumps(recipe), encoding="utf-8")  # JSON is YAML
    return path


# LAUNCHER_VARIABLES are set in this process once a test trained in it (DeepSpeed needs them): a child
# that inherited them would take itself for rank 0 of a launcher's world instead of a fresh single-process run.


def subprocess_env() -> dict[str, str]:
    """Child processes import this checkout, start as a user's shell would (no launcher variables)
    and use one thread each (two of them share 2 cores)."""
    inherited = {k: v for k, v in os.environ.items() if k not in LAUNCHER_VARIABLES}
    return {**inherited, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1", "TOKENIZERS_PARALLELISM": "false"}


def train_command(*args: str) -> list[str]:
    return [sys.executable, "-m", "slime_model.training", *args]


def two_process_command(mix: Path, recipe: Path, out: Path) -> list[str]:
    """The trainer under torchrun: two gloo processes on this machine."""
    launcher = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2", "-m"]
    return [*launcher, "slime_model.training", "--data", str(mix), "--recipe", str(recipe), "--out", str(out)]


def run(cmd: list[str], timeout: float) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, env=subprocess_env(), capture_output=True, text=True, timeout=timeout, cwd=REPO)


def metrics(stage_dir: Path) -> list[dict]:
    path = stage_dir / "metrics.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.is_file() else []


def interrupted_run(mix: Path, root: Path, lr: float = 1e-3) -> tuple[Path, Path]:
    """A one-stage run (stage 1a, 3 steps, a checkpoint every step) stopped after step 2 by a NaN step
    past max_bad_steps 0: OUT/stage-1a holds the step-1 checkpoint. Returns (out, recipe file)."""
    import pytest

    from slime_model.modeling import SliMEForConditionalGeneration
    from slime_model.training.runner import TrainingAborted, train

    stage = {**load_recipe().model_dump(mode="json")["stages"][0], "max_steps": 3, "global_batch": 2, "micro_batch": 1}
    stage.update(alternate=False, optimizer={**stage["optimizer"], "lr": lr})
    path = write_recipe(
        root / "recipe.yaml", stages=[stage], checkpoint_every=1, max_bad_steps=0, data={"num_workers": 0}
    )
    forward, calls = SliMEForConditionalGeneration.forward, []

    def poisoned(self, *args, **kwargs):  # step 2 (micro-batches 3 and 4) gets a NaN loss
        out = forward(self, *args, **kwargs)
        calls.append(1)
        if 3 <= len(calls) <= 4:
            out.loss = out.loss * float("nan")
        return out

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(SliMEForConditionalGeneration, "forward", poisoned)
        with pytest.raises(TrainingAborted):
            train(mix, load_recipe(path), root / "out")
    return root / "out", path
