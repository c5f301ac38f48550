"""Benchmark `slime-data mix --target 2M` against the naive way (the released SliME code's).

    python benchmarks/bench_mix.py                      # ~2.1M input rows, --target 2M (a few minutes, ~5 GB of disk)
    python benchmarks/bench_mix.py --rows 210000 --target 200k --workers 2

1. Generates three input shard sets in the paper's proportions (LLaVA-558K : ShareGPT4V-665K :
   SMR-476K) with tiny unique PNGs (~200 bytes), straight from vectorised Arrow arrays, plus the
   same rows as LLaVA-format JSON lists (image paths, as the released code reads them).
2. Runs each contender in its own subprocess, sampling the whole process tree's RSS:
   * naive:  json.load every source, list.extend per stage, whole repeats + random.sample
             remainder, random.shuffle, json.dump — everything in memory at once;
   * mix:    `run_mix` end to end: exact + near dedup and decontamination (the demo build's
             benchmark excerpts) across all inputs, allocation, the planned shuffle, parallel
             shard writing, manifests;
   * mix-plain: the same without hygiene — the work the naive way does, done the mix's way.
3. Prints wall time, rows/s, peak memory of the contender's process tree (summed RSS, PSS and
   anonymous memory, see ``measure``) and the phases (hygiene, plan, write), with ratios to naive.
"""

from __future__ import annotations

import argparse
import json
import os
import random
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

SOURCES = {"llava_pretrain": ("pretrain", 558_128, "caption"), "sharegpt4v": ("sft", 665_058, "general"), "sophisticated": ("sft", 476_000, "chart")}
QUESTION_WORDS = 8
ROWS_PER_INPUT_SHARD = 100_000
HYGIENE = [
    {"step": "exact_dedup"},
    {"step": "near_dedup", "max_hamming": 6, "min_jaccard": 0.8},
    {"step": "decontaminate", "benchmarks": [
        {"format": "mathvista", "path": "{package}/corpus/benchmarks/mathvista/data/testmini.json"},
        {"format": "mmmu", "path": "{package}/corpus/benchmarks/mmmu/mmmu/answer_dict_val.json"},
    ]},
]


def tiny_pngs(count: int, rng: np.random.Generator) -> list[bytes]:
    import io

    from PIL import Image

    pool = []
    for _ in range(count):
        buffer = io.BytesIO()
        Image.fromarray(rng.integers(0, 256, size=(6, 6, 3), dtype=np.uint8), "RGB").save(buffer, "PNG")
        pool.append(buffer.getvalue())
    return pool


def source_table(source: str, n: int, task: str, rng: np.random.Generator, pool: pa.Array, vocabulary: pa.Array) -> pa.Table:
    """``n`` rows with ARROW_SCHEMA columns, built without one Python object per row."""
    from slime_data.record import ARROW_SCHEMA

    number = pc.cast(pa.array(np.arange(n)), pa.string())
    ids = pc.binary_join_element_wise(f"{source}/", number, "")
    # A PNG from the pool, made unique by trailing bytes after IEND (decoders stop at IEND).
    image_bytes = pc.binary_join_element_wise(pc.cast(pool.take(pa.array(rng.integers(0, len(pool), n))), pa.binary()), pc.cast(ids, pa.binary()), b"")
    image = pa.StructArray.from_arrays([image_bytes, pc.binary_join_element_wise("images/", number, ".png", "")], names=["bytes", "path"])
    # Questions of random words: as unrelated to each other as real questions (no near-duplicates by accident).
    words = [vocabulary.take(pa.array(rng.integers(0, len(vocabulary), n))) for _ in range(QUESTION_WORDS)]
    human = pc.binary_join_element_wise("<image>\n", pc.binary_join_element_wise(*words, " "), "?", "")
    gpt = pc.binary_join_element_wise("answer ", number, "")
    interleave = np.empty(2 * n, dtype=np.int64)
    interleave[0::2], interleave[1::2] = np.arange(n), np.arange(n) + n
    turns = pa.StructArray.from_arrays(
        [pa.array(["human", "gpt"]).take(pa.array(np.tile([0, 1], n))), pa.concat_arrays([human, gpt]).take(pa.array(interleave))], names=["from", "value"]
    )
    conversations = pa.ListArray.from_arrays(pa.array(np.arange(0, 2 * n + 1, 2, dtype=np.int32)), turns)
    strings = lambda value: pa.array(np.full(n, value, dtype=object), pa.string()) if value is not None else pa.nulls(n, pa.string())  # noqa: E731
    columns = {
        "id": ids, "source": strings(source), "split": strings("train"), "conversations": conversations, "task": strings(task), "image": image,
        "width": pa.array(np.full(n, 6, np.int32)), "height": pa.array(np.full(n, 6, np.int32)),
        "image_hash": pc.binary_join_element_wise("synthetic-", ids, ""),  # unique per row, like a content hash of unique bytes
        "phash": pa.array(rng.integers(0, 2**63, n, dtype=np.uint64) * 2 + rng.integers(0, 2, n, dtype=np.uint64)),
        "answer": strings(None), "choices": pa.array(np.full(n, None, dtype=object), pa.list_(pa.string())), "rationale": strings(None), "meta": strings('{"license": "synthetic"}'),
    }
    return pa.Table.from_arrays([columns[f.name] for f in ARROW_SCHEMA], schema=ARROW_SCHEMA)


def write_input(table: pa.Table, folder: Path, source: str) -> None:
    from slime_data.shards import BATCH_ROWS, MANIFEST, fsync_write, sha256_file, shard_name, shard_set_manifest

    folder.mkdir(parents=True, exist_ok=True)
    total = -(-table.num_rows // ROWS_PER_INPUT_SHARD)
    shards = []
    for i in range(total):
        path = folder / shard_name(i, total)
        part = table.slice(i * ROWS_PER_INPUT_SHARD, ROWS_PER_INPUT_SHARD)
        with pa.OSFile(str(path), "wb") as sink, pa.ipc.new_file(sink, table.schema) as writer:
            writer.write_table(part, max_chunksize=BATCH_ROWS)
        shards.append({"file": path.name, "rows": part.num_rows, "bytes": path.stat().st_size, "sha256": sha256_file(path)})
    counts = {"source": {source: table.num_rows}, "split": {"train": table.num_rows}, "task": {table.column("task")[0].as_py(): table.num_rows}}
    manifest = shard_set_manifest(name=source, command="benchmarks/bench_mix.py", config={"bench": source}, shards=shards, counts=counts, rejects={}, steps=[])
    fsync_write(folder / MANIFEST, json.dumps(manifest, indent=2).encode())


def write_llava_json(table: pa.Table, path: Path) -> None:
    """The same rows as the released code's input: a JSON list of {id, image, conversations}."""
    import polars as pl

    frame = pl.from_arrow(pa.table({"id": table["id"], "image": pc.struct_field(table["image"], "path"), "conversations": table["conversations"]}))
    path.parent.mkdir(parents=True, exist_ok=True)
    frame.write_json(path)


def generate(root: Path, rows: int, seed: int) -> float:
    clock = time.perf_counter()
    rng = np.random.default_rng(seed)
    pool = pa.array(tiny_pngs(4096, rng), pa.binary())
    letters = np.array(list("abcdefghijklmnopqrstuvwxyz"))
    vocabulary = pa.array(["".join(rng.choice(letters, rng.integers(3, 10))) for _ in range(20_000)])
    scale = rows / sum(n for _, n, _ in SOURCES.values())
    for source, (_, paper_rows, task) in SOURCES.items():
        table = source_table(source, round(paper_rows * scale), task, rng, pool, vocabulary)
        write_input(table, root / "inputs" / source, source)
        write_llava_json(table, root / "json" / f"{source}.json")
        del table
    return time.perf_counter() - clock


def recipe(root: Path, hygiene: bool) -> Path:
    """The paper's two stages over the generated inputs; with hygiene, the demo build's dedup and decontamination."""
    import yaml

    stages = {}
    for source, (stage, _, _) in SOURCES.items():
        stages.setdefault(stage, []).append({"name": source, "input": str(root / "inputs" / source)})
    data = {
        "name": "bench", "seed": 0, "max_repeats": 3, "rows_per_shard": 20_000,
        "hygiene": HYGIENE if hygiene else [],
        "stages": [{"name": "pretrain", "weight": 0.279, "sources": stages["pretrain"]}, {"name": "sft", "weight": 0.721, "sources": stages["sft"]}],
    }
    path = root / f"bench-mix-{'hygiene' if hygiene else 'plain'}.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


# -- contenders (each runs in its own process) ------------------------------------------

# naive: the baseline; mix: the full command (dedup + decontamination + mixing);
# mix-plain: the same recipe without hygiene, i.e. the same work the naive way does.
CONTENDERS = ("naive", "mix", "mix-plain")


def naive(root: Path, target: int) -> dict[str, float]:
    """The released code's way: whole JSON lists in memory, Python shuffle, JSON dump."""
    rng = random.Random(0)
    stages: dict[str, list] = {}
    for source, (stage, _, _) in SOURCES.items():
        with open(root / "json" / f"{source}.json") as f:
            stages.setdefault(stage, []).extend(json.load(f))
    quotas = {"pretrain": round(0.279 * target)}
    quotas["sft"] = target - quotas["pretrain"]
    out = root / "naive"
    out.mkdir(exist_ok=True)
    for stage, data in stages.items():
        whole, remainder = divmod(quotas[stage], len(data))
        mixed = data * whole + rng.sample(data, remainder)
        rng.shuffle(mixed)
        with open(out / f"{stage}.json", "w") as f:
            json.dump(mixed, f)
    return {}


def mix(root: Path, target: int, workers: int, hygiene: bool) -> dict[str, float]:
    from slime_data.mix.recipe import load_mix_recipe
    from slime_data.mix.run import run_mix

    out = root / ("mix" if hygiene else "mix-plain")
    result = run_mix(load_mix_recipe(recipe(root, hygiene)), target, out=out, manifest_path=out / "mix.json", workers=workers)
    return result.timings


def measure(args: list[str]) -> dict[str, float]:
    """Run a contender in a subprocess; wall time and the peaks of its process tree's summed memory.

    Three sums: RSS (a page mapped by several processes counts once per process, so with two
    writers the memory-mapped inputs count twice), PSS (each shared page split among the
    processes that map it: what the tree occupies) and anonymous memory (RSS without the
    file-backed pages, which the kernel can drop at any time).
    """
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
    if process.returncode:
        raise SystemExit(f"contender {args[1]} failed with exit code {process.returncode}")
    return {"wall": wall, "peak_rss": peak, "peak_pss": peak_pss, "peak_anon": peak_anon, **json.loads(stdout.strip().splitlines()[-1])}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=2_100_000, help="input rows in all (default 2.1M)")
    parser.add_argument("--target", default="2M", help="mix target (default 2M)")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--only", nargs="+", choices=CONTENDERS, default=list(CONTENDERS), help="contenders to run (default: all)")
    parser.add_argument("--dir", type=Path, default=None, help="working folder (default: a temporary one, removed after)")
    parser.add_argument("--contender", choices=CONTENDERS, help=argparse.SUPPRESS)
    args = parser.parse_args()

    from slime_data.mix.recipe import parse_target

    target = parse_target(args.target)
    if args.contender:
        timings = naive(args.dir, target) if args.contender == "naive" else mix(args.dir, target, args.workers, args.contender == "mix")
        print(json.dumps(timings))
        return

    root = args.dir or Path(tempfile.mkdtemp(prefix="bench-mix-"))
    try:
        generated = generate(root, args.rows, seed=0)
        input_bytes = sum(p.stat().st_size for p in (root / "inputs").rglob("*.arrow"))
        print(f"generated {args.rows:,} input rows ({input_bytes / 2**20:,.0f} MiB of Arrow shards) in {generated:.1f}s")
        common = ["--dir", str(root), "--target", str(target), "--workers", str(args.workers)]
        results = {name: measure(["--contender", name, *common]) for name in args.only}
    finally:
        if args.dir is None:
            shutil.rmtree(root, ignore_errors=True)

    print(f"\nmix --target {target:,} from {args.rows:,} rows, {args.workers} worker(s), {os.cpu_count()} CPU(s)")
    print(f"{'contender':<10} {'wall s':>8} {'rows/s':>10} {'peak RSS MiB':>13} {'PSS MiB':>8} {'anon MiB':>9}  phases")
    for name, r in results.items():
        phases = ", ".join(f"{k} {r[k]:.1f}s" for k in ("hygiene", "plan", "write", "finish") if k in r)
        print(f"{name:<10} {r['wall']:>8.1f} {target / r['wall']:>10,.0f} {r['peak_rss'] / 2**20:>13,.0f} {r['peak_pss'] / 2**20:>8,.0f} {r['peak_anon'] / 2**20:>9,.0f}  {phases}")
    if "naive" not in results:
        return
    naive_r = results["naive"]
    for name in [n for n in ("mix", "mix-plain") if n in results]:
        r = results[name]
        print(f"{name} / naive: wall x{r['wall'] / naive_r['wall']:.2f}, peak RSS x{r['peak_rss'] / naive_r['peak_rss']:.2f}")
    if "mix" in results:
        mix_r = results["mix"]
        yes = lambda ok: "yes" if ok else "NO"  # noqa: E731
        print(f"goals (full mix): peak memory <= 2 GiB: RSS {yes(mix_r['peak_rss'] <= 2 * 2**30)}, PSS {yes(mix_r['peak_pss'] <= 2 * 2**30)}; "
              f"below naive: RSS {yes(mix_r['peak_rss'] < naive_r['peak_rss'])}, PSS {yes(mix_r['peak_pss'] < naive_r['peak_pss'])}; "
              f"planning (hygiene aside) < 30 s: {yes(mix_r['plan'] < 30)}; faster end to end: {yes(mix_r['wall'] < naive_r['wall'])}")


if __name__ == "__main__":
    main()
