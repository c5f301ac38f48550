"""Benchmark readers on the real samples and on small files in each documented layout."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from slime_data.decontam.benchmarks import answer_forms, read_benchmark
from tests.slime_data.dedup.planted import chart, encode

# Real excerpts of the releases, kept beside the clone (CI checks ../shared out there too).
SAMPLES = Path(__file__).resolve().parents[3].parent / "shared" / "real-samples"


def test_answer_forms() -> None:
    assert answer_forms("B", ["x", "y"]) == ["B", "y"]
    assert answer_forms(1, ["x", "y"]) == ["y", "B"]  # ScienceQA: a 0-based index
    assert answer_forms("y", ["x", "y"]) == ["y", "B"]  # MathVista: the option text
    assert answer_forms(["24/7", "3.429"], None) == ["24/7", "3.429"]  # MMMU: several accepted answers
    assert answer_forms(None, None) == []


def test_real_samples() -> None:
    mathvista = read_benchmark("mathvista", SAMPLES / "mathvista" / "data" / "testmini.json")
    assert mathvista.name == "mathvista_testmini" and len(mathvista.items) == 1000
    first = mathvista.items[0]
    assert first.item_id == "1" and first.question.startswith("When a spring does work") and first.answers == ["1.2"]
    assert first.images == [SAMPLES / "mathvista" / "data" / "images" / "1.jpg"]  # named, not on disk

    mmmu = read_benchmark("mmmu", SAMPLES / "mmmu" / "mmmu" / "answer_dict_val.json")
    assert mmmu.name == "mmmu_validation" and len(mmmu.items) == 900
    by_id = {item.item_id: item for item in mmmu.items}
    math_2 = by_id["validation_Math_2"]
    assert math_2.question is None and math_2.choices == ["1 attendant", "2 attendants", "3 attendants", "4 attendants"]
    assert math_2.answers == ["B", "2 attendants"]
    assert by_id["validation_Math_15"].answers == ["24/7", "3.429"] and by_id["validation_Math_15"].choices is None
    assert sum(1 for item in mmmu.items if item.choices) == 847  # every multiple-choice item has its options

    scienceqa = read_benchmark("scienceqa", SAMPLES / "scienceqa" / "data" / "scienceqa" / "problems.json")
    assert scienceqa.name == "scienceqa_test" and len(scienceqa.items) == 50
    assert sum(1 for item in scienceqa.items if item.images and item.images[0].is_file()) == 24
    val = read_benchmark("scienceqa", SAMPLES / "scienceqa" / "data" / "scienceqa", split="val")
    assert val.name == "scienceqa_val" and len(val.items) == 10

    chartqa = read_benchmark("chartqa", SAMPLES / "chartqa" / "ChartQA Dataset" / "test")
    assert chartqa.name == "chartqa_test" and len(chartqa.items) == 40  # human + augmented (CRLF, tabs)
    assert chartqa.items[0].question == "How many food item is shown in the bar graph?" and chartqa.items[
        0
    ].answers == ["14"]
    assert chartqa.items[0].images[0].name == "41699051005347.png"


def test_mmmu_hugging_face_parquet_and_jsonl(tmp_path: Path) -> None:
    image = encode(chart(3))
    row = {
        "id": "validation_Art_1",
        "question": "Which style is shown in <image 1>?",
        "options": "['Baroque', 'Rococo', 'Gothic']",
        "answer": "C",
        "image_1": {"bytes": image, "path": None},
        "image_2": None,
    }
    (tmp_path / "Art").mkdir()
    pq.write_table(pa.Table.from_pylist([row]), tmp_path / "Art" / "validation-00000-of-00001.parquet")
    item = read_benchmark("mmmu", tmp_path).items[0]  # a folder of parquet files
    assert item.question.startswith("Which style") and item.choices == ["Baroque", "Rococo", "Gothic"]
    assert item.answers == ["C", "Gothic"] and item.images == [image]

    jsonl = tmp_path / "mmmu.jsonl"
    jsonl.write_text(json.dumps({**row, "image_1": "images/a.png"}) + "\n")
    item = read_benchmark("mmmu", jsonl).items[0]
    assert item.choices == ["Baroque", "Rococo", "Gothic"] and item.images == [tmp_path / "images" / "a.png"]


def test_mathvision_ai2d_and_generic_jsonl(tmp_path: Path) -> None:
    (tmp_path / "data").mkdir()
    (tmp_path / "images").mkdir()
    (tmp_path / "images" / "7.jpg").write_bytes(encode(chart(4), "JPEG"))
    line = {
        "id": "7",
        "question": "<image1> Which cube?",
        "options": ["A", "B"],
        "answer": "B",
        "image": "images/7.jpg",
        "level": 2,
    }
    (tmp_path / "data" / "testmini.jsonl").write_text("\n" + json.dumps(line, ensure_ascii=False) + "\n")
    item = read_benchmark("mathvision", tmp_path / "data" / "testmini.jsonl").items[0]
    # The image path is relative to the release root, one level above data/.
    assert item.item_id == "7" and item.images == [tmp_path / "images" / "7.jpg"] and item.answers == ["B"]

    ai2d = tmp_path / "ai2d"
    (ai2d / "questions").mkdir(parents=True)
    (ai2d / "ai2d_test_ids.csv").write_text("12\n99\n")
    questions = {
        "What is A?": {
            "abcLabel": True,
            "answerTexts": ["leaf", "root", "stem", "seed"],
            "correctAnswer": 2,
            "questionId": "12.png-0",
        }
    }
    (ai2d / "questions" / "12.png.json").write_text(json.dumps({"imageName": "12.png", "questions": questions}))
    benchmark = read_benchmark("ai2d", ai2d)
    assert benchmark.name == "ai2d_test" and [i.item_id for i in benchmark.items] == ["12.png-0"]
    assert benchmark.items[0].answers == ["stem", "C"] and benchmark.items[0].images == [ai2d / "images" / "12.png"]

    generic = tmp_path / "my_eval.jsonl"
    generic.write_text(json.dumps({"question_id": 3, "question": "Q?", "choices": "['a', 'b']", "answer": "b"}) + "\n")
    benchmark = read_benchmark("jsonl", generic, images=tmp_path / "images")
    assert (
        benchmark.name == "my_eval" and benchmark.items[0].item_id == "3" and benchmark.items[0].choices == ["a", "b"]
    )
    assert read_benchmark("jsonl", generic, name="held_out").name == "held_out"


def test_bad_files_are_clear_errors(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="missing.json"):
        read_benchmark("mathvista", tmp_path / "missing.json")
    with pytest.raises(ValueError, match="unknown benchmark format 'seedbench'"):
        read_benchmark("seedbench", tmp_path)
    broken = tmp_path / "broken.json"
    broken.write_text('{"1": {"question": ')
    with pytest.raises(ValueError, match="broken.json is not valid JSON"):
        read_benchmark("mathvista", broken)
    lines = tmp_path / "lines.jsonl"
    lines.write_text('{"question": "ok"}\n{"question": \n')
    with pytest.raises(ValueError, match="lines.jsonl line 2"):
        read_benchmark("jsonl", lines)
    lines.write_text('{"prompt": "no question field"}\n')
    with pytest.raises(ValueError, match="line 1: no string 'question'"):
        read_benchmark("jsonl", lines)
    with pytest.raises(ValueError, match="scienceqa format only"):
        read_benchmark("jsonl", lines, split="test")
    (tmp_path / "problems.json").write_text("{}")
    with pytest.raises(FileNotFoundError, match="pid_splits.json"):
        read_benchmark("scienceqa", tmp_path / "problems.json")
