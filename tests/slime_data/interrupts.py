"""Ctrl-C from a terminal, for real: a command in its own process group gets SIGINT (the whole group,
workers included, as a terminal sends it) once it is busy, and we watch how it ends."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import psutil

from slime_data.ui import INTERRUPTED

REPO = Path(__file__).resolve().parents[2]
# Generous for a loaded 2-core machine; before the fix a build took ~18 s after one Ctrl-C and
# minutes after two (the parent waited for every queued job, then joined idle workers).
EXIT_WITHIN_S = 10.0


@dataclass
class Interrupted:
    returncode: int
    seconds: float  # from the first SIGINT to the exit
    stderr: str
    survivors: list[psutil.Process]  # processes the command had started that still run


def interrupt_when_busy(
    command: list[str],
    busy: Callable[[psutil.Process], bool],
    *,
    cwd: Path,
    env: dict[str, str],
    log: Path,
    twice: bool = False,
    wait_s: float = 240.0,
) -> Interrupted:
    """Start ``command``, wait until ``busy(process)``, send SIGINT to its process group (twice, 0.2 s
    apart, if asked) and wait for the exit."""
    with log.open("w") as stderr:
        process = subprocess.Popen(
            command, cwd=cwd, env=env, stdout=subprocess.DEVNULL, stderr=stderr, start_new_session=True
        )
        try:
            watched = psutil.Process(process.pid)
            deadline = time.monotonic() + wait_s
            while process.poll() is None and not busy(watched) and time.monotonic() < deadline:
                time.sleep(0.05)
            assert process.poll() is None, f"the command ended before it was interrupted:\n{log.read_text()}"
            assert busy(watched), f"the command never got busy:\n{log.read_text()}"
            children = watched.children(recursive=True)
            started = time.monotonic()
            os.killpg(process.pid, signal.SIGINT)
            if twice:
                time.sleep(0.2)
                if process.poll() is None:
                    os.killpg(process.pid, signal.SIGINT)
            process.wait(timeout=120)
            seconds = time.monotonic() - started
        finally:
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()
    time.sleep(0.2)  # killed workers are reaped by then
    survivors = [child for child in children if child.is_running() and child.status() != psutil.STATUS_ZOMBIE]
    return Interrupted(process.returncode, seconds, log.read_text(), survivors)


def assert_stopped_cleanly(result: Interrupted, once: bool = True) -> None:
    """Exit 130 with the one line (after a second Ctrl-C, an exit by the signal itself is fine too),
    in time, no traceback, no worker left behind."""
    assert result.seconds < EXIT_WITHIN_S, f"{result.seconds:.1f} s after Ctrl-C:\n{result.stderr}"
    assert result.returncode == 130 or (not once and result.returncode == -signal.SIGINT), result.stderr
    assert INTERRUPTED in result.stderr.splitlines(), result.stderr
    assert "Traceback" not in result.stderr, result.stderr
    assert not result.survivors, result.survivors
    print(f"exited {result.seconds:.2f} s after Ctrl-C")  # shown with pytest -s


def slime_data_command(*args: str) -> list[str]:
    return [sys.executable, "-m", "slime_data.cli.main", *args]


def child_env() -> dict[str, str]:
    """Children import this checkout, one thread each."""
    return {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}


def has_worker_processes(process: psutil.Process) -> bool:
    """True once a multiprocessing worker pool (spawned ``spawn_main`` children) is running."""
    try:
        return any("spawn_main" in " ".join(child.cmdline()) for child in process.children(recursive=True))
    except psutil.Error:
        return False
