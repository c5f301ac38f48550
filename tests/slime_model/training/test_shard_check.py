"""The trainer checks every shard a run reads before its first step: a truncated file, a damaged Arrow
footer or changed bytes is one error naming the file, not a pyarrow traceback when its stage starts."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from slime_data.mix.manifest import load_mix_manifest
from slime_data.shards import ShardSetError
from slime_model.training.recipe import load_recipe
from slime_model.training.runner import train
from slime_model.training.shard_check import verify_mix_stages
from tests.slime_model.training.training_helpers import write_recipe


@pytest.fixture
def mix_copy(tiny_mix, tmp_path) -> Path:
    """A copy of the session's tiny mix (its paths are relative to the manifest) that a test may damage."""
    root = tiny_mix.parent.parent
    shutil.copytree(root, tmp_path / "copy")
    return tmp_path / "copy" / "manifests" / "mix.json"


def _shard(manifest: Path, stage: str, index: int = 0) -> Path:
    mix = load_mix_manifest(manifest)
    return mix.resolve(mix.data["stages"][stage]["shards"][index]["file"])


def _overwrite(path: Path, offset: int, data: bytes) -> None:
    """Same size, other bytes (`offset` from the end when negative)."""
    raw = bytearray(path.read_bytes())
    start = offset % len(raw)
    raw[start : start + len(data)] = data
    path.write_bytes(bytes(raw))


def test_an_intact_mix_passes_with_and_without_sha256(tiny_mix):
    mix = load_mix_manifest(tiny_mix)
    verify_mix_stages(mix, ["pretrain", "sft"], verify=True)
    verify_mix_stages(mix, ["pretrain", "sft"], verify=False)


def test_a_damaged_footer_is_named_before_anything_runs(mix_copy, tmp_path):
    victim = _shard(mix_copy, "sft", 1)
    _overwrite(victim, -30, b"\xff" * 16)  # inside the footer, before its length and the ARROW1 magic
    recipe = load_recipe(write_recipe(tmp_path / "r.yaml"))
    with pytest.raises(ShardSetError, match=f"{victim}: unreadable Arrow file: .*Footer") as err:
        train(mix_copy, recipe, tmp_path / "out", verify=False)
    assert "slime-data validate" in str(err.value)
    assert not (tmp_path / "out").exists()  # no stage started, nothing written


def test_a_truncated_shard_is_named_with_its_size(mix_copy):
    victim = _shard(mix_copy, "pretrain")
    victim.write_bytes(victim.read_bytes()[:-100])
    with pytest.raises(ShardSetError, match=f"{victim}: \\d+ bytes, manifest says \\d+"):
        verify_mix_stages(load_mix_manifest(mix_copy), ["pretrain"], verify=False)


def test_changed_image_bytes_are_caught_by_sha256_by_default_for_a_small_mix(mix_copy):
    victim = _shard(mix_copy, "pretrain")
    _overwrite(victim, len(victim.read_bytes()) // 2, b"\x00" * 8)  # inside the data, footer intact
    mix = load_mix_manifest(mix_copy)
    verify_mix_stages(mix, ["pretrain"], verify=False)  # size, footer and schema still fine
    for verify in (None, True):
        with pytest.raises(ShardSetError, match=f"{victim}: sha256 does not match the manifest"):
            verify_mix_stages(mix, ["pretrain"], verify=verify)
