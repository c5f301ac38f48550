"""The ``synth`` source adapter: wording, letters, tasks, meta, faults, and a round trip through
``slime-data ingest`` into a valid shard set that the dedup steps keep whole."""

from __future__ import annotations

import io
import json
import shutil
from pathlib import Path

import pytest
from PIL import Image

import slime_data.sources.synth  # noqa: F401  (registers the adapter)
from slime_data.ingest import ingest
from slime_data.record import Record, Reject, validate_record
from slime_data.shards import ShardSet, validate_shard_set
from slime_data.sources import REGISTRY, SourceNotFound, prompts
from slime_data.steps.dedup import ExactDedupStep, NearDedupStep
from slime_data.synth import GENERATOR_VERSION

adapter = REGISTRY["synth"]


def read_all(root: Path) -> tuple[list[Record], list[Reject]]:
    items = list(adapter.read(root, "train"))
    return [i for i in items if isinstance(i, Record)], [i for i in items if isinstance(i, Reject)]


def test_locate_splits_and_missing_root(synth_dir: Path, tmp_path: Path) -> None:
    assert adapter.locate(synth_dir) == synth_dir
    (tmp_path / "root").mkdir()
    shutil.copytree(synth_dir, tmp_path / "root" / "synth")
    assert adapter.locate(tmp_path / "root") == tmp_path / "root" / "synth"
    assert adapter.splits(synth_dir) == ["train"] and adapter.default_splits == ("train",)
    assert adapter.license == "CC0-1.0 (synthetic)"
    with pytest.raises(SourceNotFound, match="synth.json"):
        adapter.locate(tmp_path)
    with pytest.raises(SourceNotFound, match="only 'train'"):
        list(adapter.read(synth_dir, "test"))


def test_every_question_becomes_a_valid_record(synth_dir: Path, questions: list[dict]) -> None:
    records, rejects = read_all(synth_dir)
    assert not rejects and len(records) == len(questions)
    for record, native in zip(records, questions):
        validate_record(record)
        assert record.id == f"synth/{native['id']}" and record.source == "synth" and record.split == "train"
        assert (
            record.task == {"hatching": "general"}.get(native["kind"], native["kind"])
            and record.image.path == native["image"]
        )
        assert record.rationale == native["rationale"]
        assert record.meta["license"] == "CC0-1.0 (synthetic)" and record.meta["kind"] == native["kind"]
        assert record.meta["generator_version"] == GENERATOR_VERSION and record.meta["seed"] == 7
        assert record.meta["template"] == native["template"] and record.meta["answer_text"] == native["answer"]
        human, gpt = record.conversations
        if native["choices"]:
            letter = "ABCDEFGH"[native["choices"].index(native["answer"])]
            assert gpt["value"] == record.answer == letter and record.choices == native["choices"]
            assert human["value"] == "<image>\n" + prompts.multiple_choice(
                "synth", native["question"], native["choices"]
            )
            assert f"\n{letter}. {native['answer']}\n" in human["value"]
        else:
            assert gpt["value"] == record.answer == native["answer"] and record.choices is None
            expected = prompts.open_question("synth", native["question"], unit=native["unit"])
            assert human["value"] == "<image>\n" + expected
            if native["unit"]:
                assert f"(Unit: {native['unit']})" in human["value"]


def test_malformed_lines_become_counted_rejects(synth_dir: Path, tmp_path: Path, questions: list[dict]) -> None:
    root = tmp_path / "synth"
    shutil.copytree(synth_dir, root)
    good = questions[0]
    faults = [
        "{not json",
        json.dumps({k: v for k, v in good.items() if k != "answer"} | {"id": "x/missing"}),
        json.dumps(good | {"id": "x/type", "question": 42}),
        json.dumps(good | {"id": "x/choice", "choices": ["1", "2"], "answer": "3"}),
        json.dumps(good | {"id": "x/kind", "kind": "map"}),
        json.dumps(good | {"id": "x/escape", "image": "../../etc/passwd"}),
        json.dumps(good | {"id": "x/gone", "image": "images/chart/nope.png"}),
        json.dumps(["a", "list"]),
    ]
    with open(root / "synth.jsonl", "a", encoding="utf-8") as f:
        f.write("\n".join(faults) + "\n")
    records, rejects = read_all(root)
    assert len(records) == len(questions)
    reasons = {r.id: r.reason for r in rejects}
    line = len(questions) + 1
    assert reasons == {
        f"synth/synth.jsonl:{line}": "bad_json",
        "synth/x/missing": "missing_field",
        "synth/x/type": "wrong_type",
        "synth/x/choice": "bad_value",
        "synth/x/kind": "bad_value",
        "synth/x/escape": "image_outside_root",
        "synth/x/gone": "image_missing",
        f"synth/synth.jsonl:{line + 7}": "wrong_type",
    }
    assert all(r.step == "source" and r.detail for r in rejects)


def test_ingest_round_trip_gives_a_valid_shard_set(synth_dir: Path, figures: dict[str, dict], tmp_path: Path) -> None:
    summary = ingest("synth", synth_dir, tmp_path / "shards")
    assert validate_shard_set(tmp_path / "shards") == []
    shard_set = ShardSet(tmp_path / "shards")
    assert len(shard_set) == summary.manifest["num_rows"] == len(read_all(synth_dir)[0])
    assert summary.manifest["rejects"]["total"] == 0
    for record in shard_set:
        figure = figures[record.id.split("/")[1]]
        assert (record.width, record.height) == (figure["width"], figure["height"])
        assert record.image.bytes == (synth_dir / figure["image"]).read_bytes(), "plain PNGs are stored untouched"
        with Image.open(io.BytesIO(record.image.bytes)) as image:
            assert image.size == (figure["width"], figure["height"])
        assert record.image_hash and record.phash is not None


def test_dedup_keeps_every_question_of_the_set(synth_dir: Path, tmp_path: Path) -> None:
    """Several questions about one image are not copies: the paper recipe's dedup keeps them all."""
    ingest("synth", synth_dir, tmp_path / "shards")
    shard_set = ShardSet(tmp_path / "shards")
    assert ExactDedupStep().plan(shard_set) == {}
    assert NearDedupStep(max_hamming=6, min_jaccard=0.8).plan(shard_set) == {}
