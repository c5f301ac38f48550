"""The wording of human turns, read from ``pipelines/source_prompts.yaml`` (data, not code).

Adapters call ``multiple_choice`` / ``open_question`` and get the text of the first human turn
without the image placeholder; ``human_turn`` adds ``<image>`` where the LLaVA convention puts it.
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

import yaml

from slime_data.paths import PIPELINES_DIR
from slime_data.record import IMAGE_TOKEN

PROMPTS_FILE = PIPELINES_DIR / "source_prompts.yaml"


@functools.lru_cache(maxsize=4)
def load_templates(path: Path = PROMPTS_FILE) -> dict[str, Any]:
    with open(path, encoding="utf-8") as f:
        return yaml.safe_load(f)


def template(source: str, key: str) -> str:
    """The template ``key`` for ``source``: the source's override, else the default."""
    templates = load_templates()
    override = (templates.get("sources") or {}).get(source) or {}
    if key in override:
        return override[key]
    if key not in templates:
        raise KeyError(f"no prompt template {key!r} in {PROMPTS_FILE} (source {source!r})")
    return templates[key]


def prompt_version() -> str:
    return str(load_templates()["version"])


def _context(source: str, context: str | None) -> str:
    context = (context or "").strip()
    return template(source, "context").format(context=context) if context else ""


def option_letters(n: int) -> list[str]:
    letters = load_templates()["letters"]
    if n > len(letters):
        raise ValueError(f"{n} options but only {len(letters)} letters are defined")
    return list(letters[:n])


def multiple_choice(
    source: str, question: str, choices: list[str], context: str | None = None, unit: str | None = None
) -> str:
    """Question, optional context, the unit of the options when there is one, and lettered options ("A. ...")."""
    letters = option_letters(len(choices))
    option = template(source, "option")
    pairs = zip(letters, choices, strict=True)
    options = "\n".join(option.format(letter=letter, text=text.strip()) for letter, text in pairs)
    key = "multiple_choice_with_unit" if unit else "multiple_choice"
    return template(source, key).format(
        context=_context(source, context), question=question.strip(), options=options, unit=unit
    )


def open_question(source: str, question: str, context: str | None = None, unit: str | None = None) -> str:
    key = "open_with_unit" if unit else "open"
    return template(source, key).format(context=_context(source, context), question=question.strip(), unit=unit)


def human_turn(text: str, has_image: bool = True) -> dict[str, str]:
    """The first human turn; ``<image>`` goes first on its own line (LLaVA convention)."""
    return {"from": "human", "value": f"{IMAGE_TOKEN}\n{text}" if has_image else text}


def gpt_turn(text: str) -> dict[str, str]:
    return {"from": "gpt", "value": text}
