"""Response bodies in OpenAI's chat-completions format, and server-sent events for streaming.

`usage` carries OpenAI's three counts (the prompt counted as the model saw it: text tokens plus the
visual tokens that replaced the images) and `visual_tokens`, an extension field: how many of the
prompt tokens were visual (SliME's selector decides per request, so it varies with the question).
"""

from __future__ import annotations

import json
import time
import uuid

from slime_model.generation import FINISH_LENGTH, GenerationResult


class Completion:
    """The fixed fields of one answer's bodies: id, creation time, model name."""

    def __init__(self, model_name: str) -> None:
        self.id = f"chatcmpl-{uuid.uuid4().hex}"
        self.created = int(time.time())
        self.model = model_name

    def _head(self, kind: str) -> dict:
        return {"id": self.id, "object": kind, "created": self.created, "model": self.model}

    def body(self, result: GenerationResult) -> dict:
        message = {"role": "assistant", "content": result.text}
        choice = {"index": 0, "message": message, "finish_reason": finish_reason(result), "logprobs": None}
        return {**self._head("chat.completion"), "choices": [choice], "usage": usage(result)}

    def chunk(self, delta: dict, finish: str | None = None) -> dict:
        choice = {"index": 0, "delta": delta, "finish_reason": finish, "logprobs": None}
        return {**self._head("chat.completion.chunk"), "choices": [choice]}

    def usage_chunk(self, result: GenerationResult) -> dict:
        """The last chunk when the client asked for `stream_options.include_usage`: no choices, the usage."""
        return {**self._head("chat.completion.chunk"), "choices": [], "usage": usage(result)}


def finish_reason(result: GenerationResult) -> str:
    return "length" if result.finish_reason == FINISH_LENGTH else "stop"


def usage(result: GenerationResult) -> dict:
    return {
        "prompt_tokens": result.prompt_tokens,
        "completion_tokens": result.completion_tokens,
        "total_tokens": result.prompt_tokens + result.completion_tokens,
        "visual_tokens": result.visual_tokens,
    }


def server_sent_event(data: dict | str) -> str:
    return f"data: {data if isinstance(data, str) else json.dumps(data, ensure_ascii=False)}\n\n"


STREAM_END = server_sent_event("[DONE]")
