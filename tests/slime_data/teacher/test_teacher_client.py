"""Transport behaviour against a loopback server: retries, Retry-After, timeouts, dropped and
refused connections, 4xx handling, malformed replies, refusals, fallback without structured
output, concurrency and RPM limits, the budget, and the response cache."""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from pathlib import Path

import pytest

from slime_data.record import Reject
from slime_data.steps.teacher import TeacherStep
from slime_data.teacher.cache import ResponseCache
from slime_data.teacher.client import ChatRequest, TeacherClient, retry_after_seconds
from slime_data.teacher.config import load_teacher_config
from slime_data.teacher.errors import BudgetExhausted, TeacherError
from slime_data.teacher.images import ImagePart
from slime_data.teacher.limiter import TokenBucket
from slime_data.teacher.prompts import load_prompt
from slime_data.teacher.replies import RationaleReply
from slime_data.teacher.testing import ReceivedRequest, ScriptedReply, error_body


@pytest.fixture
def step_for(teacher_config, tmp_path):
    def make(server_url: str, settings: dict | None = None, **params) -> TeacherStep:
        params.setdefault("mode", "rationale")
        return TeacherStep(
            config=teacher_config(**(settings or {})), base_url=server_url, cache=tmp_path / "cache.sqlite", **params
        )

    return make


def scripted(*replies, then):
    """Reply with ``replies`` in order for the first requests, then ``then(request)`` for the rest."""
    queue = list(replies)
    lock = threading.Lock()

    def script(request: ReceivedRequest) -> ScriptedReply:
        with lock:
            reply = queue.pop(0) if queue else None
        return reply if reply is not None else then(request)

    return script


# -- retries -------------------------------------------------------------------------------------


@pytest.mark.parametrize(("header", "value", "wait"), [("Retry-After", "0.4", 0.4), ("retry-after-ms", "300", 0.3)])
def test_429_waits_as_long_as_retry_after_says(serve, step_for, records, rationale_teacher, header, value, wait):
    limited = ScriptedReply(status=429, headers={header: value}, body=error_body("slow down", "rate_limit"))
    server = serve(scripted(limited, then=rationale_teacher))
    step = step_for(server.url)
    out = list(step.run([records(0)]))
    assert out[0].rationale
    first, second = server.requests
    assert second.arrived - first.arrived >= wait  # the configured backoff alone is <= 0.05 s
    assert step.usage.retry_causes == {"429": 1} and step.usage.requests_sent == 2


def test_429_pauses_every_request_not_only_the_one_that_got_it(serve, step_for, records, rationale_teacher):
    limited = ScriptedReply(status=429, headers={"Retry-After": "0.3"}, body=error_body("slow down"), delay_s=0.05)
    server = serve(scripted(limited, then=lambda request: rationale_teacher(request, delay_s=0.05)))
    list(step_for(server.url, settings={"limits": {"concurrency": 1}}).run([records(0), records(1), records(2)]))
    rejected_at = server.requests[0].arrived
    assert all(request.arrived - rejected_at >= 0.3 for request in server.requests[1:])


def test_500s_are_retried_then_succeed(serve, step_for, records, rationale_teacher):
    failing = [ScriptedReply(status=500, body=error_body("boom")), ScriptedReply(status=503, body=error_body("busy"))]
    server = serve(scripted(*failing, then=rationale_teacher))
    step = step_for(server.url)
    out = list(step.run([records(0)]))
    assert out[0].rationale and len(server.requests) == 3
    assert step.usage.retry_causes == {"500": 1, "503": 1}


def test_a_timeout_is_retried(serve, step_for, records, rationale_teacher):
    server = serve(scripted(ScriptedReply(content="{}", delay_s=1.0), then=rationale_teacher))
    step = step_for(server.url, settings={"retry": {"timeout_s": 0.3}})
    out = list(step.run([records(0)]))
    assert out[0].rationale and len(server.requests) == 2
    assert step.usage.retry_causes == {"timeout": 1}


def test_a_dropped_connection_is_retried(serve, step_for, records, rationale_teacher):
    server = serve(scripted(ScriptedReply(drop=True), then=rationale_teacher))
    step = step_for(server.url)
    out = list(step.run([records(0)]))
    assert out[0].rationale and len(server.requests) == 2
    assert step.usage.retry_causes == {"connection": 1}


def test_a_truncated_200_body_is_retried_not_cached(serve, step_for, records, rationale_teacher, tmp_path):
    server = serve(scripted(ScriptedReply(body='{"choices": [{"mess'), then=rationale_teacher))
    step = step_for(server.url)
    assert list(step.run([records(0)]))[0].rationale
    assert step.usage.retry_causes == {"incomplete": 1}
    with ResponseCache(tmp_path / "cache.sqlite") as cache:
        assert len(cache) == 1


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_connection_refused_stops_the_run_after_the_retries(step_for, records, planted_key):
    step = step_for(f"http://127.0.0.1:{closed_port()}/v1")
    with pytest.raises(TeacherError, match="kept failing") as caught:
        list(step.run([records(0)]))
    assert step.usage.requests_sent == 4 and step.usage.retry_causes == {"connection": 3}
    assert planted_key not in str(caught.value)


def test_a_server_that_keeps_failing_stops_the_run_instead_of_rejecting_rows(serve, step_for, records):
    server = serve(lambda request: ScriptedReply(status=502, body=error_body("bad gateway")))
    with pytest.raises(TeacherError, match="HTTP 502"):
        list(step_for(server.url).run([records(0)]))
    assert len(server.requests) == 4


def test_401_stops_at_once_and_the_echoed_key_is_redacted(serve, step_for, records, planted_key):
    server = serve(
        lambda request: ScriptedReply(
            status=401,
            body=error_body(
                f"Incorrect API key provided: {request.headers['authorization'][7:]}", "invalid_request_error"
            ),
        )
    )
    with pytest.raises(TeacherError) as caught:
        list(step_for(server.url, settings={"limits": {"concurrency": 1}}).run([records(0), records(1)]))
    assert len(server.requests) == 1
    assert "HTTP 401" in str(caught.value) and planted_key not in str(caught.value)


def test_other_4xx_reject_the_row_and_the_run_goes_on(serve, step_for, records, rationale_teacher):
    def script(request: ReceivedRequest) -> ScriptedReply:
        if "bar 0" in request.user_text:
            return ScriptedReply(status=413, body=error_body("image too large"))
        return rationale_teacher(request)

    server = serve(script)
    out = list(step_for(server.url).run([records(0), records(1)]))
    assert isinstance(out[0], Reject) and out[0].reason == "teacher_http_413" and "image too large" in out[0].detail
    assert out[1].rationale
    assert len(server.requests) == 2  # not retried


# -- replies ------------------------------------------------------------------------------------


def test_malformed_replies_are_re_asked_then_rejected_with_the_raw_text(serve, step_for, records, rationale_teacher):
    def script(request: ReceivedRequest) -> ScriptedReply:
        if "bar 0" in request.user_text:
            return ScriptedReply(content=f"Sorry, here you go: {{not json #{request.turns}")
        if "bar 1" in request.user_text and request.turns == 2:
            return ScriptedReply(content='{"reasoning": "missing the answer"}')
        return rationale_teacher(request)

    server = serve(script)
    step = step_for(server.url)
    out = list(step.run([records(0), records(1)]))
    assert isinstance(out[0], Reject) and out[0].reason == "teacher_malformed"
    assert "raw reply: Sorry, here you go: {not json #6" in out[0].detail  # the last attempt's text
    assert out[1].rationale and out[1].meta["teacher"]["rationale"]["usage"]["requests"] == 2
    bar0 = [r for r in server.requests if "bar 0" in r.user_text]
    # 1 + malformed_retries asks, each showing the previous bad reply and what was wrong with it.
    assert [r.turns for r in bar0] == [2, 4, 6]
    repair = bar0[1].body["messages"]
    assert repair[2] == {"role": "assistant", "content": "Sorry, here you go: {not json #2"}
    assert "no JSON object found" in repair[3]["content"]


def test_a_refusal_is_a_counted_reject_without_retries(serve, step_for, records):
    server = serve(lambda request: ScriptedReply(content=None, refusal="I can't help with that."))
    out = list(step_for(server.url).run([records(0)]))
    assert (
        isinstance(out[0], Reject) and out[0].reason == "teacher_refusal" and out[0].detail == "I can't help with that."
    )
    assert len(server.requests) == 1


def test_a_server_without_response_format_falls_back_to_the_prompt_and_parser(
    serve, step_for, records, rationale_teacher
):
    def script(request: ReceivedRequest) -> ScriptedReply:
        if "response_format" in request.body:
            return ScriptedReply(
                status=400, body=error_body("Unknown parameter: 'response_format'.", "invalid_request_error")
            )
        reply = rationale_teacher(request)
        reply.content = f"Here is the JSON you asked for:\n```json\n{reply.content}\n```\nHope it helps!"
        return reply

    server = serve(script)
    out = list(step_for(server.url, settings={"limits": {"concurrency": 1}}).run([records(i) for i in range(3)]))
    assert all(r.rationale for r in out)
    # One refused structured request, then every request without response_format.
    assert ["response_format" in r.body for r in server.requests] == [True, False, False, False]
    assert "matches this JSON schema" in server.requests[1].user_text


# -- limits and budget ---------------------------------------------------------------------------


def test_concurrency_is_bounded(serve, step_for, records, rationale_teacher):
    server = serve(lambda request: rationale_teacher(request, delay_s=0.15))
    out = list(step_for(server.url, settings={"limits": {"concurrency": 3}}).run([records(i) for i in range(9)]))
    assert len(out) == 9
    assert 2 <= server.max_in_flight <= 3


def test_requests_per_minute_are_respected(serve, step_for, records, rationale_teacher):
    server = serve(rationale_teacher)
    rpm, n = 1200, 30  # 20 per second, at most one second (20 requests) of burst
    started = time.monotonic()
    list(step_for(server.url, settings={"limits": {"concurrency": 8, "rpm": rpm}}).run([records(i) for i in range(n)]))
    rate, burst = rpm / 60, rpm / 60
    for i, request in enumerate(sorted(server.requests, key=lambda r: r.arrived)):
        assert request.arrived - started >= (i + 1 - burst) / rate - 0.01


def test_token_bucket_waits_for_tokens_and_settles_debts(monkeypatch):
    now = [0.0]

    async def fake_sleep(seconds: float) -> None:
        now[0] += seconds

    monkeypatch.setattr("slime_data.teacher.limiter.asyncio.sleep", fake_sleep)
    bucket = TokenBucket(per_minute=6000, clock=lambda: now[0])  # 100 tokens per second, capacity 100

    async def scenario() -> list[float]:
        times = []
        await bucket.take(80)
        times.append(now[0])
        await bucket.take(80)  # 20 left: wait 0.6 s
        times.append(now[0])
        bucket.settle(estimated=80, actual=180)  # used 100 more than estimated: in debt
        await bucket.take(50)  # from -100 to 50 takes 1.5 s
        times.append(now[0])
        await bucket.take(500)  # capped at the capacity: a huge request still goes
        times.append(now[0])
        return times

    assert asyncio.run(scenario()) == pytest.approx([0.0, 0.6, 2.1, 3.1])


def test_max_requests_stops_after_in_flight_requests_finish(serve, step_for, records, rationale_teacher, tmp_path):
    server = serve(lambda request: rationale_teacher(request, delay_s=0.05))
    step = step_for(server.url, max_requests=5, settings={"limits": {"concurrency": 3}})
    out = []
    with pytest.raises(BudgetExhausted, match="--max-requests 5"):
        for item in step.run([records(i) for i in range(12)]):
            out.append(item)
    assert len(server.requests) == 5 and step.usage.responses == 5
    assert [r.id for r in out] == [f"chartqa/{i}" for i in range(len(out))]
    with ResponseCache(tmp_path / "cache.sqlite") as cache:
        assert len(cache) == 5  # everything paid for is kept

    # Resume: the 5 cached answers are free, the 7 others are asked once.
    step = step_for(server.url, max_requests=10)
    out = list(step.run([records(i) for i in range(12)]))
    assert len(out) == 12 and step.usage.cache_hits == 5 and step.usage.requests_sent == 7
    texts = [r.user_text for r in server.requests]
    assert len(texts) == 12 and len(set(texts)) == 12


# Worst case per request: (the prompt estimate, >= 1000 tokens with this image estimate) * 2.5e-6
# + 100 max_tokens * 10e-6 >= 0.0035 USD (gpt-4o prices); each answer really costs 0.0035 USD.
COST_SETTINGS = {"image_tokens_estimate": 1000, "sampling": {"max_tokens": 100}}


def test_max_cost_stops_before_a_request_that_could_overshoot(serve, step_for, records, rationale_teacher):
    server = serve(lambda request: rationale_teacher(request, prompt_tokens=1000, completion_tokens=100))
    step = step_for(server.url, max_cost_usd=0.01, settings={**COST_SETTINGS, "limits": {"concurrency": 1}})
    with pytest.raises(BudgetExhausted, match="--max-cost 0.01 USD reached") as err:
        list(step.run([records(i) for i in range(6)]))
    assert len(server.requests) == 2  # a third could take 0.007 spent past 0.01
    assert "this run spent 0.0070 USD on 2 request(s) (2 answered)" in str(err.value)


def test_max_cost_is_a_ceiling_at_any_concurrency(serve, step_for, records, rationale_teacher):
    """Every request reserves its worst case before it is sent, so 8 slots cannot overshoot."""
    server = serve(lambda request: rationale_teacher(request, prompt_tokens=1000, completion_tokens=100, delay_s=0.1))
    step = step_for(server.url, max_cost_usd=0.01, settings={**COST_SETTINGS, "limits": {"concurrency": 8}})
    with pytest.raises(BudgetExhausted) as err:
        list(step.run([records(i) for i in range(20)]))
    assert step.usage.cost_usd <= 0.01 and step.usage.reserved_usd == 0
    assert 1 <= len(server.requests) <= 2
    assert f"this run spent {step.usage.cost_usd:.4f} USD" in str(err.value)  # the final spend, after the drain


def test_max_cost_needs_a_price(teacher_config):
    with pytest.raises(ValueError, match="price"):
        TeacherStep(
            mode="rationale",
            model="my-local-model",
            base_url="http://127.0.0.1:1/v1",
            max_cost_usd=1.0,
            config=teacher_config(),
        )


# -- cache ---------------------------------------------------------------------------------------


def test_identical_requests_in_flight_are_sent_once(serve, step_for, records, rationale_teacher):
    server = serve(lambda request: rationale_teacher(request, delay_s=0.1))
    twins = [records(0), records(0), records(0)]
    for i, twin in enumerate(twins):
        twin.id = f"chartqa/twin-{i}"
    out = list(step_for(server.url).run(twins))
    assert len(out) == 3 and len(server.requests) == 1
    assert out[0].rationale == out[1].rationale == out[2].rationale


def test_cache_key_uses_the_image_hash_and_everything_that_decides_the_answer(tmp_path: Path, teacher_config, png):
    prompt = load_prompt("rationale.v1", "rationale")
    config = load_teacher_config(teacher_config())

    def key(config=config, image=png(50, 40), question="q", prompt=prompt) -> str:
        system, user = prompt.render(question=question, answer="1", schema="{}")
        request = ChatRequest(prompt, system, user, ImagePart(image, config.max_image_side), RationaleReply)
        with ResponseCache(tmp_path / "k.sqlite") as cache:
            return TeacherClient(config, cache).cache_key(request)

    base = key()
    assert key() == base
    assert key(image=png(50, 40, seed=1)) != base
    assert key(question="other") != base
    assert key(config=config.model_copy(update={"model": "gpt-4o-mini"})) != base
    assert (
        key(config=config.model_copy(update={"sampling": config.sampling.model_copy(update={"temperature": 0.7})}))
        != base
    )
    assert key(config=config.model_copy(update={"max_image_side": 128})) != base
    assert (
        key(prompt=load_prompt("rationale.v1", "rationale").__class__(**{**prompt.__dict__, "sha256": "0" * 64}))
        != base
    )
    # Not part of the key: where the server is, or the key used to reach it.
    assert key(config=config.model_copy(update={"base_url": "http://elsewhere:1/v1"})) == base


def test_retry_after_parsing():
    assert retry_after_seconds({"retry-after": "2"}) == 2.0
    assert retry_after_seconds({"retry-after-ms": "1500", "retry-after": "9"}) == 1.5
    assert retry_after_seconds({"retry-after": "Wed, 21 Oct 2015 07:28:00 GMT"}) == 0.0  # in the past
    assert retry_after_seconds({"retry-after": "soon"}) is None
    assert retry_after_seconds({}) is None
