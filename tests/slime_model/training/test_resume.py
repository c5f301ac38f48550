"""kill -9 in the middle of a stage, then --resume: the same batches, learning rates and losses as
a run that was never interrupted (each run in its own process, as a user would run them)."""

from __future__ import annotations

import os
import signal
import subprocess
import time

import pytest

from slime_model.training import checkpoint as ckpt
from slime_model.training.recipe import load_recipe
from tests.slime_model.training.training_helpers import REPO, metrics, run, subprocess_env, train_command, write_recipe

pytestmark = pytest.mark.slow
STEPS = 8


def _recipe(path):
    base = load_recipe().model_dump(mode="json")
    sft = {
        **base["stages"][3],
        "epochs": None,
        "max_steps": STEPS,
        "global_batch": 4,
        "micro_batch": 2,
        "optimizer": {**base["stages"][3]["optimizer"], "lr": 1e-3},
    }
    return write_recipe(
        path, stages=[sft], checkpoint_every=2, data={**base["data"], "shuffle_buffer": 16, "num_workers": 1}
    )


def test_resume_after_kill_9_matches_the_uninterrupted_run_and_the_loss_falls(tiny_mix, tmp_path):
    recipe = _recipe(tmp_path / "recipe.yaml")
    args = ["--data", str(tiny_mix), "--recipe", str(recipe)]
    full = run(train_command(*args, "--out", str(tmp_path / "full")), timeout=300)
    assert full.returncode == 0, full.stderr[-3000:]
    reference = metrics(tmp_path / "full" / "stage-3")
    assert [r["step"] for r in reference] == list(range(1, STEPS + 1))
    losses = [r["loss"] for r in reference]
    assert sum(losses[-2:]) / 2 < sum(losses[:2]) / 2 - 0.2  # a learnable task: the colour is in the image

    stage = tmp_path / "cut" / "stage-3"
    victim = subprocess.Popen(
        train_command(*args, "--out", str(tmp_path / "cut")),
        env=subprocess_env(),
        cwd=REPO,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 240
    while (
        not (metrics(stage) and metrics(stage)[-1]["step"] >= 5)
        and victim.poll() is None
        and time.monotonic() < deadline
    ):
        time.sleep(0.02)
    os.kill(victim.pid, signal.SIGKILL)
    victim.wait()
    assert ckpt.read_complete(stage) is None, "the stage finished before the kill"
    resumed_from = ckpt.latest_resume_checkpoint(stage)["step"]
    assert 4 <= resumed_from < STEPS

    resumed = run(train_command(*args, "--out", str(tmp_path / "cut"), "--resume"), timeout=300)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    after = metrics(stage)
    assert [r["step"] for r in after] == list(range(1, STEPS + 1))  # each step once: the killed run's tail was cut
    for ours, theirs in zip(after, reference, strict=True):
        assert (ours["batch"], ours["lr"], ours["loss"], ours["local_kept"]) == (
            theirs["batch"],
            theirs["lr"],
            theirs["loss"],
            theirs["local_kept"],
        ), ours["step"]
    assert ckpt.read_complete(stage)["status"] == "resumed"
