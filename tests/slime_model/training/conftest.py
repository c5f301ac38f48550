"""Fixtures of the trainer tests: a tiny mix made by the data pipeline (the tiny `processor` comes
from tests/slime_model/conftest.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.slime_model.training.training_helpers import build_mix, interrupted_run, synthetic_records


@pytest.fixture(scope="session")
def tiny_mix(tmp_path_factory) -> Path:
    """manifests/mix.json of 16 caption rows (pretrain) and 24 VQA rows (sft, every 5th text-only, one corrupt
    image)."""
    root = tmp_path_factory.mktemp("mix")
    return build_mix(
        root,
        synthetic_records("captions", 16),
        synthetic_records("vqa", 24, text_only_every=5, corrupt=(7,)),
        rows_per_shard=8,
    )


@pytest.fixture(scope="session")
def interrupted(tiny_mix, tmp_path_factory) -> tuple[Path, Path]:
    """(out, recipe file) of a one-stage run stopped after step 2 of 3, its step-1 checkpoint on disk
    (see `interrupted_run`); copy `out` before changing anything in it."""
    return interrupted_run(tiny_mix, tmp_path_factory.mktemp("interrupted"))
