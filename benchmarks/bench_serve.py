"""`slime-model serve` benchmark: dynamic batching vs one request at a time, same server code, same run.

Baseline: the same server with `--max-batch 1` (every request decoded alone, as a server without
batching would). Both serve the same checkpoint in this process (random weights of the "small"
config of bench_model.py unless --model names a checkpoint folder) over real HTTP on 127.0.0.1,
loaded by closed-loop clients at concurrency 1, 8 and 32, each request one image (336x224) and
a question, greedy, up to --max-tokens new tokens. Run it to choose --max-batch/--max-wait-ms for
your hardware, or to check that batching still pays off after a change to generation.

Prints requests/s, p50 and p95 latency and the mean batch size per setting, and the throughput
ratio dynamic / baseline per concurrency. Measured on a shared, loaded CPU, read the ratios.

    python benchmarks/bench_serve.py                     # CPU, one torch thread, small config
    python benchmarks/bench_serve.py --model runs/tiny/stage-3 --device cuda --requests 128
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import io
import statistics
import time
from pathlib import Path

import httpx2
import numpy as np
import torch
from bench_model import bench_config
from PIL import Image
from rich.console import Console
from rich.table import Table

from slime_model.generation import load_checkpoint
from slime_model.modeling import SliMEForConditionalGeneration
from slime_model.processing import SliMEProcessor
from slime_model.serving.app import create_app
from slime_model.serving.settings import ServeSettings
from slime_model.serving.testing import running_server
from slime_model.tiny import tiny_tokenizer

QUESTIONS = ["What is shown?", "How many bars are there?", "Which colour is the largest region?", "Describe it."]


def image_url(seed: int) -> str:
    pixels = np.random.default_rng(seed).integers(0, 256, (224, 336, 3), dtype=np.uint8)
    out = io.BytesIO()
    Image.fromarray(pixels).save(out, format="PNG")
    return "data:image/png;base64," + base64.b64encode(out.getvalue()).decode("ascii")


def load(args: argparse.Namespace):
    if args.model is not None:
        return load_checkpoint(args.model)
    config = bench_config("small")
    torch.manual_seed(0)
    model = SliMEForConditionalGeneration(config).eval().to(args.device)
    return model, SliMEProcessor.from_config(config, tiny_tokenizer())


async def closed_loop(url: str, bodies: list[dict], concurrency: int) -> tuple[float, list[float]]:
    """`concurrency` clients each send their next request when the previous answer arrives."""
    pending = list(reversed(bodies))
    latencies: list[float] = []

    async def client(http: httpx2.AsyncClient) -> None:
        while pending:
            body = pending.pop()
            start = time.perf_counter()
            response = await http.post(f"{url}/v1/chat/completions", json=body)
            response.raise_for_status()
            latencies.append(time.perf_counter() - start)

    limits = httpx2.Limits(max_connections=concurrency)
    async with httpx2.AsyncClient(timeout=600, limits=limits) as http:
        start = time.perf_counter()
        await asyncio.gather(*(client(http) for _ in range(concurrency)))
        return time.perf_counter() - start, latencies


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", type=Path, help="checkpoint folder (default: random small config)")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 8, 32])
    parser.add_argument("--requests", type=int, default=64, help="requests per setting (at least 2x concurrency)")
    parser.add_argument("--max-tokens", type=int, default=64)
    parser.add_argument("--max-batch", type=int, default=32)
    parser.add_argument("--max-wait-ms", type=float, default=20.0)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    console = Console()
    model, processor = load(args)
    name = "bench"
    images = [image_url(seed) for seed in range(8)]
    table = Table(title=f"slime-model serve, {args.max_tokens} new tokens, 1 image per request, {args.device}")
    for column in ("concurrency", "server", "requests/s", "p50 ms", "p95 ms", "mean batch"):
        table.add_column(column, justify="right")
    ratios = []
    for concurrency in args.concurrency:
        count = max(args.requests if concurrency > 1 else args.requests // 4, 2 * concurrency)
        bodies = [
            {
                "model": name,
                "max_tokens": args.max_tokens,
                "temperature": 0,
                "messages": [
                    {
                        "role": "user",
                        "content": [
                            {"type": "image_url", "image_url": {"url": images[i % len(images)]}},
                            {"type": "text", "text": QUESTIONS[i % len(QUESTIONS)]},
                        ],
                    }
                ],
            }
            for i in range(count)
        ]
        throughput = {}
        for label, max_batch in (("max-batch 1", 1), (f"dynamic (max-batch {args.max_batch})", args.max_batch)):
            settings = ServeSettings(model_name=name, max_batch=max_batch, max_wait_ms=args.max_wait_ms)
            app = create_app(model, processor, settings)
            with running_server(app) as url:
                seconds, latencies = asyncio.run(closed_loop(url, bodies, concurrency))
            stats = app.state.queue.stats.as_dict()
            throughput[max_batch] = len(bodies) / seconds
            quantiles = statistics.quantiles(latencies, n=20)
            table.add_row(
                str(concurrency),
                label,
                f"{throughput[max_batch]:.2f}",
                f"{statistics.median(latencies) * 1000:.0f}",
                f"{quantiles[18] * 1000:.0f}",
                f"{stats['mean_batch']:.1f}",
            )
        ratios.append((concurrency, throughput[args.max_batch] / throughput[1]))
    console.print(table)
    console.print(
        "throughput, dynamic batching / max-batch 1: "
        + ", ".join(f"{ratio:.2f}x at concurrency {concurrency}" for concurrency, ratio in ratios)
    )


if __name__ == "__main__":
    main()
