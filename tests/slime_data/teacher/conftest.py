"""Fixtures for the teacher tests: a planted API key, records with real PNG bytes, a fast
teacher config (short backoffs, no rate limits unless a test sets them), a loopback server."""

from __future__ import annotations

import io
import json
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from PIL import Image

from slime_data.record import ImageRef, Record
from slime_data.teacher.testing import FakeOpenAIServer, ReceivedRequest, ScriptedReply

PLANTED_KEY = "sk-test-PLANTED0123456789abcdefKEY"


@pytest.fixture(autouse=True)
def planted_key(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> str:
    monkeypatch.setenv("OPENAI_API_KEY", PLANTED_KEY)
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)
    monkeypatch.setenv("SLIME_CACHE_DIR", str(tmp_path / "default-cache"))
    return PLANTED_KEY


def png_bytes(width: int, height: int, seed: int = 0) -> bytes:
    image = Image.new("RGB", (width, height), ((seed * 37) % 256, (seed * 91) % 256, 120))
    out = io.BytesIO()
    image.save(out, format="PNG")
    return out.getvalue()


def make_record(
    i: int,
    *,
    answer: str | None = None,
    choices: list[str] | None = None,
    rationale: str | None = None,
    size: tuple[int, int] = (120, 90),
    question: str | None = None,
) -> Record:
    width, height = size
    question = question or f"What is the value of bar {i}?"
    return Record(
        id=f"chartqa/{i}",
        source="chartqa",
        split="train",
        task="chart",
        conversations=[{"from": "human", "value": f"<image>\n{question}"}, {"from": "gpt", "value": answer or "x"}],
        image=ImageRef(bytes=png_bytes(width, height, seed=i), path=f"png/{i}.png"),
        width=width,
        height=height,
        answer=str(i * 10) if answer is None else answer,
        choices=choices,
        rationale=rationale,
        meta={"license": "GPL-3.0"},
    )


@pytest.fixture
def records() -> Callable[..., Record]:
    return make_record


@pytest.fixture
def png() -> Callable[..., bytes]:
    return png_bytes


FAST_SETTINGS: dict[str, Any] = {
    "max_image_side": 64,
    "thumbnail_side": 32,
    "limits": {"concurrency": 4, "rpm": None, "tpm": None},
    "retry": {
        "max_attempts": 4,
        "backoff_base_s": 0.01,
        "backoff_max_s": 0.05,
        "timeout_s": 5.0,
        "malformed_retries": 2,
    },
}


def _merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in override.items():
        merged[key] = (
            _merge(merged[key], value) if isinstance(value, dict) and isinstance(merged.get(key), dict) else value
        )
    return merged


@pytest.fixture
def teacher_config(tmp_path: Path) -> Callable[..., Path]:
    """Write a fast teacher YAML (plus ``overrides``) and return its path."""

    def write(**overrides: Any) -> Path:
        path = tmp_path / f"teacher-{len(list(tmp_path.glob('teacher-*.yaml')))}.yaml"
        path.write_text(yaml.safe_dump(_merge(FAST_SETTINGS, overrides)))
        return path

    return write


@pytest.fixture
def serve() -> Iterator[Callable[[Callable[[ReceivedRequest], ScriptedReply]], FakeOpenAIServer]]:
    servers: list[FakeOpenAIServer] = []

    def start(script: Callable[[ReceivedRequest], ScriptedReply]) -> FakeOpenAIServer:
        server = FakeOpenAIServer(script).start()
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.stop()


# -- scripted teachers ----------------------------------------------------------------------

GOLD = re.compile(r"The correct answer is: (.*)")


def gold_in_prompt(request: ReceivedRequest) -> str:
    return GOLD.search(request.user_text)[1].strip()


def rationale_reply(request: ReceivedRequest, final_answer: str | None = None, **kwargs: Any) -> ScriptedReply:
    """A correct rationale for the gold answer in the prompt (or ``final_answer`` if given)."""
    gold = gold_in_prompt(request)
    final = gold if final_answer is None else final_answer
    content = json.dumps(
        {"reasoning": f"Reading the chart, the bar is {final}. So the answer is {final}.", "final_answer": final}
    )
    return ScriptedReply(content=content, **kwargs)


@pytest.fixture
def rationale_teacher() -> Callable[[ReceivedRequest], ScriptedReply]:
    return rationale_reply
