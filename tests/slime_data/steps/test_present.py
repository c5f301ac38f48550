"""The ``present`` step on every SMR source's real-format sample that carries rationales, on
synthetic rows, on two-row templates, on multi-turn rows made by ``group``, and through a
pipeline into the shard set and ``export llava``."""

from __future__ import annotations

import copy
import dataclasses
import io
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from slime_data.cli.main import app
from slime_data.images import content_hash, phash64
from slime_data.record import ImageRef, Record, Reject
from slime_data.runner import apply_steps
from slime_data.shards import ShardSet, write_shard_set
from slime_data.sources import REGISTRY
from slime_data.steps.dedup import ExactDedupStep, NearDedupStep
from slime_data.steps.group import Group
from slime_data.steps.present import Present
from slime_data.synth import SynthConfig, generate_synth

REPO = Path(__file__).resolve().parents[3]
FIXTURES = REPO / "tests" / "fixtures" / "sources"
REAL = (REPO / "../shared/real-samples").resolve()
# source -> (real-format sample, split SliME trained on or the one the sample has)
SAMPLES = {
    "scienceqa": (REAL / "scienceqa", "train"),
    "tabmwp": (FIXTURES / "tabmwp", "train"),
    "arxivqa": (FIXTURES / "arxivqa", "train"),
    "geoqa3": (FIXTURES / "geoqa3", "all"),
    "geometry3k": (FIXTURES / "geometry3k", "train"),
    "mathvision": (FIXTURES / "mathvision", "test"),
}
REASON_MC = "Explain your reasoning, then give the letter of the correct option."
REASON_OPEN = "Explain your reasoning, then give the answer as a single word or phrase."
SHORT_MC = "Answer with the option's letter from the given choices directly."
SHORT_OPEN = "Answer the question using a single word or phrase."
# One reasoning turn per source, as the default template writes it (its last line and the one before).
TURN_ENDS = {
    "scienceqa/9": "You can tell because it uses will before the main verb, print. The verb tells you about "
    "something that is going to happen.\nThe answer is B.",
    "tabmwp/2": "Hannah needs $3.30.\nThe answer is 3.30.",
    "arxivqa/cs-2106": "The red curve reaches 0.9 at epoch 50.\nThe answer is C.",
    "geoqa3/0": "∴∠EGF＝∠BEG＝65°．故选C．\nThe answer is C.",
    "geometry3k/10": "0.5 × 7 × 10 = 35.\nThe answer is B.",
    "mathvision/12": "Half of the square is grey.\nThe answer is $\\frac{1}{2}$.",
}


def read(source: str) -> list[Record]:
    adapter = REGISTRY[source]
    root, split = SAMPLES[source]
    return [r for r in adapter.read(adapter.locate(root), split) if isinstance(r, Record)]


def run(step: Present, records: list[Record]) -> list[Record]:
    return [r for r in step.run(copy.deepcopy(records)) if isinstance(r, Record)]


def last_line(text: str) -> str:
    return text.rsplit("\n", 1)[-1]


@pytest.mark.parametrize("source", sorted(SAMPLES))
def test_default_template_writes_reasoning_then_answer(source: str) -> None:
    before = read(source)
    step = Present()
    after = run(step, before)
    assert [r.id for r in after] == [r.id for r in before]  # one row each, same ids, same order
    with_rationale = [r.id for r in before if r.rationale]
    assert with_rationale, "the sample must hold rationales"
    for old, new in zip(before, after):
        assert (new.answer, new.rationale, new.choices) == (old.answer, old.rationale, old.choices)
        (old_q, _), (new_q, new_a) = old.conversations, new.conversations
        if old.rationale:
            assert new_a["value"] == f"{old.rationale}\nThe answer is {old.answer}."
            assert new.meta["presentation"] == {"template": "reasoning_then_answer@1", "row": "reasoning"}
            # only the closing response-format line of the question changes, to ask for the reasoning
            reworded = {SHORT_MC: REASON_MC, SHORT_OPEN: REASON_OPEN}.get(last_line(old_q["value"]))
            assert last_line(new_q["value"]) == (reworded or last_line(old_q["value"]))
            assert new_q["value"].rsplit("\n", 1)[0] == old_q["value"].rsplit("\n", 1)[0]
        else:
            assert new.conversations == old.conversations
            assert new.meta["presentation"] == {
                "template": "reasoning_then_answer@1",
                "row": None,
                "kept": "ingested turn: no rationale",
            }
    ends = {k: v for k, v in TURN_ENDS.items() if k.startswith(f"{source}/")}
    assert ends and all(
        next(r for r in after if r.id == k).conversations[1]["value"].endswith(v) for k, v in ends.items()
    )
    label = "reasoning_then_answer@1"
    assert {(row["row"], row["rows"]) for row in step.stats["rows"]} == {
        ("reasoning", len(with_rationale)),
        *(
            (("ingested (no rationale)", len(before) - len(with_rationale)),)
            if len(before) > len(with_rationale)
            else ()
        ),
    }
    assert all(row["source"] == source and row["template"] == label for row in step.stats["rows"])
    assert step.stats["added"] == 0


def test_synth_rows_stay_answer_only(tmp_path: Path) -> None:
    root = tmp_path / "synth"
    generate_synth(root, SynthConfig(n=4, seed=3, captions=0))
    adapter = REGISTRY["synth"]
    before = [r for r in adapter.read(adapter.locate(root), "train") if isinstance(r, Record)]
    assert before and all(r.rationale for r in before)  # the generator writes its working: not shown
    after = run(Present(), before)
    assert [r.conversations for r in after] == [r.conversations for r in before]
    assert all(r.conversations[1]["value"] == r.answer for r in after)
    assert all(r.meta["presentation"] == {"template": "answer_only@1", "row": "answer"} for r in after)


def test_both_writes_two_rows_with_stable_distinct_ids() -> None:
    before = read("arxivqa")
    step = Present(sources={"arxivqa": "both"})
    after = run(step, before)
    assert [r.id for r in after] == [
        "arxivqa/cond-mat-1912",
        "arxivqa/cond-mat-1912#reasoning",
        "arxivqa/cs-2106",
        "arxivqa/cs-2106#reasoning",
        "arxivqa/astro-ph-2003",  # no rationale: one row, its ingested turn reworded to the short answer
    ]
    short, reasoning = after[2], after[3]
    assert short.conversations[1]["value"] == "C" and last_line(short.conversations[0]["value"]) == SHORT_MC
    assert reasoning.conversations[1]["value"].endswith("reaches 0.9 at epoch 50.\nThe answer is C.")
    assert last_line(reasoning.conversations[0]["value"]) == REASON_MC  # ArxivQA's own prompt asks for it
    assert short.meta["presentation"] == {"template": "both@1", "row": "answer"}
    assert reasoning.meta["presentation"] == {"template": "both@1", "row": "reasoning"}
    assert (reasoning.answer, reasoning.rationale, reasoning.image) == (short.answer, short.rationale, short.image)
    assert after[4].conversations[1]["value"] == "A" and after[4].meta["presentation"]["row"] == "answer"
    assert step.stats["added"] == 2 and step.stats["ingested"] == 0
    assert [(r["row"], r["rows"]) for r in step.stats["rows"]] == [("answer", 3), ("reasoning", 2)]


def png(color: str) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (32, 24), color).save(buffer, "PNG")
    return buffer.getvalue()


def chart_qa(n: int, rationale: str | None, color: str = "red") -> Record:
    data = png(color)
    question = f"<image>\nWhat is value {n}?\nAnswer the question using a single word or phrase."
    return Record(
        id=f"dvqa/{n}",
        source="dvqa",
        split="train",
        task="chart",
        conversations=[{"from": "human", "value": question}, {"from": "gpt", "value": str(n)}],
        image=ImageRef(bytes=data, path=f"{color}.png"),
        width=32,
        height=24,
        image_hash=content_hash(data),
        phash=0,
        answer=str(n),
        rationale=rationale,
    )


def test_grouped_rows_are_presented_turn_by_turn(tmp_path: Path) -> None:
    rows = [chart_qa(0, "Bar 0 is at 0."), chart_qa(1, None), chart_qa(2, "Bar 2 is at 2."), chart_qa(3, None, "blue")]
    write_shard_set(tmp_path, rows)
    group, present = Group(max_turns=8), Present(sources={"dvqa": "both"})
    group.plan(ShardSet(tmp_path))
    stream, (_, counted) = apply_steps(iter(ShardSet(tmp_path)), [group, present])
    out = {r.id: r for r in stream if isinstance(r, Record)}
    assert sorted(out) == ["dvqa/0", "dvqa/0#reasoning", "dvqa/3"]
    assert [t["value"] for t in out["dvqa/0"].conversations] == [
        f"<image>\nWhat is value 0?\n{SHORT_OPEN}",
        "0",
        f"What is value 1?\n{SHORT_OPEN}",
        "1",
        f"What is value 2?\n{SHORT_OPEN}",
        "2",
    ]
    assert [t["value"] for t in out["dvqa/0#reasoning"].conversations] == [
        f"<image>\nWhat is value 0?\n{REASON_OPEN}",
        "Bar 0 is at 0.\nThe answer is 0.",
        f"What is value 1?\n{SHORT_OPEN}",  # no rationale: this turn keeps its short answer and question
        "1",
        f"What is value 2?\n{REASON_OPEN}",
        "Bar 2 is at 2.\nThe answer is 2.",
    ]
    lineage = out["dvqa/0#reasoning"].meta["presentation"]
    assert lineage == {"template": "both@1", "row": "reasoning", "turns_ingested": 1}
    assert out["dvqa/3"].meta["presentation"]["row"] == "answer"
    assert (counted.rows_in, counted.rows_out, counted.rejected) == (2, 3, 0)


def test_turns_without_their_golds_are_kept() -> None:
    record = chart_qa(5, "Bar 5 is at 5.")
    record.conversations += [{"from": "human", "value": "And the next?"}, {"from": "gpt", "value": "6"}]
    (out,) = run(Present(), [record])
    assert out.conversations == record.conversations
    assert out.meta["presentation"]["kept"] == "ingested turn: gpt turns and golds differ in number"


def test_rejects_pass_through_untouched() -> None:
    reject = Reject(id="dvqa/9", source="dvqa", step="cap", reason="over_cap")
    assert list(Present().run([reject])) == [reject]


def with_noise_image(record: Record, seed: int) -> Record:
    """``record`` holding a loaded image of its own (random pixels: no two rows look alike)."""
    pixels = np.random.default_rng(seed).integers(0, 255, (64, 64, 3), dtype=np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, "PNG")
    data = buffer.getvalue()
    phash = phash64(Image.open(io.BytesIO(data)))
    return dataclasses.replace(
        record,
        image=ImageRef(bytes=data, path=f"{seed}.png"),
        width=64,
        height=64,
        image_hash=content_hash(data),
        phash=phash,
    )


def test_dedup_never_takes_two_presentations_of_one_record_for_copies(tmp_path: Path) -> None:
    """ScienceQA's long questions differ only in their closing line between the short and the reasoning row:
    near copies by question Jaccard (>= 0.8) on the same image, exactly what a mix's hygiene dedup looks for."""
    adapter = REGISTRY["scienceqa"]
    root = adapter.locate(SAMPLES["scienceqa"][0])
    native = [r for split in ("train", "val", "test") for r in adapter.read(root, split) if isinstance(r, Record)]
    native = [r for r in native if r.image is not None]  # 24 of the 70 problems have one
    records = [with_noise_image(r, seed) for seed, r in enumerate(native)]
    presented = run(Present(sources={"scienceqa": "both"}), records)
    assert len(presented) == 2 * len(records)
    write_shard_set(tmp_path / "presented", presented)
    assert NearDedupStep(max_hamming=6, min_jaccard=0.8).plan(ShardSet(tmp_path / "presented")) == {}
    # the same rows under ids that do not say they are one record's presentations: near copies
    renamed = [dataclasses.replace(r, id=r.id.replace("#", "/")) for r in presented]
    write_shard_set(tmp_path / "renamed", renamed)
    drops = NearDedupStep(max_hamming=6, min_jaccard=0.8).plan(ShardSet(tmp_path / "renamed"))
    assert len(drops) >= 5 and all(reason == "near_duplicate" for reason, _ in drops.values())
    # exact copies too: a template that leaves the question as it is
    same_question = [
        dataclasses.replace(r, conversations=records[i // 2].conversations) for i, r in enumerate(presented)
    ]
    write_shard_set(tmp_path / "exact", same_question)
    assert ExactDedupStep().plan(ShardSet(tmp_path / "exact")) == {}


@pytest.mark.slow
def test_demo_build_presents_and_export_carries_the_turns(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    runner = CliRunner()
    built = runner.invoke(app, ["build", "sophisticated", "--workers", "1"])
    assert built.exit_code == 0, built.output
    shard_set = ShardSet(tmp_path / "data" / "sophisticated")
    stats = shard_set.manifest["global_steps"]["present"]
    records = list(shard_set)
    by_source = {s: [r for r in records if r.source == s] for s in ("synth", "scienceqa")}
    assert len(by_source["synth"]) > 300 and len(by_source["scienceqa"]) == 10
    assert all(
        r.conversations[1]["value"] == r.answer and r.meta["presentation"]["row"] == "answer"
        for r in by_source["synth"]
    )
    assert all(
        r.conversations[1]["value"] == f"{r.rationale}\nThe answer is {r.answer}." for r in by_source["scienceqa"]
    )
    assert {(r["source"], r["template"], r["row"]): r["rows"] for r in stats["rows"]} == {
        ("scienceqa", "reasoning_then_answer@1", "reasoning"): 10,
        ("synth", "answer_only@1", "answer"): len(by_source["synth"]),
    }
    assert "Presentation</h2>" in (shard_set.root / "report.html").read_text(encoding="utf-8")

    out = tmp_path / "llava.json"
    args = ["export", "llava", str(shard_set.root), "--out", str(out), "--image-dir", str(tmp_path / "images")]
    exported = runner.invoke(app, args)
    assert exported.exit_code == 0, exported.output
    entries = {e["id"]: e for e in json.loads(out.read_text(encoding="utf-8"))}
    for record in by_source["scienceqa"]:
        entry = entries[record.id]
        assert entry["conversations"] == record.conversations
        assert entry["conversations"][1]["value"].endswith(f"\nThe answer is {record.answer}.")
        assert entry["presentation"] == {"template": "reasoning_then_answer@1", "row": "reasoning"}
