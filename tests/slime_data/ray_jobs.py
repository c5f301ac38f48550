"""Job functions the Ray tests run in workers (a small module: every fresh worker imports it)."""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator
from pathlib import Path

from slime_data.record import Record
from slime_data.steps.base import Step


def load_or_die(payload: dict) -> Iterator[Record]:
    """Yield the unit's records; when the trigger file exists, SIGKILL this worker half-way (once)."""
    items = payload["items"]
    for position, record in enumerate(items):
        trigger = Path(payload["trigger"])
        if position == len(items) // 2 and payload["index"] == 2 and trigger.exists():
            trigger.unlink()
            os.kill(os.getpid(), signal.SIGKILL)
        yield record


def no_steps(payload: dict) -> list[Step]:
    return []
