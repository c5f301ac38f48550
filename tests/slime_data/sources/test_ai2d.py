"""AI2D adapter on tiny fixtures in both published layouts: the native release and InternVL's jsonl."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from slime_data.sources import REGISTRY, SourceNotFound

adapter = REGISTRY["ai2d"]


@pytest.fixture
def native(source_fixtures: Path, copy_of) -> Path:
    return copy_of(source_fixtures / "ai2d" / "native")


@pytest.fixture
def internvl(source_fixtures: Path, copy_of) -> Path:
    return copy_of(source_fixtures / "ai2d" / "internvl")


def _questions(native: Path, name: str) -> tuple[Path, dict]:
    path = native / "ai2d" / "questions" / f"{name}.png.json"
    return path, json.loads(path.read_text())


def test_locate_from_release_root_or_inner_folder(native: Path, internvl: Path, tmp_path: Path) -> None:
    assert adapter.locate(native) == native  # ai2d/ and ai2d_test_ids.csv side by side
    assert adapter.locate(native / "ai2d") == native / "ai2d"
    assert adapter.locate(internvl) == internvl / "playground"
    assert adapter.locate(internvl / "playground") == internvl / "playground"
    with pytest.raises(SourceNotFound, match="questions.*ai2d_train_12k.jsonl"):
        adapter.locate(tmp_path)


def test_splits_come_from_the_official_test_ids(native: Path, internvl: Path, read_split) -> None:
    assert adapter.default_splits == ("train",)
    assert adapter.splits(native) == ["train", "test"]
    assert read_split(adapter, native, "train").ids == ["ai2d/0.png-0", "ai2d/0.png-1", "ai2d/1.png-0"]
    assert read_split(adapter, native, "test").ids == ["ai2d/2.png-0"]
    # The inner folder does not see the csv beside it: AI2D test is a benchmark, so no "train".
    assert adapter.splits(native / "ai2d") == ["all"]
    assert len(read_split(adapter, native / "ai2d", "all").records) == 4
    with pytest.raises(SourceNotFound, match="no split 'train'.*present: all"):
        list(adapter.read(native / "ai2d", "train"))
    assert adapter.splits(internvl) == ["train"]


def test_abc_label_questions_use_the_lettered_diagram(native: Path, read_split) -> None:
    out = read_split(adapter, native, "train")
    plain, lettered = out.by_id("ai2d/0.png-0"), out.by_id("ai2d/0.png-1")
    assert plain.image.path == "ai2d/images/0.png" and plain.meta["abc_label"] is False
    assert lettered.image.path == "ai2d/abc_images/0.png" and lettered.meta["abc_label"] is True


def test_native_records_are_lettered_multiple_choice(native: Path, read_split) -> None:
    record = read_split(adapter, native, "train").by_id("ai2d/0.png-0")
    assert record.conversations == [
        {
            "from": "human",
            "value": "<image>\nWhich of these define dairy item\nA. c\nB. D\nC. b\nD. a\n"
            "Answer with the option's letter from the given choices directly.",
        },
        {"from": "gpt", "value": "B"},
    ]
    assert record.answer == "B" and record.choices == ["c", "D", "b", "a"] and record.meta["answer_text"] == "D"
    assert record.task == "diagram" and record.rationale is None and record.split == "train"


def test_preconverted_jsonl(internvl: Path, read_split) -> None:
    out = read_split(adapter, internvl, "train")
    assert out.ids == ["ai2d/0", "ai2d/1"] and not out.rejects
    first, second = out.records
    assert first.image.path == "data/ai2d/abc_images/0.png" and second.image.path == "data/ai2d/images/1.png"
    assert first.answer == "D" and first.choices == ["A", "C", "D", "B"]
    # "<image>" was last in the second line: it moves first, as LLaVA's preprocessing does.
    assert second.conversations[0]["value"].startswith("<image>\nWhat is the producer in this food web?\nA. grass")
    assert second.answer == "A" and second.choices == ["grass", "fox", "hawk", "rabbit"]
    assert second.meta["format"] == "llava_jsonl"


def test_preconverted_jsonl_beside_the_images(internvl: Path, read_split) -> None:
    folder = internvl / "playground" / "data" / "ai2d"
    (internvl / "playground" / "opensource" / "ai2d_train_12k.jsonl").rename(folder / "ai2d_train_12k.jsonl")
    out = read_split(adapter, folder, "train")
    assert [r.image.path for r in out.records] == ["abc_images/0.png", "images/1.png"]


def test_malformed_native_questions_are_counted_rejects(native: Path, read_split) -> None:
    path, data = _questions(native, "0")
    (question, entry), (lettered, lettered_entry) = data["questions"].items()
    data["questions"] = {
        question: dict(entry, correctAnswer=4),
        lettered: dict(lettered_entry, answerTexts="A, C, D, B"),
        "Which is the egg?": {"answerTexts": ["A", "B", "C", "D"], "correctAnswer": 0, "questionId": "0.png-2"},
        "   ": {"abcLabel": False, "answerTexts": ["A", "B"], "correctAnswer": 0, "questionId": "0.png-3"},
    }
    path.write_text(json.dumps(data))
    path, data = _questions(native, "1")
    path.write_text(json.dumps(dict(data, imageName="../../../../etc/passwd")))
    (native / "ai2d" / "questions" / "3.png.json").write_text('{"imageName": "3.png", "questions": {')
    (native / "ai2d" / "questions" / "4.png.json").write_text(json.dumps({"imageName": "4.png", "questions": []}))
    (native / "ai2d" / "questions" / "5.png.json").write_text(
        json.dumps(
            {
                "imageName": "5.png",
                "questions": {
                    "Where?": {"abcLabel": True, "answerTexts": ["a", "b"], "correctAnswer": 1, "questionId": "5.png-0"}
                },
            }
        )
    )
    out = read_split(adapter, native, "train")
    assert out.reasons == {
        "ai2d/0.png-0": "bad_value",  # correctAnswer out of range
        "ai2d/0.png-1": "wrong_type",
        "ai2d/0.png-2": "missing_field",  # no abcLabel
        "ai2d/0.png-3": "bad_value",  # blank question
        "ai2d/1.png-0": "image_outside_root",
        "ai2d/3.png.json": "bad_json",
        "ai2d/4.png.json": "wrong_type",
        "ai2d/5.png-0": "image_missing",  # abc_images/5.png does not exist
    }
    assert not out.records


def test_malformed_jsonl_lines_are_counted_rejects(internvl: Path, read_split) -> None:
    jsonl = internvl / "playground" / "opensource" / "ai2d_train_12k.jsonl"
    good = json.loads(jsonl.read_text().splitlines()[0])
    lines = [
        json.dumps(good),
        json.dumps(good),  # the same id again
        '{"id": 5, "image": "images/1.png", "conversations": [',
        json.dumps(dict(good, id=6, image="../../../outside.png")),
        json.dumps(dict(good, id=7, image="images/404.png")),
        json.dumps(dict(good, id=8, conversations=[{"from": "human", "value": "<image>\nWhy?"}])),
        json.dumps(dict(good, id=9, conversations=[{"from": "system", "value": "x"}, {"from": "gpt", "value": "A"}])),
        json.dumps({"id": 10, "image": "abc_images/0.png"}),
        json.dumps(["not", "an", "object"]),
    ]
    jsonl.write_text("\n".join(lines) + "\n")
    out = read_split(adapter, internvl, "train")
    assert out.ids == ["ai2d/0"]
    assert out.reasons == {
        "ai2d/0": "bad_value",  # the repeat; the first line is the record
        "ai2d/line3": "bad_json",
        "ai2d/6": "image_outside_root",
        "ai2d/7": "image_missing",
        "ai2d/8": "bad_value",  # no gpt turn
        "ai2d/9": "bad_value",
        "ai2d/10": "missing_field",  # no conversations
        "ai2d/line9": "not_an_object",
    }
