"""``--executor ray`` on a local Ray instance (2 CPUs on 127.0.0.1, one for the whole module).

Build, mix and teach under Ray give the bytes ``--executor local`` gives; a unit whose worker is
SIGKILLed mid-way is retried by Ray (or, with retries off, fails as one line naming the unit and
a rerun completes), identically; the teacher's rate limit, budget and no-repeat guarantee hold
across workers (the loopback server records every request and its arrival time).
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
import ray
import yaml
from typer.testing import CliRunner

from slime_data.cli.main import app
from slime_data.executor import TaskFailed, use_executor
from slime_data.ingest import make_units
from slime_data.mix.recipe import load_mix_recipe
from slime_data.mix.run import run_mix
from slime_data.paths import REPO_ROOT
from slime_data.ray_executor import RayExecutor
from slime_data.record import Record
from slime_data.runner import Unit, UnitPipeline, run_units
from slime_data.shards import ShardSet, write_shard_set
from slime_data.steps.teacher import TeacherStep
from slime_data.synth.generate import SynthConfig, generate_synth
from slime_data.teacher.batches import teach_in_batches
from slime_data.teacher.errors import BudgetExhausted
from slime_data.teacher.testing import FakeOpenAIServer, ReceivedRequest, ScriptedReply
from tests.slime_data.build.test_build import plant_chartqa
from tests.slime_data.build.test_build import write_recipe as write_build_recipe
from tests.slime_data.mix.conftest import mix_inputs  # noqa: F401 -- the mix tests' session fixture
from tests.slime_data.mix.mixdata import write_recipe as write_mix_recipe
from tests.slime_data.ray_jobs import load_or_die, no_steps
from tests.slime_data.teacher.conftest import FAST_SETTINGS, make_record

runner = CliRunner()
KEY = "sk-ray-test-PLANTED-key"


@pytest.fixture(scope="module")
def cluster() -> Iterator[None]:
    path = os.pathsep.join(p for p in (str(REPO_ROOT), os.environ.get("PYTHONPATH")) if p)
    ray.init(
        num_cpus=2,
        include_dashboard=False,
        _node_ip_address="127.0.0.1",
        log_to_driver=False,
        runtime_env={"env_vars": {"PYTHONPATH": path}},  # the workers import this test module
    )
    yield
    ray.shutdown()


def files(folder: Path) -> dict[str, bytes]:
    """Every output file, with the command line (which names the executor) blanked in manifests and cards."""
    out = {}
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        data = path.read_bytes()
        if path.name in ("manifest.json", "mix.json"):
            command = json.loads(data)["command"]
            data = data.replace(json.dumps(command).encode(), b'"COMMAND"')
        elif path.name == "README.md":
            command = json.loads((path.parent / "manifest.json").read_bytes())["command"]
            data = data.replace(command.encode(), b"COMMAND")
        out[str(path.relative_to(folder))] = data
    return out


def test_ray_address_needs_the_ray_executor() -> None:
    result = runner.invoke(app, ["mix", "--target", "2k", "--ray-address", "127.0.0.1:6379"])
    assert result.exit_code == 2 and "--ray-address needs --executor ray" in result.output


# -- build and mix ------------------------------------------------------------------------------


def test_build_under_ray_equals_local(cluster, tmp_path: Path) -> None:
    root = tmp_path / "sources"
    generate_synth(root / "synth", SynthConfig(n=4, captions=0, seed=3))
    plant_chartqa(root / "chartqa")
    recipe = write_build_recipe(tmp_path / "recipe.yaml", sources=[{"name": "synth"}, {"name": "chartqa"}])
    outputs = {}
    for executor in ("local", "ray"):
        out = tmp_path / executor / "built"
        args = ["build", "t", "--config", str(recipe), "--root", str(root), "--out", str(out), "--executor", executor]
        args += ["--workers", "1"] if executor == "local" else []  # in this process: no pool to spawn
        result = runner.invoke(app, args)
        assert result.exit_code == 0, result.output
        outputs[executor] = files(out)
    assert len(ShardSet(tmp_path / "ray" / "built")) > 0
    assert outputs["ray"] == outputs["local"]


def test_mix_under_ray_equals_local(cluster, tmp_path: Path, mix_inputs: dict[str, Path]) -> None:  # noqa: F811
    recipe = load_mix_recipe(write_mix_recipe(tmp_path / "recipe.yaml", mix_inputs))  # 13 shard jobs
    local = run_mix(recipe, 200, out=tmp_path / "local" / "mix", manifest_path=tmp_path / "local" / "mix.json")
    with use_executor(RayExecutor.connect()):
        on_ray = run_mix(recipe, 200, out=tmp_path / "ray" / "mix", manifest_path=tmp_path / "ray" / "mix.json")
    assert on_ray.shards_total == local.shards_total == 13
    assert files(tmp_path / "ray") == files(tmp_path / "local")


# -- a worker killed mid-way -------------------------------------------------------------------


def killable_units(records: list[Record], trigger: Path, label: str = "test") -> list[Unit]:
    units = list(make_units(records, 3, label))
    for unit in units:
        unit.payload = {"items": unit.payload, "trigger": str(trigger), "index": unit.index}
    return units


def run_killable(out: Path, trigger: Path, records: list[Record]) -> dict:
    pipeline = UnitPipeline(load=load_or_die, make_steps=no_steps)
    return run_units(killable_units(records, trigger), pipeline, out, command="test", config={"test": 1}).manifest


def test_a_killed_worker_is_retried_or_resumed_with_identical_output(cluster, tmp_path: Path) -> None:
    records = [make_record(i, size=(40, 30)) for i in range(12)]  # 4 units of 3
    reference = run_killable(tmp_path / "local" / "out", tmp_path / "no-trigger", records)

    trigger = tmp_path / "kill-once"
    trigger.touch()
    with use_executor(RayExecutor.connect()):  # Ray reruns a task whose worker died
        assert run_killable(tmp_path / "retried" / "out", trigger, records)["shards"] == reference["shards"]
    assert not trigger.exists(), "the worker was not killed"

    trigger.touch()
    with use_executor(RayExecutor.connect(max_retries=0)), pytest.raises(TaskFailed) as failed:
        run_killable(tmp_path / "resumed" / "out", trigger, records)
    lost = r"unit 2 \(test#2\) failed: its Ray worker was lost .*rerun the same command.*"
    assert re.fullmatch(lost, str(failed.value))
    with use_executor(RayExecutor.connect(max_retries=0)):
        assert run_killable(tmp_path / "resumed" / "out", trigger, records)["shards"] == reference["shards"]
    assert files(tmp_path / "resumed") == files(tmp_path / "local")


def test_an_application_error_is_not_retried_and_names_the_unit(cluster, tmp_path: Path) -> None:
    records = [make_record(i, size=(40, 30)) for i in range(6)]
    units = killable_units(records, tmp_path / "no-trigger", "bad")
    units[1].payload["items"] = None  # load_or_die cannot read it: a TypeError in our code, not a lost worker
    with use_executor(RayExecutor.connect()), pytest.raises(TaskFailed) as failed:
        run_units(units, UnitPipeline(load=load_or_die, make_steps=no_steps), tmp_path / "out", command="t", config={})
    assert str(failed.value).startswith("unit 1 (bad#1) failed: TypeError: ")
    assert len(list((tmp_path / "out" / ".work").glob("unit-*.done"))) == 1  # unit 0 finished and stays done


# -- the teacher across workers ------------------------------------------------------------------

GOLD = re.compile(r"The correct answer is: (.*)")


def rationale(request: ReceivedRequest) -> ScriptedReply:
    gold = GOLD.search(request.user_text)[1].strip()
    content = json.dumps({"reasoning": f"The bar reads {gold}.", "final_answer": gold})
    return ScriptedReply(content=content, delay_s=0.3)  # slow enough for two workers to ask at once


@pytest.fixture
def teacher_input(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """12 rows, 6 distinct questions: in batches of 2 rows, batches 0 and 1 ask the same two (so do 2 and 3...)."""
    monkeypatch.setenv("OPENAI_API_KEY", KEY)  # the driver's only; workers get it from the hub
    rows = [make_record(question, size=(200, 100)) for question in (0, 1, 0, 1, 2, 3, 2, 3, 4, 5, 4, 5)]
    rows = [Record(**{**row.__dict__, "id": f"chartqa/{i}"}) for i, row in enumerate(rows)]
    write_shard_set(tmp_path / "input", rows, command="test")
    return tmp_path / "input"


def teacher_step(
    tmp_path: Path, server: FakeOpenAIServer, cache: str = "cache.sqlite", max_tokens: int = 1024, **limits: float
) -> TeacherStep:
    config = tmp_path / "teacher.yaml"
    settings = {"limits": {"concurrency": 4, "rpm": None, "tpm": None}, "sampling": {"max_tokens": max_tokens}}
    config.write_text(yaml.safe_dump({**FAST_SETTINGS, **settings}))
    return TeacherStep(
        mode="rationale", rewrite="all", config=config, base_url=server.url, cache=tmp_path / cache, **limits
    )


def test_teach_under_ray_equals_local_and_never_repeats_a_request(cluster, tmp_path: Path, teacher_input) -> None:
    with FakeOpenAIServer(rationale) as server:
        step = teacher_step(tmp_path, server)
        local = runner.invoke(
            app,
            [
                "teach",
                str(teacher_input),
                "--out",
                str(tmp_path / "local" / "taught"),
                "--mode",
                "rationale",
                "--rewrite",
                "all",
                "--base-url",
                server.url,
                "--cache",
                str(step.params.cache),
                "--config",
                str(step.params.config),
            ],
        )
        assert local.exit_code == 0, local.output
        assert len(server.requests) == 6
        for part in tmp_path.glob("cache.sqlite*"):  # the same cache path (it is in the manifest), empty again
            part.unlink()
        made = ShardSet(tmp_path / "local" / "taught").manifest
        with use_executor(RayExecutor.connect()):
            teach_in_batches(
                ShardSet(teacher_input),
                step,
                tmp_path / "ray" / "taught",
                command=made["command"],
                config=made["config"],
                batch_rows=2,
            )
        on_ray = server.requests[6:]
    # 6 batches on 2 workers, running two by two, each pair asking the same questions: each sent once.
    assert sorted(r.user_text for r in on_ray) == sorted(r.user_text for r in server.requests[:6])
    assert files(tmp_path / "ray") == files(tmp_path / "local")
    assert KEY not in json.dumps(ShardSet(tmp_path / "ray" / "taught").manifest)


def assert_rate(arrivals: list[float], per_second: float) -> None:
    """No stretch of requests came faster than the bucket allows (capacity 1: no bursts)."""
    arrivals = sorted(arrivals)
    for first in range(len(arrivals)):
        for last in range(first + 1, len(arrivals)):
            assert last - first + 1 <= 1 + per_second * (arrivals[last] - arrivals[first]) + 0.3


def test_budget_and_rate_limit_hold_across_workers(cluster, tmp_path: Path, teacher_input) -> None:
    rpm = 60.0  # one a second, no burst: two workers with a limiter each would send two at once
    with FakeOpenAIServer(rationale) as server, use_executor(RayExecutor.connect()):
        step = teacher_step(tmp_path, server, rpm=rpm, max_requests=3)
        with pytest.raises(BudgetExhausted, match="--max-requests 3 reached"):
            teach_in_batches(ShardSet(teacher_input), step, tmp_path / "out", command="t", config={}, batch_rows=2)
        first_run = list(server.requests)
        assert len(first_run) == 3  # the budget is the cluster's, not each worker's
        step = teacher_step(tmp_path, server, rpm=rpm)
        manifest = teach_in_batches(
            ShardSet(teacher_input), step, tmp_path / "out", command="t", config={}, batch_rows=2
        )
        second_run = server.requests[3:]
    questions = [r.user_text for r in server.requests]
    assert len(questions) == len(set(questions)) == 6 and manifest["num_rows"] == 12  # nothing paid twice
    assert_rate([r.arrived for r in first_run], rpm / 60)
    assert_rate([r.arrived for r in second_run], rpm / 60)


def test_cost_ceiling_holds_across_workers(cluster, tmp_path: Path, teacher_input) -> None:
    # gpt-4o at 2.5 / 10 USD per million tokens: a request may cost up to ~0.043 USD (4,000 output tokens), so
    # under a 0.05 USD ceiling one request may be in flight in the whole cluster; the next one stops the run.
    with FakeOpenAIServer(rationale) as server, use_executor(RayExecutor.connect()):
        step = teacher_step(tmp_path, server, max_tokens=4000, max_cost_usd=0.05)
        with pytest.raises(BudgetExhausted, match="--max-cost 0.05 USD reached: .* across the cluster"):
            teach_in_batches(ShardSet(teacher_input), step, tmp_path / "out", command="t", config={}, batch_rows=2)
    assert len(server.requests) >= 1 and server.max_in_flight == 1  # a ceiling per worker would let both send
