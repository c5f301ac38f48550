"""Shard sets: atomic, deterministic writes; mmap reads; validation; loadable by datasets/polars/pyarrow."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pyarrow as pa
import pyarrow.dataset as pds
import pytest
import yaml
from PIL import Image

from slime_data.record import ImageRef, Record, Reject
from slime_data.shards import ShardSet, ShardWriter, validate_shard_set, write_shard_set


def png_bytes(color: str, size: tuple[int, int] = (24, 16)) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, color).save(buffer, "PNG")
    return buffer.getvalue()


def make_records(n: int) -> list[Record]:
    colors = ["red", "green", "blue"]
    records = []
    for i in range(n):
        with_image = i % 4 != 3
        records.append(
            Record(
                id=f"demo/{i}",
                source="demo",
                split="train",
                task="chart" if i % 2 else "general",
                conversations=[
                    {"from": "human", "value": ("<image>\n" if with_image else "") + f"question {i}?"},
                    {"from": "gpt", "value": f"answer {i}"},
                ],
                image=ImageRef(bytes=png_bytes(colors[i % 3]), path=f"img/{i}.png") if with_image else None,
                width=24 if with_image else None,
                height=16 if with_image else None,
                phash=(2**64 - 1 - i) if with_image else None,
                answer=str(i),
                choices=["a", "b"] if i % 5 == 0 else None,
                meta={"n": i},
            )
        )
    return records


def test_round_trip_and_sharding(tmp_path: Path) -> None:
    records = make_records(700)
    manifest = write_shard_set(
        tmp_path, [*records, Reject("demo/x", "demo", "source", "bad_json", "line 3")], max_shard_rows=300
    )
    assert [s["rows"] for s in manifest["shards"]] == [256, 256, 188]
    assert [s["file"] for s in manifest["shards"]] == [f"data-0000{i}-of-00003.arrow" for i in range(3)]
    assert manifest["num_rows"] == 700
    assert manifest["counts"]["task"] == {"chart": 350, "general": 350}
    assert manifest["rejects"] == {"total": 1, "by_step": {"source": {"bad_json": 1}}}
    assert json.loads((tmp_path / "rejects.jsonl").read_text()) == {
        "id": "demo/x",
        "source": "demo",
        "step": "source",
        "reason": "bad_json",
        "detail": "line 3",
    }

    shard_set = ShardSet(tmp_path)
    assert len(shard_set) == 700
    assert shard_set[0] == records[0]
    assert shard_set[555] == records[555]
    assert shard_set[-1] == records[-1]
    assert [r.id for r in shard_set] == [r.id for r in records]
    with pytest.raises(IndexError):
        shard_set[700]
    assert validate_shard_set(tmp_path) == []


def test_byte_limit_bounds_shards(tmp_path: Path) -> None:
    manifest = write_shard_set(tmp_path, make_records(600), max_shard_bytes=40_000)
    assert len(manifest["shards"]) > 2
    assert sum(s["rows"] for s in manifest["shards"]) == 600


def test_deterministic_bytes(tmp_path: Path) -> None:
    records = make_records(300)
    first = write_shard_set(tmp_path / "a", records, command="x", name="demo", max_shard_rows=128)
    second = write_shard_set(tmp_path / "b", records, command="x", name="demo", max_shard_rows=128)
    assert [s["sha256"] for s in first["shards"]] == [s["sha256"] for s in second["shards"]]
    assert (tmp_path / "a" / "manifest.json").read_bytes() == (tmp_path / "b" / "manifest.json").read_bytes()


def test_rewrite_replaces_old_shards(tmp_path: Path) -> None:
    write_shard_set(tmp_path, make_records(600), max_shard_rows=200)
    write_shard_set(tmp_path, make_records(100), max_shard_rows=200)
    assert sorted(p.name for p in tmp_path.glob("data-*.arrow")) == ["data-00000-of-00001.arrow"]
    assert validate_shard_set(tmp_path) == []


def test_failure_leaves_nothing_final(tmp_path: Path) -> None:
    with pytest.raises(RuntimeError):
        with ShardWriter(tmp_path) as writer:
            writer.add_all(make_records(300))
            raise RuntimeError("crash mid-write")
    assert not (tmp_path / "manifest.json").exists()
    assert list(tmp_path.glob("data-*")) == []
    assert list(tmp_path.glob(".*tmp")) == []


def test_empty_set_is_readable(tmp_path: Path) -> None:
    manifest = write_shard_set(tmp_path, [])
    assert manifest["num_rows"] == 0
    assert len(ShardSet(tmp_path)) == 0
    assert validate_shard_set(tmp_path) == []


def test_invalid_record_is_refused(tmp_path: Path) -> None:
    bad = make_records(1)[0]
    bad.conversations[0]["value"] = "no placeholder"
    with pytest.raises(ValueError, match="placeholder"):
        write_shard_set(tmp_path, [bad])


def test_validate_catches_tampering(tmp_path: Path) -> None:
    write_shard_set(tmp_path, make_records(50))
    shard = next(tmp_path.glob("data-*.arrow"))
    data = bytearray(shard.read_bytes())
    data[len(data) // 2] ^= 0xFF
    shard.write_bytes(bytes(data))
    problems = validate_shard_set(tmp_path)
    assert any("sha256" in p for p in problems)
    shard.unlink()
    assert any("missing" in p for p in validate_shard_set(tmp_path))
    (tmp_path / "manifest.json").unlink()
    assert "no manifest.json" in validate_shard_set(tmp_path)[0]


def test_loads_with_datasets_polars_pyarrow(tmp_path: Path) -> None:
    import datasets
    import polars as pl

    records = make_records(40)
    write_shard_set(tmp_path, records, max_shard_rows=20)
    files = sorted(str(p) for p in tmp_path.glob("data-*.arrow"))

    ds = datasets.load_dataset("arrow", data_files=files, split="train", cache_dir=str(tmp_path / "hf"))
    assert len(ds) == 40
    first = ds[0]
    assert isinstance(first["image"], Image.Image) and first["image"].size == (24, 16)
    assert first["conversations"] == records[0].conversations
    assert ds[3]["image"] is None  # text-only row

    assert pl.scan_ipc(files).select(pl.len()).collect().item() == 40
    assert pds.dataset(files, format="ipc").count_rows() == 40
    assert pds.dataset(tmp_path, format="ipc", exclude_invalid_files=True).count_rows() == 40


def test_card_has_yaml_header(tmp_path: Path) -> None:
    write_shard_set(tmp_path, make_records(10), command="slime-data test")
    text = (tmp_path / "README.md").read_text()
    header = yaml.safe_load(text.split("---")[1])
    assert header["configs"][0]["data_files"][0]["path"] == "data-*.arrow"
    assert header["dataset_info"]["splits"][0]["num_examples"] == 10
    assert "slime-data test" in text


def test_iter_batches_selects_columns(tmp_path: Path) -> None:
    write_shard_set(tmp_path, make_records(30), max_shard_rows=10)
    batches = list(ShardSet(tmp_path).iter_batches(columns=["id", "phash"]))
    assert sum(b.num_rows for b in batches) == 30
    assert batches[0].schema.names == ["id", "phash"]
    assert batches[0].column("phash").type == pa.uint64()
