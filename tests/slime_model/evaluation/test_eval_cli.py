"""`slime-model eval` as a user runs it: --list, one-line errors, the embedded default, and kill -9
in the middle of a benchmark then a rerun giving the same results.json."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from slime_model.cli import app
from slime_model.evaluation.runner import PREDICTIONS_FILE
from tests.slime_data.decontam.release_fixtures import write_root

TIMINGS = ("seconds", "samples_per_second")
CLI = "import sys, torch; torch.set_num_threads(1); from slime_model.cli import app; sys.argv[0] = 'slime-model'; app()"


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory) -> Path:
    import torch

    from slime_model.configuration import SliMEConfig
    from slime_model.modeling import SliMEForConditionalGeneration
    from slime_model.processing import SliMEProcessor
    from slime_model.tiny import tiny_tokenizer

    folder = tmp_path_factory.mktemp("ckpt")
    config = SliMEConfig.from_name("tiny")
    torch.manual_seed(0)
    SliMEForConditionalGeneration(config).save_pretrained(folder)
    SliMEProcessor.from_config(config, tiny_tokenizer()).save_pretrained(folder)
    return folder


def without_timings(results: dict) -> dict:
    for bench in results["benchmarks"].values():
        for key in TIMINGS:
            bench.pop(key)
    return results


def test_list_and_one_line_errors(tmp_path: Path, checkpoint: Path) -> None:
    runner = CliRunner()
    listed = runner.invoke(app, ["eval", "--list"])
    assert listed.exit_code == 0
    for name in ("scienceqa_img", "mmbench_cn", "mme", "pope", "vqav2", "mmvet", "llava_bench", "synth_heldout"):
        assert f"{name}:" in listed.output
    assert "--root/mme/MME_Benchmark_release_version/<category>/<id>.txt" in listed.output

    missing_root = runner.invoke(app, ["eval", "--model", str(checkpoint), "--root", str(tmp_path / "nope")])
    assert missing_root.exit_code == 2 and len(missing_root.output.strip().splitlines()) == 1
    assert "--root" in missing_root.output and "is not a folder" in missing_root.output

    (tmp_path / "root").mkdir()
    missing = runner.invoke(
        app,
        [
            "eval",
            "--model",
            str(checkpoint),
            "--root",
            str(tmp_path / "root"),
            "--benchmarks",
            "gqa",
            "--out",
            str(tmp_path / "out"),
        ],
    )
    assert missing.exit_code == 2 and len(missing.output.strip().splitlines()) == 1, missing.output
    assert "gqa:" in missing.output and "testdev_balanced_questions.json" in missing.output

    unknown = runner.invoke(
        app, ["eval", "--model", str(checkpoint), "--root", str(tmp_path / "root"), "--benchmarks", "seedbench"]
    )
    assert unknown.exit_code == 2 and "unknown benchmark(s) seedbench" in unknown.output


def test_embedded_default(tmp_path: Path, checkpoint: Path) -> None:
    out = tmp_path / "out"
    result = CliRunner().invoke(
        app, ["eval", "--model", str(checkpoint), "--out", str(out), "--limit", "3", "--max-new-tokens", "4"]
    )
    assert result.exit_code == 0, result.output
    results = json.loads((out / "results.json").read_text())
    assert sorted(results["benchmarks"]) == ["scienceqa_img", "synth_heldout"]
    synth = results["benchmarks"]["synth_heldout"]
    assert synth["n"] == 3 and "chance" in synth["metrics"]
    assert results["paper"]["rows"][0]["paper"] == "ScienceQA-IMG"
    assert "| synth_heldout | accuracy | 3 |" in (out / "results.md").read_text()


def test_kill_9_mid_benchmark_then_rerun_gives_the_same_results(tmp_path: Path, checkpoint: Path) -> None:
    root = write_root(tmp_path / "root", ["mme", "pope"])
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[3])}

    def command(out: Path) -> list[str]:
        return [
            sys.executable,
            "-c",
            CLI,
            "eval",
            "--model",
            str(checkpoint),
            "--root",
            str(root),
            "--benchmarks",
            "mme,pope",
            "--batch",
            "1",
            "--max-new-tokens",
            "12",
            "--out",
            str(out),
        ]

    killed = tmp_path / "killed"
    process = subprocess.Popen(command(killed), env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    predictions = killed / "mme" / PREDICTIONS_FILE
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and process.poll() is None:
        if predictions.is_file() and predictions.read_text().count("\n") >= 2:
            break
        time.sleep(0.005)
    process.send_signal(signal.SIGKILL)
    process.wait()
    written = predictions.read_text().count("\n")
    assert 2 <= written < 6 and not (killed / "results.json").exists()  # killed in the middle of mme

    subprocess.run(command(killed), env=env, check=True, capture_output=True)
    whole_run = CliRunner().invoke(app, command(tmp_path / "whole")[3:])  # uninterrupted, in this process
    assert whole_run.exit_code == 0, whole_run.output
    resumed = json.loads((killed / "results.json").read_text())
    whole = json.loads((tmp_path / "whole" / "results.json").read_text())
    whole["generation"]["root"] = resumed["generation"]["root"]
    assert without_timings(resumed) == without_timings(whole)
    lines = [json.loads(line) for line in predictions.read_text().splitlines()]
    assert len(lines) == 6 and len({line["id"] for line in lines}) == 6  # no duplicate, none lost
