"""BatchQueue with a scripted run_batch: batch formation, isolation of a failing request, cancellation,
queue limits and shutdown (no model: each request's answer is its own prompt)."""

from __future__ import annotations

import asyncio

import pytest

from slime_model.generation import GenerationRequest, GenerationResult
from slime_model.serving.batching import BatchQueue, QueueFull


def request(text: str) -> GenerationRequest:
    return GenerationRequest([{"from": "human", "value": text}], [])


class Script:
    """run_batch that answers each prompt with itself, streams it in two halves, and fails on "bad"."""

    def __init__(self) -> None:
        self.batches: list[list[str]] = []

    def __call__(self, requests, on_text, is_cancelled):
        prompts = [r.conversation[0]["value"] for r in requests]
        self.batches.append(prompts)
        if "bad" in prompts:
            raise ValueError("the model refused 'bad'")
        for index, prompt in enumerate(prompts):
            on_text(index, prompt[:1])
            on_text(index, prompt[1:])
        return [GenerationResult(p, 1, 1, 0, "cancelled" if is_cancelled(i) else "stop") for i, p in enumerate(prompts)]


async def events_of(job) -> list:
    events = []
    while not events or isinstance(events[-1], str):
        events.append(await job.events.get())
    return events


def run(coroutine):
    return asyncio.run(asyncio.wait_for(coroutine, 30))


def test_requests_arriving_together_share_a_batch_up_to_max_batch():
    script = Script()
    queue = BatchQueue(script, max_batch=4, max_wait_s=0.3, max_queue=16)
    queue.start()

    async def main():
        jobs = [queue.submit(request(f"q{i}")) for i in range(5)]
        return [await events_of(job) for job in jobs]

    answers = run(main())
    queue.stop(5)
    assert script.batches == [["q0", "q1", "q2", "q3"], ["q4"]]
    assert [a[:2] for a in answers] == [["q", str(i)] for i in range(5)]
    assert [a[-1].text for a in answers] == [f"q{i}" for i in range(5)]
    assert queue.stats.as_dict() == {"batches": 2, "requests": 5, "largest_batch": 4, "mean_batch": 2.5}


def test_a_failing_request_fails_alone_and_the_others_are_rerun():
    script = Script()
    queue = BatchQueue(script, max_batch=3, max_wait_s=0.3, max_queue=16)
    queue.start()

    async def main():
        jobs = [queue.submit(request(text)) for text in ("a", "bad", "c")]
        return [await events_of(job) for job in jobs]

    a, bad, c = run(main())
    queue.stop(5)
    assert script.batches == [["a", "bad", "c"], ["a"], ["bad"], ["c"]]
    assert a[-1].text == "a" and c[-1].text == "c"
    assert isinstance(bad[-1], ValueError) and "refused" in str(bad[-1])


def test_cancelled_requests_are_skipped_and_limits_refuse_new_ones():
    script = Script()
    queue = BatchQueue(script, max_batch=8, max_wait_s=0.3, max_queue=2)
    queue.start()

    async def main():
        gone, kept = queue.submit(request("gone")), queue.submit(request("kept"))
        with pytest.raises(QueueFull, match="2 requests are already waiting"):
            queue.submit(request("one too many"))
        gone.cancel()
        return await events_of(gone), await events_of(kept)

    gone, kept = run(main())
    assert isinstance(gone[-1], asyncio.CancelledError) and kept[-1].text == "kept"
    assert script.batches == [["kept"]]
    queue.stop(5)

    async def after_stop():
        with pytest.raises(QueueFull, match="shutting down"):
            queue.submit(request("late"))

    run(after_stop())
