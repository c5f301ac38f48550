"""An OpenAI chat-completions request body -> a validated `GenerationRequest` (or a 400 saying why).

Messages map onto the LLaVA turns the chat template renders: user -> human, assistant -> gpt;
system (and developer) text goes in front of the first user turn, since the SliME templates have
a fixed system prompt of their own; consecutive messages of one role are joined. Each image part
becomes one `<image>` placeholder in its turn (the template puts a turn's images first).
"""

from __future__ import annotations

import json
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from slime_model.generation import GenerationRequest, context_length, prompt_length_bound
from slime_model.serving.errors import ApiError, bad_request
from slime_model.serving.images import load_image
from slime_model.serving.settings import ServeSettings


class _Body(BaseModel):
    model_config = ConfigDict(extra="ignore")  # clients send fields such as `user`; meaningful ones are checked


class ImageURL(_Body):
    url: str
    detail: str | None = None


class ContentPart(_Body):
    type: str
    text: str | None = None
    image_url: ImageURL | None = None


class Message(_Body):
    role: Literal["system", "developer", "user", "assistant"]
    content: str | list[ContentPart] | None = None


class StreamOptions(_Body):
    include_usage: bool = False


class ChatCompletionRequest(_Body):
    model: str
    messages: list[Message] = Field(min_length=1)
    max_tokens: int | None = Field(None, ge=1)
    max_completion_tokens: int | None = Field(None, ge=1)
    temperature: float = Field(1.0, ge=0.0, le=2.0)  # OpenAI's default; clients that want greedy send 0
    top_p: float = Field(1.0, gt=0.0, le=1.0)
    seed: int | None = None
    stop: str | list[str] | None = None
    n: int = 1
    stream: bool = False
    stream_options: StreamOptions | None = None
    logprobs: bool | None = None
    tools: list[Any] | None = None
    response_format: dict[str, Any] | None = None
    frequency_penalty: float | None = None
    presence_penalty: float | None = None


def read_body(raw: bytes) -> ChatCompletionRequest:
    """Raw body -> request; bad JSON and schema violations are 400s naming the field."""
    try:
        data = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise bad_request(f"the request body is not valid JSON: {err}", "invalid_json") from None
    try:
        return ChatCompletionRequest.model_validate(data)
    except ValidationError as err:
        first = err.errors()[0]
        param = ".".join(str(part) for part in first["loc"])
        raise bad_request(f"{param or 'body'}: {first['msg']}", "invalid_request", param or None) from None


def _refuse_unsupported(body: ChatCompletionRequest) -> None:
    if body.n != 1:
        raise bad_request("n: only n=1 is supported", "unsupported_parameter", "n")
    if body.logprobs:
        raise bad_request("logprobs are not supported", "unsupported_parameter", "logprobs")
    if body.tools:
        raise bad_request("tools are not supported", "unsupported_parameter", "tools")
    if body.response_format is not None and body.response_format.get("type", "text") != "text":
        # Refused, not ignored: a client asking for JSON must learn it will not be enforced.
        raise bad_request(
            "response_format: only {'type': 'text'} is supported", "unsupported_parameter", "response_format"
        )
    for name in ("frequency_penalty", "presence_penalty"):
        if getattr(body, name):
            raise bad_request(f"{name} is not supported (send 0 or leave it out)", "unsupported_parameter", name)
    stops = [body.stop] if isinstance(body.stop, str) else body.stop or []
    if len(stops) > 4:
        raise bad_request("stop: at most 4 stop strings", "invalid_request", "stop")


def _turns(body: ChatCompletionRequest, image_token: str) -> tuple[list[dict[str, str]], list[tuple[str, str]]]:
    """Messages -> (LLaVA turns, (where, url) of each image in placeholder order)."""
    system: list[str] = []
    turns: list[dict[str, str]] = []
    images: list[tuple[str, str]] = []
    for m, message in enumerate(body.messages):
        parts = (
            [ContentPart(type="text", text=message.content)]
            if isinstance(message.content, str)
            else message.content or []
        )
        texts, placeholders = [], 0
        for p, part in enumerate(parts):
            where = f"messages[{m}].content[{p}]"
            if part.type == "text" and part.text is not None:
                if image_token in part.text:
                    raise bad_request(
                        f"{where}: text must not contain {image_token!r}; send images as image_url parts",
                        "invalid_request",
                    )
                texts.append(part.text)
            elif part.type == "image_url" and part.image_url is not None:
                if message.role != "user":
                    raise bad_request(f"{where}: only user messages may hold images", "unsupported_content")
                images.append((where, part.image_url.url))
                placeholders += 1
            else:
                raise bad_request(
                    f"{where}: unsupported content part of type {part.type!r} (text and image_url are)",
                    "unsupported_content",
                )
        text = "\n".join(texts)
        if message.role in ("system", "developer"):
            system.append(text)
            continue
        role = "human" if message.role == "user" else "gpt"
        value = image_token * placeholders + text
        if turns and turns[-1]["from"] == role:
            turns[-1]["value"] += "\n" + value
        else:
            turns.append({"from": role, "value": value})
    if not turns or turns[-1]["from"] != "human":
        raise bad_request("messages: the last message must come from the user", "invalid_request", "messages")
    if system and turns[0]["from"] == "human":
        turns[0]["value"] = "\n\n".join(system) + "\n\n" + turns[0]["value"]
    return turns, images


async def to_generation_request(
    body: ChatCompletionRequest, model, processor, settings: ServeSettings
) -> GenerationRequest:
    """A checked request, its images loaded: every refusal is an ApiError raised before a batch slot is taken."""
    if body.model != settings.model_name:
        raise ApiError(
            404,
            f"model {body.model!r} is not served here; this server serves {settings.model_name!r}",
            "model_not_found",
            "model",
        )
    _refuse_unsupported(body)
    turns, image_urls = _turns(body, processor.settings.image_token)
    if len(image_urls) > settings.max_images:
        raise bad_request(
            f"{len(image_urls)} images: this server takes at most {settings.max_images} per request", "too_many_images"
        )
    images = [await load_image(url, where, settings) for where, url in image_urls]
    stops = [body.stop] if isinstance(body.stop, str) else body.stop or []
    request = GenerationRequest(turns, images, 1, body.temperature, body.top_p, body.seed, tuple(stops))
    prompt = prompt_length_bound(processor, request)
    context = context_length(model)
    asked = body.max_completion_tokens or body.max_tokens
    room = context - prompt
    if room < 1 or (asked is not None and asked > room):
        raise bad_request(
            f"the prompt may take up to {prompt} tokens (text and visual tokens) and {asked or 1} new token(s) "
            "were asked for, "
            f"but the model's context is {context} tokens",
            "context_length_exceeded",
            "messages",
        )
    request.max_new_tokens = asked if asked is not None else min(settings.default_max_tokens, room)
    return request
