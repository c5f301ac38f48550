"""Cancelled requests free their slot, a burst of 64 requests all succeed, SIGTERM lets in-flight
requests finish, and the project's own teacher client runs against the served model end to end."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx2
import openai
import yaml
from typer.testing import CliRunner

from slime_data.cli.main import app as data_app
from slime_data.record import ImageRef, Record
from slime_data.shards import ShardSet, write_shard_set
from slime_model.generation import generate_batch
from slime_model.serving.testing import free_socket
from tests.slime_model.serving.serving_helpers import MODEL_NAME, data_url, png_bytes, user_message

NEVER_ENDING = {"model": MODEL_NAME, "messages": [user_message("Hi")], "max_tokens": 1900, "temperature": 0}


def recording_batches(loaded):
    """A run_batch that keeps every result it returns (the worker is one thread)."""
    results = []

    def run(requests, on_text, is_cancelled):
        out = generate_batch(*loaded, requests, on_text, is_cancelled)
        results.extend(out)
        return out

    return run, results


def test_a_client_that_disconnects_frees_its_batch_slot(server, loaded):
    run, results = recording_batches(loaded)
    url = server(run_batch=run, max_batch=1, max_wait_ms=0)
    # "Hi" greedily runs to the full 1,900 tokens on this checkpoint (seconds of decoding).
    with httpx2.stream("POST", f"{url}/v1/chat/completions", json={**NEVER_ENDING, "stream": True}, timeout=60) as r:
        assert next(line for line in r.iter_lines() if '"content"' in line and '"content": ""' not in line)
    try:
        httpx2.post(f"{url}/v1/chat/completions", json=NEVER_ENDING, timeout=httpx2.Timeout(60, read=0.5))
    except httpx2.ReadTimeout:
        pass
    short = {**NEVER_ENDING, "max_tokens": 3}
    assert httpx2.post(f"{url}/v1/chat/completions", json=short, timeout=60).status_code == 200
    streamed, waited, after = results
    assert streamed.finish_reason == "cancelled" and streamed.completion_tokens < 1900
    assert waited.finish_reason == "cancelled" and waited.completion_tokens < 1900
    assert after.finish_reason == "length" and after.completion_tokens == 3
    assert httpx2.get(f"{url}/health").json()["running"] == 0


def test_64_concurrent_requests_all_succeed(server):
    url = server(max_batch=16, max_wait_ms=20)
    image = data_url(png_bytes(100, 80, seed=9))

    def messages(i: int) -> list[dict]:
        return [user_message(f"Question {i % 4}?", image) if i % 2 else user_message(f"Question {i % 4}?")]

    async def burst() -> list:
        async with openai.AsyncOpenAI(base_url=f"{url}/v1", api_key="x", max_retries=0, timeout=120) as client:
            calls = [
                client.chat.completions.create(
                    model=MODEL_NAME,
                    messages=messages(i),
                    max_tokens=6,
                    temperature=0,
                    stream=i % 3 == 0,
                )
                for i in range(64)
            ]
            replies = await asyncio.gather(*calls)
            return [await _text(reply) for reply in replies]

    texts = asyncio.run(burst())
    assert len(texts) == 64 and all(texts)
    for i in range(8):  # the same question gets the same greedy answer, streamed or not, whatever its batch
        assert len({texts[j] for j in range(i, 64, 8)}) == 1
    health = httpx2.get(f"{url}/health").json()
    assert health["requests"] == 64 and health["largest_batch"] > 1 and health["queued"] == 0


async def _text(reply) -> str:
    if isinstance(reply, openai.AsyncStream):
        return "".join([chunk.choices[0].delta.content or "" async for chunk in reply if chunk.choices])
    return reply.choices[0].message.content


def test_sigterm_lets_the_request_in_flight_finish(tiny_checkpoint: Path):
    sock = free_socket()
    port = sock.getsockname()[1]
    sock.close()
    command = [sys.executable, "-c", "from slime_model.cli import app; app()", "serve", "--model", str(tiny_checkpoint)]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path), "SLIME_API_KEY": "sk-env", "OMP_NUM_THREADS": "1"}
    command += ["--port", str(port)]
    process = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                if httpx2.get(f"{url}/health").status_code == 200:
                    break
            except httpx2.TransportError:
                assert process.poll() is None and time.monotonic() < deadline, process.stdout.read().decode()
                time.sleep(0.2)
        answer: dict = {}
        body = {**NEVER_ENDING, "model": tiny_checkpoint.name, "max_tokens": 100}
        headers = {"Authorization": "Bearer sk-env"}  # the key came from $SLIME_API_KEY
        worker = threading.Thread(
            target=lambda: answer.update(
                httpx2.post(f"{url}/v1/chat/completions", json=body, headers=headers, timeout=120).json()
            )
        )
        worker.start()
        while httpx2.get(f"{url}/health").json()["running"] == 0:
            time.sleep(0.05)
        process.send_signal(signal.SIGTERM)
        worker.join(120)
        assert process.wait(60) == 0, process.stdout.read().decode()
    finally:
        if process.poll() is None:
            process.kill()
    output = process.stdout.read().decode()
    assert answer["choices"][0]["finish_reason"] == "length" and answer["usage"]["completion_tokens"] == 100, output
    assert "requests answered" in output and "API key required" in output


def test_the_teacher_writes_qa_through_the_served_model(server, tmp_path: Path):
    url = server()
    records = [
        Record(
            id=f"chartqa/{i}",
            source="chartqa",
            split="train",
            task="chart",
            conversations=[{"from": "human", "value": "<image>\nWhat is shown?"}, {"from": "gpt", "value": "A chart."}],
            image=ImageRef(bytes=png_bytes(160, 120, seed=i), path=f"{i}.png"),
            width=160,
            height=120,
        )
        for i in range(3)
    ]
    write_shard_set(tmp_path / "in", records, command="test")
    config = tmp_path / "teacher.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "sampling": {"max_tokens": 24, "temperature": 0.0, "seed": 0},
                "limits": {"concurrency": 1, "rpm": None, "tpm": None},
                "retry": {"max_attempts": 1, "timeout_s": 60, "malformed_retries": 0},
            }
        )
    )
    args = ["teach", str(tmp_path / "in"), "--out", str(tmp_path / "out"), "--mode", "qa", "--base-url", f"{url}/v1"]
    args += ["--model", MODEL_NAME, "--config", str(config), "--cache", str(tmp_path / "cache.sqlite")]
    result = CliRunner().invoke(data_app, [*args, "--min-short-side", "64", "--questions", "2"])
    assert result.exit_code == 0, result.output
    out = ShardSet(tmp_path / "out")
    assert sorted(record.id for record in out) == [r.id for r in records]  # qa keeps each input row
    usage = out.manifest["teacher"]["usage"]
    # One refusal of response_format (structured output is not served), then three plain answers.
    assert usage["requests_sent"] == 4 and usage["prompt_tokens"] > 3 * 64
    rejects = [line for line in (tmp_path / "out" / "rejects.jsonl").read_text().splitlines() if line]
    assert len(rejects) == 3 and all("teacher_malformed" in line for line in rejects)  # random weights write no JSON
