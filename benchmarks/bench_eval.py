"""Evaluation throughput: `slime-model eval`'s batched generation vs one sample at a time.

The baseline is the loop the released SliME/LLaVA evaluation scripts (`model_vqa_loader.py`) and
lmms-eval's SliME wrapper run: one prompt, one image, greedy, batch 1. Both sides here are the same
runner, model, prompts and images (the held-out synthetic split: charts, tables, documents and
geometry at their native resolutions), in the same process; only --batch differs, and the
predictions are checked to be identical. Run it to pick --batch for your device, or to see what
batching buys before a long evaluation.

Both sides decode, slice, normalise and tokenise every sample alone (the processor's work, done
once per sample whatever the batch); only the model runs batched. The bench times that shared
work by itself and prints the ceiling it puts on the ratio: batch-1 time / shared time, the
speed-up if the batched model cost nothing.

    python benchmarks/bench_eval.py                               # CPU, tiny + small, one thread
    python benchmarks/bench_eval.py --device cuda --dtype bfloat16 --configs small clip-l --batch 16
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import torch
from bench_model import bench_config
from rich.console import Console
from rich.table import Table

from slime_data.synth import SynthConfig, generate_synth
from slime_model.evaluation.runner import PREDICTIONS_FILE, build_request, run_benchmark
from slime_model.evaluation.specs import load_benchmarks, read_for_eval
from slime_model.modeling import SliMEForConditionalGeneration
from slime_model.processing import SliMEProcessor
from slime_model.tiny import tiny_tokenizer


def timed_run(spec, items, model, processor, out: Path, batch: int, max_new_tokens: int) -> tuple[float, dict]:
    if model.device.type == "cuda":
        torch.cuda.synchronize()
    started = time.perf_counter()
    run_benchmark(spec, items, model, processor, out, batch=batch, max_new_tokens=max_new_tokens)
    if model.device.type == "cuda":
        torch.cuda.synchronize()
    seconds = time.perf_counter() - started
    lines = [json.loads(line) for line in (out / spec.name / PREDICTIONS_FILE).read_text().splitlines()]
    return seconds, {line["id"]: line["prediction"] for line in lines}


def shared_seconds(spec, items, processor, max_new_tokens: int) -> float:
    """What both sides do per sample, alone: open and decode the images, build the prompt, run the
    processor (slicing, resizing, normalisation, chat template, tokenisation)."""
    started = time.perf_counter()
    for item in items:
        request, _ = build_request(spec, item, processor.settings.image_token, max_new_tokens)
        processor([request.conversation], [request.images], add_generation_prompt=True)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--configs", nargs="+", default=["tiny", "small"], choices=["tiny", "small", "clip-l"])
    parser.add_argument("--samples", type=int, default=32)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument(
        "--max-new-tokens",
        type=int,
        nargs="+",
        default=[16, 128],
        help="answer lengths to time: short (VQA, multiple choice) and long (MM-Vet, LLaVA-Bench)",
    )
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--dtype", default="float32", choices=["float32", "bfloat16", "float16"])
    parser.add_argument("--threads", type=int, default=1, help="CPU threads (1: steadier on a shared machine)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    console = Console()
    spec = load_benchmarks()["synth_heldout"]
    table = Table(title=f"eval throughput, {args.samples} samples, {args.device} {args.dtype}")
    columns = (
        "config",
        "max new tokens",
        "batch 1 samples/s",
        f"batch {args.batch} samples/s",
        "ratio",
        "ceiling",
        "same predictions",
    )
    for column in columns:
        table.add_column(column)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "synth_heldout"
        generate_synth(folder, SynthConfig(n=max(4, args.samples // 3), seed=1, captions=0))
        items = read_for_eval(spec, folder)[: args.samples]
        for name in args.configs:
            config = bench_config(name)
            torch.manual_seed(0)
            model = SliMEForConditionalGeneration(config).eval().to(args.device, getattr(torch, args.dtype))
            processor = SliMEProcessor.from_config(config, tiny_tokenizer())
            run_benchmark(spec, items[:2], model, processor, Path(tmp) / f"warm-{name}", batch=2, max_new_tokens=2)
            for tokens in args.max_new_tokens:
                out = Path(tmp) / f"{name}-{tokens}"
                alone, alone_predictions = timed_run(spec, items, model, processor, out / "1", 1, tokens)
                batched, batched_predictions = timed_run(spec, items, model, processor, out / "b", args.batch, tokens)
                ceiling = alone / shared_seconds(spec, items, processor, tokens)
                table.add_row(
                    name,
                    str(tokens),
                    f"{len(items) / alone:.2f}",
                    f"{len(items) / batched:.2f}",
                    f"{alone / batched:.2f}x",
                    f"{ceiling:.2f}x",
                    str(alone_predictions == batched_predictions),
                )
    console.print(table)


if __name__ == "__main__":
    main()
