"""The data behind `slime-model eval`: benchmark definitions, prompt templates and the paper's
numbers (YAML beside this module), validated at load; reading a benchmark under ``--root``."""

from __future__ import annotations

import functools
from dataclasses import replace
from pathlib import Path

import yaml
from pydantic import BaseModel, ConfigDict, Field

from slime_data.decontam.benchmarks import FORMATS, read_benchmark
from slime_data.decontam.items import LETTERS, BenchmarkItem

HERE = Path(__file__).parent


class BenchmarkLayoutError(FileNotFoundError):
    """A benchmark's files are not where its layout says (one line, for the user)."""


class PromptSpec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    version: int = Field(ge=1)
    source: str
    template: str
    hint: str = "{text}\n"  # how a context / hint line is written into {hint}
    hints: dict[str, str] = {}  # MathVista's answer-type hints, for building its query


class BenchmarkSpec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    name: str
    title: str
    format: str
    path: str  # relative to --root/<name>
    images: str | None = None  # image folder relative to --root/<name>, when not beside the files
    split: str | None = None
    only_with_image: bool = False
    id_prefix: str | None = None  # keep items whose id starts so (MMMU's folders hold dev, validation and test)
    circular: bool = False  # MMBench: ask every rotation of the options (made here when the file has none)
    limit: int | None = Field(None, ge=1)  # the documented subset: the first N items in reader order
    prompt: str
    prompt_open: str | None = None  # for items without options, when they differ
    metric: str
    headline: str
    max_new_tokens: int = Field(32, ge=1)
    layout: str

    @property
    def judged(self) -> bool:
        return self.metric.startswith("judge_")


class PaperRow(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    paper: str
    benchmark: str
    metric: str
    slime_7b: float
    slime_8b: float
    checked: bool
    note: str | None = None


@functools.cache
def load_prompts() -> dict[str, PromptSpec]:
    data = yaml.safe_load((HERE / "prompts.yaml").read_text(encoding="utf-8"))
    return {name: PromptSpec(**spec) for name, spec in data["prompts"].items()}


@functools.cache
def load_benchmarks() -> dict[str, BenchmarkSpec]:
    from slime_model.evaluation.judge import JUDGED
    from slime_model.evaluation.metrics import SCORERS

    data = yaml.safe_load((HERE / "benchmarks.yaml").read_text(encoding="utf-8"))
    specs = {spec["name"]: BenchmarkSpec(**spec) for spec in data["benchmarks"]}
    prompts = load_prompts()
    for spec in specs.values():  # a typo in the YAML fails at load, not mid-run
        unknown = [p for p in (spec.prompt, spec.prompt_open) if p is not None and p not in prompts]
        if unknown or spec.format not in FORMATS or spec.metric not in {**SCORERS, **JUDGED}:
            raise ValueError(f"benchmarks.yaml {spec.name}: unknown prompt {unknown}, format or metric {spec.metric!r}")
    return specs


@functools.cache
def load_paper_rows() -> tuple[str, list[PaperRow]]:
    data = yaml.safe_load((HERE / "paper_results.yaml").read_text(encoding="utf-8"))
    return data["source"], [PaperRow(**row) for row in data["rows"]]


def read_for_eval(spec: BenchmarkSpec, folder: Path) -> list[BenchmarkItem]:
    """The benchmark's items from ``folder`` (``--root/<name>``), filtered and capped as the spec says."""
    path = folder / spec.path
    if not path.exists():
        layout = " | ".join(line.strip() for line in spec.layout.strip().splitlines())
        raise BenchmarkLayoutError(f"{spec.name}: {path} not found (expected under {folder}: {layout})")
    images = folder / spec.images if spec.images else None
    items = read_benchmark(spec.format, path, spec.name, images, spec.split).items
    if spec.only_with_image:
        items = [item for item in items if item.meta.get("has_image")]
    if spec.id_prefix:
        items = [item for item in items if item.item_id.startswith(spec.id_prefix)]
    items = items[: spec.limit] if spec.limit else items
    return circular_copies(items) if spec.circular else items


def circular_copies(items: list[BenchmarkItem]) -> list[BenchmarkItem]:
    """MMBench's circular evaluation: each question once per rotation of its options (A B C D, then
    B C D A, ...), grouped so that a question counts only when every rotation is right. LLaVA's
    ``model_vqa_mmbench.py --all-rounds`` rotates the same way. A file that already holds the
    rotated copies (indices + k * 1e6) is used as it is."""
    if any(item.item_id != item.meta.get("circular_group", item.item_id) for item in items):
        return items
    copies = []
    for item in items:
        choices = item.choices or []
        if not choices or item.gold not in LETTERS[: len(choices)]:
            copies.append(item)
            continue
        gold = LETTERS.index(item.gold)
        for shift in range(len(choices)):
            rotated = choices[shift:] + choices[:shift]
            letter = LETTERS[(gold - shift) % len(choices)]
            copies.append(
                replace(
                    item,
                    item_id=item.item_id if shift == 0 else f"{item.item_id}/rotation-{shift}",
                    choices=rotated,
                    gold=letter,
                    answers=[letter, choices[gold]],
                    meta={**item.meta, "circular_group": item.item_id},
                )
            )
    return copies


def render_prompt(spec: BenchmarkSpec, item: BenchmarkItem) -> tuple[str, PromptSpec, str]:
    """(text of the user turn without image placeholders, its template, the template's name)."""
    prompts = load_prompts()
    name = spec.prompt_open if spec.prompt_open and not item.choices else spec.prompt
    prompt = prompts[name]
    options = "\n".join(f"{letter}. {choice}" for letter, choice in zip(LETTERS, item.choices or [], strict=False))
    fields = {
        "question": item.question or "",
        "options": options,
        "hint": prompt.hint.format(text=item.context) if item.context else "",
        "query": item.meta.get("query") or mathvista_query(item, prompt.hints),
        "query_wo": item.meta.get("query_wo") or item.question or "",
    }
    return prompt.template.format(**fields), prompt, name


def mathvista_query(item: BenchmarkItem, hints: dict[str, str]) -> str:
    """MathVista's zero-shot query: the hint for the answer type, the question (with its unit),
    then "Choices:" and "(A) text" lines; what the Hugging Face release stores as "query"."""
    if item.choices:
        hint = hints.get("multi_choice", "")
    elif item.meta.get("answer_type") == "float":
        hint = hints.get(f"float_{int(item.meta.get('precision') or 1)}", hints.get("float_1", ""))
    else:
        hint = hints.get(str(item.meta.get("answer_type")), "")
    unit = f" (Unit: {item.meta['unit']})" if item.meta.get("unit") else ""
    lines = [hint, f"Question: {item.question or ''}{unit}"] if hint else [f"Question: {item.question or ''}{unit}"]
    if item.choices:
        lines += ["Choices:", *(f"({letter}) {choice}" for letter, choice in zip(LETTERS, item.choices, strict=False))]
    return "\n".join(lines)
