"""Ctrl-C during `slime-data build` with worker processes: one line, exit 130, at once; a second never hangs."""

from __future__ import annotations

import pytest

from tests.slime_data.interrupts import (
    assert_stopped_cleanly,
    child_env,
    has_worker_processes,
    interrupt_when_busy,
    slime_data_command,
)


@pytest.mark.parametrize("twice", [False, True], ids=["one-ctrl-c", "two-ctrl-c"])
def test_ctrl_c_stops_a_build_and_its_workers_at_once(tmp_path, twice):
    command = slime_data_command("build", "sophisticated", "--out", str(tmp_path / "data" / "soph"), "--workers", "2")
    log = tmp_path / "stderr.txt"
    result = interrupt_when_busy(command, has_worker_processes, cwd=tmp_path, env=child_env(), log=log, twice=twice)
    assert_stopped_cleanly(result, once=not twice)
