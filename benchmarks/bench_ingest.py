"""Image ingest speed: header probe vs full decode, and the ingest path vs a naive one.

Generates N photo-like JPEGs of 1-4 MP (gradient + shapes + noise, so file sizes are
realistic), then measures in the same run:

(a) ``probe`` (header only) vs a full decode, per image, on bytes already in memory;
(b) the ingest path (``load_image``: read, probe, pixel limit, draft-mode decode check,
    normalise, xxh3, fast phash, then ``ShardWriter``) vs a naive path (read, full decode,
    ``imagehash.phash`` on the full image, xxh3, the same write).

Goals: probe >= 50x a full decode; ingest >= 1.5x the naive path.

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
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import imagehash
import numpy as np
import typer
from PIL import Image, ImageChops, ImageDraw
from rich.table import Table

from slime_data.ui import console, progress
from slime_data.images import content_hash, probe
from slime_data.record import ImageRef, Record
from slime_data.shards import ShardWriter
from slime_data.steps.load_image import LoadImages

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


def time_probe_vs_decode(paths: list[Path]) -> tuple[float, float]:
    """Seconds spent in probe and in a full decode, summed over images already in memory."""
    probe_s = decode_s = 0.0
    with progress(transient=True) as bar:
        task = bar.add_task("(a) probe vs decode", total=len(paths))
        for path in paths:
            data = path.read_bytes()
            start = time.perf_counter()
            probe(data)
            probe_s += time.perf_counter() - start
            start = time.perf_counter()
            Image.open(io.BytesIO(data)).load()
            decode_s += time.perf_counter() - start
            bar.advance(task)
    return probe_s, decode_s


def run_ingest(root: Path, paths: list[Path], out: Path) -> float:
    start = time.perf_counter()
    records = (_record(i, ImageRef(path=p.relative_to(root).as_posix())) for i, p in enumerate(paths))
    with progress(transient=True) as bar, ShardWriter(out, command="bench ingest") as writer:
        task = bar.add_task("(b) ingest path", total=len(paths))
        for item in LoadImages(root=root).run(records):
            writer.add(item)
            bar.advance(task)
    return time.perf_counter() - start


def run_naive(root: Path, paths: list[Path], out: Path) -> float:
    start = time.perf_counter()
    with progress(transient=True) as bar, ShardWriter(out, command="bench naive") as writer:
        task = bar.add_task("(b) naive path", total=len(paths))
        for i, path in enumerate(paths):
            data = path.read_bytes()
            image = Image.open(io.BytesIO(data))
            image.load()
            writer.add(
                _record(
                    i,
                    ImageRef(bytes=data, path=path.relative_to(root).as_posix()),
                    width=image.width,
                    height=image.height,
                    image_hash=content_hash(data),
                    phash=int(str(imagehash.phash(image)), 16),
                )
            )
            bar.advance(task)
    return time.perf_counter() - start


def main(
    n: int = typer.Option(2000, "--n", min=1, help="Number of JPEGs (1-4 MP each)."),
    workdir: Path | None = typer.Option(None, help="Keep images and shard sets here (images are reused)."),
    workers: int = typer.Option(os.cpu_count() or 1, min=1, help="Processes for generating images."),
) -> None:
    """Benchmark image ingest. Example: python benchmarks/bench_ingest.py --n 200"""
    scratch = None if workdir else tempfile.TemporaryDirectory(prefix="bench_ingest-")
    base = workdir or Path(scratch.name)
    try:
        root = base / "dataset"
        paths = generate(root / "images", n, workers)
        megabytes = sum(p.stat().st_size for p in paths) / 2**20
        megapixels = sum(found.width * found.height for found in map(probe, map(Path.read_bytes, paths))) / 1e6

        probe_s, decode_s = time_probe_vs_decode(paths)
        for name in ("out-ingest", "out-naive"):
            shutil.rmtree(base / name, ignore_errors=True)
        ingest_s = run_ingest(root, paths, base / "out-ingest")
        naive_s = run_naive(root, paths, base / "out-naive")
    finally:
        if scratch:
            scratch.cleanup()

    table = Table(title=f"{n} JPEGs, {megapixels / n:.2f} MP and {megabytes / n:.2f} MiB on average")
    for column in ("measure", "images/s", "baseline images/s", "ratio", "goal"):
        table.add_column(column, justify="right" if column != "measure" else "left")
    table.add_row("(a) header probe vs full decode", f"{n / probe_s:,.0f}", f"{n / decode_s:,.1f}", f"{decode_s / probe_s:,.0f}x", ">= 50x")
    table.add_row("(b) ingest vs naive (read..write)", f"{n / ingest_s:,.1f}", f"{n / naive_s:,.1f}", f"{naive_s / ingest_s:.2f}x", ">= 1.5x")
    console.print(table)


if __name__ == "__main__":
    typer.run(main)
