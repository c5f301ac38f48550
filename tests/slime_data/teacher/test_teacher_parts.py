"""The teacher's building blocks: config and key resolution, prompt templates, reply parsing,
images, the SQLite cache, and the ordered async driver."""

from __future__ import annotations

import asyncio
import contextlib
import io
import sqlite3
import threading
from pathlib import Path

import pytest
from PIL import Image

from slime_data.teacher.cache import ResponseCache, request_key
from slime_data.teacher.config import OPENAI_BASE_URL, load_teacher_config
from slime_data.teacher.errors import BudgetExhausted
from slime_data.teacher.images import ImagePart
from slime_data.teacher.ordered import ordered_map
from slime_data.teacher.prompts import PROMPT_FIELDS, load_prompt
from slime_data.teacher.redact import redact
from slime_data.teacher.replies import MalformedReply, QAReply, RationaleReply, parse_reply, response_schema

# -- config ----------------------------------------------------------------------------------


def test_defaults_load_and_overrides_apply_without_none(tmp_path: Path):
    mine = tmp_path / "mine.yaml"
    mine.write_text("model: gpt-4o-mini\nlimits:\n  rpm: 60\n")
    config = load_teacher_config(mine, {"limits": {"concurrency": 3, "tpm": None}, "base_url": None})
    assert config.model == "gpt-4o-mini"
    assert (config.limits.rpm, config.limits.concurrency, config.limits.tpm) == (60, 3, 200000)
    assert config.prompts["rationale"] == "rationale.v1"


def test_bad_settings_are_one_line_errors_naming_the_key(tmp_path: Path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("limits:\n  concurrency: 0\n")
    with pytest.raises(ValueError, match=r"^teacher config: limits\.concurrency: .*greater than or equal to 1$"):
        load_teacher_config(bad)
    bad.write_text("limits:\n  concurency: 4\n")
    with pytest.raises(ValueError, match=r"limits\.concurency: Extra inputs are not permitted"):
        load_teacher_config(bad)
    with pytest.raises(FileNotFoundError):
        load_teacher_config(tmp_path / "missing.yaml")


def test_key_and_base_url_resolution(monkeypatch, tmp_path: Path, planted_key):
    config = load_teacher_config()
    assert config.resolved_api_key() == planted_key and config.resolved_base_url() == OPENAI_BASE_URL
    monkeypatch.setenv("OPENAI_BASE_URL", "http://127.0.0.1:8000/v1")
    assert load_teacher_config().resolved_base_url() == "http://127.0.0.1:8000/v1"
    monkeypatch.delenv("OPENAI_API_KEY")
    assert load_teacher_config().resolved_api_key() == "EMPTY"  # a local server without auth
    monkeypatch.delenv("OPENAI_BASE_URL")
    with pytest.raises(ValueError, match="set OPENAI_API_KEY"):
        load_teacher_config().resolved_api_key()
    with_key = tmp_path / "k.yaml"
    with_key.write_text(f"api_key: {planted_key}\n")
    assert load_teacher_config(with_key).resolved_api_key() == planted_key


def test_public_settings_hold_no_key_and_urls_cannot_hold_credentials(tmp_path: Path, planted_key, monkeypatch):
    mine = tmp_path / "mine.yaml"
    mine.write_text(f"api_key: {planted_key}\nbase_url: http://127.0.0.1:8000/v1\n")
    config = load_teacher_config(mine)
    public = config.public()
    assert planted_key not in repr(public) and planted_key not in repr(config)
    assert public["base_url"] == "http://127.0.0.1:8000/v1"
    assert public["price_per_million_tokens"] == {"input": 2.5, "output": 10.0}
    with pytest.raises(ValueError, match="must not hold credentials"):
        load_teacher_config(
            overrides={"base_url": f"https://user:{planted_key}@llm.example.com/v1"}
        ).resolved_base_url()
    monkeypatch.setenv("OPENAI_BASE_URL", "127.0.0.1:8000")
    with pytest.raises(ValueError, match="not an http"):
        load_teacher_config().resolved_base_url()


def test_price_lookup_by_longest_prefix():
    config = load_teacher_config(overrides={"model": "gpt-4o-mini-2024-07-18"})
    assert config.price().input == 0.15
    assert load_teacher_config(overrides={"model": "gpt-4o-2024-08-06"}).price().input == 2.5
    assert load_teacher_config(overrides={"model": "Qwen/Qwen2-VL-7B-Instruct"}).price() is None
    with pytest.raises(ValueError, match="needs a price"):
        load_teacher_config(overrides={"model": "Qwen/Qwen2-VL-7B-Instruct", "limits": {"max_cost_usd": 1}})


def test_redaction():
    assert redact("key sk-abc123456789 and sk-proj-XYZ***abc", None) == "key [redacted] and [redacted]"
    assert redact("token tok_0123", "tok_0123") == "token [redacted]"


# -- prompts ---------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", sorted(PROMPT_FIELDS))
def test_every_shipped_prompt_loads_and_renders(kind: str):
    prompt = load_prompt(f"{kind}.v1", kind)
    values = {name: f"<{name}>" for name in PROMPT_FIELDS[kind]}
    system, user = prompt.render(**values)
    assert system and "<schema>" in user
    assert prompt.ref == f"{kind}.v1" and len(prompt.sha256) == 64


def test_prompt_files_are_checked(tmp_path: Path):
    def write(name: str, text: str) -> str:
        path = tmp_path / name
        path.write_text(text)
        return str(path)

    with pytest.raises(ValueError, match="unknown placeholder.*student"):
        load_prompt(write("a.yaml", "kind: verify\nversion: v1\nsystem: s\nuser: '{student}'\n"), "verify")
    with pytest.raises(ValueError, match="is a 'qa' prompt, expected 'verify'"):
        load_prompt(write("b.yaml", "kind: qa\nversion: v1\nsystem: s\nuser: u\n"), "verify")
    with pytest.raises(ValueError, match="exactly the keys"):
        load_prompt(write("c.yaml", "kind: qa\nversion: v1\nuser: u\n"), "qa")
    (tmp_path / "prompts").mkdir()
    (tmp_path / "prompts" / "qa.v2.yaml").write_text("kind: qa\nversion: v3\nsystem: s\nuser: u\n")
    with pytest.raises(ValueError, match="does not match the file name"):
        load_prompt("qa.v2", "qa", directory=tmp_path / "prompts")
    with pytest.raises(FileNotFoundError):
        load_prompt("qa.v9", "qa")


# -- replies ---------------------------------------------------------------------------------


def test_strict_schema_requires_every_field_and_forbids_others():
    schema = response_schema(QAReply)
    assert schema["additionalProperties"] is False and schema["required"] == ["questions"]
    item = schema["$defs"]["QAItem"]
    assert item["required"] == ["question", "answer", "rationale"] and item["additionalProperties"] is False
    assert "title" not in item


@pytest.mark.parametrize(
    "text",
    [
        '{"reasoning": "r", "final_answer": "4"}',
        'Sure!\n```json\n{"reasoning": "r", "final_answer": "4"}\n```',
        'The JSON is {"reasoning": "r", "final_answer": "4"} as asked.',
        '{"reasoning": "r", "final_answer": "4", "confidence": 0.9}',
    ],
)
def test_fallback_parser_finds_the_json(text: str):
    assert parse_reply(text, RationaleReply) == RationaleReply(reasoning="r", final_answer="4")


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("", "empty reply"),
        ("no json here", "no JSON object"),
        ('{"reasoning": "r"}', "final_answer: Field required"),
        ('{"reasoning": "  ", "final_answer": "4"}', "reasoning: Value error, must not be empty"),
        ('{"reasoning": "<image>", "final_answer": "4"}', "reasoning: Value error, must not be empty"),
    ],
)
def test_malformed_replies_say_what_is_wrong(text: str, problem: str):
    with pytest.raises(MalformedReply, match=problem):
        parse_reply(text, RationaleReply)


# -- images ----------------------------------------------------------------------------------


def encode(image: Image.Image, fmt: str) -> bytes:
    out = io.BytesIO()
    image.save(out, format=fmt)
    return out.getvalue()


def test_large_images_are_downscaled_keeping_aspect_and_format_family():
    photo = ImagePart(encode(Image.new("RGB", (400, 100), (1, 2, 3)), "JPEG"), max_side=100)
    data, mime = photo.encoded()
    assert mime == "image/jpeg" and Image.open(io.BytesIO(data)).size == (100, 25)
    chart = ImagePart(encode(Image.new("RGBA", (50, 300), (1, 2, 3, 128)), "PNG"), max_side=60)
    data, mime = chart.encoded()
    decoded = Image.open(io.BytesIO(data))
    assert mime == "image/png" and decoded.size == (10, 60) and decoded.mode == "RGBA"
    tiff = ImagePart(encode(Image.new("RGB", (20, 20)), "TIFF"), max_side=60)
    assert tiff.encoded()[1] == "image/jpeg"  # not every server takes TIFF: re-encoded
    assert photo.data_url().startswith("data:image/jpeg;base64,")


def test_the_image_key_is_its_content_hash_and_side_not_its_base64():
    part = ImagePart(encode(Image.new("RGB", (20, 20)), "PNG"), max_side=64)
    assert part.key() == {"image_xxh3_128": part.content_hash, "max_side": 64}
    assert len(part.content_hash) == 32


# -- cache -----------------------------------------------------------------------------------


def test_cache_is_wal_first_answer_wins_and_survives_reopening(tmp_path: Path):
    path = tmp_path / "deep" / "teacher.sqlite"
    key = request_key({"b": 1, "a": [1, 2]})
    assert key == request_key({"a": [1, 2], "b": 1})  # canonical JSON
    with ResponseCache(path) as cache:
        assert cache.get(key) is None
        assert cache.put(key, model="m", prompt="p.v1", body="first") == "first"
        assert cache.put(key, model="m", prompt="p.v1", body="second") == "first"
    with ResponseCache(path) as cache:
        assert cache.get(key) == "first" and len(cache) == 1
    assert sqlite3.connect(path).execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_a_corrupt_cache_file_is_a_clear_error(tmp_path: Path):
    path = tmp_path / "teacher.sqlite"
    path.write_bytes(b"this is not a database" * 100)
    with pytest.raises(ValueError, match="cannot be opened"):
        ResponseCache(path)


# -- ordered driver --------------------------------------------------------------------------


@contextlib.asynccontextmanager
async def session():
    yield {"opened": threading.current_thread().name}


def test_results_come_back_in_input_order_with_bounded_lookahead():
    started: list[int] = []

    async def work(state, item: int) -> int:
        started.append(item)
        await asyncio.sleep(0.002 * (10 - item))  # later items finish first
        return item * item

    results = ordered_map(range(10), work, session, window=3)
    assert next(results) == 0
    assert len(started) <= 3  # nothing beyond the window was started
    assert list(results) == [i * i for i in range(1, 10)]


def test_a_drain_exception_lets_work_in_flight_finish_first():
    finished: list[int] = []

    async def work(state, item: int) -> int:
        if item == 1:
            raise BudgetExhausted("budget")
        await asyncio.sleep(0.05)
        finished.append(item)
        return item

    with pytest.raises(BudgetExhausted):
        list(ordered_map(range(10), work, session, window=4, drain_on=(BudgetExhausted,)))
    assert sorted(finished) == [0, 2, 3, 4]  # in flight when item 1 failed: finished, not cancelled


def test_other_errors_and_early_close_cancel_work_in_flight():
    cancelled: list[int] = []

    async def work(state, item: int) -> int:
        if item == 0:
            raise RuntimeError("boom")
        try:
            await asyncio.sleep(10)
        except asyncio.CancelledError:
            cancelled.append(item)
            raise
        return item

    with pytest.raises(RuntimeError, match="boom"):
        list(ordered_map(range(5), work, session, window=4))
    assert sorted(cancelled) == [1, 2, 3]

    async def slow(state, item: int) -> int:
        if item:
            await asyncio.sleep(10)
        return item

    results = ordered_map(range(5), slow, session, window=3)
    assert next(results) == 0
    results.close()  # returns at once: the two sleeping items are cancelled, the loop closed


def test_the_session_lives_on_the_loop_thread():
    async def work(state, item):
        return state["opened"], threading.current_thread().name

    ((opened, ran),) = list(ordered_map([1], work, session, window=1))
    assert opened == ran == "slime-teacher-loop"
