"""run_mix end to end on tiny inputs: counts, determinism, caps, stages, hygiene, lineage, loaders."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pyarrow as pa
import pyarrow.dataset as pds
import pytest

from slime_data.mix.allocate import AllocationError
from slime_data.mix.inputs import MissingInput
from slime_data.mix.manifest import load_mix_manifest, validate_mix
from slime_data.mix.recipe import load_mix_recipe
from slime_data.mix.run import run_mix
from slime_data.shards import validate_shard_set
from tests.slime_data.mix.mixdata import write_recipe


def mix(
    tmp_path: Path, inputs: dict[str, Path], target: int, workers: int = 1, name: str = "out", **recipe_changes: object
):
    recipe = load_mix_recipe(write_recipe(tmp_path / f"{name}.yaml", inputs, **recipe_changes))
    result = run_mix(
        recipe,
        target,
        out=tmp_path / name / "data",
        manifest_path=tmp_path / name / "manifests" / "mix.json",
        workers=workers,
    )
    return result, load_mix_manifest(result.manifest_path)


def rows_of(manifest, stage: str) -> list[dict]:
    return [
        row
        for path in manifest.shard_paths(stage)
        for row in pa.ipc.open_file(pa.memory_map(str(path))).read_all().to_pylist()
    ]


def lineage(row: dict) -> dict:
    return json.loads(row["meta"])["lineage"]


@pytest.mark.parametrize("target", [1, 7, 100, 300])
def test_exact_counts(tmp_path: Path, mix_inputs: dict[str, Path], target: int) -> None:
    _, manifest = mix(tmp_path, mix_inputs, target)
    stages = manifest.data["stages"]
    assert sum(s["rows"] for s in stages.values()) == target
    assert stages["pretrain"]["rows"] == round(0.3 * target)
    for name, stage in stages.items():
        rows = rows_of(manifest, name)
        assert len(rows) == stage["rows"] == sum(s["rows"] for s in stage["shards"])
        by_source = Counter(r["source"] for r in rows)
        for source, info in stage["sources"].items():
            assert by_source[source] == info["rows_out"]
        assert len({r["id"] for r in rows}) == len(rows)  # ids stay unique even with repeats
        assert not validate_shard_set(manifest.stage_dir(name))  # each stage is a regular shard set
    assert validate_mix(manifest.path) == []


def test_repeats_lineage_and_unchanged_records(tmp_path: Path, mix_inputs: dict[str, Path]) -> None:
    _, manifest = mix(tmp_path, mix_inputs, 300)
    captions = manifest.data["stages"]["pretrain"]["sources"]["captions"]
    assert (captions["available"], captions["rows_out"]) == (60, 90)
    assert captions["repeats"] == {"whole": 1, "remainder": 30, "factor": 1.5, "max": 3}
    originals = {
        r["id"]: r
        for r in pa.ipc.open_file(pa.memory_map(str(next((mix_inputs["captions"]).glob("data-00000-*")))))
        .read_all()
        .to_pylist()
    }
    rows = rows_of(manifest, "pretrain")
    repeats = Counter(lineage(r)["repeat"] for r in rows)
    assert repeats == {0: 60, 1: 30}
    for row in rows:
        origin = lineage(row)
        assert origin["input"] == str(mix_inputs["captions"]) and origin["source"] == "captions"
        assert row["id"] == (origin["id"] if origin["repeat"] == 0 else f"{origin['id']}@rep{origin['repeat']}")
        original = originals.get(origin["id"])
        if original is not None:  # the first input shard: every field but id and meta.lineage is as it was
            meta = json.loads(row["meta"])
            del meta["lineage"]
            assert meta == json.loads(original["meta"])
            assert {k: v for k, v in row.items() if k not in ("id", "meta")} == {
                k: v for k, v in original.items() if k not in ("id", "meta")
            }


def test_stage_separation(tmp_path: Path, mix_inputs: dict[str, Path]) -> None:
    _, manifest = mix(tmp_path, mix_inputs, 200)
    assert {lineage(r)["input"] for r in rows_of(manifest, "pretrain")} == {str(mix_inputs["captions"])}
    assert {lineage(r)["input"] for r in rows_of(manifest, "sft")} == {str(mix_inputs["qa_a"]), str(mix_inputs["qa_b"])}
    assert Path(manifest.data["stages"]["sft"]["path"]).name == "sft"


def test_deterministic_whatever_the_workers(tmp_path: Path, mix_inputs: dict[str, Path]) -> None:
    _, one = mix(tmp_path, mix_inputs, 150, workers=1, name="w1")
    _, two = mix(tmp_path, mix_inputs, 150, workers=2, name="w2")
    for stage in one.stages:
        assert [p.read_bytes() for p in one.shard_paths(stage)] == [p.read_bytes() for p in two.shard_paths(stage)]
        assert len(one.shard_paths(stage)) > 1
    assert one.data["stages"] == two.data["stages"]
    _, other_seed = mix(tmp_path, mix_inputs, 150, name="seed7", seed=7)
    assert [r["id"] for r in rows_of(other_seed, "sft")] != [r["id"] for r in rows_of(one, "sft")]


def test_shuffle_is_global_across_sources(tmp_path: Path, mix_inputs: dict[str, Path]) -> None:
    _, manifest = mix(tmp_path, mix_inputs, 150)
    sources = [r["source"] for r in rows_of(manifest, "sft")]
    runs = sum(1 for a, b in zip(sources, sources[1:]) if a != b)
    assert runs > 10  # interleaved, not one block per source


def test_cross_source_duplicates_removed(tmp_path: Path, mix_inputs: dict[str, Path]) -> None:
    _, manifest = mix(tmp_path, mix_inputs, 100)
    qa_b = manifest.data["stages"]["sft"]["sources"]["qa_b"]
    assert (qa_b["rows_in"], qa_b["dropped"], qa_b["available"]) == (30, 2, 28)
    assert manifest.data["hygiene"]["by_step"] == {"exact_dedup": {"exact_duplicate": 2}}
    assert manifest.data["hygiene"]["dropped"] == 2
    ids = {lineage(r)["id"] for r in rows_of(manifest, "sft")}
    assert not ids & {"qa_b/copy0", "qa_b/copy1"}
    rejects = [json.loads(line) for line in (manifest.stage_dir("sft") / "rejects.jsonl").read_text().splitlines()]
    assert sorted(r["id"] for r in rejects) == ["qa_b/copy0", "qa_b/copy1"]
    assert {r["step"] for r in rejects} == {"exact_dedup"}


def test_repeat_cap_fails_before_writing(tmp_path: Path, mix_inputs: dict[str, Path]) -> None:
    with pytest.raises(
        AllocationError, match=r"source qa_a \(stage sft\) would need .* rows are available in all\. Raise max_repeats"
    ):
        mix(tmp_path, mix_inputs, 400)
    assert not (tmp_path / "out").exists()
    result, manifest = mix(tmp_path, mix_inputs, 400, max_repeats=4)
    assert manifest.data["target"] == 400


def test_missing_input_names_the_command(tmp_path: Path, mix_inputs: dict[str, Path]) -> None:
    inputs = {**mix_inputs, "qa_b": tmp_path / "nowhere"}
    recipe = write_recipe(tmp_path / "r.yaml", inputs)
    with pytest.raises(
        MissingInput,
        match=r"input .*nowhere of source qa_b \(stage sft\) is not a finished "
        r"shard set .*make it with: slime-data ingest qa_b --root",
    ):
        run_mix(load_mix_recipe(recipe), 10, out=tmp_path / "o", manifest_path=tmp_path / "m.json")


def test_loads_with_datasets_polars_pyarrow(tmp_path: Path, mix_inputs: dict[str, Path]) -> None:
    import datasets
    import polars as pl
    from PIL import Image

    _, manifest = mix(tmp_path, mix_inputs, 60)
    files = [str(p) for p in manifest.shard_paths("sft")]
    ds = datasets.load_dataset("arrow", data_files=files, split="train", cache_dir=str(tmp_path / "hf"))
    assert len(ds) == manifest.data["stages"]["sft"]["rows"]
    assert isinstance(ds[0]["image"], Image.Image)
    frame = pl.scan_ipc(files).select(pl.len()).collect()
    assert frame.item() == len(ds)
    table = pds.dataset(files, format="ipc").to_table(columns=["id", "source"])
    assert table.num_rows == len(ds)


def test_decontamination_against_a_benchmark(tmp_path: Path, mix_inputs: dict[str, Path]) -> None:
    from slime_data.shards import ShardSet

    leaked = ShardSet(mix_inputs["qa_a"])[7]
    (tmp_path / "bench.jsonl").write_text(
        json.dumps({"id": "b1", "question": leaked.question, "answer": leaked.answer}) + "\n"
    )
    hygiene = [
        {"step": "exact_dedup"},
        {"step": "near_dedup"},
        {"step": "decontaminate", "benchmarks": [{"format": "jsonl", "path": "bench.jsonl"}]},
    ]
    recipe = load_mix_recipe(write_recipe(tmp_path / "recipe.yaml", mix_inputs, hygiene=hygiene))
    result = run_mix(recipe, 100, out=tmp_path / "out", manifest_path=tmp_path / "mix.json", recipe_dir=tmp_path)
    manifest = load_mix_manifest(result.manifest_path)
    assert manifest.data["hygiene"]["by_step"] == {
        "decontaminate": {"benchmark_question:bench": 1},
        "exact_dedup": {"exact_duplicate": 2},
    }
    assert [s["step"] for s in manifest.data["hygiene"]["steps"]] == ["exact_dedup", "near_dedup", "decontaminate"]
    assert manifest.data["stages"]["sft"]["sources"]["qa_a"]["dropped"] == 1
    assert leaked.id not in {lineage(r)["id"] for r in rows_of(manifest, "sft")}
    rejects = [json.loads(line) for line in (manifest.stage_dir("sft") / "rejects.jsonl").read_text().splitlines()]
    assert {(r["id"], r["step"]) for r in rejects} >= {(leaked.id, "decontaminate")}
