"""DVQA adapter on tiny fixtures in both published layouts: the native release and InternVL's jsonl."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from slime_data.sources import REGISTRY, SourceNotFound
from slime_data.sources.dvqa import DVQA, QUESTION_TYPES

adapter = REGISTRY["dvqa"]
REASONING_IDS = ["dvqa/100000002", "dvqa/100000003", "dvqa/100000004"]


@pytest.fixture
def native(source_fixtures: Path, copy_of) -> Path:
    return copy_of(source_fixtures / "dvqa" / "native")


@pytest.fixture
def internvl(source_fixtures: Path, copy_of) -> Path:
    return copy_of(source_fixtures / "dvqa" / "internvl")


def _write_train(native: Path, items: list) -> None:
    (native / "DVQA" / "qa" / "train_qa.json").write_text(json.dumps(items))


def _train_items(native: Path) -> list[dict]:
    return json.loads((native / "DVQA" / "qa" / "train_qa.json").read_text())


def test_locate_from_release_root_or_inner_folder(native: Path, internvl: Path, tmp_path: Path, read_split) -> None:
    assert adapter.locate(native) == native
    assert adapter.locate(native / "DVQA") == native / "DVQA"
    assert adapter.locate(internvl) == internvl / "playground"
    # Image paths are relative to whichever folder was located.
    assert read_split(adapter, native / "DVQA", "train").records[0].image.path == "images/bar_train_00000000.png"
    assert read_split(adapter, native, "train").records[0].image.path == "DVQA/images/bar_train_00000000.png"
    with pytest.raises(SourceNotFound, match="qa/train_qa.json.*dvqa_train_200k.jsonl"):
        adapter.locate(tmp_path)


def test_splits_and_default(native: Path, internvl: Path, read_split) -> None:
    assert adapter.default_splits == ("train",)
    assert adapter.splits(native) == ["train", "val_easy"]  # val_hard is not in the fixture
    assert read_split(adapter, native, "val_easy").ids == ["dvqa/200000000"]
    with pytest.raises(SourceNotFound, match="val_hard"):
        list(adapter.read(native, "val_hard"))
    assert adapter.splits(internvl) == ["train"]


def test_reasoning_questions_by_default(native: Path, read_split) -> None:
    assert adapter.question_types == ("reasoning",)
    out = read_split(adapter, native, "train")
    assert out.ids == REASONING_IDS and not out.rejects
    record = out.by_id("dvqa/100000003")
    assert record.conversations == [
        {
            "from": "human",
            "value": "<image>\nWhat is the value of the smallest bar?\n"
            "Answer the question using a single word or phrase.",
        },
        {"from": "gpt", "value": "2"},
    ]
    assert record.answer == "2" and record.choices is None and record.task == "chart"
    assert record.meta["question_type"] == "reasoning" and record.meta["answer_bbox"] is None
    assert out.by_id("dvqa/100000002").meta["answer_bbox"] == [86.5, 368.0, 36.0, 17.0]


def test_question_types_are_a_parameter(native: Path, read_split) -> None:
    every = read_split(DVQA(question_types=QUESTION_TYPES), native, "train")
    types = [r.meta["question_type"] for r in every.records]
    assert types == ["data", "structure", "reasoning", "reasoning", "reasoning"]
    assert read_split(DVQA(question_types=["data"]), native, "train").ids == ["dvqa/100000000"]
    with pytest.raises(ValueError, match="question_types"):
        DVQA(question_types=["reasoning", "colour"])


def test_question_type_and_bbox_answer_spellings_are_read(native: Path, read_split) -> None:
    spelling = {"template_id": "question_type", "answer_bbox": "bbox_answer"}
    renamed = [{spelling.get(k, k): v for k, v in item.items()} for item in _train_items(native)]
    _write_train(native, renamed)
    out = read_split(adapter, native, "train")
    assert out.ids == REASONING_IDS
    assert out.by_id("dvqa/100000002").meta["answer_bbox"] == [86.5, 368.0, 36.0, 17.0]


def test_malformed_questions_are_counted_rejects(native: Path, read_split) -> None:
    good = _train_items(native)[2]
    without_type = {k: v for k, v in good.items() if k != "template_id"}
    _write_train(
        native,
        [
            good,
            dict(without_type, question_id=1),
            dict(good, question_id=2, template_id="colour"),
            dict(good, question_id=3, answer=None),
            dict(good, question_id=4, answer=7),  # a number answer is kept as text
            dict(good, question_id=5, image="../../../../etc/passwd"),
            dict(good, question_id=6, image="bar_train_99999999.png"),
            dict(good, question_id=7, question=["what?"]),
            dict(good, question_id=8, answer="  "),
            "not an object",
        ],
    )
    out = read_split(adapter, native, "train")
    assert out.ids == ["dvqa/100000002", "dvqa/4"]
    assert out.by_id("dvqa/4").answer == "7"
    assert out.reasons == {
        "dvqa/1": "missing_field",
        "dvqa/2": "bad_value",
        "dvqa/3": "missing_field",
        "dvqa/5": "image_outside_root",
        "dvqa/6": "image_missing",
        "dvqa/7": "wrong_type",
        "dvqa/8": "bad_value",
        "dvqa/train-item9": "not_an_object",
    }


def test_a_truncated_qa_file_is_a_clear_error(native: Path) -> None:
    text = (native / "DVQA" / "qa" / "train_qa.json").read_text()
    (native / "DVQA" / "qa" / "train_qa.json").write_text(text[: len(text) // 2])
    with pytest.raises(ValueError, match="train_qa.json is not valid JSON"):
        list(adapter.read(native, "train"))


def test_preconverted_jsonl(internvl: Path, read_split) -> None:
    out = read_split(adapter, internvl, "train")
    assert out.ids == ["dvqa/0", "dvqa/1"] and not out.rejects
    record = out.by_id("dvqa/0")
    assert record.image.path == "data/dvqa/images/bar_train_00111567.png"
    assert record.conversations[-1] == {"from": "gpt", "value": "9"}
    assert record.answer == "9" and record.choices is None and record.task == "chart"
    with pytest.raises(SourceNotFound, match="only the train split"):
        list(adapter.read(internvl, "val_easy"))
