"""The one record type that flows through every data step, and its Arrow schema.

A record is one sample: one image (or none) and a LLaVA-style conversation. Source adapters
make records with ``image = ImageRef(path=<path relative to the dataset root>, bytes=None)``;
the image-loading step fills in ``bytes``, ``width``, ``height``, ``image_hash`` and ``phash``.
Every later step sees complete records.

The Arrow schema carries Hugging Face ``datasets`` features metadata, so a shard set loads
with ``datasets.load_dataset("arrow", data_files=...)`` and decodes ``image`` as a PIL image.
"""

from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass, field, fields
from typing import Any

import pyarrow as pa

SCHEMA_VERSION = "1.0"

# Roles follow the LLaVA convention.
HUMAN, GPT = "human", "gpt"
IMAGE_TOKEN = "<image>"
# "<id>#<row>": another presentation of record <id> (the `present` step's two-row templates:
# the same image and question, answered once short and once with the reasoning).
PRESENTATION_MARK = "#"

TASKS = (
    "chart",
    "table",
    "geometry",
    "math",
    "science",
    "diagram",
    "document",
    "caption",
    "general",
)


@dataclass
class ImageRef:
    """Hugging Face ``Image`` layout: encoded bytes and/or a path (relative to the dataset root)."""

    bytes: bytes | None = None
    path: str | None = None


@dataclass
class Record:
    id: str  # stable: "source/native_id[/n]"
    source: str
    split: str
    conversations: list[dict[str, str]]  # [{"from": "human"|"gpt", "value": str}, ...]
    task: str = "general"
    image: ImageRef | None = None
    width: int | None = None
    height: int | None = None
    image_hash: str | None = None  # xxh3-128 hex of the stored bytes
    phash: int | None = None  # 64-bit perceptual hash, imagehash.phash bit order
    answer: str | None = None  # gold short answer when known
    choices: list[str] | None = None
    rationale: str | None = None
    meta: dict[str, Any] = field(default_factory=dict)  # stored as a JSON string

    # -- convenience -------------------------------------------------------------------
    @property
    def question(self) -> str:
        """The first human turn without the image placeholder (what dedup/decontam compare)."""
        for turn in self.conversations:
            if turn["from"] == HUMAN:
                return turn["value"].replace(IMAGE_TOKEN, "").strip()
        return ""

    def to_row(self) -> dict[str, Any]:
        row = asdict(self)
        row["image"] = None if self.image is None else {"bytes": self.image.bytes, "path": self.image.path}
        row["meta"] = json.dumps(self.meta, sort_keys=True, ensure_ascii=False)
        return row

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> Record:
        row = dict(row)
        image = row.get("image")
        row["image"] = None if image is None else ImageRef(bytes=image.get("bytes"), path=image.get("path"))
        meta = row.get("meta")
        row["meta"] = json.loads(meta) if isinstance(meta, str) and meta else (meta or {})
        row["conversations"] = [dict(t) for t in row["conversations"]]
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in row.items() if k in names})


@dataclass
class Reject:
    """A row a step dropped, with the reason. The runner counts these and writes rejects.jsonl."""

    id: str
    source: str
    step: str
    reason: str  # short, stable, countable: "image_truncated", "min_short_side", ...
    detail: str = ""  # one human-readable line

    def to_json(self) -> dict[str, str]:
        return asdict(self)


class RecordError(ValueError):
    """A record that breaks the schema contract."""


# A source name is a plain folder name (``export llava`` makes one folder per source).
_SOURCE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")


def id_problem(record_id: object, source: object) -> str | None:
    """What is wrong with a row's ``id``/``source`` pair, or None.

    Ids and sources end up in file names (``export llava``), so they may never name another
    folder: the source is a plain name, the id is ``<source>/`` plus ``/``-separated parts,
    none of them empty, ``.`` or ``..``, and no control characters (NUL included).
    """
    if not isinstance(source, str) or not _SOURCE_NAME.fullmatch(source):
        return f"source {source!r} must be a plain name (letters, digits, '_', '.', '-'; not starting with '.')"
    if not isinstance(record_id, str) or not record_id.startswith(f"{source}/"):
        return f"id {record_id!r} must be a string starting with '{source}/'"
    if any(ord(c) < 32 or c == "\x7f" for c in record_id):
        return f"id {record_id!r} holds a control character"
    if any(part in ("", ".", "..") for part in record_id.split("/")):
        return f"id {record_id!r} has an empty, '.' or '..' part"
    return None


def validate_record(record: Record) -> None:
    """Raise ``RecordError`` naming the field when a record breaks the contract."""
    problem = id_problem(record.id, record.source)
    if problem is not None:
        raise RecordError(problem)
    for name in ("source", "split", "task"):
        if not isinstance(getattr(record, name), str) or not getattr(record, name):
            raise RecordError(f"{record.id}: field {name!r} must be a non-empty string")
    if record.task not in TASKS:
        raise RecordError(f"{record.id}: task {record.task!r} is not one of {', '.join(TASKS)}")
    conv = record.conversations
    if not isinstance(conv, list) or not conv:
        raise RecordError(f"{record.id}: conversations must be a non-empty list")
    for i, turn in enumerate(conv):
        if not isinstance(turn, dict) or set(turn) != {"from", "value"}:
            raise RecordError(f"{record.id}: conversations[{i}] must have exactly 'from' and 'value'")
        if turn["from"] not in (HUMAN, GPT) or not isinstance(turn["value"], str):
            raise RecordError(f"{record.id}: conversations[{i}] has from={turn['from']!r} / non-string value")
    if conv[0]["from"] != HUMAN:
        raise RecordError(f"{record.id}: the first turn must be from 'human'")
    n_placeholders = sum(t["value"].count(IMAGE_TOKEN) for t in conv)
    expected = 0 if record.image is None else 1
    if n_placeholders != expected or (expected and IMAGE_TOKEN not in conv[0]["value"]):
        raise RecordError(
            f"{record.id}: {n_placeholders} '{IMAGE_TOKEN}' placeholders for {expected} image(s); "
            "the placeholder belongs in the first human turn"
        )
    if record.choices is not None and not all(isinstance(c, str) for c in record.choices):
        raise RecordError(f"{record.id}: choices must be a list of strings")
    for name in ("answer", "rationale"):
        value = getattr(record, name)
        if value is not None and not isinstance(value, str):
            raise RecordError(f"{record.id}: field {name!r} must be a string or null, got {type(value).__name__}")
    if record.image is not None and record.image.bytes is not None:
        if not (isinstance(record.width, int) and isinstance(record.height, int)):
            raise RecordError(f"{record.id}: an image needs integer width and height")


# --------------------------------------------------------------------------------------
# Arrow schema with Hugging Face features metadata
# --------------------------------------------------------------------------------------

_string = {"dtype": "string", "_type": "Value"}
HF_FEATURES: dict[str, Any] = {
    "id": _string,
    "source": _string,
    "split": _string,
    "conversations": {"feature": {"from": _string, "value": _string}, "_type": "List"},
    "task": _string,
    "image": {"_type": "Image"},
    "width": {"dtype": "int32", "_type": "Value"},
    "height": {"dtype": "int32", "_type": "Value"},
    "image_hash": _string,
    "phash": {"dtype": "uint64", "_type": "Value"},
    "answer": _string,
    "choices": {"feature": _string, "_type": "List"},
    "rationale": _string,
    "meta": _string,
}

ARROW_SCHEMA = pa.schema(
    [
        pa.field("id", pa.string(), nullable=False),
        pa.field("source", pa.string(), nullable=False),
        pa.field("split", pa.string(), nullable=False),
        pa.field("conversations", pa.list_(pa.struct([("from", pa.string()), ("value", pa.string())]))),
        pa.field("task", pa.string()),
        pa.field("image", pa.struct([("bytes", pa.binary()), ("path", pa.string())])),
        pa.field("width", pa.int32()),
        pa.field("height", pa.int32()),
        pa.field("image_hash", pa.string()),
        pa.field("phash", pa.uint64()),
        pa.field("answer", pa.string()),
        pa.field("choices", pa.list_(pa.string())),
        pa.field("rationale", pa.string()),
        pa.field("meta", pa.string()),
    ],
    metadata={
        "huggingface": json.dumps({"info": {"features": HF_FEATURES}}),
        "slime_schema_version": SCHEMA_VERSION,
    },
)


def records_to_table(records: list[Record]) -> pa.Table:
    """Records -> an Arrow table with ``ARROW_SCHEMA`` (column order fixed, so bytes are stable)."""
    rows = [r.to_row() for r in records]
    return pa.Table.from_pylist(rows, schema=ARROW_SCHEMA)


def check_schema(schema: pa.Schema) -> None:
    """Raise ``RecordError`` when a shard's schema differs from ``ARROW_SCHEMA`` (names the field)."""
    for expected in ARROW_SCHEMA:
        if expected.name not in schema.names:
            raise RecordError(f"missing column {expected.name!r}")
        got = schema.field(expected.name)
        if not got.type.equals(expected.type):
            raise RecordError(f"column {expected.name!r} has type {got.type}, expected {expected.type}")
    extra = [n for n in schema.names if n not in ARROW_SCHEMA.names]
    if extra:
        raise RecordError(f"unexpected column(s): {', '.join(extra)}")
    version = (schema.metadata or {}).get(b"slime_schema_version", b"").decode()
    if version != SCHEMA_VERSION:
        raise RecordError(f"schema version {version or 'missing'!r}, expected {SCHEMA_VERSION!r}")
