"""A by-reference mix (`images: reference`): the same rows as the copying mix with each image replaced by a
pointer into its input shard; pointers resolve to the very bytes the copying mix holds; reruns are
byte-identical; `validate` checks pointers and inputs; `export llava` and the trainer follow them."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pyarrow as pa
import pytest

from slime_data.export import export_llava
from slime_data.mix.manifest import load_mix_manifest, reference_problems, validate_mix
from slime_data.mix.recipe import load_mix_recipe
from slime_data.mix.references import is_reference, resolve
from slime_data.mix.run import run_mix
from slime_data.shards import ShardSet
from tests.slime_data.mix.mixdata import write_recipe


def _table(manifest, stage: str) -> pa.Table:
    return pa.concat_tables([pa.ipc.open_file(str(p)).read_all() for p in manifest.shard_paths(stage)])


@pytest.fixture
def own_inputs(tmp_path: Path, mix_inputs: dict[str, Path]) -> dict[str, Path]:
    """A copy of the shared inputs that a test may damage."""
    return {name: Path(shutil.copytree(path, tmp_path / "inputs" / name)) for name, path in mix_inputs.items()}


@pytest.fixture
def both_mixes(tmp_path: Path, own_inputs: dict[str, Path]):
    mix_inputs = own_inputs
    mixes = {}
    for images in ("copy", "reference"):
        recipe = load_mix_recipe(write_recipe(tmp_path / f"{images}.yaml", mix_inputs, images=images))
        mixes[images] = load_mix_manifest(
            run_mix(recipe, 200, out=tmp_path / images, manifest_path=tmp_path / f"{images}.json").manifest_path
        )
    return mixes


def test_same_rows_and_every_pointer_resolves_to_the_copied_image(both_mixes):
    copy, ref = both_mixes["copy"], both_mixes["reference"]
    for stage in copy.stages:
        copied, pointed = _table(copy, stage), _table(ref, stage)
        assert copied.drop(["image"]).equals(pointed.drop(["image"]))
        images = image_bytes = pointer_bytes = 0
        for full, pointer in zip(copied.column("image").to_pylist(), pointed.column("image").to_pylist(), strict=True):
            if full is None:
                assert pointer is None
                continue
            assert is_reference(pointer) and pointer["bytes"] is None
            assert resolve(pointer, ref.stage_dir(stage)) == full
            images += 1
            image_bytes += len(full["bytes"]) + len(full["path"] or "")
            pointer_bytes += len(pointer["path"])
        assert images > 0
        copied_bytes = sum(p.stat().st_size for p in copy.shard_paths(stage))
        # The images are not written again: only their pointers (Arrow pads each buffer to 64 bytes).
        slack = 64 * 8 * len(ref.shard_paths(stage)) * 10
        assert (
            sum(p.stat().st_size for p in ref.shard_paths(stage)) <= copied_bytes - image_bytes + pointer_bytes + slack
        )


def test_a_rerun_is_byte_identical(both_mixes, tmp_path, own_inputs):
    mix_inputs = own_inputs
    recipe = load_mix_recipe(write_recipe(tmp_path / "again.yaml", mix_inputs, images="reference"))
    again = load_mix_manifest(
        run_mix(recipe, 200, out=tmp_path / "again", manifest_path=tmp_path / "again.json").manifest_path
    )
    first = both_mixes["reference"]
    for stage in first.stages:
        assert [p.read_bytes() for p in first.shard_paths(stage)] == [p.read_bytes() for p in again.shard_paths(stage)]


def test_validate_checks_the_inputs_and_the_pointers(both_mixes, own_inputs):
    mix_inputs = own_inputs
    ref = both_mixes["reference"]
    assert validate_mix(ref.path) == []
    input_shard = next(Path(mix_inputs["captions"]).glob("data-*.arrow"))
    manifest = Path(mix_inputs["captions"]) / "manifest.json"
    manifest.write_text(manifest.read_text().replace('"rows"', '"rows" ', 1))  # the input set changed
    assert any("changed since this mix was made" in p for p in validate_mix(ref.path))
    assert input_shard.is_file()


def test_validate_names_a_pointer_past_the_end_of_its_input(both_mixes, own_inputs):
    mix_inputs = own_inputs
    ref = both_mixes["reference"]
    shard = next(Path(mix_inputs["captions"]).glob("data-*.arrow"))
    table = pa.ipc.open_file(str(shard)).read_all()
    with pa.OSFile(str(shard), "wb") as sink, pa.ipc.new_file(sink, table.schema) as writer:
        writer.write_table(table.slice(0, 3))  # truncate the input, keep its manifest: only the pointers can tell
    problems = [p for stage in ref.stages for p in reference_problems(ref, stage)]
    assert problems and all("past the end" in p for p in problems)


def test_export_llava_follows_the_pointers(both_mixes, tmp_path):
    ref = both_mixes["reference"]
    rows, images = export_llava(ShardSet(ref.stage_dir("pretrain")), tmp_path / "x.json", tmp_path / "img")
    entries = json.loads((tmp_path / "x.json").read_text())
    assert images == sum(1 for e in entries if "image" in e) > 0
    copied = {r.id: r.image.bytes for r in ShardSet(both_mixes["copy"].stage_dir("pretrain")) if r.image is not None}
    for entry in entries:
        if "image" in entry:
            assert (tmp_path / "img" / entry["image"]).read_bytes() == copied[entry["id"]]


def test_other_readers_see_the_pointers_as_the_docs_say(both_mixes):
    import datasets
    import polars

    files = [str(p) for p in both_mixes["reference"].shard_paths("pretrain")]
    frame = polars.scan_ipc(files).select(polars.col("image").struct.field("bytes", "path")).collect()
    assert frame["bytes"].null_count() == len(frame) and frame["path"].str.contains(r"\.arrow#\d+$").all()
    loaded = datasets.load_dataset("arrow", data_files=files, split="train")
    raw = loaded.cast_column("image", datasets.Image(decode=False))
    assert raw[0]["image"]["bytes"] is None and raw[0]["image"]["path"].endswith(frame["path"][0].rpartition("#")[2])
