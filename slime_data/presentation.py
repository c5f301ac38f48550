"""Presentation templates: how a record's assistant turn is written from its ``rationale`` and ``answer``.

The templates are data (``pipelines/presentation.yaml``, whose comments say what the released
SMR data does and which choices were ours). This module validates that file, with a recipe's
overrides, and applies one template to one record; the ``present`` build step
(``slime_data.steps.present``) picks the template per source and task and counts what it did.

A multi-turn record (the ``group`` step) is presented turn by turn: its i-th gpt turn belongs to
the i-th gold of ``[the record's own answer/rationale, *meta["grouped"]]``. A turn whose gold
lacks a field the template needs keeps its ingested text, and so does its question.
"""

from __future__ import annotations

import re
import string
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from slime_data.paths import PIPELINES_DIR
from slime_data.recipes import read_yaml_mapping, validation_message
from slime_data.record import GPT, HUMAN, PRESENTATION_MARK, TASKS, Record
from slime_data.sources import REGISTRY

PRESENTATION_FILE = PIPELINES_DIR / "presentation.yaml"
FIELDS = ("answer", "rationale")  # the record columns a turn may be written from
ANY_TASK = "*"
_ROW_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")  # a later row's id is "<id>#<name>"


class RowTemplate(BaseModel):
    """One row a template writes: the gpt turn's text, and how the question before it is reworded."""

    model_config = ConfigDict(extra="forbid")
    name: str = Field(description="the row's name; rows after the first get the id '<id>#<name>'")
    turn: str = Field(description="the gpt turn, with {answer} and/or {rationale}")
    instructions: dict[str, str] = Field(
        default_factory=dict, description="response-format line ending the question -> the line this row asks"
    )

    @field_validator("name")
    @classmethod
    def _plain_name(cls, name: str) -> str:
        if not _ROW_NAME.fullmatch(name):
            raise ValueError(f"row name {name!r} must be a plain name (letters, digits, '_', '.', '-')")
        return name

    @field_validator("turn")
    @classmethod
    def _known_placeholders(cls, turn: str) -> str:
        used = {field for _, field, _, _ in string.Formatter().parse(turn) if field is not None}
        unknown = sorted(used - set(FIELDS))
        if unknown:
            raise ValueError(f"turn {turn!r} uses unknown placeholder(s) {unknown}; known: {', '.join(FIELDS)}")
        if not used:
            raise ValueError(f"turn {turn!r} uses neither {{answer}} nor {{rationale}}")
        return turn

    @property
    def fields(self) -> list[str]:
        return [field for field in FIELDS if "{" + field + "}" in self.turn]

    def reword(self, question: str) -> str:
        """``question`` with its closing response-format line replaced by this row's, if it has a known one."""
        for old, new in self.instructions.items():
            if question.rstrip().endswith(old):
                return question.rstrip()[: -len(old)] + new
        return question

    def write(self, conversations: list[dict[str, str]], golds: list[dict[str, Any]]) -> tuple[list[dict], int, str]:
        """The conversation with every gpt turn whose gold has this row's fields rewritten.

        ``golds[i]`` belongs to the i-th gpt turn. Returns (turns, how many were rewritten, why
        the first one that was not could not be: "no rationale", "no answer", or "").
        """
        turns = [dict(turn) for turn in conversations]
        gpt_at = [i for i, turn in enumerate(turns) if turn["from"] == GPT]
        written, missing = 0, ""
        for at, gold in zip(gpt_at, golds, strict=True):
            absent = [field for field in self.fields if not gold.get(field)]
            if absent:
                missing = missing or f"no {absent[0]}"
                continue
            turns[at]["value"] = self.turn.format(**{field: gold[field].strip() for field in self.fields})
            if at > 0 and turns[at - 1]["from"] == HUMAN:
                turns[at - 1]["value"] = self.reword(turns[at - 1]["value"])
            written += 1
        return turns, written, missing


class Template(BaseModel):
    model_config = ConfigDict(extra="forbid")
    description: str = ""
    rows: list[RowTemplate] = Field(min_length=1)

    @model_validator(mode="after")
    def _distinct_rows(self) -> Template:
        names = [row.name for row in self.rows]
        if len(set(names)) != len(names):
            raise ValueError(f"row names repeat: {names}")
        return self


Choice = str | dict[str, str]  # a template name, or task -> template name ("*": every other task)


class PresentationConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
    version: str
    shared_rows: dict[str, RowTemplate] = Field(default_factory=dict, description="rows the templates reuse")
    templates: dict[str, Template] = Field(min_length=1)
    default: str
    sources: dict[str, Choice] = Field(default_factory=dict)
    tasks: dict[str, str] = Field(default_factory=dict)

    def check_names(self) -> None:
        """Every template, source and task named exists (a plain ValueError naming the place)."""
        self._check_template(self.default, "default")
        for source, choice in self.sources.items():
            if source not in REGISTRY:
                raise ValueError(f"unknown source {source!r}; known sources: {', '.join(sorted(REGISTRY))}")
            for task, name in choice.items() if isinstance(choice, dict) else [(None, choice)]:
                if task is not None and task != ANY_TASK:
                    self._check_task(task, f"sources.{source}")
                self._check_template(name, f"sources.{source}" + (f".{task}" if task else ""))
        for task, name in self.tasks.items():
            self._check_task(task, "tasks")
            self._check_template(name, f"tasks.{task}")

    def _check_template(self, name: str, where: str) -> None:
        if name not in self.templates:
            raise ValueError(
                f"{where}: unknown template {name!r}; known templates: {', '.join(sorted(self.templates))}"
            )

    @staticmethod
    def _check_task(task: str, where: str) -> None:
        if task not in TASKS:
            raise ValueError(f"{where}: unknown task {task!r}; known tasks: {', '.join(TASKS)}, or '{ANY_TASK}'")

    def choose(self, source: str, task: str) -> str:
        """The template name for a row of ``source`` and ``task`` (see presentation.yaml for the order)."""
        choice = self.sources.get(source)
        if isinstance(choice, str):
            return choice
        if isinstance(choice, dict) and (task in choice or ANY_TASK in choice):
            return choice.get(task, choice.get(ANY_TASK, ""))
        return self.tasks.get(task, self.default)

    def label(self, name: str) -> str:
        """What lineage records: ``<template>@<version>``."""
        return f"{name}@{self.version}"


def load_presentation(path: Path = PRESENTATION_FILE, overrides: dict[str, Any] | None = None) -> PresentationConfig:
    """The templates file, validated; then with ``overrides`` (``default``, ``sources``, ``tasks`` from a
    recipe: a source's or task's entry replaces the file's), validated again. Errors are one line
    that names the file or the override."""
    raw = read_yaml_mapping(path, "presentation config")
    try:
        config = PresentationConfig(**raw)
        config.check_names()
    except ValidationError as err:
        raise ValueError(f"{path}: {validation_message(err)}") from None
    except ValueError as err:
        raise ValueError(f"{path}: {err}") from None
    overrides = {key: value for key, value in (overrides or {}).items() if value}
    if not overrides:
        return config
    merged = config.model_dump()
    merged["default"] = overrides.get("default", merged["default"])
    for key in ("sources", "tasks"):
        merged[key] = {**merged[key], **overrides.get(key, {})}
    try:
        config = PresentationConfig(**merged)
        config.check_names()
    except ValidationError as err:
        raise ValueError(f"override of {path.name}: {validation_message(err)}") from None
    except ValueError as err:
        raise ValueError(f"override of {path.name}: {err}") from None
    return config


@dataclass
class Presented:
    record: Record
    row: str  # the template row that wrote its turn, or "ingested (<why>)"


def golds(record: Record) -> list[dict[str, Any]]:
    """The answer/rationale behind each gpt turn: the record's own, then each row ``group`` merged in."""
    own = {"answer": record.answer, "rationale": record.rationale}
    return [own, *(member for member in record.meta.get("grouped", []))]


def present(record: Record, template: Template, label: str) -> list[Presented]:
    """``record`` written as ``template``'s rows (``label``: ``<name>@<version>`` for lineage).

    The first row keeps the record's id; when none of its turns can be written (no rationale, no
    answer) the record keeps its ingested turns. A later row is written only when it rewrites at
    least one turn, with the id ``<id>#<row name>`` (dedup never takes two presentations of one
    record for copies: ``slime_data.dedup.plan``). ``answer`` and ``rationale`` stay as they are.
    """
    turn_golds = golds(record)
    if sum(turn["from"] == GPT for turn in record.conversations) != len(turn_golds):
        return [_ingested(record, label, "gpt turns and golds differ in number")]
    out = []
    for index, row in enumerate(template.rows):
        turns, written, missing = row.write(record.conversations, turn_golds)
        if not written:
            if index == 0:
                out.append(_ingested(record, label, missing))
            continue
        lineage: dict[str, Any] = {"template": label, "row": row.name}
        if written < len(turn_golds):
            lineage["turns_ingested"] = len(turn_golds) - written
        record_id = record.id if index == 0 else f"{record.id}{PRESENTATION_MARK}{row.name}"
        out.append(
            Presented(
                replace(record, id=record_id, conversations=turns, meta={**record.meta, "presentation": lineage}),
                row.name,
            )
        )
    return out


def _ingested(record: Record, label: str, why: str) -> Presented:
    lineage = {"template": label, "row": None, "kept": f"ingested turn: {why}"}
    return Presented(replace(record, meta={**record.meta, "presentation": lineage}), f"ingested ({why})")
