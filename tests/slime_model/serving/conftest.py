"""Fixtures of the serving tests: one tiny checkpoint per session, loaded once, and servers over it."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from slime_model.generation import load_checkpoint
from slime_model.serving.app import create_app
from slime_model.serving.settings import ServeSettings
from slime_model.serving.testing import running_server
from tests.slime_model.serving.serving_helpers import MODEL_NAME, save_tiny_checkpoint


@pytest.fixture(scope="session")
def tiny_checkpoint(tmp_path_factory) -> Path:
    return save_tiny_checkpoint(tmp_path_factory.mktemp("tiny-slime"))


@pytest.fixture(scope="session")
def loaded(tiny_checkpoint: Path):
    return load_checkpoint(tiny_checkpoint)


@pytest.fixture
def server(loaded) -> Iterator[Callable[..., str]]:
    """start(run_batch=None, **settings) -> URL of a new server over the tiny checkpoint, stopped after the test."""
    stack = []

    def start(run_batch=None, **overrides) -> str:
        settings = ServeSettings(model_name=MODEL_NAME, **overrides)
        context = running_server(create_app(*loaded, settings, run_batch))
        stack.append(context)
        return context.__enter__()

    yield start
    for context in reversed(stack):
        context.__exit__(None, None, None)
