"""Teacher throughput against a loopback OpenAI-compatible server with 50 ms latency per request.

Measures, in one run: rows/s with a sequential client (concurrency 1, the baseline), rows/s at
concurrency 32 (goal: >= 20x the baseline), and rows/s when every request is a cache hit.
The baseline is what a user's script would otherwise do: a loop calling the `openai` client one
request at a time (as data-generation scripts written around GPT-4V usually are). Run it to choose
`limits.concurrency` for a server, or to check that the cache makes a rerun free.
The server runs in its own process so its threads do not compete with the client for the GIL.

    python benchmarks/bench_teacher.py [--rows 640] [--sequential-rows 40] [--latency 0.05]
"""

from __future__ import annotations

import argparse
import io
import json
import multiprocessing as mp
import os
import re
import tempfile
import time
from pathlib import Path

import yaml
from PIL import Image

from slime_data.record import ImageRef, Record
from slime_data.steps.teacher import TeacherStep
from slime_data.teacher.testing import FakeOpenAIServer, ReceivedRequest, ScriptedReply

GOLD = re.compile(r"The correct answer is: (.*)")


def record(i: int) -> Record:
    buffer = io.BytesIO()
    Image.new("RGB", (96, 64), (i % 256, 80, 160)).save(buffer, format="PNG")
    return Record(
        id=f"bench/{i}",
        source="bench",
        split="train",
        task="chart",
        conversations=[
            {"from": "human", "value": f"<image>\nWhat is the value of bar {i}?"},
            {"from": "gpt", "value": str(i)},
        ],
        image=ImageRef(bytes=buffer.getvalue(), path=f"{i}.png"),
        width=96,
        height=64,
        answer=str(i),
    )


def serve(latency: float, port_queue: mp.Queue, stop: mp.Event) -> None:
    def script(request: ReceivedRequest) -> ScriptedReply:
        gold = GOLD.search(request.user_text)[1]
        content = json.dumps({"reasoning": f"The bar reads {gold}.", "final_answer": gold})
        return ScriptedReply(content=content, delay_s=latency)

    with FakeOpenAIServer(script) as server:
        port_queue.put(server.url)
        stop.wait()


def rows_per_second(config: Path, url: str, cache: Path, rows: list[Record], concurrency: int) -> tuple[float, dict]:
    step = TeacherStep(mode="rationale", config=config, base_url=url, cache=cache, concurrency=concurrency)
    started = time.perf_counter()
    out = list(step.run(rows))
    elapsed = time.perf_counter() - started
    assert len(out) == len(rows) and all(r.rationale for r in out)
    return len(rows) / elapsed, step.usage.to_json()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=640, help="rows for the concurrent and cached runs")
    parser.add_argument("--sequential-rows", type=int, default=40, help="rows for the sequential baseline")
    parser.add_argument("--latency", type=float, default=0.05, help="server latency per request, seconds")
    parser.add_argument("--concurrency", type=int, default=32)
    args = parser.parse_args()

    os.environ.setdefault("OPENAI_API_KEY", "sk-benchmark-not-a-real-key")
    urls, stop = mp.Queue(), mp.Event()
    server = mp.Process(target=serve, args=(args.latency, urls, stop), daemon=True)
    server.start()
    url = urls.get(timeout=30)
    try:
        with tempfile.TemporaryDirectory() as tmp:
            config = Path(tmp) / "teacher.yaml"
            config.write_text(yaml.safe_dump({"limits": {"rpm": None, "tpm": None}}))
            rows = [record(i) for i in range(args.rows)]
            sequential, _ = rows_per_second(config, url, Path(tmp) / "seq.sqlite", rows[: args.sequential_rows], 1)
            concurrent, usage = rows_per_second(config, url, Path(tmp) / "cache.sqlite", rows, args.concurrency)
            assert usage["requests_sent"] == args.rows
            cached, usage = rows_per_second(config, url, Path(tmp) / "cache.sqlite", rows, args.concurrency)
            assert usage["requests_sent"] == 0 and usage["cache_hits"] == args.rows
    finally:
        stop.set()
        server.join(timeout=10)

    print(f"loopback server, {args.latency * 1000:.0f} ms per request, {os.cpu_count()} CPUs")
    print(f"{'client':<28}{'rows/s':>10}{'vs sequential':>16}")
    print(f"{'sequential (concurrency 1)':<28}{sequential:>10.1f}{1.0:>15.1f}x")
    print(
        f"{f'concurrency {args.concurrency}':<28}{concurrent:>10.1f}{concurrent / sequential:>15.1f}x   (goal >= 20x)"
    )
    print(f"{'all cache hits':<28}{cached:>10.1f}{cached / sequential:>15.1f}x")


if __name__ == "__main__":
    main()
