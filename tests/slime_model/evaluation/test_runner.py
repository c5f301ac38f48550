"""The eval runner: every benchmark end to end on the tiny model, batched == one by one, resume after a
crash or a torn line (generation injected), and the LLM judge against a loopback server."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from slime_data.teacher.testing import FakeOpenAIServer, ScriptedReply
from slime_model.evaluation.evaluate import EvalSettings, evaluate
from slime_model.evaluation.judge import JudgeSettings
from slime_model.evaluation.runner import PREDICTIONS_FILE, run_benchmark
from slime_model.evaluation.specs import load_benchmarks, read_for_eval
from slime_model.generation import GenerationResult
from tests.slime_data.decontam.release_fixtures import write_root

NOT_JUDGED = ["mmbench_en", "mme", "pope", "textvqa", "gqa", "vqav2", "amber", "mathverse", "chartqa"]


@pytest.fixture(scope="module")
def root(tmp_path_factory) -> Path:
    return write_root(tmp_path_factory.mktemp("benchmarks"))


def scripted(answers: dict[str, str], calls: list[int], fail_after: int | None = None):
    """A stand-in for generate_batch (injected): answers by the question text it finds in the prompt."""

    def generate(model, processor, requests):
        if fail_after is not None and len(calls) >= fail_after:
            raise RuntimeError("killed")
        calls.append(len(requests))
        texts = []
        for request in requests:
            prompt = request.conversation[-1]["value"]
            texts.append(next((a for q, a in answers.items() if q in prompt), "no"))
        return [GenerationResult(t, 10, 2, 0, "stop") for t in texts]

    return generate


class FakeProcessor:
    """What the runner asks of a processor besides generation: the image token, prompt lengths."""

    class settings:  # noqa: N801
        image_token = "<image>"

    @staticmethod
    def tokenizer(text):
        return {"input_ids": text.split()}

    @staticmethod
    def image_grid(image):
        return image.size

    @staticmethod
    def visual_budget(grid):
        return 1


def test_every_benchmark_on_the_tiny_model_batched_equals_one_by_one(root: Path, tmp_path: Path, model, processor):
    settings = EvalSettings(benchmarks="all", root=root, out=tmp_path / "batched", batch=4, max_new_tokens=6)
    results = evaluate("tiny", model, processor, settings)
    assert sorted(results["benchmarks"]) == sorted(NOT_JUDGED)
    assert set(results["skipped"]) >= {"mmvet", "llava_bench"} and "judge" in results["skipped"]["mmvet"]
    counts = {name: bench["n"] for name, bench in results["benchmarks"].items()}
    assert counts == {
        "mmbench_en": 3,
        "mme": 6,
        "pope": 4,
        "textvqa": 1,
        "gqa": 1,
        "vqav2": 2,
        "amber": 2,
        "mathverse": 2,
        "chartqa": 2,
    }
    mme = results["benchmarks"]["mme"]["metrics"]
    assert set(mme) >= {"perception", "cognition", "count", "artwork", "code_reasoning"}
    assert results["benchmarks"]["pope"]["prompts"] == {"short_answer": 1}
    assert {row["paper"] for row in results["paper"]["rows"]} >= {"MME-P", "MME-C", "POPE", "MMBench", "TextVQA"}
    table = (tmp_path / "batched" / "results.md").read_text()
    assert "| mme | perception | 6 |" in table and "| mmvet | skipped: needs an LLM judge" in table

    one_by_one = EvalSettings(benchmarks="all", root=root, out=tmp_path / "single", batch=1, max_new_tokens=6)
    evaluate("tiny", model, processor, one_by_one)
    for name in NOT_JUDGED:

        def predictions(out: Path, name: str = name) -> dict[str, str]:
            lines = (out / name / PREDICTIONS_FILE).read_text().splitlines()
            return {json.loads(line)["id"]: json.loads(line)["prediction"] for line in lines}

        assert predictions(tmp_path / "batched") == predictions(tmp_path / "single"), name


def test_resume_after_a_crash_and_a_torn_line(root: Path, tmp_path: Path):
    spec = load_benchmarks()["mme"]
    items = read_for_eval(spec, root / "mme")
    answers = {"three giraffes": "Yes", "four giraffes": "No", "painting": "Yes", "glassware": "Yes", "c++": "No"}
    reference_calls: list[int] = []
    reference = run_benchmark(
        spec, items, None, FakeProcessor, tmp_path / "ref", batch=2, generate=scripted(answers, reference_calls)
    )
    # count 200 (both right) + artwork 50 + 0 -> perception 250; code: 50 + 0
    assert reference.values["perception"] == 250.0 and reference.values["cognition"] == 50.0
    assert reference_calls == [2, 2, 2] and reference.generated == 6

    calls: list[int] = []
    with pytest.raises(RuntimeError, match="killed"):
        run_benchmark(
            spec, items, None, FakeProcessor, tmp_path / "run", batch=2, generate=scripted(answers, calls, fail_after=2)
        )
    path = tmp_path / "run" / "mme" / PREDICTIONS_FILE
    assert len(path.read_text().splitlines()) == 4  # two batches written before the crash
    with open(path, "a") as f:
        f.write('{"id": "count/000000006040/1", "predic')  # a line a kill -9 cut short
    calls.clear()
    resumed = run_benchmark(
        spec, items, None, FakeProcessor, tmp_path / "run", batch=2, generate=scripted(answers, calls)
    )
    assert calls == [2] and resumed.generated == 2  # only what was missing
    assert resumed.values == reference.values and resumed.n == 6
    lines = [json.loads(line) for line in path.read_text().splitlines()]  # the torn line is gone
    assert len(lines) == 6 and len({line["id"] for line in lines}) == 6


def test_judge_through_the_teacher_client_on_a_loopback_server(root: Path, tmp_path: Path, model, processor):
    def script(request):
        text = request.user_text
        return ScriptedReply(content="0.6" if "Correctness" in text else "8 6\nAssistant 1 is more precise.")

    with FakeOpenAIServer(script) as server:
        judge = JudgeSettings("judge-1", server.url, tmp_path / "judge.sqlite")
        settings = EvalSettings(
            benchmarks="mmvet,llava_bench", root=root, out=tmp_path / "out", batch=2, max_new_tokens=4, judge=judge
        )
        results = evaluate("tiny", model, processor, settings)
        assert len(server.requests) == 2
        assert results["benchmarks"]["mmvet"]["metrics"]["score"] == pytest.approx(60.0)
        llava = results["benchmarks"]["llava_bench"]["metrics"]
        assert llava["relative_score"] == pytest.approx(75.0) and llava["unparsed"] == 0.0  # 6 / 8
        assert results["benchmarks"]["mmvet"]["prompts"]["judge"] == "judge_mmvet.v1-abridged"
        assert "Diamond Head" in server.requests[1].user_text or "Diamond Head" in server.requests[0].user_text
        again = evaluate("tiny", model, processor, settings)
        assert len(server.requests) == 2  # predictions and judge replies both come from disk
        assert again["benchmarks"] == results["benchmarks"]  # timings too: they are summed from the file


def test_predictions_made_with_other_settings_are_not_mixed_in(root: Path, tmp_path: Path):
    spec = load_benchmarks()["gqa"]
    items = read_for_eval(spec, root / "gqa")
    calls: list[int] = []
    run_benchmark(spec, items, None, FakeProcessor, tmp_path, generate=scripted({}, calls), fingerprint={"model": "a"})
    run_benchmark(spec, items, None, FakeProcessor, tmp_path, generate=scripted({}, calls), fingerprint={"model": "a"})
    assert calls == [1]  # the second run resumed: nothing left to generate
    with pytest.raises(ValueError, match=r"other settings \(max_new_tokens\)"):
        run_benchmark(
            spec,
            items,
            None,
            FakeProcessor,
            tmp_path,
            max_new_tokens=5,
            generate=scripted({}, calls),
            fingerprint={"model": "a"},
        )
    with pytest.raises(ValueError, match=r"other settings \(model\): use another --out"):
        run_benchmark(
            spec, items, None, FakeProcessor, tmp_path, generate=scripted({}, calls), fingerprint={"model": "b"}
        )
