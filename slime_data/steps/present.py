"""``present``: write each record's assistant turn from its ``rationale`` and ``answer`` (templates as data).

Recipe entry (every key optional)::

    - step: present
      config: my-presentation.yaml        # default: pipelines/presentation.yaml
      default: reasoning_then_answer      # template for sources/tasks not named
      sources: {scienceqa: both, tqa: {diagram: answer_only, "*": reasoning_then_answer}}
      tasks: {table: answer_only}

The templates, the per-source defaults and what they follow are in ``pipelines/presentation.yaml``;
``slime_data.presentation`` applies them. Every row it writes carries ``meta["presentation"]``:
the template as ``<name>@<version>`` and the row ("answer", "reasoning"), or ``row: null`` with
why the ingested turn was kept (no rationale, no answer).

Why a global step, last in the recipe: it needs nothing from the whole set (its ``plan`` drops
nothing), but it must run after the steps that do. Dedup and decontamination then compare the
questions as ingested (a reworded response-format line would hide a copy), ``cap`` counts native
rows (the paper's per-source numbers, before "both" doubles some), and ``group`` has merged the
questions of one image, so a multi-turn row is presented turn by turn with each merged row's gold.

A template with two rows ("both") yields two records per input: rows out exceed rows in by the
count in ``stats["added"]``, as the teacher's ``qa`` mode adds rows.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Collection, Iterable, Iterator
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from slime_data.presentation import PRESENTATION_FILE, Choice, load_presentation, present
from slime_data.record import Record, Reject
from slime_data.shards import ShardSet
from slime_data.steps.base import GlobalStep, register_step


class PresentParams(BaseModel):
    model_config = ConfigDict(extra="forbid")
    config: Path | None = Field(None, description="templates file (default: pipelines/presentation.yaml)")
    default: str | None = Field(None, description="template for every source and task not named")
    sources: dict[str, Choice] = Field(default_factory=dict, description="source -> template (or task -> template)")
    tasks: dict[str, str] = Field(default_factory=dict, description="task -> template")


@register_step
class Present(GlobalStep):
    name = "present"
    validate_at_load = True  # reads one small YAML file

    def __init__(self, **params: object) -> None:
        super().__init__()
        self.params = PresentParams(**params)
        overrides = {"default": self.params.default, "sources": self.params.sources, "tasks": self.params.tasks}
        try:
            self.config = load_presentation(self.params.config or PRESENTATION_FILE, overrides)
        except ValueError as err:
            raise ValueError(f"step {self.name!r}: {err}") from None
        self.counts: Counter[tuple[str, str, str]] = Counter()  # (source, template label, row) -> rows written
        self.rows_in = 0

    def plan(self, shard_set: ShardSet, exclude: Collection[str] = ()) -> dict[str, tuple[str, str]]:
        self.drops = {}
        return self.drops

    def run(self, records: Iterable[Record]) -> Iterator[Record | Reject]:
        for out in super().run(records):
            if isinstance(out, Reject):
                yield out
                continue
            self.rows_in += 1
            name = self.config.choose(out.source, out.task)
            label = self.config.label(name)
            for presented in present(out, self.config.templates[name], label):
                self.counts[(out.source, label, presented.row)] += 1
                yield presented.record

    @property
    def stats(self) -> dict[str, Any]:
        """Rows written per source, template and row (the build report's and summary's table)."""
        rows = [
            {"source": source, "template": label, "row": row, "rows": n}
            for (source, label, row), n in sorted(self.counts.items())
        ]
        written = sum(self.counts.values())
        ingested = sum(n for (_, _, row), n in self.counts.items() if row.startswith("ingested"))
        return {"rows": rows, "added": written - self.rows_in, "ingested": ingested}
