"""`slime-data teach` end to end: shard set in, shard set out, budget stop and resume, kill -9
and rerun without a request sent twice, and the API key never written anywhere."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import threading
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from slime_data.cli.main import app
from slime_data.paths import REPO_ROOT
from slime_data.shards import MANIFEST, ShardSet, validate_shard_set, write_shard_set
from slime_data.teacher.cache import ResponseCache
from slime_data.teacher.testing import ReceivedRequest, ScriptedReply, error_body
from tests.slime_data.interrupts import assert_stopped_cleanly, child_env, interrupt_when_busy, slime_data_command

BAR = re.compile(r"bar (\d+)\?")


def bar_of(request: ReceivedRequest) -> int:
    return int(BAR.search(request.user_text)[1])


@pytest.fixture
def shard_input(tmp_path: Path, records):
    def make(n: int) -> Path:
        folder = tmp_path / f"input-{n}"
        write_shard_set(folder, [records(i, size=(200, 100)) for i in range(n)], command="test")
        return folder

    return make


@pytest.fixture
def teach(tmp_path: Path, teacher_config):
    config = teacher_config()

    def invoke(input_dir: Path, out: Path, server_url: str, *extra: str, cache: Path | None = None):
        args = [
            "teach",
            str(input_dir),
            "--out",
            str(out),
            "--mode",
            "rationale",
            "--base-url",
            server_url,
            "--config",
            str(config),
            "--cache",
            str(cache or tmp_path / "cache.sqlite"),
            *extra,
        ]
        return CliRunner().invoke(app, args)

    return invoke


def shard_bytes(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.glob("data-*.arrow"))} | {
        "rejects": (folder / "rejects.jsonl").read_bytes()
    }


def rationale_command(source: Path, out: Path, url: str, config: Path, cache: Path) -> list[str]:
    """`slime-data teach SOURCE --mode rationale` against `url`, as a child process runs it."""
    options = [
        "--out",
        str(out),
        "--mode",
        "rationale",
        "--base-url",
        url,
        "--config",
        str(config),
        "--cache",
        str(cache),
    ]
    return slime_data_command("teach", str(source), *options)


def test_teach_writes_a_valid_shard_set_with_usage_in_the_manifest(
    serve, shard_input, teach, tmp_path, rationale_teacher
):
    server = serve(rationale_teacher)
    out = tmp_path / "out"
    result = teach(shard_input(4), out, server.url)
    assert result.exit_code == 0, result.output
    assert validate_shard_set(out) == []
    shard_set = ShardSet(out)
    assert len(shard_set) == 4 and all(record.rationale for record in shard_set)
    manifest = shard_set.manifest
    assert manifest["steps"] == [
        {"step": "teacher", "in": 4, "out": 4, "rejected": 0},
        {"step": "validate", "in": 4, "out": 4, "rejected": 0},
    ]
    teacher = manifest["teacher"]
    assert teacher["usage"]["requests_sent"] == 4 and teacher["usage"]["prompt_tokens"] == 400
    assert teacher["usage"]["estimated_cost_usd"] == pytest.approx((400 * 2.5 + 80 * 10) / 1e6)
    assert teacher["prompts"]["rationale"]["prompt"] == "rationale.v1"
    assert teacher["input"]["num_rows"] == 4
    assert manifest["config"]["mode"] == "rationale"
    assert "teacher usage" in result.output and "estimated cost" in result.output


def test_budget_stop_writes_nothing_final_and_a_rerun_resumes(serve, shard_input, teach, tmp_path, rationale_teacher):
    server = serve(rationale_teacher)
    source, out = shard_input(6), tmp_path / "out"

    stopped = teach(source, out, server.url, "--max-requests", "4")
    assert stopped.exit_code == 3, stopped.output
    assert "--max-requests 4 reached" in stopped.output and "Rerun the same command" in stopped.output
    assert not (out / MANIFEST).exists() and not list(out.glob("data-*.arrow"))
    assert len(server.requests) == 4

    resumed = teach(source, out, server.url, "--max-requests", "4")
    assert resumed.exit_code == 0, resumed.output
    bars = [bar_of(request) for request in server.requests]
    assert sorted(bars) == list(range(6))  # each question asked exactly once over both runs

    clean_server = serve(rationale_teacher)
    clean = tmp_path / "clean"
    assert teach(source, clean, clean_server.url, cache=tmp_path / "clean.sqlite").exit_code == 0
    assert shard_bytes(out) == shard_bytes(clean)


def test_kill_9_mid_run_then_rerun_sends_no_request_twice_and_gives_the_same_bytes(
    serve, shard_input, tmp_path, teacher_config, rationale_teacher, teach
):
    n, killed_at = 8, 3
    release = threading.Event()
    held = {"done": False}

    def script(request: ReceivedRequest) -> ScriptedReply:
        if bar_of(request) == killed_at and not held["done"]:
            held["done"] = True
            return rationale_teacher(request, hold=release)  # answered only after the kill
        return rationale_teacher(request)

    server = serve(script)
    source, out, cache = shard_input(n), tmp_path / "out", tmp_path / "cache.sqlite"
    command = rationale_command(source, out, server.url, teacher_config(limits={"concurrency": 1}), cache)
    process = subprocess.Popen(
        command, cwd=REPO_ROOT, env=dict(os.environ), stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    deadline = time.monotonic() + 60
    while len(server.requests) <= killed_at and time.monotonic() < deadline and process.poll() is None:
        time.sleep(0.02)
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    release.set()
    first_run = [bar_of(request) for request in server.requests]
    assert first_run == list(range(killed_at + 1)), process.stderr.read().decode()
    assert not (out / MANIFEST).exists()
    with ResponseCache(cache) as answers:
        assert len(answers) == killed_at  # every answer received before the kill survived it

    result = teach(source, out, server.url, "--concurrency", "1", cache=cache)
    assert result.exit_code == 0, result.output
    second_run = [bar_of(request) for request in server.requests[len(first_run) :]]
    # Only the request that was in flight at the kill is asked again; nothing answered is.
    assert second_run == list(range(killed_at, n))

    clean_server = serve(rationale_teacher)
    clean = tmp_path / "clean"
    assert teach(source, clean, clean_server.url, cache=tmp_path / "clean.sqlite").exit_code == 0
    assert shard_bytes(out) == shard_bytes(clean)


def test_ctrl_c_while_a_request_is_in_flight_stops_at_once_and_a_rerun_resumes(
    serve, shard_input, tmp_path, teacher_config, rationale_teacher, teach
):
    n, stuck_at = 6, 2
    release = threading.Event()

    def script(request: ReceivedRequest) -> ScriptedReply:
        return rationale_teacher(request, hold=release if bar_of(request) == stuck_at else None)

    server = serve(script)
    source, out, cache = shard_input(n), tmp_path / "out", tmp_path / "cache.sqlite"
    command = rationale_command(source, out, server.url, teacher_config(limits={"concurrency": 1}), cache)
    in_flight = lambda process: len(server.requests) > stuck_at  # noqa: E731  (the held request was sent)
    try:
        result = interrupt_when_busy(command, in_flight, cwd=REPO_ROOT, env=child_env(), log=tmp_path / "stderr.txt")
    finally:
        release.set()
    assert_stopped_cleanly(result)
    assert not (out / MANIFEST).exists()

    resumed = teach(source, out, server.url, "--concurrency", "1", cache=cache)
    assert resumed.exit_code == 0, resumed.output
    assert [bar_of(request) for request in server.requests[stuck_at + 1 :]] == list(range(stuck_at, n))


def all_bytes_under(folder: Path, skip: set[Path]) -> list[tuple[Path, bytes]]:
    return [(p, p.read_bytes()) for p in folder.rglob("*") if p.is_file() and p not in skip]


def test_the_api_key_is_never_written_anywhere(
    serve, shard_input, tmp_path, planted_key, monkeypatch, rationale_teacher
):
    """The server echoes the key in an error, a malformed reply and a valid reply; the key comes
    from a config file. Every output file, the cache (with its WAL) and the console are clean."""
    monkeypatch.delenv("OPENAI_API_KEY")
    config = tmp_path / "my-teacher.yaml"
    config.write_text(
        json.dumps(
            {
                "api_key": planted_key,
                "limits": {"concurrency": 1, "rpm": None, "tpm": None},
                "retry": {"backoff_base_s": 0.01, "backoff_max_s": 0.02, "malformed_retries": 1},
            }
        )
    )
    echoed = {"500": False}

    def script(request: ReceivedRequest) -> ScriptedReply:
        key = request.headers["authorization"].removeprefix("Bearer ")
        assert key == planted_key  # the key from the config file is the one used
        bar = bar_of(request)
        if bar == 0 and not echoed["500"]:
            echoed["500"] = True
            return ScriptedReply(status=500, body=error_body(f"internal error for key {key}"))
        if bar == 1:
            return ScriptedReply(content=f"I refuse JSON. Your key is {key}")
        if bar == 2:
            reply = rationale_teacher(request)
            reply.content = reply.content.replace("Reading the chart", f"Reading the chart with {key}")
            return reply
        return rationale_teacher(request)

    server = serve(script)
    out, cache = tmp_path / "out", tmp_path / "cache" / "teacher.sqlite"
    args = [
        "teach",
        str(shard_input(4)),
        "--out",
        str(out),
        "--mode",
        "rationale",
        "--base-url",
        server.url,
        "--config",
        str(config),
        "--cache",
        str(cache),
    ]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    rejects = [json.loads(line) for line in (out / "rejects.jsonl").read_text().splitlines()]
    assert [r["reason"] for r in rejects] == ["teacher_malformed"] and "[redacted]" in rejects[0]["detail"]
    assert "[redacted]" in ShardSet(out)[1].rationale

    unauthorised = serve(lambda request: ScriptedReply(status=401, body=error_body(f"bad key {planted_key}")))
    refused = CliRunner().invoke(
        app,
        [
            "teach",
            str(shard_input(2)),
            "--out",
            str(tmp_path / "out401"),
            "--mode",
            "rationale",
            "--base-url",
            unauthorised.url,
            "--config",
            str(config),
            "--cache",
            str(cache.with_name("other.sqlite")),
        ],
    )
    assert refused.exit_code == 2 and "HTTP 401" in refused.output

    key = planted_key.encode()
    files = all_bytes_under(tmp_path, skip={config})
    assert any(path.name == "teacher.sqlite-wal" or path.name == "teacher.sqlite" for path, _ in files)
    assert [path for path, data in files if key in data] == []
    assert planted_key not in result.output and planted_key not in refused.output


def test_qa_and_verify_through_the_command(serve, tmp_path, teacher_config, records):
    def teacher(request: ReceivedRequest) -> ScriptedReply:
        if "Answer each question" in request.user_text:
            return ScriptedReply(content=json.dumps({"answers": ["7", "unanswerable"]}))
        if "Proposed solution" in request.user_text:
            wrong = "corner 1" in request.user_text
            return ScriptedReply(content=json.dumps({"verdict": "wrong" if wrong else "correct", "reason": "checked"}))
        items = [
            {"question": f"What is written in corner {n}?", "answer": str(7 + n), "rationale": f"It reads {7 + n}."}
            for n in range(2)
        ]
        return ScriptedReply(content=json.dumps({"questions": items}))

    server = serve(teacher)
    source = tmp_path / "hires"
    write_shard_set(source, [records(0, size=(900, 700)), records(1, size=(300, 300))], command="test")
    common = ["--base-url", server.url, "--config", str(teacher_config()), "--cache", str(tmp_path / "cache.sqlite")]
    qa = CliRunner().invoke(
        app,
        [
            "teach",
            str(source),
            "--out",
            str(tmp_path / "qa"),
            "--mode",
            "qa",
            "--questions",
            "2",
            "--thumbnail-check",
            "--min-short-side",
            "600",
            *common,
        ],
    )
    assert qa.exit_code == 0, qa.output
    assert [record.id for record in ShardSet(tmp_path / "qa")] == ["chartqa/0", "chartqa/0/qa-1", "chartqa/1"]
    manifest = ShardSet(tmp_path / "qa").manifest
    assert manifest["steps"][0] == {"step": "teacher", "in": 2, "out": 3, "rejected": 1}
    assert manifest["rejects"]["by_step"] == {"teacher": {"teacher_qa_thumbnail_answerable": 1}}

    verify = CliRunner().invoke(
        app, ["teach", str(tmp_path / "qa"), "--out", str(tmp_path / "verified"), "--mode", "verify", *common]
    )
    assert verify.exit_code == 0, verify.output
    assert [record.id for record in ShardSet(tmp_path / "verified")] == ["chartqa/0", "chartqa/1"]
    assert ShardSet(tmp_path / "verified").manifest["rejects"]["by_step"] == {"teacher": {"teacher_verify_wrong": 1}}


def test_user_mistakes_are_one_line_errors(tmp_path, shard_input, monkeypatch, teach):
    missing = CliRunner().invoke(app, ["teach", str(tmp_path / "nope"), "--out", str(tmp_path / "o"), "--mode", "qa"])
    assert missing.exit_code == 2 and "error:" in missing.output and "Traceback" not in missing.output

    monkeypatch.delenv("OPENAI_API_KEY")
    source = shard_input(1)
    no_key = CliRunner().invoke(app, ["teach", str(source), "--out", str(tmp_path / "o"), "--mode", "rationale"])
    assert no_key.exit_code == 2 and "set OPENAI_API_KEY" in no_key.output

    same = teach(source, source, "http://127.0.0.1:9/v1")
    assert same.exit_code == 2 and "different folder" in same.output
