"""The served tiny checkpoint through the official openai client: answers, streaming, usage, batching."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import httpx2
import openai
import pytest

from tests.slime_model.serving.serving_helpers import MODEL_NAME, data_url, png_bytes, user_message


def client(url: str, key: str = "unused") -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{url}/v1", api_key=key, max_retries=0, timeout=60)


QUESTIONS = [
    [user_message("What is in the image?", data_url(png_bytes(200, 150, seed=1)))],
    [user_message("How many bars are in the chart, and which one is the tallest?")],
    [
        {"role": "system", "content": "Answer briefly."},
        user_message("Compare the two pictures.", data_url(png_bytes(90, 300, seed=2)), data_url(png_bytes(64, 64))),
    ],
    [
        user_message("Colour?", data_url(png_bytes(120, 120, seed=3))),
        {"role": "assistant", "content": "Red."},
        {"role": "user", "content": "Are you sure?"},
    ],
    [user_message("Hi")],
]


def ask(url: str, messages: list[dict], **kwargs):
    return client(url).chat.completions.create(
        model=MODEL_NAME, messages=messages, max_tokens=kwargs.pop("max_tokens", 8), temperature=0, **kwargs
    )


def test_answers_with_usage_and_visual_tokens(server):
    url = server()
    reply = ask(url, QUESTIONS[0], seed=3)
    choice = reply.choices[0]
    assert reply.object == "chat.completion" and reply.model == MODEL_NAME and reply.id.startswith("chatcmpl-")
    assert choice.message.role == "assistant" and choice.message.content and choice.finish_reason in ("stop", "length")
    usage = reply.usage
    assert usage.total_tokens == usage.prompt_tokens + usage.completion_tokens
    assert 1 <= usage.completion_tokens <= 8
    assert usage.visual_tokens > 64  # the extension field: 64 global + separator + kept local tokens
    assert usage.prompt_tokens > usage.visual_tokens
    text_only = ask(url, QUESTIONS[1])
    assert text_only.usage.visual_tokens == 0


def test_streaming_chunks_add_up_to_the_plain_answer(server):
    url = server()
    plain = ask(url, QUESTIONS[0], max_tokens=12)
    chunks = list(ask(url, QUESTIONS[0], max_tokens=12, stream=True, stream_options={"include_usage": True}))
    assert {c.object for c in chunks} == {"chat.completion.chunk"} and len({c.id for c in chunks}) == 1
    assert chunks[0].choices[0].delta.role == "assistant"
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == plain.choices[0].message.content
    finishes = [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason]
    assert finishes == [plain.choices[0].finish_reason]
    assert chunks[-1].choices == [] and chunks[-1].usage.model_dump() == plain.usage.model_dump()


def test_stop_strings_and_length_limits(server):
    url = server()
    long_answer = ask(url, QUESTIONS[1], max_tokens=20)
    text = long_answer.choices[0].message.content
    assert long_answer.choices[0].finish_reason == "length" and long_answer.usage.completion_tokens == 20
    stop = text[len(text) // 2 : len(text) // 2 + 2]
    stopped = ask(url, QUESTIONS[1], max_tokens=20, stop=[stop, "never appears"])
    assert stopped.choices[0].finish_reason == "stop"
    assert stopped.choices[0].message.content == text[: text.index(stop)].rstrip()


def test_seeded_sampling_repeats(server):
    url = server()
    kwargs = {"temperature": 1.0, "top_p": 0.9, "max_tokens": 12}
    first = client(url).chat.completions.create(model=MODEL_NAME, messages=QUESTIONS[1], seed=7, **kwargs)
    again = client(url).chat.completions.create(model=MODEL_NAME, messages=QUESTIONS[1], seed=7, **kwargs)
    other = client(url).chat.completions.create(model=MODEL_NAME, messages=QUESTIONS[1], seed=8, **kwargs)
    assert first.choices[0].message.content == again.choices[0].message.content
    assert first.choices[0].message.content != other.choices[0].message.content


def test_batched_answers_are_byte_identical_to_answers_alone(server):
    alone_url = server(max_batch=1)
    batched_url = server(max_batch=8, max_wait_ms=3000)
    alone = [ask(alone_url, messages, max_tokens=10) for messages in QUESTIONS]
    with ThreadPoolExecutor(len(QUESTIONS)) as pool:
        batched = list(pool.map(lambda messages: ask(batched_url, messages, max_tokens=10), QUESTIONS))
    for one, together in zip(alone, batched, strict=True):
        assert together.choices[0].message.content == one.choices[0].message.content
        assert together.usage.model_dump() == one.usage.model_dump()
    health = httpx2.get(f"{batched_url}/health").json()
    assert health["requests"] == len(QUESTIONS) and health["largest_batch"] >= 2
    assert httpx2.get(f"{alone_url}/health").json()["largest_batch"] == 1


def test_models_and_health(server):
    url = server()
    models = client(url).models.list()
    assert [m.id for m in models.data] == [MODEL_NAME]
    health = httpx2.get(f"{url}/health").json()
    assert health["status"] == "ok" and health["model"] == MODEL_NAME and health["queued"] == 0


def test_the_api_key_is_required_when_set(server):
    url = server(api_key="sk-right")
    with pytest.raises(openai.AuthenticationError) as refused:
        ask(url, QUESTIONS[1])
    assert refused.value.status_code == 401 and refused.value.code == "invalid_api_key"
    with pytest.raises(openai.AuthenticationError):
        client(url, key="sk-wrong").models.list()
    assert httpx2.get(f"{url}/v1/models").status_code == 401
    assert httpx2.get(f"{url}/health").status_code == 200  # health checks need no key
    reply = client(url, key="sk-right").chat.completions.create(model=MODEL_NAME, messages=QUESTIONS[1], max_tokens=2)
    assert reply.usage.completion_tokens >= 1
