"""ChartQA adapter on the real sample, with generated stand-in PNGs under the expected names."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from slime_data.sources import REGISTRY, SourceNotFound
from tests.slime_data.image_faults import plain_png

adapter = REGISTRY["chartqa"]
INNER = "ChartQA Dataset"


@pytest.fixture
def chartqa(real_samples: Path, copy_of) -> Path:
    """The real sample plus a stand-in PNG for every chart its questions name."""
    root = copy_of(real_samples / "chartqa")
    for questions in (root / INNER).glob("*/*_*.json"):
        for item in json.loads(questions.read_text(encoding="utf-8")):
            image = questions.parent / "png" / item["imgname"]
            if not image.exists():
                plain_png(image)
    return root


def test_locate_from_release_root_or_inner_folder(chartqa: Path) -> None:
    assert adapter.locate(chartqa) == chartqa / INNER
    assert adapter.locate(chartqa / INNER) == chartqa / INNER
    with pytest.raises(SourceNotFound, match="train/train_human.json"):
        adapter.locate(chartqa / INNER / "train")


def test_splits_and_default(chartqa: Path) -> None:
    assert adapter.splits(chartqa) == ["train", "test"]  # the sample has no val
    assert adapter.default_splits == ("train",)


def test_human_and_tab_crlf_augmented_questions_are_both_read(chartqa: Path, read_split) -> None:
    out = read_split(adapter, chartqa, "test")
    assert not out.rejects
    assert out.ids[:2] == ["chartqa/test_human_0", "chartqa/test_human_1"]
    assert sum(i.startswith("chartqa/test_human_") for i in out.ids) == 20
    assert sum(i.startswith("chartqa/test_augmented_") for i in out.ids) == 20
    record = out.by_id("chartqa/test_augmented_0")
    assert record.image.path == "test/png/multi_col_803.png"
    human, gpt = record.conversations
    assert human["value"] == (
        "<image>\nHow many stores did Saint Laurent operate in Western Europe in 2020?\n"
        "Answer the question using a single word or phrase."
    )
    assert gpt["value"] == "47" and record.answer == "47" and record.choices is None and record.rationale is None
    assert record.task == "chart" and record.meta["question_set"] == "augmented"
    assert out.records[-1].id == "chartqa/test_augmented_19" and out.records[-1].answer == "2.5"


def test_quirky_queries_and_list_like_labels(chartqa: Path, read_split) -> None:
    out = read_split(adapter, chartqa, "train")
    assert len(out.records) == 22 and not out.rejects
    listed = next(r for r in out.records if "all two data" in r.question)
    assert listed.answer == "[63, 26]" and listed.meta["imgname"] == "10305.png"
    doubled = next(r for r in out.records if r.meta["imgname"] == "10149.png" and "favourable" in r.question)
    assert "sum favourable value in" in doubled.question  # the doubled space is collapsed


def test_malformed_questions_are_counted_rejects(chartqa: Path, read_split) -> None:
    path = chartqa / INNER / "train" / "train_human.json"
    items = json.loads(path.read_text())
    items[0]["label"] = 14
    del items[1]["query"]
    items[2]["imgname"] = "../../../../outside.png"
    items[3]["imgname"] = "no_such_chart.png"
    items[4]["label"] = "  "
    items[5] = "not an object"
    path.write_text(json.dumps(items))
    out = read_split(adapter, chartqa, "train")
    assert out.reasons == {
        "chartqa/train_human_0": "wrong_type",
        "chartqa/train_human_1": "missing_field",
        "chartqa/train_human_2": "image_outside_root",
        "chartqa/train_human_3": "image_missing",
        "chartqa/train_human_4": "bad_value",
        "chartqa/train_human_5": "not_an_object",
    }
    assert len(out.records) == 22 - 6


def test_unreadable_question_file_is_one_clear_error(chartqa: Path) -> None:
    path = chartqa / INNER / "test" / "test_augmented.json"
    path.write_bytes(path.read_bytes()[:-40])  # cut off mid-record
    with pytest.raises(ValueError, match="test_augmented.json is not valid JSON"):
        list(adapter.read(chartqa, "test"))
    path.write_text('{"imgname": "x.png"}')
    with pytest.raises(ValueError, match="is not a JSON list"):
        list(adapter.read(chartqa, "test"))
    with pytest.raises(SourceNotFound, match="no val_human.json or val_augmented.json"):
        list(adapter.read(chartqa, "val"))
