"""What every figure kind produces: the generating data, the image, exact QAs and a caption.

A kind is a module with four pure functions, so answers are correct by construction and can be
recomputed from the stored data alone:

- ``sample(rng) -> data``: the generating parameters (JSON-able: values, labels, sizes);
- ``render(data) -> PIL.Image``: draws exactly what ``data`` says (RGB; stored in ``MODE``);
- ``ask(data, rng) -> list[QA]``: questions whose answers and rationales are computed from ``data``;
- ``describe(data) -> str``: a short caption (kind, colours, values) for the caption set.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Any, Protocol

from PIL import Image


@dataclass
class QA:
    template: str  # the question family, e.g. "bar_value"; tests recompute answers per family
    question: str
    answer: str  # for multiple choice: the text of the right option (one of ``choices``)
    rationale: str  # step-by-step, ending with the answer
    args: dict[str, Any] = field(default_factory=dict)  # what the question refers to (indices into data)
    choices: list[str] | None = None
    unit: str | None = None


class FigureKind(Protocol):
    MODE: str  # the stored image's mode: "RGB", or "L" for kinds drawn in black and grey

    def sample(self, rng: random.Random) -> dict[str, Any]: ...

    def render(self, data: dict[str, Any]) -> Image.Image: ...

    def ask(self, data: dict[str, Any], rng: random.Random) -> list[QA]: ...

    def describe(self, data: dict[str, Any]) -> str: ...


def pick_questions(templates: list, data: dict[str, Any], rng: random.Random, count: int) -> list[QA]:
    """Up to ``count`` QAs from different templates, tried in a seeded order.

    A template returns None when the data cannot support it unambiguously (a tie for the
    maximum, a margin too small to see), so the next one is tried.
    """
    order = list(templates)
    rng.shuffle(order)
    questions: list[QA] = []
    for template in order:
        if len(questions) == count:
            break
        qa = template(data, rng)
        if qa is not None:
            questions.append(qa)
    return questions


def unique_max(values: list[int], margin: float = 0) -> int | None:
    """Index of the largest value when it beats the runner-up by more than ``margin``, else None."""
    order = sorted(range(len(values)), key=lambda i: values[i], reverse=True)
    if len(order) > 1 and values[order[0]] - values[order[1]] <= margin:
        return None
    return order[0]
