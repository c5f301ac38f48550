"""Every refusal in OpenAI's error format with its status, and a server that keeps answering after them."""

from __future__ import annotations

import struct
import zlib

import httpx2
import openai
import pytest

from tests.slime_model.serving.serving_helpers import MODEL_NAME, data_url, png_bytes, user_message


def post(url: str, body: dict | None = None, raw: bytes | None = None) -> httpx2.Response:
    content = raw if raw is not None else httpx2.Request("POST", url, json=body).read()
    headers = {"content-type": "application/json"}
    return httpx2.post(f"{url}/v1/chat/completions", content=content, headers=headers, timeout=60)


def chat(*messages: dict, **extra) -> dict:
    return {"model": MODEL_NAME, "messages": list(messages), "max_tokens": 4, "temperature": 0, **extra}


def error_of(response: httpx2.Response, status: int) -> dict:
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert set(error) == {"message", "type", "param", "code"} and error["message"]
    return error


def bomb_png(width: int, height: int) -> bytes:
    """A valid 1x1 PNG whose header claims width x height pixels (a decompression bomb's header)."""
    png = bytearray(png_bytes(1, 1))
    ihdr = png[12:29]  # chunk type + 13 data bytes
    ihdr[4:12] = struct.pack(">II", width, height)
    png[12:29] = ihdr
    png[29:33] = struct.pack(">I", zlib.crc32(bytes(ihdr)))
    return bytes(png)


@pytest.fixture
def url(server) -> str:
    return server(max_images=2, max_image_bytes=200_000, max_image_pixels=4_000_000)


def test_bad_json_and_bad_fields(url):
    assert error_of(post(url, raw=b'{"model": "tiny-slime", "messages": ['), 400)["code"] == "invalid_json"
    missing = error_of(post(url, {"model": MODEL_NAME}), 400)
    assert missing["param"] == "messages" and missing["type"] == "invalid_request_error"
    bad_temperature = error_of(post(url, chat(user_message("hi"), temperature=5)), 400)
    assert bad_temperature["param"] == "temperature"
    assert error_of(post(url, chat({"role": "tool", "content": "x"})), 400)["param"].startswith("messages")


@pytest.mark.parametrize(
    ("extra", "code"),
    [
        ({"n": 2}, "unsupported_parameter"),
        ({"logprobs": True}, "unsupported_parameter"),
        ({"response_format": {"type": "json_schema", "json_schema": {"name": "x"}}}, "unsupported_parameter"),
        ({"stop": ["a", "b", "c", "d", "e"]}, "invalid_request"),
    ],
)
def test_unsupported_parameters_are_refused_not_ignored(url, extra, code):
    assert error_of(post(url, chat(user_message("hi"), **extra)), 400)["code"] == code


def test_unsupported_parts_and_misplaced_images(url):
    audio = {"role": "user", "content": [{"type": "input_audio", "input_audio": {"data": "", "format": "wav"}}]}
    error = error_of(post(url, chat(audio)), 400)
    assert error["code"] == "unsupported_content" and "messages[0].content[0]" in error["message"]
    image = data_url(png_bytes(32, 32))
    assistant_image = {"role": "assistant", "content": [{"type": "image_url", "image_url": {"url": image}}]}
    misplaced = post(url, chat(user_message("a"), assistant_image, user_message("b")))
    assert error_of(misplaced, 400)["code"] == "unsupported_content"
    assert error_of(post(url, chat(user_message("a <image> b"))), 400)["code"] == "invalid_request"
    ends_with_assistant = post(url, chat(user_message("a"), {"role": "assistant", "content": "b"}))
    assert error_of(ends_with_assistant, 400)["param"] == "messages"


def test_broken_oversized_and_bomb_images(url):
    broken = error_of(post(url, chat(user_message("?", data_url(b"\x89PNG\r\n\x1a\n not really")))), 400)
    assert broken["code"] == "invalid_image"
    truncated = error_of(post(url, chat(user_message("?", data_url(png_bytes(64, 64)[:-40])))), 400)
    assert truncated["code"] == "invalid_image"
    not_base64 = post(url, chat(user_message("?", "data:image/png;base64,@@@@")))
    assert error_of(not_base64, 400)["code"] == "invalid_image_url"
    big = error_of(post(url, chat(user_message("?", data_url(png_bytes(400, 400))))), 400)  # ~480 KB of noise
    assert big["code"] == "image_too_large" and "200000" in big["message"]
    bomb = error_of(post(url, chat(user_message("?", data_url(bomb_png(5_000, 5_000))))), 400)
    assert bomb["code"] == "image_too_large" and "5000x5000 pixels" in bomb["message"]
    huge = error_of(post(url, chat(user_message("?", data_url(bomb_png(100_000, 100_000))))), 400)  # Pillow's own guard
    assert huge["code"] == "image_too_large" and "10000000000 pixels" in huge["message"]


def test_too_many_images_and_too_long_prompts(url):
    three = [data_url(png_bytes(32, 32, seed=i)) for i in range(3)]
    error = error_of(post(url, chat(user_message("?", *three))), 400)
    assert error["code"] == "too_many_images" and "at most 2" in error["message"]
    long_text = "the quick brown fox " * 700  # ~2,800 tokens for a 2,048-token context
    assert error_of(post(url, chat(user_message(long_text))), 400)["code"] == "context_length_exceeded"
    greedy = error_of(post(url, chat(user_message("hi"), max_tokens=5000)), 400)
    assert greedy["code"] == "context_length_exceeded" and "2048" in greedy["message"]


def test_unknown_model_route_and_oversized_body(url):
    with pytest.raises(openai.NotFoundError) as unknown:
        openai.OpenAI(base_url=f"{url}/v1", api_key="x", max_retries=0).chat.completions.create(
            model="gpt-4o", messages=[user_message("hi")]
        )
    assert unknown.value.code == "model_not_found"
    assert error_of(httpx2.get(f"{url}/v1/completions"), 404)["code"] == "not_found"
    huge = b'{"model": "tiny-slime", "messages": [], "pad": "' + b"x" * 2_300_000 + b'"}'
    assert error_of(post(url, raw=huge), 413)["code"] == "request_too_large"


def test_the_server_keeps_answering_after_bad_requests(url):
    for raw in (b"nonsense", b"[]", b'{"model": 1}', b"\xff\xfe"):
        assert post(url, raw=raw).status_code == 400
    reply = post(url, chat(user_message("Still there?", data_url(png_bytes(100, 80)))))
    assert reply.status_code == 200 and reply.json()["usage"]["visual_tokens"] > 0
