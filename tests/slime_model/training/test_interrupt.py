"""Ctrl-C during `slime-model train` (loader worker included): one line, exit 130, at once.

Before, the line was missing and the exit took 5-10 s after the stage stopped: the interpreter's
teardown garbage-collected the engine. Two Ctrl-C are covered by the build's test (same wrapper)."""

from __future__ import annotations

from slime_model.training.recipe import load_recipe
from tests.slime_data.interrupts import assert_stopped_cleanly, interrupt_when_busy
from tests.slime_model.training.training_helpers import REPO, metrics, subprocess_env, train_command, write_recipe


def test_ctrl_c_stops_training_at_once(tiny_mix, tmp_path):
    base = load_recipe().model_dump(mode="json")
    sft = {**base["stages"][3], "epochs": None, "max_steps": 500, "global_batch": 2, "micro_batch": 2}
    recipe = write_recipe(tmp_path / "recipe.yaml", stages=[sft], data={**base["data"], "num_workers": 1})
    out = tmp_path / "run"
    command = train_command("--data", str(tiny_mix), "--recipe", str(recipe), "--out", str(out))
    training = lambda process: bool(metrics(out / "stage-3"))  # noqa: E731  (a step is done)
    log = tmp_path / "stderr.txt"
    result = interrupt_when_busy(command, training, cwd=REPO, env=subprocess_env(), log=log)
    assert_stopped_cleanly(result)
