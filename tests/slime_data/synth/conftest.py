"""A small synthetic set generated once per session (every kind, a few captions)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from slime_data.synth import SynthConfig, generate_synth

SMALL = SynthConfig(n=15, seed=7, captions=6)  # three images of each of the five kinds


@pytest.fixture(scope="session")
def synth_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("synth") / "set"
    generate_synth(out, SMALL)
    return out


@pytest.fixture(scope="session")
def questions(synth_dir: Path) -> list[dict]:
    return [json.loads(line) for line in (synth_dir / "synth.jsonl").read_text(encoding="utf-8").splitlines()]


@pytest.fixture(scope="session")
def figures(synth_dir: Path) -> dict[str, dict]:
    """image_id -> the figure row (its generating data)."""
    lines = (synth_dir / "figures.jsonl").read_text(encoding="utf-8").splitlines()
    return {row["image_id"]: row for row in map(json.loads, lines)}
