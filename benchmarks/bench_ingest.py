"""Image ingest speed against what a user would otherwise run: ``datasets`` with an ``Image`` feature.

Generates N photo-like JPEGs of 1-4 MP (gradient + shapes + noise, so file sizes are
realistic) and keeps those of at most ``--max-pixels`` (default 3 MP, so about a third are
filtered out), then measures in the same run, both single-process:

(a) the size filter alone: ``probe`` (the header read ``load_image`` uses) over the files vs
    ``datasets.Dataset.from_dict({"image": paths}).cast_column("image", Image()).filter(w * h <= max)``;
(b) the whole ingest job, read..write: ``load_image`` (read, probe, pixel limit, draft-mode decode
    check, normalise, xxh3, fast phash) into ``ShardWriter`` vs the same job in ``datasets``:
    the size ``filter``, a ``map`` adding width, height, xxh3 of the file and ``imagehash.phash``,
    the image bytes embedded into the table (``embed_table_storage``, as ``push_to_hub`` does) and
    ``save_to_disk``.

Why this baseline: ``datasets``' ``Image`` feature is how most users load an image folder for
training, and its documented way to drop images by size is a ``filter`` on the decoded image;
its ``Image.decode_example`` calls ``PIL.Image.load()``, so every size check costs a full decode
(datasets/features/image.py). data-juicer's image-shape filter was not run: py-data-juicer 1.6.1
pins ``dill==0.3.8`` and ``multiprocess==0.70.16`` and pulls streamlit, uv, ..., which would
change the shared environment's ``datasets`` stack.

    python benchmarks/bench_ingest.py                 # 2,000 images
    python benchmarks/bench_ingest.py --n 200         # quick
    python benchmarks/bench_ingest.py --workdir /tmp/bench   # keeps (and reuses) the images
"""

from __future__ import annotations

import functools
import io
import os
import shutil
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import imagehash
import numpy as np
import typer
from PIL import Image, ImageChops, ImageDraw
from rich.table import Table

from slime_data.images import content_hash, probe
from slime_data.record import ImageRef, Record
from slime_data.shards import ShardWriter
from slime_data.steps.load_image import LoadImages
from slime_data.ui import console, progress

NOISE_SIDE = 2700  # > the largest side generate() makes (about 2,600)


@functools.cache
def _noise() -> Image.Image:
    """Luma noise (sigma 6) around 128, shared by every image (cropped at a random offset)."""
    values = np.random.default_rng(0).normal(128, 6, (NOISE_SIDE, NOISE_SIDE)).round().clip(0, 255).astype(np.uint8)
    luma = Image.fromarray(values, mode="L")
    return Image.merge("RGB", (luma, luma, luma))


def synthetic_jpeg(seed: int) -> bytes:
    """One 1-4 MP JPEG: a smooth two-colour gradient, 5-30 filled shapes, Gaussian noise."""
    rng = np.random.default_rng(seed)
    pixels_total, aspect = rng.uniform(1e6, 4e6), rng.uniform(0.6, 1.8)
    width = int((pixels_total * aspect) ** 0.5)
    height = int(pixels_total / width)
    # The gradient is smooth, so compute it at 1/16 scale and let PIL upsample it.
    slope = rng.uniform(-1, 1, 2)
    ramp = np.add.outer(np.linspace(0, slope[1], height // 16 + 2), np.linspace(0, slope[0], width // 16 + 2))
    ramp = (ramp - ramp.min()) / max(np.ptp(ramp), 1e-6)  # (h/16, w/16) in 0..1
    c0, c1 = rng.integers(0, 256, (2, 3))
    small = (c0 + (c1 - c0) * ramp[..., None]).astype(np.uint8)
    image = Image.fromarray(small).resize((width, height), Image.Resampling.BILINEAR)
    draw = ImageDraw.Draw(image)
    for _ in range(int(rng.integers(5, 30))):
        x0, y0 = int(rng.integers(0, width)), int(rng.integers(0, height))
        box = [x0, y0, x0 + int(rng.integers(10, width // 2)), y0 + int(rng.integers(10, height // 2))]
        colour = tuple(int(v) for v in rng.integers(0, 256, 3))
        shape = int(rng.integers(0, 3))
        if shape == 0:
            draw.rectangle(box, fill=colour)
        elif shape == 1:
            draw.ellipse(box, fill=colour)
        else:
            draw.line(box, fill=colour, width=int(rng.integers(1, 12)))
    left, top = int(rng.integers(0, NOISE_SIDE - width + 1)), int(rng.integers(0, NOISE_SIDE - height + 1))
    noise = _noise().crop((left, top, left + width, top + height))
    noisy = ImageChops.add(image, noise, scale=1.0, offset=-128)  # image + noise - 128, clipped
    buffer = io.BytesIO()
    noisy.save(buffer, "JPEG", quality=int(rng.integers(80, 95)))
    return buffer.getvalue()


def _write_image(args: tuple[int, Path]) -> None:
    seed, path = args
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_bytes(synthetic_jpeg(seed))
    tmp.replace(path)


def generate(folder: Path, n: int, workers: int) -> list[Path]:
    """Write img-00000.jpg... (deterministic per index); files already present are reused."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = [folder / f"img-{i:05d}.jpg" for i in range(n)]
    todo = [(i, p) for i, p in enumerate(paths) if not p.exists()]
    with progress() as bar, ProcessPoolExecutor(workers) as pool:
        task = bar.add_task("generate JPEGs", total=len(todo))
        for _ in pool.map(_write_image, todo, chunksize=8):
            bar.advance(task)
    return paths


def _record(i: int, image: ImageRef, **fields) -> Record:
    return Record(
        id=f"bench/{i}",
        source="bench",
        split="train",
        conversations=[{"from": "human", "value": "<image>\nDescribe the image."}, {"from": "gpt", "value": "Shapes."}],
        image=image,
        **fields,
    )


def timed(work: Callable[[], int]) -> tuple[float, float, int]:
    """(wall seconds, CPU seconds of this process, all threads, result of ``work()``).

    Ratios use CPU seconds: on a shared machine wall time measures the other load too.
    """
    wall, cpu = time.perf_counter(), time.process_time()
    result = work()
    return time.perf_counter() - wall, time.process_time() - cpu, result


def probe_filter(paths: list[Path], max_pixels: int) -> int:
    """How many files ``probe`` (a header read) finds within ``max_pixels``."""
    kept = 0
    for path in paths:
        found = probe(path.read_bytes())
        kept += found.width * found.height <= max_pixels
    return kept


def datasets_filter(paths: list[Path], max_pixels: int) -> int:
    """The same filter as a ``datasets`` user writes it: an ``Image`` column and ``filter`` on its size."""
    import datasets

    table = datasets.Dataset.from_dict({"image": [str(p) for p in paths]}).cast_column("image", datasets.Image())
    return len(table.filter(lambda row: row["image"].width * row["image"].height <= max_pixels))


def run_ingest(root: Path, paths: list[Path], out: Path, max_pixels: int) -> int:
    records = (_record(i, ImageRef(path=p.relative_to(root).as_posix())) for i, p in enumerate(paths))
    kept = 0
    with progress(transient=True) as bar, ShardWriter(out, command="bench ingest") as writer:
        task = bar.add_task("(b) ingest path", total=len(paths))
        for item in LoadImages(root=root, max_pixels=max_pixels).run(records):
            writer.add(item)  # a reject (image_too_large) is counted in the manifest
            kept += isinstance(item, Record)
            bar.advance(task)
    return kept


def _hashes(row: dict) -> dict:
    image = row["image"]  # decoded by datasets (a full decode); its filename is the file it came from
    with open(image.filename, "rb") as f:
        image_hash = content_hash(f.read())
    phash = str(imagehash.phash(image))
    return {"width": image.width, "height": image.height, "image_hash": image_hash, "phash": phash}


def run_datasets(paths: list[Path], out: Path, max_pixels: int) -> int:
    """The same job as a ``datasets`` user writes it: filter on size, map the hashes, embed the bytes, save."""
    import datasets
    from datasets.table import embed_table_storage

    table = datasets.Dataset.from_dict({"image": [str(p) for p in paths]}).cast_column("image", datasets.Image())
    table = table.filter(lambda row: row["image"].width * row["image"].height <= max_pixels)
    table = table.map(_hashes)
    table = table.with_format("arrow").map(embed_table_storage, batched=True).with_format(None)
    table.save_to_disk(str(out))
    return len(table)


def main(
    n: int = typer.Option(2000, "--n", min=1, help="Number of JPEGs (1-4 MP each)."),
    max_pixels: int = typer.Option(3_000_000, min=1, help="Size filter: keep images of at most this many pixels."),
    workdir: Path | None = typer.Option(None, help="Keep images and shard sets here (images are reused)."),
    workers: int = typer.Option(os.cpu_count() or 1, min=1, help="Processes for generating images."),
) -> None:
    """Benchmark image ingest against datasets. Example: python benchmarks/bench_ingest.py --n 200"""
    import datasets

    datasets.disable_progress_bars()
    scratch = None if workdir else tempfile.TemporaryDirectory(prefix="bench_ingest-")
    base = workdir or Path(scratch.name)
    try:
        root = base / "dataset"
        paths = generate(root / "images", n, workers)
        megabytes = sum(p.stat().st_size for p in paths) / 2**20
        megapixels = sum(found.width * found.height for found in map(probe, map(Path.read_bytes, paths))) / 1e6

        with console.status("(a) size filter: probe vs datasets"):
            probe_t = timed(lambda: probe_filter(paths, max_pixels))
            filter_t = timed(lambda: datasets_filter(paths, max_pixels))
        for name in ("out-ingest", "out-datasets"):
            shutil.rmtree(base / name, ignore_errors=True)
        ingest_t = timed(lambda: run_ingest(root, paths, base / "out-ingest", max_pixels))
        with console.status("(b) datasets: filter, map, embed, save_to_disk"):
            datasets_t = timed(lambda: run_datasets(paths, base / "out-datasets", max_pixels))
    finally:
        if scratch:
            scratch.cleanup()
    kept = [t[2] for t in (probe_t, filter_t, ingest_t, datasets_t)]
    if len(set(kept)) != 1:
        raise SystemExit(f"contenders kept different numbers of images (probe, filter, ingest, datasets): {kept}")

    title = (
        f"{n} JPEGs, {megapixels / n:.2f} MP and {megabytes / n:.2f} MiB on average; {kept[0]} of at most "
        f"{max_pixels / 1e6:g} MP kept. Images per CPU second (per wall second), ratio of CPU seconds"
    )
    table = Table(title=title)
    for column in ("measure", "ours", "datasets Image", "ratio"):
        table.add_column(column, justify="right" if column != "measure" else "left")
    for measure, ours, theirs in (
        ("(a) size filter only", probe_t, filter_t),
        ("(b) whole job, read..write", ingest_t, datasets_t),
    ):
        rates = [f"{n / t[1]:,.1f} ({n / t[0]:,.1f})" for t in (ours, theirs)]
        table.add_row(measure, *rates, f"{theirs[1] / ours[1]:,.2f}x")
    console.print(table)


if __name__ == "__main__":
    typer.run(main)
