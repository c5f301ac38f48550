"""Ctrl-C during `slime-data mix` while its worker processes write shards: one line, exit 130, at once."""

from __future__ import annotations

from tests.slime_data.interrupts import (
    assert_stopped_cleanly,
    child_env,
    has_worker_processes,
    interrupt_when_busy,
    slime_data_command,
)
from tests.slime_data.mix.mixdata import write_recipe


def test_ctrl_c_stops_a_mix_and_its_workers_at_once(tmp_path, mix_inputs):
    recipe = write_recipe(tmp_path / "recipe.yaml", mix_inputs, rows_per_shard=4)
    command = slime_data_command(
        "mix",
        "--config",
        str(recipe),
        "--target",
        "100",
        "--out",
        str(tmp_path / "mix"),
        "--manifest",
        str(tmp_path / "mix.json"),
        "--workers",
        "2",
    )
    log = tmp_path / "stderr.txt"
    result = interrupt_when_busy(command, has_worker_processes, cwd=tmp_path, env=child_env(), log=log)
    assert_stopped_cleanly(result)
    assert not (tmp_path / "mix.json").exists()
