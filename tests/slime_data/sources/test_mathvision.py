"""MathVision adapter on a tiny fixture in the published format: testmini never enters the
output, ``<imageN>`` placeholders go or become a reference, picture options are rejects, Mathpix
image links leave the rationale, options decide the prompt, faults are rejects."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from slime_data.sources import REGISTRY, SourceNotFound
from slime_data.sources.mathvision import strip_image_placeholders, strip_mathpix_images

adapter = REGISTRY["mathvision"]


@pytest.fixture
def mathvision(source_fixtures: Path, copy_of) -> Path:
    return copy_of(source_fixtures / "mathvision")


def test_locate_from_parent_or_clone(mathvision: Path) -> None:
    assert adapter.locate(mathvision) == mathvision / "MATH-V"
    assert adapter.locate(mathvision / "MATH-V") == mathvision / "MATH-V"
    with pytest.raises(SourceNotFound, match="data/test.jsonl"):
        adapter.locate(mathvision / "MATH-V" / "data")


def test_testmini_is_never_a_split_nor_in_the_output(mathvision: Path, read_split) -> None:
    assert adapter.splits(mathvision) == ["test"] and adapter.default_splits == ("test",)
    with pytest.raises(ValueError, match="testmini is never read"):
        list(adapter.read(mathvision, "testmini"))
    out = read_split(adapter, mathvision, "test")
    assert out.ids == ["mathvision/1", "mathvision/8", "mathvision/12", "mathvision/51"]
    assert out.reasons == {"mathvision/3": "in_testmini", "mathvision/40": "options_are_pictures"}


def test_without_testmini_file_every_test_problem_is_read(mathvision: Path, read_split) -> None:
    (mathvision / "MATH-V" / "data" / "testmini.jsonl").unlink()
    assert read_split(adapter, mathvision, "test").ids == [f"mathvision/{i}" for i in ("1", "3", "8", "12", "51")]


def test_unreadable_testmini_line_fails_the_run(mathvision: Path) -> None:
    with open(mathvision / "MATH-V" / "data" / "testmini.jsonl", "a") as f:
        f.write('{"id": "8", "question"\n')
    with pytest.raises(ValueError, match="testmini cannot be excluded"):
        list(adapter.read(mathvision, "test"))


def test_prompts_for_free_form_letters_in_image_and_option_texts(mathvision: Path, read_split) -> None:
    out = read_split(adapter, mathvision, "test")
    free = out.by_id("mathvision/1")
    assert free.conversations[0]["value"] == (
        "<image>\nWhich number should be written in place of the question mark?\n"
        "Answer the question using a single word or phrase."
    )
    assert free.conversations[1]["value"] == "7" and free.choices is None and free.rationale is None
    assert free.image.path == "images/1.jpg" and free.task == "math"
    assert free.meta["level"] == 2 and free.meta["subject"] == "arithmetic"

    options = out.by_id("mathvision/8")
    human = options.conversations[0]["value"]
    assert human.startswith("<image>\nThe angle between the hands is 40°. ")  # raw UTF-8 kept
    assert "<image1>" not in human and "<image2>" not in human and "angle $\\alpha$ in the figure?\nA." in human
    assert "\nA. $20^{\\circ}$\nB. $30^{\\circ}$\n" in human
    assert options.answer == "B" and options.meta["answer_text"] == "$30^{\\circ}$"
    assert options.rationale.startswith("The two angles together")

    latex = out.by_id("mathvision/12")
    assert latex.answer == "$\\frac{1}{2}$" and latex.question.startswith("Luis a dessiné cette figure.")


def test_options_drawn_in_the_image_are_listed_as_letters(mathvision: Path, read_split) -> None:
    (mathvision / "MATH-V" / "data" / "testmini.jsonl").write_text("")
    record = read_split(adapter, mathvision, "test").by_id("mathvision/3")
    assert record.conversations[0]["value"] == (
        "<image>\nWhich of the boxes comes next in the sequence?\nChoices: A, B, C, D, E\n"
        "Answer with the option's letter from the given choices directly."
    )
    assert record.answer == "D" and record.choices == ["A", "B", "C", "D", "E"]


def test_placeholder_inside_a_sentence_becomes_a_reference_and_mathpix_links_go(mathvision: Path, read_split) -> None:
    record = read_split(adapter, mathvision, "test").by_id("mathvision/51")
    assert record.conversations[0]["value"] == (
        "<image>\nA die is rolled as shown.\nWhich side is opposite to the picture shown?\n"
        "Answer the question using a single word or phrase."
    )
    assert record.rationale == "Opposite faces sum to 7, so the face opposite 3 is 4. The net confirms it."


def test_strip_image_placeholders() -> None:
    assert strip_image_placeholders("<image1>\nFind x.") == "Find x."
    assert strip_image_placeholders("Look at <image1> and <image2>.\n\n\n<image3>\nWhich?") == (
        "Look at the picture shown and the picture shown.\n\nWhich?"
    )
    assert strip_image_placeholders("Which pictures <image2> <image3> are equal? <image4>") == (
        "Which pictures are equal?"
    )


def test_strip_mathpix_images() -> None:
    crop = "![](https://cdn.mathpix.com/cropped/2024_a.jpg?height=10&width=20&top_left_y=1&top_left_x=2)"
    assert strip_mathpix_images(f"{crop}\n\nSo x = 3.") == "So x = 3."
    assert strip_mathpix_images("See https://cdn.mathpix.com/cropped/b.jpg?height=1 too.") == "See too."
    assert strip_mathpix_images("Keep ![a](images/1.jpg) and $x^2$.") == "Keep ![a](images/1.jpg) and $x^2$."


def test_malformed_lines_are_counted_rejects(mathvision: Path, read_split) -> None:
    path = mathvision / "MATH-V" / "data" / "test.jsonl"
    good = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
    lines = [
        json.dumps(good[0]),
        '{"id": "20", "question": "broken',  # bad JSON
        json.dumps(dict(good[0], id="21", answer=7)),
        json.dumps(dict(good[0], id="22", image="../../../outside.jpg")),
        json.dumps(dict(good[0], id="23", image="images/23.jpg")),  # no such file
        json.dumps(dict(good[2], id="24", answer="F")),
        json.dumps({k: v for k, v in dict(good[0], id="25").items() if k != "options"}),
        json.dumps(17),
        "",  # blank lines are skipped
    ]
    path.write_bytes(("\n".join(lines) + "\n").encode() + b'{"id": "26", "question": "\xff"}\n')
    out = read_split(adapter, mathvision, "test")
    assert out.ids == ["mathvision/1"]
    assert out.reasons == {
        "mathvision/line2": "bad_json",
        "mathvision/21": "wrong_type",
        "mathvision/22": "image_outside_root",
        "mathvision/23": "image_missing",
        "mathvision/24": "bad_value",
        "mathvision/25": "missing_field",
        "mathvision/line8": "not_an_object",
        "mathvision/line10": "bad_json",  # invalid UTF-8
    }
