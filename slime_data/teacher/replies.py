"""What the teacher must reply, as pydantic models; their JSON schema; and a lenient parser.

The schema is sent as ``response_format`` (structured output) where the server supports it and
is also written into the prompt, so servers without structured output still know the shape.
``parse_reply`` accepts bare JSON, JSON in a Markdown code fence, or a JSON object embedded in
prose, then validates it with the model.
"""

from __future__ import annotations

import functools
import json
import re
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, ValidationError

from slime_data.record import IMAGE_TOKEN


def _text(value: str) -> str:
    # The conversation format owns the image placeholder: a teacher must not add a second one.
    value = value.replace(IMAGE_TOKEN, "").strip()
    if not value:
        raise ValueError("must not be empty")
    return value


Text = Annotated[str, AfterValidator(_text)]  # a validator, not a schema keyword: strict-mode safe


class Reply(BaseModel):
    model_config = ConfigDict(extra="ignore")


class RationaleReply(Reply):
    reasoning: Text
    final_answer: Text


class QAItem(Reply):
    question: Text
    answer: Text
    rationale: Text


class QAReply(Reply):
    questions: list[QAItem]


class ThumbnailReply(Reply):
    answers: list[str]


class VerifyReply(Reply):
    verdict: Literal["correct", "wrong"]
    reason: str


class MalformedReply(ValueError):
    """The reply is not the requested JSON (the message says what is wrong, briefly)."""


@functools.cache
def response_schema(model: type[Reply]) -> dict[str, Any]:
    """``model``'s JSON schema in the strict form OpenAI's structured outputs require.

    Every object lists all its properties as required and forbids others; titles are dropped.
    Cached (one per reply model): treat the result as read-only.
    """

    def strict(node: Any) -> Any:
        if isinstance(node, dict):
            node = {key: strict(value) for key, value in node.items() if key != "title"}
            if node.get("type") == "object" and "properties" in node:
                node["required"] = list(node["properties"])
                node["additionalProperties"] = False
            return node
        if isinstance(node, list):
            return [strict(item) for item in node]
        return node

    return strict(model.model_json_schema())


@functools.cache
def response_format(model: type[Reply]) -> dict[str, Any]:
    return {
        "type": "json_schema",
        "json_schema": {"name": model.__name__, "schema": response_schema(model), "strict": True},
    }


_FENCE = re.compile(r"```(?:json|JSON)?\s*\n?(.*?)```", re.DOTALL)


def extract_json(text: str) -> Any:
    """The first JSON object in ``text``: bare, fenced, or embedded in prose."""
    text = text.strip()
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        pass
    for block in _FENCE.findall(text):
        try:
            return json.loads(block)
        except json.JSONDecodeError:
            continue
    decoder = json.JSONDecoder()
    for start in (i for i, ch in enumerate(text) if ch == "{"):
        try:
            value, _ = decoder.raw_decode(text, start)
        except json.JSONDecodeError:
            continue
        if isinstance(value, dict):
            return value
    raise MalformedReply("no JSON object found")


def parse_reply(text: str | None, model: type[Reply]) -> Reply:
    """Validate ``text`` as ``model``; ``MalformedReply`` says why it is not."""
    if not text or not text.strip():
        raise MalformedReply("empty reply")
    data = extract_json(text)
    try:
        return model.model_validate(data)
    except ValidationError as err:
        first = err.errors()[0]
        where = ".".join(str(part) for part in first["loc"]) or "reply"
        raise MalformedReply(f"{where}: {first['msg']}") from None
