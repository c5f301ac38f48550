"""Helpers every source adapter shares: finding the dataset folder, reading native JSON,
checking field types, resolving image paths and building records.

The pattern of an adapter's ``read``::

    for native_id, item in native_items:
        yield record_or_reject(self, native_id, lambda: self._record(root, split, native_id, item))

where ``_record`` raises ``Malformed(reason, detail)`` for anything wrong with the native item
(``require`` / ``image_ref`` do it for you); ``record_or_reject`` turns that, and a record that
fails ``validate_record``, into a counted ``Reject``. ``splits`` and ``read`` start with
``root = self.locate(root)``: ``locate`` tries ``""`` first, so a located root locates to itself.

Conventions shared by all adapters (keep them consistent across sources):

- Multiple choice: the gpt turn is the option letter, ``answer`` is that same letter, and
  ``choices`` holds the option texts in order, so the text is ``choices[letters.index(answer)]``.
  ``meta["answer_text"]`` repeats the right option's text for convenience.
- Open questions: ``answer`` is the gold answer string as published (never a number).
- ``rationale`` is None when the source has none (never ``""``).
"""

from __future__ import annotations

import codecs
import json
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import ijson

from slime_data.record import GPT, HUMAN, IMAGE_TOKEN, ImageRef, Record, RecordError, Reject, validate_record
from slime_data.sources import prompts
from slime_data.sources.base import SourceAdapter, SourceNotFound, safe_relative_path

# Reject reasons (short, stable, countable).
BAD_JSON = "bad_json"
NOT_AN_OBJECT = "not_an_object"
MISSING_FIELD = "missing_field"
WRONG_TYPE = "wrong_type"
BAD_VALUE = "bad_value"
IMAGE_OUTSIDE_ROOT = "image_outside_root"
IMAGE_MISSING = "image_missing"
INVALID_RECORD = "invalid_record"


class Malformed(ValueError):
    """A native item that cannot become a record; ``reason`` is one of the constants above."""

    def __init__(self, reason: str, detail: str):
        super().__init__(detail)
        self.reason = reason
        self.detail = detail


# --------------------------------------------------------------------------------------
# Finding the dataset
# --------------------------------------------------------------------------------------


def locate_dataset(source: str, root: Path, candidates: Sequence[str], markers: Sequence[str]) -> Path:
    """The first ``root/<candidate>`` that holds any of ``markers`` (paths or glob patterns).

    ``candidates`` lists where the dataset's own folder may sit below what the user gave,
    ``""`` (the folder itself) first so that locating a located root returns it unchanged,
    e.g. ``("", "scienceqa", "data/scienceqa")``.
    """
    root = Path(root)
    looked: list[str] = []
    for candidate in candidates:
        folder = root / candidate if candidate else root
        for marker in markers:
            looked.append(str(folder / marker))
            if _exists(folder, marker):
                return folder
    raise SourceNotFound(f"{source}: dataset not found under {root}; looked for: {', '.join(looked)}")


def _exists(folder: Path, marker: str) -> bool:
    if any(c in marker for c in "*?["):
        return next(folder.glob(marker), None) is not None
    return (folder / marker).exists()


# --------------------------------------------------------------------------------------
# Reading native files
# --------------------------------------------------------------------------------------


def read_json(path: Path) -> Any:
    """A whole JSON file (BOM, TAB indentation and CRLF tolerated); ValueError names the file."""
    try:
        with open(path, encoding="utf-8-sig") as f:
            return json.load(f)
    except FileNotFoundError:
        raise SourceNotFound(f"{path} does not exist") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise ValueError(f"{path} is not valid JSON: {err}") from None


def iter_json_list(path: Path) -> Iterator[Any]:
    """Stream the items of a top-level JSON list without loading the whole file.

    The LLaVA-558K / mix665k files are hundreds of MB; a full ``json.load`` would hold several
    GB of Python objects. A file that is not a list, or breaks off mid-way, raises ValueError
    naming the file (what was already yielded stays yielded: the shard writer discards it).
    """
    try:
        f = open(path, "rb")
    except FileNotFoundError:
        raise SourceNotFound(f"{path} does not exist") from None
    with f:
        if f.read(len(codecs.BOM_UTF8)) != codecs.BOM_UTF8:
            f.seek(0)
        start = f.tell()
        head = f.read(4096).lstrip()
        if not head.startswith(b"["):
            raise ValueError(f"{path} is not a JSON list (it starts with {head[:20]!r})")
        f.seek(start)
        try:
            yield from ijson.items(f, "item", use_float=True)
        except (ijson.JSONError, UnicodeDecodeError) as err:
            # yajl's message spans lines (an excerpt and a caret): keep its first line.
            reason = str(err).strip().splitlines()[0]
            raise ValueError(f"{path} is not valid JSON: {reason} (before byte {f.tell()})") from None


@dataclass(frozen=True)
class JsonLine:
    """One non-blank line of a JSONL file: its parsed ``value`` or the ``error`` that stopped it."""

    number: int  # 1-based line number
    value: Any = None
    error: str | None = None


def iter_jsonl(path: Path) -> Iterator[JsonLine]:
    """The lines of a JSON Lines file, one bad line at a time (bad UTF-8 or JSON -> ``error``)."""
    try:
        f = open(path, "rb")
    except FileNotFoundError:
        raise SourceNotFound(f"{path} does not exist") from None
    with f:
        for number, raw in enumerate(f, start=1):
            if number == 1 and raw.startswith(codecs.BOM_UTF8):
                raw = raw[len(codecs.BOM_UTF8) :]
            if not raw.strip():
                continue
            try:
                yield JsonLine(number, value=json.loads(raw.decode("utf-8")))
            except (UnicodeDecodeError, json.JSONDecodeError) as err:
                yield JsonLine(number, error=f"line {number}: {err}")


# --------------------------------------------------------------------------------------
# Checking native fields
# --------------------------------------------------------------------------------------


def _type_names(kind: type | tuple[type, ...]) -> str:
    kinds = kind if isinstance(kind, tuple) else (kind,)
    return " or ".join(k.__name__ for k in kinds)


def require_object(item: Any) -> Mapping[str, Any]:
    if not isinstance(item, Mapping):
        raise Malformed(NOT_AN_OBJECT, f"expected a JSON object, got {type(item).__name__}")
    return item


def require(item: Mapping[str, Any], key: str, kind: type | tuple[type, ...], *, optional: bool = False) -> Any:
    """``item[key]`` checked against ``kind`` (bool never passes for int).

    Absent or null is a ``missing_field`` Malformed, or None when ``optional``.
    """
    value = item.get(key)
    if value is None:
        if optional:
            return None
        raise Malformed(MISSING_FIELD, f"field {key!r} is missing")
    kinds = kind if isinstance(kind, tuple) else (kind,)
    if not isinstance(value, kinds) or (isinstance(value, bool) and bool not in kinds):
        raise Malformed(WRONG_TYPE, f"field {key!r} is {type(value).__name__}, expected {_type_names(kind)}")
    return value


def require_text(item: Mapping[str, Any], key: str) -> str:
    """A string field that must hold more than whitespace (questions, answers)."""
    value = require(item, key, str)
    if not value.strip():
        raise Malformed(BAD_VALUE, f"field {key!r} is empty")
    return value


def require_str_list(item: Mapping[str, Any], key: str, *, optional: bool = False) -> list[str] | None:
    value = require(item, key, list, optional=optional)
    if value is not None and not all(isinstance(v, str) for v in value):
        raise Malformed(WRONG_TYPE, f"field {key!r} must be a list of strings")
    return value


def native_id_of(item: Any, index: int, key: str = "id", *, allow_int: bool = False) -> str:
    """``item[key]`` when it is a non-empty string (or, with ``allow_int``, an int: LLaVA-style
    files mix the two), else the item's position ``item<index>``, so a broken item still names
    its reject. The record itself should still ``require`` the field.
    """
    native_id = item.get(key) if isinstance(item, Mapping) else None
    if allow_int and isinstance(native_id, int) and not isinstance(native_id, bool):
        return str(native_id)
    return native_id if isinstance(native_id, str) and native_id.strip() else f"item{index}"


def image_ref(root: Path, relative: str) -> ImageRef:
    """An ``ImageRef`` for ``relative`` (normalised lexically, relative to ``root``); the file must
    exist there, symlinks followed."""
    normalised = safe_relative_path(relative)
    if normalised is None:
        raise Malformed(IMAGE_OUTSIDE_ROOT, f"image path {relative!r} escapes the dataset root")
    if not (Path(root) / normalised).is_file():
        raise Malformed(IMAGE_MISSING, f"image {normalised} does not exist")
    return ImageRef(path=normalised, bytes=None)


# --------------------------------------------------------------------------------------
# Building records
# --------------------------------------------------------------------------------------


def join_text(*parts: str | None, sep: str = "\n\n") -> str | None:
    """Non-blank parts, stripped, joined; None when nothing is left (a rationale is never "")."""
    kept = [p.strip() for p in parts if p and p.strip()]
    return sep.join(kept) if kept else None


def choice_letter(choices: Sequence[str], index: int) -> str:
    """The letter of option ``index`` (0-based); Malformed when it is out of range."""
    if not 0 <= index < len(choices):
        raise Malformed(BAD_VALUE, f"answer index {index} is out of range for {len(choices)} choices")
    return prompts.option_letters(len(choices))[index]


def single_turn(prompt: str, reply: str, has_image: bool) -> list[dict[str, str]]:
    """One human question (``<image>`` first when there is an image) and the gpt reply."""
    return [prompts.human_turn(prompt, has_image=has_image), prompts.gpt_turn(reply)]


def llava_conversation(turns: Any, has_image: bool) -> list[dict[str, str]]:
    """A native LLaVA-style ``conversations`` value (``item.get("conversations")``), checked and normalised.

    Every ``<image>`` is removed and, when there is an image, one is put first in the first
    human turn, as LLaVA's own preprocessing does ("…\\n<image>" -> "<image>\\n…"). Turns keep
    only ``from`` and ``value``.
    """
    if turns is None:
        raise Malformed(MISSING_FIELD, "field 'conversations' is missing")
    if not isinstance(turns, list):
        raise Malformed(WRONG_TYPE, f"field 'conversations' is {type(turns).__name__}, expected list")
    if not turns:
        raise Malformed(BAD_VALUE, "field 'conversations' is empty")
    conversation = []
    for i, turn in enumerate(turns):
        turn = require_object(turn)
        role, value = require(turn, "from", str), require(turn, "value", str)
        if role not in (HUMAN, GPT):
            raise Malformed(BAD_VALUE, f"conversations[{i}] is from {role!r}, expected 'human' or 'gpt'")
        conversation.append({"from": role, "value": value.replace(IMAGE_TOKEN, "").strip()})
    if conversation[0]["from"] != HUMAN:
        raise Malformed(BAD_VALUE, "the conversation does not start with a human turn")
    if not any(turn["from"] == GPT for turn in conversation):
        raise Malformed(BAD_VALUE, "the conversation has no gpt turn")
    conversation[0] = prompts.human_turn(conversation[0]["value"], has_image=has_image)
    return conversation


def make_record(
    adapter: SourceAdapter,
    native_id: str,
    split: str,
    *,
    task: str,
    conversations: list[dict[str, str]],
    image: ImageRef | None,
    answer: str | None = None,
    choices: list[str] | None = None,
    rationale: str | None = None,
    meta: Mapping[str, Any] | None = None,
    part: int | None = None,
) -> Record:
    """A record with the shared id scheme and meta: ``<source>/<native_id>[/<part>]``."""
    record_id = f"{adapter.name}/{native_id}" if part is None else f"{adapter.name}/{native_id}/{part}"
    return Record(
        id=record_id,
        source=adapter.name,
        split=split,
        task=task,
        conversations=conversations,
        image=image,
        answer=answer,
        choices=choices,
        rationale=rationale,
        meta={
            "license": adapter.license,
            "native_id": native_id,
            "prompt_version": prompts.prompt_version(),
            **(meta or {}),
        },
    )


def record_or_reject(adapter: SourceAdapter, native_id: str, build: Callable[[], Record]) -> Record | Reject:
    """``build()``, or a counted reject when the native item is malformed or the record invalid."""
    try:
        record = build()
        validate_record(record)
    except Malformed as err:
        return adapter.reject(native_id, err.reason, err.detail)
    except RecordError as err:
        return adapter.reject(native_id, INVALID_RECORD, str(err))
    return record
