"""GeoQA+ adapter (the pre-converted LLaVA-style jsonl) on a tiny fixture, and the shared reader
of InternVL's jsonl files in its layouts."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from slime_data.sources import REGISTRY, SourceNotFound

adapter = REGISTRY["geoqa_plus"]


@pytest.fixture
def geoqa_plus(source_fixtures: Path, copy_of) -> Path:
    return copy_of(source_fixtures / "geoqa_plus")


def _lines(root: Path) -> list[dict]:
    return [json.loads(line) for line in (root / "geoqa+.jsonl").read_text().splitlines()]


def _write(root: Path, lines: list) -> None:
    text = "".join((line if isinstance(line, str) else json.dumps(line, ensure_ascii=False)) + "\n" for line in lines)
    (root / "geoqa+.jsonl").write_text(text)


def test_locate_and_splits(geoqa_plus: Path, tmp_path: Path) -> None:
    assert adapter.locate(geoqa_plus) == geoqa_plus
    assert adapter.splits(geoqa_plus) == ["train"] and adapter.default_splits == ("train",)
    with pytest.raises(SourceNotFound, match=r"geoqa\+.jsonl.*opensource/geoqa\+.jsonl"):
        adapter.locate(tmp_path)
    with pytest.raises(SourceNotFound, match="no split 'test'"):
        list(adapter.read(geoqa_plus, "test"))


def test_records_keep_the_conversation_and_read_back_the_gold_letter(geoqa_plus: Path, read_split) -> None:
    out = read_split(adapter, geoqa_plus, "train")
    assert out.ids == ["geoqa_plus/0", "geoqa_plus/1"] and not out.rejects
    record = out.by_id("geoqa_plus/0")
    assert record.conversations == _lines(geoqa_plus)[0]["conversations"]  # "<image>\n…" first already
    assert record.answer == "C" and record.choices == ["40°", "50°", "130°", "140°"]
    assert record.image.path == "geoqa+/images/0.png" and record.task == "geometry"
    assert record.meta["format"] == "llava_jsonl" and record.meta["annotations"] == "geoqa+.jsonl"


@pytest.mark.parametrize(
    ("jsonl", "image_dir", "expected"),
    [
        ("opensource/geoqa+.jsonl", "data/geoqa+", "data/geoqa+/images/0.png"),  # InternVL playground
        ("geoqa+.jsonl", "data/geoqa+", "data/geoqa+/images/0.png"),  # its older layout
        ("geoqa+.jsonl", "", "images/0.png"),  # the jsonl beside images/
    ],
)
def test_internvl_layouts(
    geoqa_plus: Path, tmp_path: Path, read_split, jsonl: str, image_dir: str, expected: str
) -> None:
    root = tmp_path / "playground"
    (root / jsonl).parent.mkdir(parents=True, exist_ok=True)
    (geoqa_plus / "geoqa+.jsonl").rename(root / jsonl)
    (root / image_dir).mkdir(parents=True, exist_ok=True)
    (geoqa_plus / "geoqa+" / "images").rename(root / image_dir / "images")
    assert adapter.locate(tmp_path) == root
    assert read_split(adapter, tmp_path, "train").records[0].image.path == expected


def test_gold_answer_only_when_the_conversation_shows_it(geoqa_plus: Path, read_split) -> None:
    line = _lines(geoqa_plus)[0]
    human = line["conversations"][0]
    _write(
        geoqa_plus,
        [
            dict(line, id="open", conversations=[human, {"from": "gpt", "value": "130°"}]),
            dict(line, id="worked", conversations=[human, {"from": "gpt", "value": "∵AB∥CD\n∴∠2=130°，故选C"}]),
            dict(
                line,
                id="multi",
                conversations=[
                    human,
                    {"from": "gpt", "value": "C"},
                    {"from": "human", "value": "Why?"},
                    {"from": "gpt", "value": "Supplementary angles."},
                ],
            ),
            dict(
                line,
                id="skipped-letter",
                conversations=[{"from": "human", "value": "<image>\nQ?\nA. 1\nC. 3"}, {"from": "gpt", "value": "C"}],
            ),
        ],
    )
    out = read_split(adapter, geoqa_plus, "train")
    assert (out.by_id("geoqa_plus/open").answer, out.by_id("geoqa_plus/open").choices) == ("130°", None)
    assert out.by_id("geoqa_plus/worked").answer is None
    assert out.by_id("geoqa_plus/multi").answer is None and len(out.by_id("geoqa_plus/multi").conversations) == 4
    skipped = out.by_id("geoqa_plus/skipped-letter")  # options A, C: not a lettered list
    assert (skipped.answer, skipped.choices) == ("C", None)


def test_malformed_lines_are_counted_rejects(geoqa_plus: Path, read_split) -> None:
    first, second = _lines(geoqa_plus)
    _write(
        geoqa_plus,
        [
            first,
            dict(second, id=0),  # repeats id 0
            '{"id": 2, "image": "images/1.png", "conversations": [{"from": "human"',
            "",  # blank lines are skipped
            dict(second, id=3, image="/etc/passwd"),
            dict(second, id=4, image="images/../../../escape.png"),
            dict(second, id=5, image="images/404.png"),
            dict(second, id=6, image=None),
            dict(second, id=7, conversations=[{"from": "gpt", "value": "C"}]),
            dict(second, id=8, conversations=[]),
            {"image": "images/1.png", "conversations": second["conversations"]},  # no id: named by its line
        ],
    )
    out = read_split(adapter, geoqa_plus, "train")
    assert out.ids == ["geoqa_plus/0", "geoqa_plus/line11"]
    assert out.reasons == {
        "geoqa_plus/0": "bad_value",
        "geoqa_plus/line3": "bad_json",
        "geoqa_plus/3": "image_outside_root",
        "geoqa_plus/4": "image_outside_root",
        "geoqa_plus/5": "image_missing",
        "geoqa_plus/6": "missing_field",
        "geoqa_plus/7": "bad_value",
        "geoqa_plus/8": "bad_value",
    }
