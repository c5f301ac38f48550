"""`slime-data export llava` and `validate` against rows whose id or source would name another folder."""

from __future__ import annotations

import dataclasses
import io
import json
from pathlib import Path

import pytest
from PIL import Image
from typer.testing import CliRunner

from slime_data.cli.main import app
from slime_data.record import ImageRef, Record, RecordError, id_problem, validate_record
from slime_data.shards import validate_shard_set, write_shard_set

runner = CliRunner()


def make_records(n: int) -> list[Record]:
    """``n`` rows of source ``demo``; every fourth one text-only."""
    buffer = io.BytesIO()
    Image.new("RGB", (24, 16), "red").save(buffer, "PNG")
    records = []
    for i in range(n):
        image = i % 4 != 3
        records.append(
            Record(
                id=f"demo/{i}",
                source="demo",
                split="train",
                conversations=[
                    {"from": "human", "value": ("<image>\n" if image else "") + f"question {i}?"},
                    {"from": "gpt", "value": f"answer {i}"},
                ],
                image=ImageRef(bytes=buffer.getvalue(), path=f"img/{i}.png") if image else None,
                width=24 if image else None,
                height=16 if image else None,
            )
        )
    return records


ESCAPING = [
    ("..", "../escaped"),
    ("demo", "demo/../../escaped"),
    ("demo", "demo/a/./b"),
    ("demo", "demo/"),
    (".hidden", ".hidden/x"),
    ("a/b", "a/b/c"),
    ("demo", "demo/a\x00b"),
    ("", "/etc/passwd"),
]


@pytest.mark.parametrize(("source", "record_id"), ESCAPING)
def test_ids_that_could_name_another_folder_are_refused_at_write(tmp_path: Path, source: str, record_id: str) -> None:
    record = dataclasses.replace(make_records(1)[0], source=source, id=record_id)
    assert id_problem(record_id, source) is not None
    with pytest.raises(RecordError):
        validate_record(record)
    with pytest.raises(RecordError):
        write_shard_set(tmp_path / "out", [record])


def test_ordinary_ids_pass() -> None:
    for source, record_id in [
        ("chartqa", "chartqa/two_col_1.png/0"),
        ("tqa", "tqa/NDQ_000001/q 3"),
        ("llava_pretrain", "llava_pretrain/000000001"),
        ("geoqa_plus", "geoqa_plus/1.json"),
    ]:
        assert id_problem(record_id, source) is None, record_id


def _tampered_set(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A shard set with sound files and checksums holding a row ``../escaped`` of source ``..``
    (as if written by another tool: the writer's own check is switched off for it)."""
    records = make_records(3)
    records[1] = dataclasses.replace(records[1], source="..", id="../escaped")
    with monkeypatch.context() as patch:
        patch.setattr("slime_data.shards.validate_record", lambda record: None)
        write_shard_set(tmp_path / "set", records)
    return tmp_path / "set"


def test_validate_catches_an_escaping_row(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    shard_set = _tampered_set(tmp_path, monkeypatch)
    problems = validate_shard_set(shard_set)
    assert len(problems) == 1 and "'..'" in problems[0]
    result = runner.invoke(app, ["validate", str(shard_set)])
    assert result.exit_code == 1


def test_export_refuses_an_escaping_row_and_writes_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    shard_set = _tampered_set(tmp_path, monkeypatch)
    work = tmp_path / "work"
    work.mkdir()
    result = runner.invoke(
        app, ["export", "llava", str(shard_set), "--out", str(work / "x.json"), "--image-dir", str(work / "images")]
    )
    assert result.exit_code == 2, result.output
    assert "refusing to export" in result.output
    assert sorted(p.name for p in tmp_path.iterdir()) == ["set", "work"]  # no tmp_path/escaped.png
    assert list(work.iterdir()) == []


def test_export_writes_every_image_inside_the_image_dir(tmp_path: Path) -> None:
    write_shard_set(tmp_path / "set", make_records(8))
    out, images = tmp_path / "llava.json", tmp_path / "images"
    args = ["export", "llava", str(tmp_path / "set"), "--out", str(out), "--image-dir", str(images)]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    entries = json.loads(out.read_text())
    assert len(entries) == 8
    written = sorted(str(p.relative_to(images)) for p in images.rglob("*.png"))
    assert written == sorted(e["image"] for e in entries if "image" in e) and len(written) == 6
    assert all(name.startswith("demo/") for name in written)
