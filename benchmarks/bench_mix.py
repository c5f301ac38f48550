"""Benchmark `slime-data mix` on inputs with realistic image sizes, against a user's JSON script and the disk.

    python benchmarks/bench_mix.py                                # 10K input rows (~1.8 GiB of images), --target 9.5k
    python benchmarks/bench_mix.py --rows 100000 --target 95k     # about 10x the disk and the time

1. Generates three input shard sets in the paper's proportions (LLaVA-558K : ShareGPT4V-665K :
   SMR-476K) whose images are JPEGs of each source's typical sizes (``IMAGE_KIB``: LAION/CC/SBU
   downloads 15-150 KiB, COCO/SAM/web photos 50 KiB-1.5 MiB, charts and diagrams 10-250 KiB). A
   few distinct payloads per source keep generation fast; each row's copy is made unique by its
   id appended after the JPEG's end marker, which decoders ignore. The same rows are also written
   as LLaVA-format JSON lists (image paths).
2. Runs each contender in its own subprocess, sampling the whole process tree's memory:
   * json-shuffle, the baseline: json + random.shuffle as a user script would build the mix for
     LLaVA's trainer (json.load every source, list.extend per stage, whole repeats +
     random.sample remainder, random.shuffle, json.dump). The released SliME code builds no mix;
     it trains on a JSON list made this way. The script writes image *paths* only and leaves the
     images where they are, so it does less than the mix: it is what a user would otherwise
     run, not the same job;
   * mix: ``run_mix`` end to end: exact + near dedup and decontamination (the demo build's
     benchmark excerpts) across all inputs, allocation, the planned shuffle, parallel shard
     writing with the image bytes copied into self-contained shards, manifests;
   * mix-plain: the same without hygiene;
   * mix-ref: ``mix`` with ``images: reference`` (``slime-data mix --by-reference``): the same rows,
     each image left in its input shard and pointed at, so only text and pointers are written;
   * dd: the disk's own sequential write of as many bytes as the mix wrote
     (``dd if=/dev/zero bs=1M conv=fdatasync``): the ceiling for writing the shards.
3. Prints wall time, rows/s, peak memory of each contender's process tree (summed RSS, PSS and
   anonymous memory, see ``measure``), the mix's phases (hygiene, plan, write, finish), ratios to
   json-shuffle, and the mix's write rate (shard bytes / write phase) against dd's. Each
   contender's output is removed once measured, so the disk holds the inputs and one output.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import psutil
import pyarrow as pa
import pyarrow.compute as pc

SOURCES = {
    "llava_pretrain": ("pretrain", 558_128, "caption"),
    "sharegpt4v": ("sft", 665_058, "general"),
    "sophisticated": ("sft", 476_000, "chart"),
}
# Image sizes in KiB, low..high (log-uniform): LAION/CC/SBU downloads; COCO, SAM and web photos; charts, diagrams.
IMAGE_KIB = {"llava_pretrain": (15, 150), "sharegpt4v": (50, 1536), "sophisticated": (10, 250)}
PAYLOADS_PER_SOURCE = 12
QUESTION_WORDS = 8
ROWS_PER_INPUT_SHARD = 1_000  # well under 2 GiB of image bytes per shard (Arrow binary offsets are 32-bit)
ROWS_PER_OUTPUT_SHARD = 1_000
HYGIENE = [
    {"step": "exact_dedup"},
    {"step": "near_dedup", "max_hamming": 6, "min_jaccard": 0.8},
    {
        "step": "decontaminate",
        "benchmarks": [
            {"format": "mathvista", "path": "{package}/corpus/benchmarks/mathvista/data/testmini.json"},
            {"format": "mmmu", "path": "{package}/corpus/benchmarks/mmmu/mmmu/answer_dict_val.json"},
        ],
    },
]


def jpeg_payloads(kib_range: tuple[int, int], count: int, rng: np.random.Generator) -> tuple[pa.Array, np.ndarray]:
    """``count`` JPEGs (a gradient with noise, quality 85) sized log-uniformly in ``kib_range``.

    Returns (payloads as a binary array, (count, 2) int32 width and height).
    """
    import io

    from PIL import Image

    def encode(width: int, height: int) -> bytes:
        ramp = np.linspace(0, 255, width, dtype=np.float32)[None, :, None] * rng.uniform(0.2, 1.0, 3)
        noise = rng.normal(0, 10, (height, width, 3)).astype(np.float32)
        pixels = np.clip(ramp + noise + rng.uniform(0, 60), 0, 255).astype(np.uint8)
        buffer = io.BytesIO()
        Image.fromarray(pixels, "RGB").save(buffer, "JPEG", quality=85)
        return buffer.getvalue()

    bytes_per_pixel = len(encode(256, 256)) / 256**2
    payloads, sizes = [], []
    for target in np.exp(rng.uniform(*np.log(kib_range), count)) * 1024:
        aspect, pixels = rng.uniform(0.75, 1.5), target / bytes_per_pixel
        width, height = max(16, int((pixels * aspect) ** 0.5)), max(16, int((pixels / aspect) ** 0.5))
        payloads.append(encode(width, height))
        sizes.append((width, height))
    return pa.array(payloads, pa.binary()), np.array(sizes, dtype=np.int32)


def source_table(
    source: str,
    first: int,
    n: int,
    task: str,
    rng: np.random.Generator,
    payloads: tuple[pa.Array, np.ndarray],
    vocabulary: pa.Array,
) -> pa.Table:
    """Rows ``first .. first + n`` with ARROW_SCHEMA columns, built without one Python object per row."""
    from slime_data.record import ARROW_SCHEMA

    number = pc.cast(pa.array(np.arange(first, first + n)), pa.string())
    ids = pc.binary_join_element_wise(f"{source}/", number, "")
    jpegs, sizes = payloads
    pick = rng.integers(0, len(jpegs), n)
    image_bytes = pc.binary_join_element_wise(jpegs.take(pa.array(pick)), pc.cast(ids, pa.binary()), b"")
    paths = pc.binary_join_element_wise("images/", number, ".jpg", "")
    image = pa.StructArray.from_arrays([image_bytes, paths], names=["bytes", "path"])
    # Questions of random words: as unrelated to each other as real questions (no near-duplicates by accident).
    words = [vocabulary.take(pa.array(rng.integers(0, len(vocabulary), n))) for _ in range(QUESTION_WORDS)]
    human = pc.binary_join_element_wise("<image>\n", pc.binary_join_element_wise(*words, " "), "?", "")
    gpt = pc.binary_join_element_wise("answer ", number, "")
    interleave = np.empty(2 * n, dtype=np.int64)
    interleave[0::2], interleave[1::2] = np.arange(n), np.arange(n) + n
    roles = pa.array(["human", "gpt"]).take(pa.array(np.tile([0, 1], n)))
    values = pa.concat_arrays([human, gpt]).take(pa.array(interleave))
    turns = pa.StructArray.from_arrays([roles, values], names=["from", "value"])
    conversations = pa.ListArray.from_arrays(pa.array(np.arange(0, 2 * n + 1, 2, dtype=np.int32)), turns)

    def strings(value: str | None) -> pa.Array:
        return pa.array(np.full(n, value, dtype=object), pa.string()) if value is not None else pa.nulls(n, pa.string())

    columns = {
        "id": ids,
        "source": strings(source),
        "split": strings("train"),
        "conversations": conversations,
        "task": strings(task),
        "image": image,
        "width": pa.array(sizes[pick, 0]),
        "height": pa.array(sizes[pick, 1]),
        "image_hash": pc.binary_join_element_wise("synthetic-", ids, ""),  # unique per row, like the bytes
        "phash": pa.array(rng.integers(0, 2**63, n, dtype=np.uint64) * 2 + rng.integers(0, 2, n, dtype=np.uint64)),
        "answer": strings(None),
        "choices": pa.array(np.full(n, None, dtype=object), pa.list_(pa.string())),
        "rationale": strings(None),
        "meta": strings('{"license": "synthetic"}'),
    }
    return pa.Table.from_arrays([columns[f.name] for f in ARROW_SCHEMA], schema=ARROW_SCHEMA)


def write_input(source: str, n: int, task: str, rng: np.random.Generator, vocabulary: pa.Array, root: Path) -> None:
    """The source's shard set, one shard of ROWS_PER_INPUT_SHARD rows at a time, and its JSON list."""
    from slime_data.shards import BATCH_ROWS, MANIFEST, fsync_write, sha256_file, shard_name, shard_set_manifest

    payloads = jpeg_payloads(IMAGE_KIB[source], PAYLOADS_PER_SOURCE, rng)
    folder = root / "inputs" / source
    folder.mkdir(parents=True, exist_ok=True)
    total = -(-n // ROWS_PER_INPUT_SHARD)
    shards, llava_rows = [], []
    for i in range(total):
        first = i * ROWS_PER_INPUT_SHARD
        part = source_table(source, first, min(ROWS_PER_INPUT_SHARD, n - first), task, rng, payloads, vocabulary)
        path = folder / shard_name(i, total)
        with pa.OSFile(str(path), "wb") as sink, pa.ipc.new_file(sink, part.schema) as writer:
            writer.write_table(part, max_chunksize=BATCH_ROWS)
        size, digest = path.stat().st_size, sha256_file(path)
        shards.append({"file": path.name, "rows": part.num_rows, "bytes": size, "sha256": digest})
        image_path = pc.struct_field(part["image"], "path")
        llava_rows.append(pa.table({"id": part["id"], "image": image_path, "conversations": part["conversations"]}))
    counts = {"source": {source: n}, "split": {"train": n}, "task": {task: n}}
    manifest = shard_set_manifest(
        name=source,
        command="benchmarks/bench_mix.py",
        config={"bench": source},
        shards=shards,
        counts=counts,
        rejects={},
        steps=[],
    )
    fsync_write(folder / MANIFEST, json.dumps(manifest, indent=2).encode())
    write_llava_json(pa.concat_tables(llava_rows), root / "json" / f"{source}.json")


def write_llava_json(table: pa.Table, path: Path) -> None:
    """The rows as LLaVA's trainer reads them: a JSON list of {id, image (path), conversations}."""
    import polars as pl

    path.parent.mkdir(parents=True, exist_ok=True)
    pl.from_arrow(table).write_json(path)


def generate(root: Path, rows: int, seed: int) -> float:
    clock = time.perf_counter()
    rng = np.random.default_rng(seed)
    letters = np.array(list("abcdefghijklmnopqrstuvwxyz"))
    vocabulary = pa.array(["".join(rng.choice(letters, rng.integers(3, 10))) for _ in range(20_000)])
    scale = rows / sum(n for _, n, _ in SOURCES.values())
    for source, (_, paper_rows, task) in SOURCES.items():
        write_input(source, round(paper_rows * scale), task, rng, vocabulary, root)
    return time.perf_counter() - clock


def recipe(root: Path, hygiene: bool, images: str = "copy") -> Path:
    """The paper's two stages over the generated inputs; with hygiene, the demo build's dedup and decontamination."""
    import yaml

    stages = {}
    for source, (stage, _, _) in SOURCES.items():
        stages.setdefault(stage, []).append({"name": source, "input": str(root / "inputs" / source)})
    data = {
        "name": "bench",
        "seed": 0,
        "max_repeats": 3,
        "rows_per_shard": ROWS_PER_OUTPUT_SHARD,
        "images": images,
        "hygiene": HYGIENE if hygiene else [],
        "stages": [
            {"name": "pretrain", "weight": 0.279, "sources": stages["pretrain"]},
            {"name": "sft", "weight": 0.721, "sources": stages["sft"]},
        ],
    }
    path = root / f"bench-mix-{'hygiene' if hygiene else 'plain'}-{images}.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


# -- contenders (each runs in its own process) ------------------------------------------

CONTENDERS = ("json-shuffle", "mix", "mix-plain", "mix-ref")
OUTPUT = {name: name for name in CONTENDERS}
MIXES = {"mix": (True, "copy"), "mix-plain": (False, "copy"), "mix-ref": (True, "reference")}  # hygiene, images


def json_shuffle(root: Path, target: int) -> dict[str, float]:
    """json + random.shuffle as a user script would: whole JSON lists in memory, Python shuffle, JSON dump."""
    rng = random.Random(0)
    stages: dict[str, list] = {}
    for source, (stage, _, _) in SOURCES.items():
        with open(root / "json" / f"{source}.json") as f:
            stages.setdefault(stage, []).extend(json.load(f))
    quotas = {"pretrain": round(0.279 * target)}
    quotas["sft"] = target - quotas["pretrain"]
    out = root / OUTPUT["json-shuffle"]
    out.mkdir(exist_ok=True)
    for stage, data in stages.items():
        whole, remainder = divmod(quotas[stage], len(data))
        mixed = data * whole + rng.sample(data, remainder)
        rng.shuffle(mixed)
        with open(out / f"{stage}.json", "w") as f:
            json.dump(mixed, f)
    return {}


def mix(root: Path, target: int, workers: int, name: str) -> dict[str, float]:
    from slime_data.mix.recipe import load_mix_recipe
    from slime_data.mix.run import run_mix

    out = root / OUTPUT[name]
    loaded = load_mix_recipe(recipe(root, *MIXES[name]))
    result = run_mix(loaded, target, out=out, manifest_path=out / "mix.json", workers=workers)
    return result.timings


def measure(args: list[str]) -> dict[str, float]:
    """Run a contender in a subprocess; wall time and the peaks of its process tree's summed memory.

    Three sums: RSS (a page mapped by several processes counts once per process, so with two
    writers the memory-mapped inputs count twice), PSS (each shared page split among the
    processes that map it: what the tree occupies) and anonymous memory (RSS without the
    file-backed pages, which the kernel can drop at any time). Also its CPU seconds (user + system,
    the contender and every process it waited for), which the machine's other load does not inflate.
    """
    cpu = _children_cpu()
    clock = time.perf_counter()
    process = subprocess.Popen([sys.executable, __file__, *args], stdout=subprocess.PIPE, text=True)
    parent, peak, peak_pss, peak_anon = psutil.Process(process.pid), 0, 0, 0
    while process.poll() is None:
        try:
            memory = [p.memory_full_info() for p in [parent, *parent.children(recursive=True)]]
            peak = max(peak, sum(m.rss for m in memory))
            peak_pss = max(peak_pss, sum(m.pss for m in memory))
            peak_anon = max(peak_anon, sum(m.rss - m.shared for m in memory))
        except psutil.Error:
            pass
        time.sleep(0.05)
    wall = time.perf_counter() - clock
    stdout = process.stdout.read()
    cpu = _children_cpu() - cpu
    if process.returncode:
        raise SystemExit(f"contender {args[1]} failed with exit code {process.returncode}")
    timings = json.loads(stdout.strip().splitlines()[-1])
    return {"wall": wall, "cpu": cpu, "peak_rss": peak, "peak_pss": peak_pss, "peak_anon": peak_anon, **timings}


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def folder_bytes(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())


def disk_write(folder: Path, size: int) -> float:
    """Bytes/s of ``dd`` writing ``size`` bytes (whole MiB, at least 64) sequentially and flushing them."""
    mib = max(64, size // 2**20)
    target = folder / "dd.bin"
    clock = time.perf_counter()
    command = ["dd", "if=/dev/zero", f"of={target}", "bs=1M", f"count={mib}", "conv=fdatasync"]
    subprocess.run(command, check=True, capture_output=True)
    seconds = time.perf_counter() - clock
    target.unlink()
    return mib * 2**20 / seconds


def report(results: dict[str, dict], target: int, rows: int, workers: int, dd_rate: float | None) -> None:
    print(f"\nmix --target {target:,} from {rows:,} rows, {workers} worker(s), {os.cpu_count()} CPU(s)")
    columns = {"wall s": 8, "CPU s": 7, "rows/s": 10, "out MiB": 8, "peak RSS MiB": 13, "PSS MiB": 8, "anon MiB": 9}
    print(f"{'contender':<12} " + " ".join(f"{name:>{width}}" for name, width in columns.items()) + "  phases")
    for name, r in results.items():
        mib = [r[key] / 2**20 for key in ("out_bytes", "peak_rss", "peak_pss", "peak_anon")]
        values = [f"{r['wall']:.1f}", f"{r['cpu']:.1f}", f"{target / r['wall']:,.0f}", *(f"{m:,.0f}" for m in mib)]
        phases = ", ".join(f"{k} {r[k]:.1f}s" for k in ("hygiene", "plan", "write", "finish") if k in r)
        cells = " ".join(f"{value:>{width}}" for value, width in zip(values, columns.values(), strict=True))
        print(f"{name:<12} {cells}  {phases}")
    baseline = results.get("json-shuffle")
    for name in [n for n in MIXES if n in results]:
        r = results[name]
        if baseline:
            print(
                f"{name} / json-shuffle: wall x{r['wall'] / baseline['wall']:.2f}, "
                f"peak RSS x{r['peak_rss'] / baseline['peak_rss']:.2f} (json-shuffle writes paths only)"
            )
        write_rate = r["out_bytes"] / r["write"]
        if dd_rate:
            print(
                f"{name} write phase: {write_rate / 2**20:,.0f} MiB/s vs dd {dd_rate / 2**20:,.0f} MiB/s: "
                f"{write_rate / dd_rate:.2f} of the disk's sequential write rate"
            )
        print(
            f"{name}: {r['out_bytes'] / 2**20 / r['cpu']:,.0f} MiB "
            "of shards per CPU second (whole run; load-independent)"
        )
    if "mix" in results and "mix-ref" in results:
        copy, ref = results["mix"], results["mix-ref"]
        print(
            f"mix-ref / mix: bytes written x{ref['out_bytes'] / copy['out_bytes']:.3f} "
            f"({ref['out_bytes'] / 2**20:,.0f} vs {copy['out_bytes'] / 2**20:,.0f} "
            f"MiB), write phase x{ref['write'] / copy['write']:.2f}, "
            f"CPU x{ref['cpu'] / copy['cpu']:.2f}, wall x{ref['wall'] / copy['wall']:.2f}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=10_000, help="input rows in all (default 10K, ~1.8 GiB of images)")
    parser.add_argument("--target", default="9.5k", help="mix target (default 9.5k)")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--only", nargs="+", choices=CONTENDERS, default=list(CONTENDERS), help="default: all")
    parser.add_argument("--dir", type=Path, default=None, help="working folder (default: a temporary one, removed)")
    parser.add_argument("--contender", choices=CONTENDERS, help=argparse.SUPPRESS)
    args = parser.parse_args()

    from slime_data.mix.recipe import parse_target

    target = parse_target(args.target)
    if args.contender:
        if args.contender == "json-shuffle":
            timings = json_shuffle(args.dir, target)
        else:
            timings = mix(args.dir, target, args.workers, args.contender)
        print(json.dumps(timings))
        return

    root = args.dir or Path(tempfile.mkdtemp(prefix="bench-mix-"))
    results, dd_rate = {}, None
    try:
        generated = generate(root, args.rows, seed=0)
        input_bytes = sum(p.stat().st_size for p in (root / "inputs").rglob("*.arrow"))
        print(f"generated {args.rows:,} input rows ({input_bytes / 2**20:,.0f} MiB of Arrow shards), {generated:.0f} s")
        common = ["--dir", str(root), "--target", str(target), "--workers", str(args.workers)]
        for name in args.only:
            results[name] = measure(["--contender", name, *common])
            results[name]["out_bytes"] = folder_bytes(root / OUTPUT[name])
            shutil.rmtree(root / OUTPUT[name])
        written = [r["out_bytes"] for name, r in results.items() if name != "json-shuffle"]
        if written:
            dd_rate = disk_write(root, max(written))
    finally:
        if args.dir is None:
            shutil.rmtree(root, ignore_errors=True)
    report(results, target, args.rows, args.workers, dd_rate)


if __name__ == "__main__":
    main()
