"""Benchmark definitions and prompts (YAML): validated at load, rendered as the released scripts do,
MMBench's circular copies, one-line layout errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from slime_data.decontam.items import BenchmarkItem
from slime_model.evaluation.specs import (
    BenchmarkLayoutError,
    circular_copies,
    load_benchmarks,
    load_paper_rows,
    load_prompts,
    read_for_eval,
    render_prompt,
)


def test_every_paper_row_names_a_known_benchmark_and_every_spec_loads() -> None:
    specs = load_benchmarks()
    source, rows = load_paper_rows()
    assert "2406.08487" in source and len(rows) == 16
    assert all(row.benchmark in specs for row in rows)
    assert {row.paper: (row.slime_7b, row.slime_8b) for row in rows}["MME-P"] == (1544, 1578)
    assert all(prompt.version >= 1 for prompt in load_prompts().values())


def test_prompts_render_as_the_released_scripts() -> None:
    specs = load_benchmarks()
    item = BenchmarkItem("1", "Which is a mammal?", context="Look at the picture.", choices=["cat", "crow"], gold="A")
    text, prompt, name = render_prompt(specs["scienceqa_img"], item)
    assert text == (
        "Context: Look at the picture.\nWhich is a mammal?\nA. cat\nB. crow\n"
        "Answer with the option's letter from the given choices directly."
    )
    assert (name, prompt.version) == ("multiple_choice_context", 1)
    text, _, _ = render_prompt(specs["mmbench_cn"], item)
    assert text.startswith("Look at the picture.\nWhich is a mammal?\nA. cat") and text.endswith("请直接回答选项字母。")
    open_item = BenchmarkItem("2", "What is 3 + 4?", gold="7")
    text, _, name = render_prompt(specs["mmmu"], open_item)  # MMMU's open questions get the short-answer prompt
    assert name == "short_answer" and text == "What is 3 + 4?\nAnswer the question using a single word or phrase."
    query = BenchmarkItem("3", "raw", meta={"query": "Hint: Please answer ... Question: raw"})
    assert render_prompt(specs["mathvista"], query)[0] == "Hint: Please answer ... Question: raw"


def test_circular_copies() -> None:
    item = BenchmarkItem("5", "Color?", choices=["red", "green", "blue"], gold="C", meta={"category": "color"})
    copies = circular_copies([item])
    assert [c.item_id for c in copies] == ["5", "5/rotation-1", "5/rotation-2"]
    assert [c.choices for c in copies] == [["red", "green", "blue"], ["green", "blue", "red"], ["blue", "red", "green"]]
    assert [c.gold for c in copies] == ["C", "B", "A"]  # "blue" wherever it moved
    assert {c.meta["circular_group"] for c in copies} == {"5"} and copies[1].meta["category"] == "color"
    already = [
        BenchmarkItem("0", "q", choices=["a", "b"], gold="A", meta={"circular_group": "0"}),
        BenchmarkItem("1000000", "q", choices=["b", "a"], gold="B", meta={"circular_group": "0"}),
    ]
    assert circular_copies(already) == already  # the release's own copies are kept as they are


def test_missing_files_are_one_line_naming_the_layout(tmp_path: Path) -> None:
    with pytest.raises(BenchmarkLayoutError) as error:
        read_for_eval(load_benchmarks()["textvqa"], tmp_path / "textvqa")
    message = str(error.value)
    assert "\n" not in message and "TextVQA_0.5.1_val.json" in message and "train_images/<image_id>.jpg" in message


def test_mmmu_reads_the_validation_split_of_the_hugging_face_layout(tmp_path: Path) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    from tests.slime_data.decontam.release_fixtures import image_bytes

    folder = tmp_path / "mmmu" / "Art"
    folder.mkdir(parents=True)
    for split in ("dev", "validation"):
        row = {
            "id": f"{split}_Art_1",
            "question": "<image 1> Which style?",
            "options": "['Baroque', 'Gothic']",
            "answer": "B",
            "question_type": "multiple-choice",
            "image_1": {"bytes": image_bytes(1), "path": None},
        }
        pq.write_table(pa.Table.from_pylist([row]), folder / f"{split}-00000-of-00001.parquet")
    (item,) = read_for_eval(load_benchmarks()["mmmu"], tmp_path / "mmmu")
    assert item.item_id == "validation_Art_1" and item.choices == ["Baroque", "Gothic"] and item.gold == "B"
    assert item.images == [image_bytes(1)]


def test_mathvista_query_is_built_for_the_github_testmini_file() -> None:
    from slime_data.decontam.benchmarks import read_benchmark

    testmini = Path(__file__).resolve().parents[3] / "slime_data/corpus/benchmarks/mathvista/data/testmini.json"
    items = {item.item_id: item for item in read_benchmark("mathvista", testmini).items}
    spec = load_benchmarks()["mathvista"]
    first = render_prompt(spec, items["1"])[0]  # float, precision 1: the query the Hugging Face release stores
    assert first.startswith(
        "Hint: Please answer the question requiring a floating-point number with one decimal place and provide the "
        "final value, e.g., 1.2, 1.3, 1.4, at the end.\nQuestion: When a spring"
    )
    second = render_prompt(spec, items["2"])[0]
    assert second.endswith("Question: what is the total volume of the measuring cup? (Unit: g)")
    fifth = render_prompt(spec, items["5"])[0]
    assert fifth.endswith("Question: Find $m\\angle H$\nChoices:\n(A) 97\n(B) 102\n(C) 107\n(D) 122")
