"""Geometry3K adapter on a tiny fixture in the published format: one folder per problem."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from slime_data.sources import REGISTRY, SourceNotFound

adapter = REGISTRY["geometry3k"]


@pytest.fixture
def geometry3k(source_fixtures: Path, copy_of) -> Path:
    return copy_of(source_fixtures / "geometry3k")


@pytest.mark.parametrize("inner", ["", "data", "data/geometry3k"])
def test_locate_from_release_root_or_inner_folder(geometry3k: Path, inner: str) -> None:
    assert adapter.locate(geometry3k / inner) == geometry3k / "data" / "geometry3k"


def test_locate_needs_problem_folders(tmp_path: Path) -> None:
    (tmp_path / "train").mkdir()  # a bare train/ folder is not Geometry3K
    with pytest.raises(SourceNotFound, match="train/\\*/data.json"):
        adapter.locate(tmp_path)


def test_splits_and_default(geometry3k: Path, read_split) -> None:
    assert adapter.splits(geometry3k) == ["train", "val", "test"]
    assert adapter.default_splits == ("train",)
    assert read_split(adapter, geometry3k, "val").ids == ["geometry3k/2101"]


def test_records_in_numeric_order_with_letter_answers(geometry3k: Path, read_split) -> None:
    out = read_split(adapter, geometry3k, "train")
    assert out.ids == ["geometry3k/0", "geometry3k/2", "geometry3k/10"] and not out.rejects
    record = out.by_id("geometry3k/0")
    assert record.conversations == [
        {
            "from": "human",
            "value": "<image>\nFind x.\nA. 3\nB. 4\nC. 6\nD. 8\n"
            "Answer with the option's letter from the given choices directly.",
        },
        {"from": "gpt", "value": "B"},
    ]
    assert record.answer == "B" and record.choices == ["3", "4", "6", "8"] and record.meta["answer_text"] == "4"
    assert record.image.path == "train/0/img_diagram.png" and record.task == "geometry"
    assert record.rationale is None  # detailed_solution is " "
    assert out.by_id("geometry3k/2").answer == "C"  # key order reversed in that file
    assert out.by_id("geometry3k/10").rationale.startswith("The area of a triangle")
    assert record.meta["unit"] is None  # "" in the release: no unit line


def test_unit_is_in_the_prompt(geometry3k: Path, read_split) -> None:
    """The choices are bare numbers ("35"); the published unit says what they measure."""
    record = read_split(adapter, geometry3k, "train").by_id("geometry3k/10")
    assert record.conversations[0]["value"] == (
        "<image>\nFind the area of the triangle. Round to the nearest tenth if necessary. (Unit: ft^2)\n"
        "A. 17.5\nB. 35\nC. 70\nD. 140\nAnswer with the option's letter from the given choices directly."
    )
    assert record.meta["unit"] == "ft^2" and record.answer == "B"


def test_malformed_problems_are_counted_rejects(geometry3k: Path, read_split) -> None:
    train = geometry3k / "data" / "geometry3k" / "train"
    data = json.loads((train / "0" / "data.json").read_text())
    (train / "0" / "data.json").write_text(json.dumps(dict(data, answer="E")))
    (train / "2" / "data.json").write_text('{"problem_text": "Find x.", ')
    (train / "10" / "img_diagram.png").unlink()
    for name, change in {"11": {"choices": "3, 4, 6, 8"}, "12": {"problem_text": None}}.items():
        (train / name).mkdir()
        (train / name / "data.json").write_text(json.dumps(dict(data, **change)))
    (train / "13").mkdir()  # a folder with no data.json
    (train / "15").mkdir()
    (train / "15" / "data.json").write_text("[]")
    (train / "14").mkdir()
    (train / "14" / "data.json").write_text(json.dumps(data))
    # The user's links are followed (only annotation text is checked): a dangling one is a missing image.
    (train / "14" / "img_diagram.png").symlink_to(geometry3k.parent / "elsewhere.png")
    (train / ".DS_Store").write_bytes(b"\x00")  # stray files are not problems
    out = read_split(adapter, geometry3k, "train")
    assert out.reasons == {
        "geometry3k/0": "bad_value",
        "geometry3k/2": "bad_json",
        "geometry3k/10": "image_missing",
        "geometry3k/11": "wrong_type",
        "geometry3k/12": "missing_field",
        "geometry3k/13": "missing_field",
        "geometry3k/14": "image_missing",
        "geometry3k/15": "not_an_object",
    }
    assert not out.records
