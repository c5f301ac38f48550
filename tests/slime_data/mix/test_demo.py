"""The fresh-clone chain: `slime-data build sophisticated`, then `slime-data mix --config pipelines/mix-demo.yaml
--target 2k`."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from slime_data.mix.manifest import load_mix_manifest, validate_mix
from slime_data.paths import PIPELINES_DIR


def slime_data(cwd: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "slime_data.cli.main", *args], cwd=cwd, capture_output=True, text=True, timeout=600
    )


@pytest.mark.slow
def test_demo_chain(tmp_path: Path) -> None:
    missing = slime_data(tmp_path, "mix", "--config", str(PIPELINES_DIR / "mix-demo.yaml"), "--target", "2k")
    assert missing.returncode == 2 and "make it with: slime-data build sophisticated" in " ".join(
        missing.stderr.split()
    )

    built = slime_data(tmp_path, "build", "sophisticated")
    assert built.returncode == 0, built.stderr
    mixed = slime_data(tmp_path, "mix", "--config", str(PIPELINES_DIR / "mix-demo.yaml"), "--target", "2k")
    assert mixed.returncode == 0, mixed.stderr

    manifest = load_mix_manifest(tmp_path / "manifests" / "mix.json")
    assert validate_mix(manifest.path) == []
    assert {name: stage["rows"] for name, stage in manifest.data["stages"].items()} == {"pretrain": 558, "sft": 1442}
    assert [i["name"] for i in manifest.data["inputs"]] == ["synth_captions", "sophisticated"]
    assert [s["step"] for s in manifest.data["hygiene"]["steps"]] == ["exact_dedup", "near_dedup", "decontaminate"]
