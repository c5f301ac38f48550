"""Tiny real-format inputs for mix tests: shard sets written by ShardWriter from generated records."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import numpy as np
import yaml
from PIL import Image

from slime_data.images import content_hash, phash64
from slime_data.record import ImageRef, Record
from slime_data.shards import write_shard_set

WORDS = (
    "red green blue chart table graph axis bar line pie circle angle triangle square area volume ratio sum mean "
    "median value label legend title year month price cost speed distance time force mass energy cell plant leaf"
).split()


def noise_png(rng: np.random.Generator, side: int = 12) -> tuple[bytes, Image.Image]:
    image = Image.fromarray(rng.integers(0, 256, size=(side, side, 3), dtype=np.uint8), "RGB")
    buffer = io.BytesIO()
    image.save(buffer, "PNG")
    return buffer.getvalue(), image


def make_record(source: str, index: int, rng: np.random.Generator, task: str = "caption") -> Record:
    data, image = noise_png(rng)
    question = " ".join(rng.choice(WORDS, size=8)) + f" {index}?"
    return Record(
        id=f"{source}/{index:05d}",
        source=source,
        split="train",
        task=task,
        conversations=[{"from": "human", "value": f"<image>\n{question}"}, {"from": "gpt", "value": f"answer {index}"}],
        image=ImageRef(bytes=data, path=f"images/{index}.png"),
        width=image.width,
        height=image.height,
        image_hash=content_hash(data),
        phash=phash64(image),
        answer=str(index),
        meta={"license": "test", "n": index},
    )


def make_records(source: str, n: int, seed: int, task: str = "caption") -> list[Record]:
    rng = np.random.default_rng(seed)
    return [make_record(source, i, rng, task) for i in range(n)]


def write_input(folder: Path, records: list[Record], max_shard_rows: int = 40) -> Path:
    write_shard_set(folder, records, command="test", config={"test": folder.name}, max_shard_rows=max_shard_rows)
    return folder


def write_recipe(path: Path, inputs: dict[str, Path], **overrides: Any) -> Path:
    """A two-stage recipe: pretrain <- captions; sft <- qa_a + qa_b (proportional), with exact and near dedup."""
    recipe: dict[str, Any] = {
        "name": "test-mix",
        "seed": 0,
        "max_repeats": 3,
        "rows_per_shard": 16,
        "hygiene": [{"step": "exact_dedup"}, {"step": "near_dedup"}],
        "stages": [
            {"name": "pretrain", "weight": 0.3, "sources": [{"name": "captions", "input": str(inputs["captions"])}]},
            {
                "name": "sft",
                "weight": 0.7,
                "sampling": "proportional",
                "sources": [
                    {"name": "qa_a", "input": str(inputs["qa_a"])},
                    {"name": "qa_b", "input": str(inputs["qa_b"])},
                ],
            },
        ],
    }
    recipe.update(overrides)
    path.write_text(yaml.safe_dump(recipe, sort_keys=False))
    return path
