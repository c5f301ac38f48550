"""The writer: lineage in meta (vectorised, exact JSON), output batches bounded by bytes, gathered rows byte-identical
to row-by-row slices."""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pytest

import slime_data.mix.gather as gather
import slime_data.mix.write as write
from slime_data.mix.manifest import load_mix_manifest
from slime_data.mix.plan import POINTER
from slime_data.mix.recipe import load_mix_recipe
from slime_data.mix.run import run_mix
from slime_data.record import Record, records_to_table
from tests.slime_data.mix.mixdata import write_recipe


def batch_of(ids: list[str], metas: list[dict]) -> pa.RecordBatch:
    records = [
        Record(id=i, source="s", split="train", conversations=[{"from": "human", "value": "q"}], meta=m)
        for i, m in zip(ids, metas)
    ]
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
        assert fields.pop("lineage") == {
            "id": record_id,
            "input": ["data/a", 'data/"b"'][[0, 1, 0, 1][i]],
            "repeat": [0, 1, 2, 0][i],
            "source": "s",
        }
        expected = {k: v for k, v in metas[i].items() if k != "lineage"}
        assert fields == expected
    # Plain rows take the vectorised path; the same rows next to ones that need escaping give the same bytes.
    clean = write.with_lineage(
        batch_of([ids[0], ids[3]], [metas[0], metas[3]]), pointers([0, 0], [0, 1]), ["data/a", 'data/"b"']
    )
    assert clean.column("meta").to_pylist() == [out.column("meta")[0].as_py(), out.column("meta")[3].as_py()]
    assert clean.column("meta")[1].as_py().startswith('{"license": "cc", "lineage": ')


def test_output_batches_bounded_by_bytes(
    tmp_path: Path, mix_inputs: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(write, "BATCH_BYTES", 2_000)  # each test image is ~600 bytes
    recipe = load_mix_recipe(write_recipe(tmp_path / "recipe.yaml", mix_inputs, rows_per_shard=50))
    manifest = load_mix_manifest(
        run_mix(recipe, 100, out=tmp_path / "out", manifest_path=tmp_path / "mix.json").manifest_path
    )
    sizes = []
    for path in manifest.shard_paths("sft"):
        reader = pa.ipc.open_file(pa.memory_map(str(path)))
        for b in range(reader.num_record_batches):
            images = pc.binary_length(pc.struct_field(reader.get_batch(b).column("image"), "bytes"))
            sizes.append((pc.sum(images).as_py(), len(images)))
    assert len(sizes) > 10
    assert all(total <= 2_000 or rows == 1 for total, rows in sizes)


# -- gathering: the output must be the bytes of concatenating each row's one-row slice ---------

VALUES = [
    "",
    "x",
    "twelve bytes",
    "thirteen byte",
    'quote " and \\ slash',
    "ünïcödé 😀 text that is longer than twelve",
    None,
]
METAS = [None, "{}", '{"license": "cc"}', '{"a": 1, "z": "ü"}']


def awkward_rows(n: int, first: int, stale_lineage: bool) -> list[dict]:
    """Rows cycling through nulls, empty, 12- and 13-byte, escaped and non-ASCII values in every column."""
    rows = []
    for i in range(first, first + n):
        value = VALUES[i % len(VALUES)]
        turns = [{"from": "human", "value": VALUES[(i + k) % len(VALUES)]} for k in range(i % 4)]
        rows.append(
            {
                "id": f"s/{i}{value or ''}",
                "source": ["s", 's"q', "sü"][i % 3],
                "split": "train",
                "conversations": None if i % 5 == 0 else turns,
                "task": value,
                "image": None
                if i % 3 == 0
                else {"bytes": None if i % 7 == 0 else bytes(range(i % 256)) * (1 + i % 5), "path": value},
                "width": None if i % 3 == 0 else i,
                "height": None if i % 4 == 0 else 2 * i,
                "image_hash": VALUES[(i + 1) % len(VALUES)],
                "phash": None if i % 6 == 0 else (2**64 - 1 - i),
                "answer": VALUES[(i + 2) % len(VALUES)],
                "choices": None if i % 2 else [VALUES[(i + k) % len(VALUES)] for k in range(i % 4)],
                "rationale": VALUES[(i + 3) % len(VALUES)],
                "meta": '{"lineage": {"stale": true}, "b": 1}'
                if stale_lineage and i % 40 == 0
                else METAS[i % len(METAS)],
            }
        )
    return rows


def write_awkward_shard(path: Path, rows: list[dict], batch_sizes: list[int]) -> None:
    """An input shard whose record batches have the given sizes, cycled."""
    table = pa.Table.from_pylist(rows, schema=write.ARROW_SCHEMA)
    sizes, start = itertools.cycle(batch_sizes), 0
    with pa.OSFile(str(path), "wb") as sink, pa.ipc.new_file(sink, write.ARROW_SCHEMA) as writer:
        while start < len(rows):
            size = next(sizes)
            writer.write_table(table.slice(start, size))
            start += size


def reference_shard(path: Path, job: write.ShardJob, pointers_of_job: np.ndarray) -> None:
    """The shard as written by cutting each row out of its input batch and concatenating the one-row slices."""
    tables = {
        (i, s): pa.ipc.open_file(shard).read_all()
        for i, (_, shards) in enumerate(job.inputs)
        for s, shard in enumerate(shards)
    }
    names = [name for name, _ in job.inputs]
    with pa.OSFile(str(path), "wb") as sink, pa.ipc.new_file(sink, write.ARROW_SCHEMA) as writer:
        rows, size, first = [], 0, 0
        for i, pointer in enumerate([*pointers_of_job, None]):
            if rows and (
                pointer is None or len(rows) == write.BATCH_ROWS or size + pointer["bytes"] > write.BATCH_BYTES
            ):
                writer.write_batch(write.with_lineage(pa.concat_batches(rows), pointers_of_job[first:i], names))
                rows, size, first = [], 0, i
            if pointer is not None:
                rows.append(
                    tables[(int(pointer["input"]), int(pointer["shard"]))].slice(int(pointer["row"]), 1).to_batches()[0]
                )
                size += int(pointer["bytes"])


def awkward_pointers(tables: dict[tuple[int, int], list[dict]]) -> np.ndarray:
    """Scattered rows, runs read backwards from one input batch, and rows drawn twice (repeats), from every shard."""
    parts = []
    for (input_index, shard), rows in sorted(tables.items()):
        n = len(rows)
        for rows_drawn in (np.arange(0, n, 7), np.arange(n // 2 + 20, n // 2, -1), np.repeat(np.arange(5, 12), 2)):
            part = np.zeros(len(rows_drawn), dtype=POINTER)
            part["input"], part["shard"], part["row"] = input_index, shard, rows_drawn
            part["repeat"] = np.arange(len(rows_drawn)) % 3
            part["bytes"] = [len((rows[r]["image"] or {}).get("bytes") or b"") for r in rows_drawn]
            parts.append(part)
    pointers = np.concatenate(parts)
    return pointers[np.random.default_rng(0).permutation(len(pointers))]


@pytest.mark.parametrize(
    ("batch_rows", "batch_bytes", "gather_rows", "window_step"),
    [
        (256, 32 * 2**20, 4096, 2**30),
        (8, 32 * 2**20, 24, 2**30),
        (8, 600, 24, 2**30),
        (256, 1, 4096, 2**30),
        (256, 32 * 2**20, 4096, 4096),
    ],
    ids=["defaults", "small-batches", "batches-bounded-by-bytes", "one-row-batches", "files-lent-in-4-KiB-windows"],
)
def test_gathered_shard_is_byte_identical_to_concatenated_rows(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    batch_rows: int,
    batch_bytes: int,
    gather_rows: int,
    window_step: int,
) -> None:
    monkeypatch.setattr(write, "BATCH_ROWS", batch_rows)
    monkeypatch.setattr(write, "BATCH_BYTES", batch_bytes)
    monkeypatch.setattr(write, "GATHER_ROWS", gather_rows)
    # as files over 2 GiB are: views address them window by window
    monkeypatch.setattr(gather, "_WINDOW_STEP", window_step)
    tables, inputs = {}, []
    for input_index, batch_sizes in enumerate([[1, 3, 256], [100, 7]]):
        shards = []
        for shard in range(2):
            rows = awkward_rows(
                150 + 60 * shard, first=1000 * (2 * input_index + shard), stale_lineage=(input_index, shard) == (1, 1)
            )
            write_awkward_shard(tmp_path / f"in-{input_index}-{shard}.arrow", rows, batch_sizes)
            tables[(input_index, shard)] = rows
            shards.append(str(tmp_path / f"in-{input_index}-{shard}.arrow"))
        inputs.append((f'data/"input {input_index}"', tuple(shards)))
    pointers = awkward_pointers(tables)
    work_dir, stage_dir = tmp_path / "work", tmp_path / "stage"
    stage_dir.mkdir()
    work_dir.mkdir()
    np.save(write.pointers_path(work_dir, "stage"), pointers)
    per_shard = 150
    total = -(-len(pointers) // per_shard)
    for index in range(total):
        start, stop = index * per_shard, min(len(pointers), (index + 1) * per_shard)
        job = write.ShardJob(str(work_dir), str(stage_dir), "stage", index, total, start, stop, tuple(inputs))
        done = write.write_shard(job)
        reference_shard(tmp_path / "reference.arrow", job, pointers[start:stop])
        assert (stage_dir / done["shard"]["file"]).read_bytes() == (tmp_path / "reference.arrow").read_bytes()
        assert done["shard"]["rows"] == stop - start


def test_rewritten_input_is_read_anew(tmp_path: Path) -> None:
    """Input maps kept from job to job are dropped when the file changes."""
    shard = tmp_path / "in.arrow"
    work_dir, stage_dir = tmp_path / "work", tmp_path / "stage"
    work_dir.mkdir()
    stage_dir.mkdir()
    pointers = np.zeros(20, dtype=POINTER)
    pointers["row"] = np.arange(20)[::-1]
    np.save(write.pointers_path(work_dir, "stage"), pointers)
    job = write.ShardJob(str(work_dir), str(stage_dir), "stage", 0, 1, 0, 20, (("in", (str(shard),)),))
    for first in (0, 500):
        rows = awkward_rows(30, first=first, stale_lineage=False)
        write_awkward_shard(tmp_path / "next.arrow", rows, [7])
        (tmp_path / "next.arrow").replace(shard)
        done = write.write_shard(job)
        written = pa.ipc.open_file(str(stage_dir / done["shard"]["file"])).read_all()
        assert written.column("width").to_pylist() == [rows[r]["width"] for r in range(19, -1, -1)]


def test_gather_groups_are_whole_batches_bounded_by_rows_and_image_bytes(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(write, "BATCH_ROWS", 4)
    monkeypatch.setattr(write, "BATCH_BYTES", 1_000)
    monkeypatch.setattr(write, "GATHER_ROWS", 10)
    image_bytes = np.random.default_rng(0).choice([0, 10, 300, 2_000], size=200)
    batches = write.output_batches(image_bytes)
    groups = list(write.gather_groups(batches, image_bytes))
    assert [batch for group in groups for batch in group] == batches
    for group in groups:
        rows, images = group[-1][1] - group[0][0], image_bytes[group[0][0] : group[-1][1]].sum()
        assert len(group) == 1 or (rows <= 10 and images <= 1_000)
    assert max(len(group) for group in groups) > 1
