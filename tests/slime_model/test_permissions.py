"""Checkpoints follow the umask like every other output file (safetensors alone writes 0600)."""

from __future__ import annotations

import os
import stat

import pytest

from slime_model.training.model_init import save_checkpoint_dir


@pytest.fixture
def group_writable_umask():
    previous = os.umask(0o002)
    yield 0o664
    os.umask(previous)


def test_a_saved_checkpoint_follows_the_umask(model, processor, tmp_path, group_writable_umask):
    save_checkpoint_dir(model, processor, tmp_path)
    modes = {p.name: stat.S_IMODE(p.stat().st_mode) for p in tmp_path.iterdir() if p.is_file()}
    assert "model.safetensors" in modes
    assert modes == dict.fromkeys(modes, group_writable_umask), modes
