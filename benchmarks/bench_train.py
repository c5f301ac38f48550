"""Trainer speed: data loading from Arrow shards vs the released code's way, and the tiny recipe's steps/s.

Measured in the same run:

(a) loading rows/s of one mix stage into model-ready micro-batches:
    - ours: the trainer's `StageStream` (memory-mapped Arrow shards, seeded shuffle, a zero-copy
      slice per row) feeding the trainer's `Collator` (decode, slice, tokenize);
    - the released code's way (LLaVA's `LazySupervisedDataset`): the whole JSON list loaded in
      memory, one image file opened from disk per row, then the *same* `Collator`, in the same order.
    Both are single-process (DataLoader workers scale both alike), measured reading only (page cache
    warm, and cold: files evicted with POSIX_FADV_DONTNEED before each pass) and reading + the same
    processing. Goal: ours >= 1.5x. The processing's cost per row is printed by part, with the
    ceiling it puts on the ratio: no storage format can beat (JSON read + processing) / processing.
(b) the tiny recipe (`pipelines/train/tiny.yaml`, one process, on the GPU when there is one): optimizer
    steps/s and samples/s per stage, first step of each stage left out (engine warm-up).

    python benchmarks/bench_train.py                              # synthetic mix of chart-like images
    python benchmarks/bench_train.py --data manifests/mix.json    # the demo mix (slime-data mix --target 2k)
    python benchmarks/bench_train.py --skip-train --rows 256      # loading only, quick
"""

from __future__ import annotations

import io
import json
import os
import shutil
import tempfile
import time
from pathlib import Path
from typing import Annotated

import numpy as np
import typer
from PIL import Image, ImageDraw
from rich.table import Table

from slime_data.images import content_hash
from slime_data.mix.manifest import load_mix_manifest
from slime_data.record import ImageRef, Record
from slime_data.shards import ShardSet, write_shard_set
from slime_data.ui import console
from slime_model.configuration import SliMEConfig
from slime_model.processing import SliMEProcessor
from slime_model.templates import render_conversation
from slime_model.tiny import tiny_tokenizer
from slime_model.training.collate import Collator
from slime_model.training.data import EpochOrder, RankSlice, StageStream
from slime_model.training.recipe import DataSpec, load_recipe

MICRO_BATCH = 4
REPEATS = 3  # alternate the two loaders and keep each one's best time (a shared machine is noisy)


def chart_png(rng: np.random.Generator) -> tuple[bytes, int, int]:
    """A bar chart of 300-900 px a side, as PNG (the SMR data is mostly charts and diagrams)."""
    width, height = (int(v) for v in rng.integers(300, 900, 2))
    image = Image.new("RGB", (width, height), "white")
    draw = ImageDraw.Draw(image)
    bars = int(rng.integers(3, 9))
    for i in range(bars):
        top = int(rng.integers(height // 10, height - 20))
        left = 20 + i * (width - 40) // bars
        draw.rectangle(
            [left, top, left + (width - 40) // bars - 8, height - 20],
            fill=tuple(int(c) for c in rng.integers(0, 255, 3)),
        )
        draw.text((left, top - 12), str(int(rng.integers(1, 100))), fill="black")
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue(), width, height


def synthetic_mix(root: Path, rows: int) -> Path:
    """`rows` chart VQA rows (sft) and half as many chart captions (pretrain), mixed by `run_mix`."""
    from slime_data.mix.recipe import (  # the mix's steps registry: only when making data
        MixRecipe,
        MixSource,
        MixStage,
    )
    from slime_data.mix.run import run_mix

    rng = np.random.default_rng(0)

    def records(source: str, n: int, question: str) -> list[Record]:
        out = []
        for i in range(n):
            data, width, height = chart_png(rng)
            out.append(
                Record(
                    id=f"{source}/{i}",
                    source=source,
                    split="train",
                    task="chart",
                    conversations=[
                        {"from": "human", "value": f"<image>\n{question}"},
                        {"from": "gpt", "value": "The tallest bar is the third one, at 87."},
                    ],
                    image=ImageRef(bytes=data, path=f"{i}.png"),
                    width=width,
                    height=height,
                    image_hash=content_hash(data),
                )
            )
        return out

    write_shard_set(
        root / "inputs" / "captions", records("captions", rows // 2, "Describe the chart."), command="bench"
    )
    write_shard_set(root / "inputs" / "charts", records("charts", rows, "Which bar is the tallest?"), command="bench")
    recipe = MixRecipe(
        name="bench",
        seed=0,
        rows_per_shard=1000,
        stages=[
            MixStage(
                name="pretrain",
                count=rows // 2,
                sources=[MixSource(name="captions", input=str(root / "inputs" / "captions"))],
            ),
            MixStage(name="sft", count=rows, sources=[MixSource(name="charts", input=str(root / "inputs" / "charts"))]),
        ],
    )
    manifest = root / "manifests" / "mix.json"
    run_mix(recipe, rows // 2 + rows, out=root / "mix", manifest_path=manifest, command="bench")
    return manifest


def export_released_layout(shards: ShardSet, folder: Path) -> Path:
    """The same rows as LLaVA-style JSON (a list of {id, image, conversations}) + one image file each."""
    (folder / "images").mkdir(parents=True)
    entries = []
    for index, record in enumerate(shards):
        name = f"images/{index:07d}.png"
        (folder / name).write_bytes(record.image.bytes)
        entries.append({"id": record.id, "image": name, "conversations": record.conversations})
    (folder / "data.json").write_text(json.dumps(entries))
    return folder / "data.json"


def load_ours(stream: StageStream, micro_batches: int, process: bool) -> int:
    order, rows = stream.order(0), 0
    for m in range(micro_batches):
        batch = stream.read(stream.micro_batch_rows(m, order))
        rows += len(stream.collate(m, batch).ids) if process else len(batch)
    return rows


def load_released(json_path: Path, order: EpochOrder, collate: Collator, micro_batches: int, process: bool) -> int:
    entries = json.loads(json_path.read_text())  # the released code holds the whole list in memory
    rows = 0
    for m in range(micro_batches):
        indices = order.rows(np.arange(m * MICRO_BATCH, (m + 1) * MICRO_BATCH))
        batch = [
            {
                "id": entries[i]["id"],
                "conversations": entries[i]["conversations"],
                "image": {"bytes": (json_path.parent / entries[i]["image"]).read_bytes(), "path": entries[i]["image"]},
            }
            for i in indices.tolist()
        ]
        rows += len(collate(m, batch).ids) if process else len(batch)
    return rows


def drop_from_page_cache(paths: list[Path]) -> None:
    """Evict the files' pages (POSIX_FADV_DONTNEED, no root needed): the next read comes from the disk,
    as it does when a 2M-row dataset's images are far larger than memory."""
    for path in paths:
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)  # only clean pages can be dropped
            os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
        finally:
            os.close(fd)


def per_row_costs(shards: ShardSet, processor: SliMEProcessor, rows: int) -> dict[str, float]:
    """Seconds per row of each part of the shared processing, on the first `rows` rows."""
    from slime_model.training.collate import decode_image

    records = [shards[i] for i in range(min(rows, len(shards)))]
    clock = time.perf_counter()
    images = [decode_image(r.image.bytes) for r in records]
    decode = time.perf_counter() - clock
    clock = time.perf_counter()
    processor.process_images(images)
    slicing = time.perf_counter() - clock
    clock = time.perf_counter()
    for record in records:
        processor.encode_segments(
            render_conversation(processor.template, record.conversations, processor.settings.image_token, False)
        )
    text = time.perf_counter() - clock
    return {
        "decode": decode / len(records),
        "slice + normalise": slicing / len(records),
        "template + tokenize": text / len(records),
    }


def bench_loading(
    manifest: Path, stage: str, rows: int, workdir: Path
) -> tuple[dict[str, dict[str, float]], dict[str, float]]:
    """rows/s of both loaders: reading only (page cache warm, then cold) and reading + the same
    processing (decode, slice, tokenize); and the processing's cost per row, by part."""
    processor = SliMEProcessor.from_config(SliMEConfig.from_name("tiny"), tiny_tokenizer())
    collate = Collator(processor, max_length=2048)
    folder = load_mix_manifest(manifest).stage_dir(stage)
    shards = ShardSet(folder)
    layout = RankSlice(tuple(s["rows"] for s in shards.manifest["shards"]), MICRO_BATCH, 1, 0)
    micro_batches = min(rows, layout.rows) // MICRO_BATCH
    spec = DataSpec(shuffle=True, shuffle_buffer=1000, num_workers=0)
    json_path = export_released_layout(shards, workdir / "released")
    shard_paths = list(shards.shard_paths)
    del shards  # its memory maps would pin the shards' pages in the page cache
    image_files = sorted((json_path.parent / "images").iterdir())
    results = {}
    for work, process, cold in (
        ("read only", False, False),
        ("read only, cold page cache", False, True),
        ("read + process", True, False),
    ):
        best = {"arrow": float("inf"), "json": float("inf")}
        for _ in range(REPEATS):
            if cold:
                drop_from_page_cache(shard_paths)
            stream = StageStream(folder, layout, spec, (0, 1), start=0, stop=micro_batches, collate=collate)
            clock = time.perf_counter()
            done = load_ours(stream, micro_batches, process)
            best["arrow"] = min(best["arrow"], time.perf_counter() - clock)
            if cold:
                drop_from_page_cache([json_path, *image_files])
            order = EpochOrder(layout.shard_rows, (0, 1), 0, spec, MICRO_BATCH)
            clock = time.perf_counter()
            assert load_released(json_path, order, collate, micro_batches, process) == done
            best["json"] = min(best["json"], time.perf_counter() - clock)
        results[work] = {"rows": done, "arrow": done / best["arrow"], "json": done / best["json"]}
    return results, per_row_costs(ShardSet(folder), processor, micro_batches * MICRO_BATCH)


def bench_training(manifest: Path, out: Path) -> list[dict[str, float]]:
    from slime_model.training.runner import train
    from slime_model.training.telemetry import read_metrics

    recipe = load_recipe()
    clock = time.perf_counter()
    results = train(manifest, recipe, out)
    wall = time.perf_counter() - clock
    rows = []
    for result in results:
        records = read_metrics(out / f"stage-{result.name}" / "metrics.jsonl")[1:]
        seconds = sum(r["samples"] / r["samples_per_s"] for r in records)
        rows.append(
            {
                "stage": result.name,
                "steps": len(records),
                "steps_per_s": len(records) / seconds,
                "samples_per_s": sum(r["samples"] for r in records) / seconds,
                "wall": wall,
            }
        )
    return rows


def main(
    data: Annotated[
        Path | None, typer.Option("--data", help="A mix manifest; default: a synthetic mix of chart-like images.")
    ] = None,
    stage: Annotated[str, typer.Option("--stage", help="Mix stage the loading benchmark reads.")] = "sft",
    rows: Annotated[
        int,
        typer.Option(
            "--rows", min=MICRO_BATCH, help="Rows the loading benchmark reads (and the synthetic mix's sft size)."
        ),
    ] = 512,
    skip_train: Annotated[bool, typer.Option("--skip-train", help="Only the loading benchmark.")] = False,
) -> None:
    """Trainer benchmark: Arrow loading vs JSON + image files, and the tiny recipe's steps/s.

    Example: python benchmarks/bench_train.py --data manifests/mix.json
    """
    workdir = Path(tempfile.mkdtemp(prefix="bench-train-"))
    try:
        manifest = data or synthetic_mix(workdir / "data", rows)
        loading, costs = bench_loading(manifest, stage, rows, workdir)
        table = Table(
            title=f"data loading, stage {stage!r}, micro-batches of {MICRO_BATCH}, one process, best of {REPEATS}"
        )
        for column in (
            "work per row",
            "rows",
            "JSON list + image files (rows/s)",
            "Arrow shards (rows/s)",
            "Arrow vs JSON",
        ):
            table.add_column(column)
        for work, r in loading.items():
            table.add_row(
                work, str(r["rows"]), f"{r['json']:.1f}", f"{r['arrow']:.1f}", f"{r['arrow'] / r['json']:.2f}x"
            )
        console.print(table)
        processing = sum(costs.values())
        parts = ", ".join(f"{name} {seconds * 1e3:.2f} ms" for name, seconds in costs.items())
        read = {name: 1 / loading["read only"][name] for name in ("arrow", "json")}
        console.print(
            f"processing per row (the same in both): {processing * 1e3:.2f} ms ({parts}); reading per row: Arrow "
            f"{read['arrow'] * 1e6:.0f} µs, JSON + file {read['json'] * 1e6:.0f} µs "
            f"(cold: {1e6 / loading['read only, cold page cache']['json']:.0f} µs). "
            "Ceiling on Arrow vs JSON with free Arrow reads: (JSON read + processing) "
            f"/ processing = {(read['json'] + processing) / processing:.3f}x warm, "
            f"{(1 / loading['read only, cold page cache']['json'] + processing) / processing:.3f}x cold"
        )
        if not skip_train:
            stages = bench_training(manifest, workdir / "run")
            import torch

            where = (
                torch.cuda.get_device_name() if torch.cuda.is_available() else f"CPU, {torch.get_num_threads()} threads"
            )
            table = Table(
                title=f"tiny recipe, one process on {where} (wall "
                f"{stages[0]['wall']:.0f} s for all stages, start-up included)"
            )
            for column in ("stage", "timed steps", "steps/s", "samples/s"):
                table.add_column(column)
            for row in stages:
                table.add_row(
                    row["stage"], str(row["steps"]), f"{row['steps_per_s']:.2f}", f"{row['samples_per_s']:.1f}"
                )
            console.print(table)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    typer.run(main)
