"""kill -9 in the middle of writing a shard, then rerun: only the missing shards are written, bytes identical."""

from __future__ import annotations

import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from slime_data.mix.manifest import load_mix_manifest
from slime_data.mix.recipe import load_mix_recipe
from slime_data.mix.run import WORK_DIR, run_mix
from tests.slime_data.mix.mixdata import write_recipe

# Runs the mix in a child process that SIGKILLs itself while writing its 4th output shard
# (after the shard's temporary file is open, before it is renamed or marked done).
DYING_MIX = textwrap.dedent(
    """
    import os, signal, sys
    from pathlib import Path
    import slime_data.mix.write as write
    from slime_data.mix.recipe import load_mix_recipe
    from slime_data.mix.run import run_mix

    recipe, out, manifest, kill_at = sys.argv[1], Path(sys.argv[2]), Path(sys.argv[3]), int(sys.argv[4])
    calls = 0
    gather = write.with_lineage

    def dying(*args, **kwargs):
        global calls
        calls += 1
        if calls == kill_at:
            os.kill(os.getpid(), signal.SIGKILL)
        return gather(*args, **kwargs)

    write.with_lineage = dying
    run_mix(load_mix_recipe(recipe), 200, out=out, manifest_path=manifest)
    """
)


@pytest.mark.parametrize("images", ["copy", "reference"])
def test_kill_9_mid_shard_then_rerun(tmp_path: Path, mix_inputs: dict[str, Path], images: str) -> None:
    recipe_path = write_recipe(tmp_path / "recipe.yaml", mix_inputs, images=images)  # 16 rows per shard: 4 + 9 shards
    recipe = load_mix_recipe(recipe_path)
    clean = run_mix(recipe, 200, out=tmp_path / "clean", manifest_path=tmp_path / "clean.json")

    out, manifest_path = tmp_path / "killed", tmp_path / "killed.json"
    child = subprocess.run(
        [sys.executable, "-c", DYING_MIX, str(recipe_path), str(out), str(manifest_path), "4"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert child.returncode == -signal.SIGKILL, child.stderr
    assert not manifest_path.exists()
    assert len(list((out / WORK_DIR).glob("*/shard-*.done"))) == 3
    assert list(out.glob("*/.data-*.tmp")), "the kill should leave a half-written shard behind"

    resumed = run_mix(recipe, 200, out=out, manifest_path=manifest_path)
    assert resumed.plan_reused and resumed.shards_resumed == 3 and resumed.shards_total == 13
    assert not (out / WORK_DIR).exists() and not list(out.glob("*/.data-*.tmp"))
    before, after = load_mix_manifest(clean.manifest_path), load_mix_manifest(manifest_path)
    for stage in before.stages:
        assert [p.read_bytes() for p in before.shard_paths(stage)] == [p.read_bytes() for p in after.shard_paths(stage)]
        for name in ("manifest.json", "rejects.jsonl", "README.md"):
            assert (before.stage_dir(stage) / name).read_bytes() == (after.stage_dir(stage) / name).read_bytes()
    assert before.data["stages"]["sft"]["sources"] == after.data["stages"]["sft"]["sources"]
