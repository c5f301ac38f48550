"""Step decontaminate: planted MathVista testmini and MMMU items are dropped, the rest is kept."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from slime_data import shards
from slime_data.build.recipe import BuildRecipe, StepSpec, build_step
from slime_data.decontam import scan
from slime_data.paths import PACKAGE_DIR
from slime_data.record import Record, Reject
from slime_data.runner import apply_steps
from slime_data.shards import ShardSet, ShardWriter
from slime_data.sources import prompts
from slime_data.steps import STEP_REGISTRY
from slime_data.steps.decontaminate import Decontaminate
from tests.slime_data.dedup.planted import chart, encode, image_record, variants

# The real MathVista testmini list and MMMU answer key, as bundled with the package.
CORPUS = PACKAGE_DIR / "corpus" / "benchmarks"
MATHVISTA = CORPUS / "mathvista" / "data" / "testmini.json"
MMMU = CORPUS / "mmmu" / "mmmu" / "answer_dict_val.json"
BENCHMARKS = [{"format": "mathvista", "path": str(MATHVISTA)}, {"format": "mmmu", "path": str(MMMU)}]


def as_adapter_would(
    record_id: str, question: str, choices: list[str] | None = None, answer: str = "", seed: int = 0
) -> Record:
    """A training row worded like the source adapters word them (context, lettered options, instruction)."""
    text = prompts.multiple_choice("t", question, choices) if choices else prompts.open_question("t", question)
    record = image_record(record_id, encode(chart(seed)), text, answer=answer)
    record.choices = choices
    return record


@pytest.fixture(scope="module")
def mathvista() -> dict:
    return json.loads(MATHVISTA.read_text())


@pytest.fixture(scope="module")
def planted(mathvista: dict) -> dict[str, Record]:
    spring = mathvista["1"]["question"]  # long: matched by a 13-token passage
    angle = mathvista["5"]  # short multiple choice: "Find $m\\angle H$"
    nail = mathvista["190"]["question"]  # long but a template shared by 6 items: exact question + answer
    rows = {
        "spring": as_adapter_would("spring", spring, answer="1.2", seed=1),
        "spring-rewritten": as_adapter_would(
            "spring-rewritten",
            "A teacher's rewrite: " + spring.split("\r\n\r\n")[1].replace("cumin", "cumin spice"),
            seed=2,
        ),
        "angle": as_adapter_would("angle", angle["question"], angle["choices"], answer="A", seed=3),
        "nail": as_adapter_would("nail", nail, answer="2", seed=4),
        "nail-other-answer": as_adapter_would("nail-other-answer", nail, answer="5", seed=5),
        "generic-other-answer": as_adapter_would(
            "generic-other-answer", "What number is shown?", answer="1234", seed=6
        ),
        "mmmu-options": as_adapter_would(
            "mmmu-options",
            "How many attendants are needed?",
            ["1 attendant", "2 attendants", "3 attendants", "4 attendants"],
            "B",
            7,
        ),
        "mmmu-generic-options": as_adapter_would("mmmu-generic-options", "Is it true?", ["Yes", "No"], "A", 8),
        "fresh": as_adapter_would("fresh", "What is the value of item 3 in this chart?", answer="17", seed=9),
        "fresh-mc": as_adapter_would(
            "fresh-mc", "Which item has the largest value?", ["item 1", "item 2", "item 3"], "C", 10
        ),
    }
    return rows


def shard_set_of(records: list[Record], folder: Path) -> ShardSet:
    with ShardWriter(folder, command="test", max_shard_rows=4) as writer:
        for record in records:
            writer.add(record)
    return ShardSet(folder)


def test_registered() -> None:
    assert STEP_REGISTRY["decontaminate"] is Decontaminate and Decontaminate.scope == "global"


def test_planted_benchmark_items_are_dropped(planted: dict[str, Record], tmp_path: Path) -> None:
    shard_set = shard_set_of(list(planted.values()), tmp_path / "set")
    step = Decontaminate(benchmarks=BENCHMARKS)
    drops = step.plan(shard_set)
    reasons = {record_id.split("/")[1]: reason for record_id, (reason, _) in drops.items()}
    assert reasons == {
        "spring": "benchmark_question:mathvista_testmini",
        "spring-rewritten": "benchmark_question:mathvista_testmini",
        "angle": "benchmark_question:mathvista_testmini",
        "nail": "benchmark_question:mathvista_testmini",
        "mmmu-options": "benchmark_options:mmmu_validation",
    }
    assert "mathvista_testmini item 1:" in drops["t/spring"][1] and "13-token passage" in drops["t/spring"][1]
    assert "item 5:" in drops["t/angle"][1]
    assert "validation_Math_2" in drops["t/mmmu-options"][1]
    assert step.stats["mathvista_testmini"]["rows_dropped"] == 4
    assert step.stats["mmmu_validation"]["rows_dropped"] == 1
    assert step.stats["mmmu_validation"]["option_sets"] > 600  # the sample has no stems: options only

    # Filtering pass: counts balance and every other row is kept as it was.
    stream, counts = apply_steps(iter(shard_set), [step])
    out = list(stream)
    kept = [r for r in out if not isinstance(r, Reject)]
    assert {r.id for r in kept} == {f"t/{name}" for name in planted} - set(drops)
    assert counts[0].to_json() == {"step": "decontaminate", "in": 10, "out": 5, "rejected": 5}
    assert len(out) == len(shard_set)


def test_workers_and_match_batches_change_nothing(
    planted: dict[str, Record], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(shards, "BATCH_ROWS", 1)  # a record batch per row: matching joins them into batches
    with ShardWriter(tmp_path / "set", command="test", max_shard_rows=6) as writer:  # two shard files: 6 + 4 rows
        for record in planted.values():
            writer.add(record)
    shard_set = ShardSet(tmp_path / "set")
    expected = Decontaminate(benchmarks=BENCHMARKS).plan(shard_set)
    assert len(expected) == 5
    monkeypatch.setattr(scan, "MATCH_ROWS", 4)  # batches of 4 + 2 | 4 rows
    assert Decontaminate(benchmarks=BENCHMARKS).plan(shard_set) == expected
    assert Decontaminate(benchmarks=BENCHMARKS, workers=2).plan(shard_set) == expected  # a process per shard file


def test_benchmark_images_are_matched_by_perceptual_hash(tmp_path: Path) -> None:
    # A generic JSON Lines benchmark with its images in a folder beside it ...
    bench = tmp_path / "bench"
    (bench / "images").mkdir(parents=True)
    (bench / "images" / "q1.png").write_bytes(encode(chart(11)))
    (bench / "held_out.jsonl").write_text(
        json.dumps({"id": "q1", "question": "What is shown in the chart?", "image": "images/q1.png"}) + "\n"
    )
    # ... and a ScienceQA release whose test problem 5 has an image.
    scienceqa = tmp_path / "scienceqa" / "data" / "scienceqa"
    (scienceqa / "images" / "test" / "5").mkdir(parents=True)
    (scienceqa / "images" / "test" / "5" / "image.png").write_bytes(encode(chart(13)))
    problem = {
        "question": "Which animal's legs are adapted for digging?",
        "choices": ["mole", "horse"],
        "answer": 0,
        "hint": "",
        "image": "image.png",
    }
    (scienceqa / "problems.json").write_text(json.dumps({"5": problem, "6": {**problem, "image": None}}))
    (scienceqa / "pid_splits.json").write_text(json.dumps({"train": ["6"], "test": ["5"]}))

    rows = [
        image_record("resized-copy", variants(chart(11))["resized"], "Describe this figure in detail."),
        image_record("other-chart", encode(chart(12)), "Describe this figure in detail."),
        image_record("scienceqa-test-image", encode(chart(13), "JPEG", quality=80), "What is this?"),
    ]
    step = Decontaminate(
        root=tmp_path,  # relative benchmark paths are taken from the build's --root
        benchmarks=[
            {"format": "jsonl", "path": "bench/held_out.jsonl"},
            {"format": "scienceqa", "path": "scienceqa/data/scienceqa"},
        ],
    )
    drops = step.plan(shard_set_of(rows, tmp_path / "set"))
    assert set(drops) == {"t/resized-copy", "t/scienceqa-test-image"}
    assert drops["t/resized-copy"][0] == "benchmark_image:held_out" and "item q1" in drops["t/resized-copy"][1]
    assert drops["t/scienceqa-test-image"] == (
        "benchmark_image:scienceqa_test",
        "image within 0 bits of scienceqa_test item 5",
    )
    assert step.stats["scienceqa_test"]["images"] == 1 and step.stats["held_out"]["rows_dropped"] == 1


def test_exclude_and_bundled_corpus_paths(planted: dict[str, Record], tmp_path: Path) -> None:
    shard_set = shard_set_of(list(planted.values()), tmp_path / "set")
    step = Decontaminate(
        benchmarks=[{"format": "mathvista", "path": "{package}/corpus/benchmarks/mathvista/data/testmini.json"}]
    )
    drops = step.plan(shard_set, exclude={"t/spring"})
    assert "t/spring" not in drops and "t/angle" in drops


def test_recipe_errors_are_one_line_and_name_the_problem(tmp_path: Path) -> None:
    recipe = BuildRecipe(name="t", sources=[], steps=[])
    with pytest.raises(ValueError, match="imgaes"):
        build_step(
            StepSpec(step="decontaminate", benchmarks=[{"format": "mathvista", "path": "x", "imgaes": "y"}]), recipe
        )
    with pytest.raises(ValueError, match="format"):
        build_step(StepSpec(step="decontaminate", benchmarks=[{"format": "seedbench", "path": "x"}]), recipe)
    with pytest.raises(ValueError, match="benchmarks"):
        build_step(StepSpec(step="decontaminate"), recipe)
    missing = Decontaminate(benchmarks=[{"format": "mathvista", "path": str(tmp_path / "nope.json")}])
    with pytest.raises(FileNotFoundError, match="nope.json"):
        missing.plan(shard_set_of([], tmp_path / "empty"))
    twice = Decontaminate(benchmarks=BENCHMARKS + [{"format": "mathvista", "path": str(MATHVISTA)}])
    with pytest.raises(ValueError, match="share a name"):
        twice.build_index()
