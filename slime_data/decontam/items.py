"""What every benchmark reader returns (``BenchmarkItem``) and the small parsing helpers they share.

Decontamination matches training rows against items by text and image; evaluation prompts with
them and scores against ``gold`` with ``meta``. One reader per release serves both.
"""

from __future__ import annotations

import ast
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

LETTERS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"


@dataclass
class BenchmarkItem:
    item_id: str
    question: str | None  # the stem; None when the release has none (the MMMU sample)
    context: str | None = None  # a passage that goes with the question (ScienceQA's hint)
    choices: list[str] | None = None  # option texts, in order
    answers: list[str] = field(default_factory=list)  # accepted answer forms: text and/or letter
    images: list[Path | bytes] = field(default_factory=list)  # files that may or may not exist, or bytes
    # The gold answer as the benchmark's official scorer takes it: a letter, a string, VQA's ten
    # annotator answers (duplicates kept), a yes/no label... ``answers`` is for text matching.
    gold: Any = None
    # What a prompt or metric needs besides: category, question type, answer type, precision, unit,
    # the release's own prompt ("query"), a circular-evaluation group...
    meta: dict[str, Any] = field(default_factory=dict)


@dataclass
class Benchmark:
    name: str  # the reason suffix: "benchmark_question:<name>"
    items: list[BenchmarkItem]


def answer_forms(answer: Any, choices: list[str] | None) -> list[str]:
    """The gold answer as given plus, for a letter or index into ``choices``, the option text."""
    values = answer if isinstance(answer, list) else [answer]
    forms: list[str] = []
    for value in values:
        if value is None:
            continue
        if isinstance(value, int) and not isinstance(value, bool) and choices and 0 <= value < len(choices):
            forms += [choices[value], LETTERS[value]]
            continue
        text = str(value).strip()
        forms.append(text)
        if choices and len(text) == 1 and text.upper() in LETTERS[: len(choices)]:
            forms.append(choices[LETTERS.index(text.upper())])
        elif choices and text in choices and choices.index(text) < len(LETTERS):
            forms.append(LETTERS[choices.index(text)])
    return list(dict.fromkeys(forms))


def read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as err:
        raise ValueError(f"{path} is not valid JSON: {err}") from None


def iter_jsonl(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    with open(path, encoding="utf-8") as f:
        for number, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                value = json.loads(line)
            except json.JSONDecodeError as err:
                raise ValueError(f"{path} line {number} is not valid JSON: {err}") from None
            if not isinstance(value, dict):
                raise ValueError(f"{path} line {number} is not a JSON object")
            yield number, value


def image_path(folder: Path, relative: str | None, images_dir: Path | None) -> list[Path]:
    """The image named ``relative``: under ``images_dir`` if given, else beside the benchmark file
    (``folder``) or one level up, as releases differ; [] when no image is named."""
    if not relative:
        return []
    relative_path = Path(relative)
    if images_dir is not None:
        candidates = [images_dir / relative_path, images_dir / relative_path.name]
    else:
        candidates = [folder / relative_path, folder.parent / relative_path]
    return [next((c for c in candidates if c.is_file()), candidates[0])]


def parse_options(value: Any) -> list[str] | None:
    """MMMU's options: a list, or a stringified Python list ("['$6', '$7']")."""
    if value is None or value == "":
        return None
    if isinstance(value, str):
        try:
            value = ast.literal_eval(value)
        except (ValueError, SyntaxError):
            return None
    return [str(v) for v in value] if isinstance(value, (list, tuple)) and value else None
