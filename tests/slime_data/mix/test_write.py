"""The writer: lineage in meta (vectorised, exact JSON), and output batches bounded by bytes."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pytest

import slime_data.mix.write as write
from slime_data.mix.manifest import load_mix_manifest
from slime_data.mix.plan import POINTER
from slime_data.mix.recipe import load_mix_recipe
from slime_data.mix.run import run_mix
from slime_data.record import Record, records_to_table
from tests.slime_data.mix.mixdata import write_recipe


def batch_of(ids: list[str], metas: list[dict]) -> pa.RecordBatch:
    records = [Record(id=i, source="s", split="train", conversations=[{"from": "human", "value": "q"}], meta=m) for i, m in zip(ids, metas)]
    return records_to_table(records).to_batches()[0]


def pointers(repeats: list[int], inputs: list[int]) -> np.ndarray:
    array = np.zeros(len(repeats), dtype=POINTER)
    array["repeat"], array["input"] = repeats, inputs
    return array


def test_lineage_is_exact_json_and_keeps_meta_bytes() -> None:
    ids = ["s/plain", 's/quote"and\\slash', "s/tab\there", "s/ünï"]
    metas = [{}, {"a": 1, "z": "ü"}, {"lineage": {"stale": True}, "b": [1, 2]}, {"license": "cc"}]
    out = write.with_lineage(batch_of(ids, metas), pointers([0, 1, 2, 0], [0, 1, 0, 1]), ["data/a", 'data/"b"'])
    new_ids = out.column("id").to_pylist()
    assert new_ids == ["s/plain", 's/quote"and\\slash@rep1', "s/tab\there@rep2", "s/ünï"]
    for i, (record_id, meta) in enumerate(zip(ids, out.column("meta").to_pylist())):
        fields = json.loads(meta)
        assert fields.pop("lineage") == {"id": record_id, "input": ["data/a", 'data/"b"'][[0, 1, 0, 1][i]], "repeat": [0, 1, 2, 0][i], "source": "s"}
        expected = {k: v for k, v in metas[i].items() if k != "lineage"}
        assert fields == expected
    # Plain rows take the vectorised path; the same rows next to ones that need escaping give the same bytes.
    clean = write.with_lineage(batch_of([ids[0], ids[3]], [metas[0], metas[3]]), pointers([0, 0], [0, 1]), ["data/a", 'data/"b"'])
    assert clean.column("meta").to_pylist() == [out.column("meta")[0].as_py(), out.column("meta")[3].as_py()]
    assert clean.column("meta")[1].as_py().startswith('{"license": "cc", "lineage": ')


def test_output_batches_bounded_by_bytes(tmp_path: Path, mix_inputs: dict[str, Path], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(write, "BATCH_BYTES", 2_000)  # each test image is ~600 bytes
    recipe = load_mix_recipe(write_recipe(tmp_path / "recipe.yaml", mix_inputs, rows_per_shard=50))
    manifest = load_mix_manifest(run_mix(recipe, 100, out=tmp_path / "out", manifest_path=tmp_path / "mix.json").manifest_path)
    sizes = []
    for path in manifest.shard_paths("sft"):
        reader = pa.ipc.open_file(pa.memory_map(str(path)))
        for b in range(reader.num_record_batches):
            images = pc.binary_length(pc.struct_field(reader.get_batch(b).column("image"), "bytes"))
            sizes.append((pc.sum(images).as_py(), len(images)))
    assert len(sizes) > 10
    assert all(total <= 2_000 or rows == 1 for total, rows in sizes)
