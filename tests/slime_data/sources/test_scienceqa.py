"""ScienceQA adapter on the real sample: prompts, letters, rationale, text-only problems, faults."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from slime_data.sources import REGISTRY, SourceNotFound

adapter = REGISTRY["scienceqa"]


@pytest.fixture
def sample(real_samples: Path) -> Path:
    return real_samples / "scienceqa"


@pytest.mark.parametrize("inner", ["", "data", "data/scienceqa"])
def test_locate_from_release_root_or_inner_folder(sample: Path, inner: str) -> None:
    located = adapter.locate(sample / inner)
    assert located == sample / "data" / "scienceqa"
    assert adapter.locate(located) == located


def test_locate_names_every_path_it_tried(tmp_path: Path) -> None:
    with pytest.raises(SourceNotFound) as err:
        adapter.locate(tmp_path)
    for looked in ("problems.json", "scienceqa/problems.json", "data/scienceqa/problems.json"):
        assert str(tmp_path / looked) in str(err.value)


def test_splits_and_default(sample: Path) -> None:
    assert adapter.splits(sample) == ["train", "val", "test"]  # not trainval, minitrain, ...
    assert adapter.default_splits == ("train",)


def test_train_problems_without_image_are_text_only(sample: Path, read_split) -> None:
    out = read_split(adapter, sample, "train")
    pid_splits = json.loads((sample / "data/scienceqa/pid_splits.json").read_text())
    assert out.ids == [f"scienceqa/{pid}" for pid in pid_splits["train"]] and not out.rejects
    for record in out.records:
        assert record.image is None and "<image>" not in record.conversations[0]["value"]
        assert record.task == "science"


def test_record_with_image_context_options_and_rationale(sample: Path, read_split) -> None:
    out = read_split(adapter, sample, "test")
    assert len(out.records) == 50 and not out.rejects
    problem = json.loads((sample / "data/scienceqa/problems.json").read_text())["5"]
    record = out.by_id("scienceqa/5")
    assert record.image.path == "images/test/5/image.png"
    human, gpt = record.conversations
    assert human["value"].startswith("<image>\nContext: People can use the engineering-design process")
    assert "\nWhich of the following could Gordon's test show?\nA. if the spacecraft" in human["value"]
    assert "\nB. how steady a parachute" in human["value"] and "\nC. whether" in human["value"]
    assert gpt == {"from": "gpt", "value": "B"} and record.answer == "B"  # answer index 1
    assert record.choices == problem["choices"]
    assert record.rationale == problem["lecture"].strip()  # the solution of pid 5 is ""
    assert record.meta["answer_text"] == problem["choices"][1]
    assert record.meta["grade"] == "grade8" and record.meta["subject"] == "natural science"
    both = out.by_id("scienceqa/161")
    assert both.rationale.startswith("Birds, mammals, fish") and "\n\nAn ostrich is a bird." in both.rationale
    # Choice images are not referenced in the JSON: image null -> text-only.
    assert out.by_id("scienceqa/133").image is None


def test_malformed_problems_are_counted_rejects(sample: Path, copy_of, read_split) -> None:
    root = copy_of(sample) / "data" / "scienceqa"
    problems = json.loads((root / "problems.json").read_text())
    problems["9"]["answer"] = "1"
    del problems["10"]["question"]
    problems["12"]["image"] = "../../../../../etc/passwd"
    problems["20"]["answer"] = 7
    problems["30"] = ["not", "an", "object"]
    problems["32"]["choices"] = ["ok", 3]
    problems["33"]["image"] = "image.png"  # train images are not in the sample: a missing file
    (root / "problems.json").write_text(json.dumps(problems))
    pid_splits = json.loads((root / "pid_splits.json").read_text())
    pid_splits["train"].append(99999)  # int in the list, absent from problems.json
    (root / "pid_splits.json").write_text(json.dumps(pid_splits))

    out = read_split(adapter, root, "train")
    assert out.reasons == {
        "scienceqa/9": "wrong_type",
        "scienceqa/10": "missing_field",
        "scienceqa/12": "image_outside_root",
        "scienceqa/20": "bad_value",
        "scienceqa/30": "not_an_object",
        "scienceqa/32": "wrong_type",
        "scienceqa/33": "image_missing",
        "scienceqa/99999": "missing_field",
    }
    assert out.ids == ["scienceqa/37", "scienceqa/38", "scienceqa/39"]


def test_unreadable_problems_file_is_one_clear_error(sample: Path, copy_of) -> None:
    root = copy_of(sample) / "data" / "scienceqa"
    (root / "problems.json").write_text('{"4": {"question": ')
    with pytest.raises(ValueError, match="problems.json is not valid JSON"):
        list(adapter.read(root, "train"))
    (root / "pid_splits.json").unlink()
    with pytest.raises(SourceNotFound, match="pid_splits.json is missing"):
        adapter.splits(root)


def test_unknown_split_is_an_error(sample: Path) -> None:
    with pytest.raises(ValueError, match="no split 'minitrain'"):
        list(adapter.read(sample, "minitrain"))
