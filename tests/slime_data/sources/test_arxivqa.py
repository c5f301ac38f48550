"""ArxivQA adapter on a tiny fixture in the published layout: rationales as answers."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from slime_data.sources import REGISTRY, SourceNotFound

adapter = REGISTRY["arxivqa"]


@pytest.fixture
def arxivqa(source_fixtures: Path, copy_of) -> Path:
    return copy_of(source_fixtures / "arxivqa")


def _lines(arxivqa: Path) -> list[dict]:
    return [json.loads(line) for line in (arxivqa / "ArxivQA" / "arxivqa.jsonl").read_text().splitlines()]


def _write(arxivqa: Path, lines: list) -> None:
    text = "".join((line if isinstance(line, str) else json.dumps(line)) + "\n" for line in lines)
    (arxivqa / "ArxivQA" / "arxivqa.jsonl").write_text(text)


def test_locate_from_release_root_or_inner_folder(arxivqa: Path, tmp_path: Path) -> None:
    assert adapter.locate(arxivqa) == arxivqa / "ArxivQA"
    assert adapter.locate(arxivqa / "ArxivQA") == arxivqa / "ArxivQA"
    with pytest.raises(SourceNotFound, match="arxivqa.jsonl"):
        adapter.locate(tmp_path)


def test_splits_and_default(arxivqa: Path) -> None:
    assert adapter.splits(arxivqa) == ["train"] and adapter.default_splits == ("train",)
    with pytest.raises(SourceNotFound, match="no split 'test'"):
        list(adapter.read(arxivqa, "test"))


def test_the_rationale_is_the_reply_and_the_letter_the_gold_answer(arxivqa: Path, read_split) -> None:
    out = read_split(adapter, arxivqa, "train")
    assert out.ids == ["arxivqa/cond-mat-1912", "arxivqa/cs-2106", "arxivqa/astro-ph-2003"] and not out.rejects
    record = out.by_id("arxivqa/cond-mat-1912")
    assert record.conversations == [
        {
            "from": "human",
            "value": "<image>\nWhat does the figure show about the resistance at low temperature?\n"
            "A. The resistance increases linearly\nB. The resistance drops to zero below 4 K\n"
            "C. The resistance is constant\nD. The resistance oscillates\n"
            "Explain your reasoning, then give the letter of the correct option.",
        },
        {
            "from": "gpt",
            "value": "Below about 4 K the curve falls abruptly to zero, the signature of "
            "superconductivity, so the answer is B.",
        },
    ]
    assert record.answer == "B" and record.rationale == record.conversations[1]["value"]
    assert record.choices[1] == "The resistance drops to zero below 4 K" and record.task == "chart"
    assert record.image.path == "images/1912.01234_2.jpg"
    labelled_with_text = out.by_id("arxivqa/cs-2106")  # label "C) 0.9"
    assert labelled_with_text.answer == "C" and labelled_with_text.meta["answer_text"] == "0.9"


def test_missing_rationale_keeps_the_letter_as_reply(arxivqa: Path, read_split) -> None:
    lines = _lines(arxivqa)
    no_rationale = lines[2]
    _write(
        arxivqa,
        [
            *lines,
            dict(no_rationale, id="null-rationale", rationale=None),
            dict(no_rationale, id="blank", rationale=" "),
        ],
    )
    out = read_split(adapter, arxivqa, "train")
    for record_id in ("arxivqa/astro-ph-2003", "arxivqa/null-rationale", "arxivqa/blank"):
        record = out.by_id(record_id)
        assert record.rationale is None and record.answer == "A"
        assert record.conversations[1] == {"from": "gpt", "value": "A"}


def test_labels_and_options_in_other_published_forms(arxivqa: Path, read_split) -> None:
    line = _lines(arxivqa)[0]
    _write(
        arxivqa,
        [
            dict(line, id="paren", label="(D)"),
            dict(line, id="bare-options", options=["Linear", "Zero below 4 K", "Constant"], label="Zero below 4 K"),
        ],
    )
    out = read_split(adapter, arxivqa, "train")
    assert out.by_id("arxivqa/paren").answer == "D"
    bare = out.by_id("arxivqa/bare-options")
    assert bare.choices == ["Linear", "Zero below 4 K", "Constant"] and bare.answer == "B"


def test_malformed_lines_are_counted_rejects(arxivqa: Path, read_split) -> None:
    line = _lines(arxivqa)[0]
    _write(
        arxivqa,
        [
            line,
            '{"id": "cut", "image": "images/x.jpg", ',
            dict(line, id="z", label="Z"),
            dict(line, id="options", options="A) 1, B) 2"),
            dict(line, id="no-options", options=[]),
            dict(line, id="escape", image="../../secret.jpg"),
            dict(line, id="gone", image="images/404.jpg"),
            {k: v for k, v in dict(line, id="no-question").items() if k != "question"},
            dict(line, id=17),
            [1, 2],
        ],
    )
    out = read_split(adapter, arxivqa, "train")
    assert out.ids == ["arxivqa/cond-mat-1912"]
    assert out.reasons == {
        "arxivqa/item2": "bad_json",
        "arxivqa/z": "bad_value",
        "arxivqa/options": "wrong_type",
        "arxivqa/no-options": "bad_value",
        "arxivqa/escape": "image_outside_root",
        "arxivqa/gone": "image_missing",
        "arxivqa/no-question": "missing_field",
        "arxivqa/item9": "wrong_type",  # an id that is not a string
        "arxivqa/item10": "not_an_object",
    }
