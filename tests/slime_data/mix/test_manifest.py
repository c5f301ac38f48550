"""manifests/mix.json: the schema rejects hand-broken manifests by field; validate catches damaged shards and counts."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest

from slime_data.mix.manifest import MixManifestError, is_mix_manifest, load_mix_manifest, schema_errors, validate_mix
from slime_data.mix.recipe import load_mix_recipe
from slime_data.mix.run import run_mix
from tests.slime_data.mix.mixdata import write_recipe


@pytest.fixture(scope="module")
def made(tmp_path_factory: pytest.TempPathFactory, mix_inputs: dict[str, Path]) -> Path:
    root = tmp_path_factory.mktemp("made")
    recipe = load_mix_recipe(write_recipe(root / "recipe.yaml", mix_inputs))
    return run_mix(recipe, 120, out=root / "data" / "mix", manifest_path=root / "manifests" / "mix.json").manifest_path


def broken(tmp_path: Path, made: Path, change) -> Path:
    data = json.loads(made.read_text())
    change(data)
    path = tmp_path / "mix.json"
    path.write_text(json.dumps(data))
    return path


def test_valid_manifest_and_relative_paths(
    made: Path, mix_inputs: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    assert validate_mix(made) == []
    assert is_mix_manifest(made)
    monkeypatch.chdir("/")  # paths are relative to the manifest, not to the working directory
    manifest = load_mix_manifest(made)
    assert manifest.data["stages"]["sft"]["shards"][0]["file"] == "../data/mix/sft/data-00000-of-00006.arrow"
    assert all(p.is_file() for stage in manifest.stages for p in manifest.shard_paths(stage))
    assert manifest.stage_dir("pretrain") == (made.parent.parent / "data" / "mix" / "pretrain").resolve()
    inputs = {i["name"]: i for i in manifest.data["inputs"]}
    assert manifest.resolve(inputs["qa_a"]["path"]) == (mix_inputs["qa_a"] / "manifest.json").resolve()
    assert manifest.data["recipe"]["max_repeats"] == 3 and len(manifest.data["recipe_sha256"]) == 64


@pytest.mark.parametrize(
    ("change", "field", "message"),
    [
        (
            lambda d: d["stages"]["sft"]["shards"][0].pop("sha256"),
            "$.stages.sft.shards[0]",
            "'sha256' is a required property",
        ),
        (lambda d: d.update(target="2M"), "$.target", "'2M' is not of type 'integer'"),
        (
            lambda d: d["stages"]["pretrain"]["sources"]["captions"].update(rows_out=-1),
            "$.stages.pretrain.sources.captions.rows_out",
            "-1 is less than the minimum of 0",
        ),
        (lambda d: d["inputs"][0].update(sha256="abc"), "$.inputs[0].sha256", "does not match"),
        (lambda d: d.update(kind="slime-shard-set"), "$.kind", "'slime-mix' was expected"),
        (lambda d: d.update(surprise=1), "$", "'surprise' was unexpected"),
    ],
)
def test_schema_rejects_a_hand_broken_manifest(tmp_path: Path, made: Path, change, field: str, message: str) -> None:
    path = broken(tmp_path, made, change)
    with pytest.raises(MixManifestError) as err:
        load_mix_manifest(path)
    assert f"{field}: " in str(err.value) and message in str(err.value)
    assert validate_mix(path)[0] == str(err.value)


def test_validate_catches_damaged_shards_and_bad_counts(tmp_path: Path, made: Path) -> None:
    manifest = load_mix_manifest(made)
    shard = manifest.shard_paths("sft")[1]
    original = shard.read_bytes()
    try:
        damaged = bytearray(original)
        damaged[len(damaged) // 2] ^= 0xFF
        shard.write_bytes(bytes(damaged))
        assert validate_mix(made) == [
            "sft: ../data/mix/sft/data-00001-of-00006.arrow: sha256 does not match the manifest"
        ]
        shard.unlink()
        assert validate_mix(made) == ["sft: ../data/mix/sft/data-00001-of-00006.arrow: missing"]
    finally:
        shard.write_bytes(original)
    assert validate_mix(made) == []

    def recount(d: dict) -> None:
        d["stages"]["sft"]["sources"]["qa_a"]["rows_out"] += 1
        d["stages"]["sft"]["sources"]["qa_b"]["rows_out"] -= 1

    moved = tmp_path / "moved"
    moved.mkdir()
    path = broken(moved, made, recount)
    path.rename(made.parent / "recounted.json")
    problems = validate_mix(made.parent / "recounted.json")
    assert any(p.startswith("sft/qa_a: rows_out") for p in problems) and any(
        p.startswith("sft/qa_b: rows_out") for p in problems
    )


def test_schema_file_is_valid_and_reports_every_error() -> None:
    data = {"kind": "slime-mix"}
    errors = schema_errors(data)
    assert errors and all(e.startswith("$") for e in errors)
    assert schema_errors(copy.deepcopy(data)) == errors
