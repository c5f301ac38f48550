"""TextbookQA adapter on a tiny fixture in the published layout: lessons with diagram questions
and instructional diagrams."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from slime_data.sources import REGISTRY, SourceNotFound

adapter = REGISTRY["tqa"]
TRAIN_IDS = ["tqa/DQ_000001", "tqa/DQ_000002", "tqa/L_0002-earth_parts_7016", "tqa/DQ_000010"]


@pytest.fixture
def tqa(source_fixtures: Path, copy_of) -> Path:
    return copy_of(source_fixtures / "tqa")


def _lessons(tqa: Path) -> tuple[Path, list]:
    path = tqa / "tqa_train_val_test" / "train" / "tqa_v1_train.json"
    return path, json.loads(path.read_text())


def test_locate_from_release_root_or_inner_folder(tqa: Path, tmp_path: Path, read_split) -> None:
    assert adapter.locate(tqa) == tqa / "tqa_train_val_test"
    assert adapter.locate(tqa / "tqa_train_val_test") == tqa / "tqa_train_val_test"
    # One split's folder on its own: image paths are then relative to it.
    split_folder = tqa / "tqa_train_val_test" / "train"
    assert adapter.locate(split_folder) == split_folder and adapter.splits(split_folder) == ["train"]
    assert read_split(adapter, split_folder, "train").records[0].image.path == "question_images/earth_parts_9123.png"
    with pytest.raises(SourceNotFound, match="train/tqa_v1_train.json"):
        adapter.locate(tmp_path)


def test_splits_and_default(tqa: Path, read_split) -> None:
    assert adapter.default_splits == ("train",)
    assert adapter.splits(tqa) == ["train", "val"]
    assert read_split(adapter, tqa, "val").ids == ["tqa/DQ_005000"]
    with pytest.raises(SourceNotFound, match="no split 'test'"):
        list(adapter.read(tqa, "test"))


def test_diagram_questions_become_lettered_vqa(tqa: Path, read_split) -> None:
    out = read_split(adapter, tqa, "train")
    assert out.ids == TRAIN_IDS and not out.rejects  # NDQ_000001 (no diagram) is not read
    record = out.by_id("tqa/DQ_000001")
    assert record.conversations == [
        {
            "from": "human",
            "value": "<image>\nWhich layer is labeled B?\nA. crust\nB. mantle\nC. outer core\n"
            "D. inner core\nAnswer with the option's letter from the given choices directly.",
        },
        {"from": "gpt", "value": "B"},
    ]
    assert record.answer == "B" and record.choices == ["crust", "mantle", "outer core", "inner core"]
    assert record.image.path == "train/question_images/earth_parts_9123.png" and record.task == "diagram"
    assert record.meta["kind"] == "diagram_question" and record.meta["lesson_id"] == "L_0002"
    assert record.meta["answer_text"] == "mantle"
    assert out.by_id("tqa/DQ_000002").image.path == "train/abc_question_images/earth_parts_9124.png"
    three = out.by_id("tqa/DQ_000010")
    assert three.answer == "C" and three.choices == ["new moon", "full moon", "first quarter"]


def test_instructional_diagrams_become_describe_prompts(tqa: Path, read_split) -> None:
    record = read_split(adapter, tqa, "train").by_id("tqa/L_0002-earth_parts_7016")
    assert record.conversations[0] == {"from": "human", "value": "<image>\nDescribe the diagram in detail."}
    assert record.conversations[1]["value"].startswith("The diagram shows the layers of the Earth. The crust")
    assert record.answer is None and record.choices is None and record.task == "diagram"
    assert record.image.path == "train/teaching_images/earth_parts_7016.png"
    assert record.meta["kind"] == "instructional_diagram" and record.meta["lesson_name"] == "parts of the earth"


def test_malformed_items_are_counted_rejects(tqa: Path, read_split) -> None:
    path, lessons = _lessons(tqa)
    first = lessons[0]
    questions = first["questions"]["diagramQuestions"]
    good = questions["DQ_000001"]
    questions.update(
        {
            "DQ_000001": dict(good, correctAnswer={"processedText": "e", "rawText": "e"}),
            "DQ_000002": dict(good, globalID="DQ_000002", answerChoices=["crust", "mantle"]),
            "DQ_000003": {k: v for k, v in dict(good, globalID="DQ_000003").items() if k != "beingAsked"},
            "DQ_000004": dict(good, globalID="DQ_000004", imagePath="../../../outside.png"),
            "DQ_000005": dict(good, globalID="DQ_000005", imagePath="question_images/missing.png"),
        }
    )
    diagram = first["instructionalDiagrams"]["earth_parts_7016"]
    first["instructionalDiagrams"]["blank"] = dict(diagram, processedText=" ", rawText="")
    lessons.append({"globalID": "L_0004", "lessonName": "broken", "questions": "none"})
    lessons.append("not a lesson")
    path.write_text(json.dumps(lessons))
    out = read_split(adapter, tqa, "train")
    assert out.ids == ["tqa/L_0002-earth_parts_7016", "tqa/DQ_000010"]
    assert out.reasons == {
        "tqa/DQ_000001": "bad_value",
        "tqa/DQ_000002": "wrong_type",
        "tqa/DQ_000003": "missing_field",
        "tqa/DQ_000004": "image_outside_root",
        "tqa/DQ_000005": "image_missing",
        "tqa/L_0002-blank": "missing_field",
        "tqa/L_0004": "wrong_type",
        "tqa/lesson3": "not_an_object",
    }


def test_a_file_that_is_not_a_list_of_lessons_is_a_clear_error(tqa: Path) -> None:
    path, lessons = _lessons(tqa)
    path.write_text(json.dumps({"lessons": lessons}))
    with pytest.raises(ValueError, match="not a list of lessons"):
        list(adapter.read(tqa, "train"))
