"""TabMWP adapter on a tiny fixture in the published format: int ids in splits.json, units,
multiple choice by letter, solutions as rationale, faults."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from slime_data.sources import REGISTRY, SourceNotFound

adapter = REGISTRY["tabmwp"]


@pytest.fixture
def tabmwp(source_fixtures: Path, copy_of) -> Path:
    return copy_of(source_fixtures / "tabmwp")


@pytest.mark.parametrize("inner", ["", "data", "data/tabmwp"])
def test_locate_from_release_root_or_inner_folder(tabmwp: Path, inner: str) -> None:
    assert adapter.locate(tabmwp / inner) == tabmwp / "data" / "tabmwp"


def test_splits_and_default(tabmwp: Path) -> None:
    assert adapter.splits(tabmwp) == ["train", "dev", "dev1k"]  # no problems_test.json, problems_test1k.json
    assert adapter.default_splits == ("train",)
    with pytest.raises(SourceNotFound, match="problems_test.json is missing"):
        list(adapter.read(tabmwp, "test"))


def test_order_follows_int_ids_of_splits_json(tabmwp: Path, read_split) -> None:
    out = read_split(adapter, tabmwp, "train")
    assert out.ids == ["tabmwp/10", "tabmwp/1", "tabmwp/2"] and not out.rejects


def test_free_text_with_unit_keeps_answer_string(tabmwp: Path, read_split) -> None:
    record = read_split(adapter, tabmwp, "train").by_id("tabmwp/2")
    human, gpt = record.conversations
    assert human["value"] == (
        "<image>\nHow much money does Hannah need to buy a pencil case and a ruler? (Unit: $)\n"
        "Answer the question using a single word or phrase."
    )
    assert gpt["value"] == "3.30" and record.answer == "3.30"  # trailing zero kept
    assert record.image.path == "tables/2.png" and record.task == "table" and record.choices is None
    assert record.rationale.startswith("Add the price") and record.rationale.endswith("Hannah needs $3.30.")
    assert record.meta["table"] == "pencil case | $2.15\nruler | $1.15\neraser | $0.45"
    assert record.meta["grade"] == 3 and record.meta["question_type"] == "free_text"


def test_multiple_choice_answer_is_the_letter(tabmwp: Path, read_split) -> None:
    record = read_split(adapter, tabmwp, "train").by_id("tabmwp/10")
    assert record.conversations[0]["value"].endswith(
        "is there a shortage or a surplus?\nA. shortage\nB. surplus\n"
        "Answer with the option's letter from the given choices directly."
    )
    assert record.conversations[1]["value"] == "B" and record.answer == "B"
    assert record.choices == ["shortage", "surplus"] and record.meta["answer_text"] == "surplus"
    dev = read_split(adapter, tabmwp, "dev").by_id("tabmwp/5")
    assert dev.answer == "B" and dev.split == "dev"


def test_dev1k_and_test1k_are_splits_as_promptpg_reads_them(tabmwp: Path, read_split) -> None:
    """PromptPG's scripts evaluate on problems_{dev,test}1k.json; their records keep the pid."""
    root = tabmwp / "data" / "tabmwp"
    problems = json.loads((root / "problems_dev.json").read_text())
    problems["1"] = dict(problems["5"], split="test")  # tables/1.png exists
    (root / "problems_test1k.json").write_text(json.dumps({"1": problems["1"]}))
    assert adapter.splits(tabmwp) == ["train", "dev", "dev1k", "test1k"]
    dev1k = read_split(adapter, tabmwp, "dev1k")
    assert dev1k.ids == ["tabmwp/5"] and dev1k.records[0].split == "dev1k" and dev1k.records[0].answer == "B"
    assert read_split(adapter, tabmwp, "test1k").ids == ["tabmwp/1"]


def test_malformed_problems_are_counted_rejects(tabmwp: Path, read_split) -> None:
    root = tabmwp / "data" / "tabmwp"
    problems = json.loads((root / "problems_train.json").read_text())
    problems["1"]["answer"] = 84
    problems["2"]["ques_type"] = "essay"
    problems["10"]["answer"] = "neither"
    problems["11"] = dict(problems["10"], answer="surplus")
    del problems["11"]["question"]
    problems["12"] = dict(problems["10"], answer="surplus")  # no tables/12.png
    (root / "problems_train.json").write_text(json.dumps(problems))
    (root / "splits.json").write_text(json.dumps({"train": [10, 1, 2, 404], "dev": [5]}))
    out = read_split(adapter, tabmwp, "train")
    assert out.reasons == {
        "tabmwp/10": "bad_value",
        "tabmwp/1": "wrong_type",
        "tabmwp/2": "bad_value",
        "tabmwp/404": "missing_field",
        "tabmwp/11": "missing_field",
        "tabmwp/12": "image_missing",
    }
    assert [r.id for r in out.rejects] == ["tabmwp/10", "tabmwp/1", "tabmwp/2", "tabmwp/404", "tabmwp/11", "tabmwp/12"]
    assert not out.records


def test_unreadable_problems_file_is_one_clear_error(tabmwp: Path) -> None:
    (tabmwp / "data" / "tabmwp" / "problems_dev.json").write_text("[1, 2")
    with pytest.raises(ValueError, match="problems_dev.json is not valid JSON"):
        list(adapter.read(tabmwp, "dev"))
