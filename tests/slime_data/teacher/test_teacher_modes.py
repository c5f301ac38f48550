"""The teacher step's three modes against a loopback OpenAI-compatible server (real openai client)."""

from __future__ import annotations

import base64
import dataclasses
import io
import json
import random
import re
from pathlib import Path

import pytest
from PIL import Image

from slime_data.record import Reject, validate_record
from slime_data.steps.base import STEP_REGISTRY
from slime_data.steps.teacher import TeacherStep
from slime_data.teacher.testing import ReceivedRequest, ScriptedReply


def run_step(step: TeacherStep, records: list) -> list:
    return list(step.run(records))


def decoded_image(url: str) -> Image.Image:
    header, data = url.split(",", 1)
    assert header.startswith("data:image/") and header.endswith(";base64")
    return Image.open(io.BytesIO(base64.b64decode(data)))


@pytest.fixture
def step_for(teacher_config, tmp_path):
    def make(server, settings: dict | None = None, **params) -> TeacherStep:
        return TeacherStep(
            config=teacher_config(**(settings or {})), base_url=server.url, cache=tmp_path / "cache.sqlite", **params
        )

    return make


# -- rationale -------------------------------------------------------------------------------


def test_rationale_fills_the_column_in_input_order_with_provenance(
    serve, step_for, records, rationale_teacher, planted_key
):
    delays = random.Random(0)

    # Random latency: later records often finish first; the output must still be in input order.
    server = serve(lambda request: rationale_teacher(request, delay_s=delays.uniform(0, 0.05)))
    inputs = [records(i, size=(200, 100)) for i in range(12)]
    out = run_step(step_for(server, mode="rationale"), inputs)

    assert [r.id for r in out] == [r.id for r in inputs]
    for before, after in zip(inputs, out):
        validate_record(after)
        assert after.rationale.endswith(f"the answer is {before.answer}.")
        assert after.conversations == before.conversations  # the answer turn is kept as is
        provenance = after.meta["teacher"]["rationale"]
        assert provenance["model"] == "gpt-4o" and provenance["served_model"] == "fake-teacher-1"
        assert provenance["prompt"] == "rationale.v1" and len(provenance["prompt_sha256"]) == 64
        assert provenance["usage"] == {"requests": 1, "prompt_tokens": 100, "completion_tokens": 20}
        assert after.meta["license"] == "GPL-3.0"
    first = server.requests[0]
    assert first.headers["authorization"] == f"Bearer {planted_key}"
    assert first.body["response_format"]["type"] == "json_schema"
    assert first.body["temperature"] == 0.0 and first.body["seed"] == 0
    image = decoded_image(first.image_urls[0])
    assert max(image.size) == 64 and image.size == (64, 32)  # downscaled to max_image_side, aspect kept


def test_rationale_only_for_rows_with_gold_and_missing_or_poor_rationale(serve, step_for, records, rationale_teacher):
    server = serve(rationale_teacher)
    good = "A long and careful explanation that reads every bar and adds them up to forty."
    inputs = [
        records(0, answer="", rationale=None),  # no gold answer: cannot be checked
        records(1, rationale=good),  # already good
        records(2, rationale="It is 20."),  # poor: fewer than 8 words
        records(3, rationale=None),
    ]
    out = run_step(step_for(server, mode="rationale"), inputs)
    assert out[0] == inputs[0] and out[1] == inputs[1]
    assert out[2].rationale != "It is 20." and out[3].rationale
    assert len(server.requests) == 2


def test_rationale_with_a_wrong_final_answer_is_rejected_and_equivalent_answers_kept(serve, step_for, records):
    def teacher(request: ReceivedRequest) -> ScriptedReply:
        gold = re.search(r"The correct answer is: (.*)", request.user_text)[1]
        final = {"B. blue": "(B)", "1234": "1,234.0 kg", "7": "8"}[gold]
        return ScriptedReply(content=json.dumps({"reasoning": "Because.", "final_answer": final}))

    server = serve(teacher)
    inputs = [
        records(0, answer="B", choices=["red", "blue"]),
        records(1, answer="1234"),
        records(2, answer="7"),
    ]
    out = run_step(step_for(server, mode="rationale"), inputs)
    assert out[0].rationale == "Because." and out[1].rationale == "Because."
    assert isinstance(out[2], Reject) and out[2].reason == "teacher_answer_mismatch"
    assert "'8'" in out[2].detail and "'7'" in out[2].detail
    # Requests run concurrently, so their arrival order is not the input order.
    assert any("The correct answer is: B. blue" in r.user_text for r in server.requests)


# -- qa ------------------------------------------------------------------------------------------


def qa_teacher(request: ReceivedRequest) -> ScriptedReply:
    if "Answer each question" in request.user_text:  # the thumbnail check
        return ScriptedReply(content=json.dumps({"answers": ["unanswerable", "41", "unanswerable"]}))
    questions = [
        {
            "question": f"What is the small number in corner {n}?",
            "answer": str(40 + n),
            "rationale": f"The tiny label reads {40 + n}.",
        }
        for n in range(3)
    ]
    return ScriptedReply(content=json.dumps({"questions": questions}))


def test_qa_generates_detail_questions_and_drops_those_a_thumbnail_answers(serve, step_for, records):
    server = serve(qa_teacher)
    big, small = records(0, size=(800, 700)), records(1, size=(300, 200))
    out = run_step(step_for(server, mode="qa", questions=3, min_short_side=672, thumbnail_check=True), [big, small])

    assert out[0] == big  # the input row passes through
    generated = [r for r in out[1:] if not isinstance(r, Reject) and r.id.startswith("chartqa/0/")]
    assert [r.id for r in generated] == ["chartqa/0/qa-0", "chartqa/0/qa-2"]
    rejected = [r for r in out if isinstance(r, Reject)]
    assert [(r.id, r.reason) for r in rejected] == [("chartqa/0/qa-1", "teacher_qa_thumbnail_answerable")]
    assert out[-1] == small  # too small for qa: untouched, no request
    assert len(server.requests) == 2

    row = generated[1]
    validate_record(row)
    assert row.conversations == [
        {"from": "human", "value": "<image>\nWhat is the small number in corner 2?"},
        {"from": "gpt", "value": "42"},
    ]
    assert (row.answer, row.rationale, row.choices) == ("42", "The tiny label reads 42.", None)
    assert row.image == big.image and row.image_hash == big.image_hash and row.task == big.task
    assert row.meta["generated_from"] == "chartqa/0" and row.meta["license"] == "GPL-3.0"
    assert row.meta["teacher"]["qa"]["prompt"] == "qa.v1"
    assert row.meta["teacher"]["qa"]["thumbnail_check"]["prompt"] == "thumbnail_check.v1"

    generation, thumbnail = server.requests
    assert "Write 3 different questions" in generation.user_text
    assert max(decoded_image(generation.image_urls[0]).size) == 64  # max_image_side
    assert max(decoded_image(thumbnail.image_urls[0]).size) == 32  # thumbnail_side
    assert "2. What is the small number in corner 1?" in thumbnail.user_text


def test_qa_thumbnail_answers_must_match_the_question_count(serve, step_for, records):
    def teacher(request: ReceivedRequest) -> ScriptedReply:
        if "Answer each question" in request.user_text:
            return ScriptedReply(content=json.dumps({"answers": ["1"]}))  # 1 answer for 3 questions, every time
        return qa_teacher(request)

    server = serve(teacher)
    big = records(0, size=(800, 700))
    out = run_step(step_for(server, mode="qa", thumbnail_check=True), [big])
    assert out[0] == big
    assert isinstance(out[1], Reject) and out[1].id == "chartqa/0/qa" and out[1].reason == "teacher_malformed"
    assert "1 answers for 3 questions" in out[1].detail
    assert len(server.requests) == 1 + 3  # generation, then the check asked 1 + malformed_retries times


def test_qa_asks_once_per_distinct_image(serve, step_for, records):
    """Three rows share one image (several questions about one chart): one set of new rows, not three."""
    server = serve(qa_teacher)
    shared = records(0, size=(800, 700))
    same_image = [dataclasses.replace(shared, id=f"chartqa/{i}") for i in (1, 2)]
    other = records(3, size=(700, 700))
    step = step_for(server, mode="qa", questions=3, min_short_side=672)
    out = run_step(step, [shared, *same_image, other])

    def with_questions(row_id: str) -> list[str]:
        return [row_id, *(f"{row_id}/qa-{n}" for n in range(3))]

    assert [r.id for r in out] == [*with_questions("chartqa/0"), "chartqa/1", "chartqa/2", *with_questions("chartqa/3")]
    assert len(server.requests) == 2 and step.usage.cache_hits == 0
    # A new run (another build unit, another teach command) starts afresh; its answers come from the cache.
    assert [r.id for r in run_step(step, same_image)] == [*with_questions("chartqa/1"), "chartqa/2"]
    assert len(server.requests) == 2 and step.usage.cache_hits == 1


# -- verify --------------------------------------------------------------------------------------


def test_verify_drops_rationales_the_judge_flags(serve, step_for, records):
    def judge(request: ReceivedRequest) -> ScriptedReply:
        wrong = "subtracts" in request.user_text
        verdict = {
            "verdict": "wrong" if wrong else "correct",
            "reason": "It subtracts instead of adding." if wrong else "Every step checks out.",
        }
        return ScriptedReply(content=json.dumps(verdict))

    server = serve(judge)
    inputs = [
        records(0, rationale="Adds 10 and 20 to get 30."),
        records(1, rationale="It subtracts 5 from 20 to get 15."),
        records(2, rationale=None),  # nothing to judge
    ]
    out = run_step(step_for(server, mode="verify"), inputs)
    assert out[0].meta["teacher"]["verify"]["verdict"] == "correct"
    assert out[0].rationale == inputs[0].rationale
    assert isinstance(out[1], Reject) and out[1].reason == "teacher_verify_wrong"
    assert out[1].detail == "It subtracts instead of adding."
    assert out[2] == inputs[2]
    assert len(server.requests) == 2
    assert any("Proposed solution:\nAdds 10 and 20 to get 30." in r.user_text for r in server.requests)


def test_verify_after_rationale_keeps_both_provenances(serve, step_for, records, rationale_teacher):
    server = serve(
        lambda request: (
            ScriptedReply(content=json.dumps({"verdict": "correct", "reason": "ok"}))
            if "Proposed solution" in request.user_text
            else rationale_teacher(request)
        )
    )
    with_rationale = run_step(step_for(server, mode="rationale"), [records(0)])
    verified = run_step(step_for(server, mode="verify"), with_rationale)
    assert set(verified[0].meta["teacher"]) == {"rationale", "verify"}


# -- the recipe interface ------------------------------------------------------------------------


def test_the_step_is_registered_and_rejects_unknown_parameters(teacher_config):
    assert STEP_REGISTRY["teacher"] is TeacherStep
    with pytest.raises(ValueError, match="bogus"):
        TeacherStep(mode="rationale", bogus=1)
    with pytest.raises(ValueError, match="mode"):
        TeacherStep(mode="summarise")
    step = TeacherStep(mode="qa", config=teacher_config(), questions=5, concurrency=7)
    assert step.config.limits.concurrency == 7 and step.teacher.settings.questions == 5


def test_records_without_loaded_image_bytes_are_rejected(serve, step_for, records):
    server = serve(lambda request: pytest.fail("no request expected"))
    record = records(0)
    record.image.bytes = None
    out = run_step(step_for(server, mode="rationale"), [record])
    assert isinstance(out[0], Reject) and out[0].reason == "teacher_image_missing"


def test_text_only_records_are_sent_without_an_image(serve, step_for, records, rationale_teacher):
    server = serve(rationale_teacher)
    record = records(0)
    record.image = None
    record.width = record.height = None
    record.conversations[0]["value"] = record.question
    out = run_step(step_for(server, mode="rationale"), [record])
    assert out[0].rationale and server.requests[0].image_urls == []


def test_summary_has_settings_and_usage_but_no_key(serve, step_for, records, rationale_teacher, planted_key):
    server = serve(rationale_teacher)
    step = step_for(server, mode="rationale")
    run_step(step, [records(0), records(1)])
    summary = step.summary()
    assert summary["usage"]["requests_sent"] == 2 and summary["usage"]["prompt_tokens"] == 200
    assert summary["usage"]["estimated_cost_usd"] == pytest.approx((200 * 2.5 + 40 * 10.0) / 1e6)
    assert summary["prompts"]["rationale"]["prompt"] == "rationale.v1"
    assert summary["settings"]["base_url"] == server.url
    assert planted_key not in json.dumps(summary)


def test_image_bytes_small_enough_are_sent_unchanged(serve, step_for, records, rationale_teacher):
    server = serve(rationale_teacher)
    record = records(0, size=(40, 30))
    run_step(step_for(server, mode="rationale"), [record])
    url = server.requests[0].image_urls[0]
    assert url == "data:image/png;base64," + base64.b64encode(record.image.bytes).decode()


def test_a_bad_prompt_template_fails_before_any_request(teacher_config, tmp_path: Path):
    bad = tmp_path / "mine.yaml"
    bad.write_text("kind: rationale\nversion: v9\nsystem: s\nuser: 'Solve {question} for {student}'\n")
    with pytest.raises(ValueError, match="student"):
        TeacherStep(mode="rationale", config=teacher_config(prompts={"rationale": str(bad)}))
