"""The ``teacher`` step: rationales, detail-heavy QA or a judge pass from an OpenAI-compatible LLM.

Recipe entry (every key but ``mode`` optional; unset ones come from ``pipelines/teacher.yaml``)::

    - step: teacher
      mode: rationale            # rationale | qa | verify
      config: my-teacher.yaml    # your overrides of pipelines/teacher.yaml
      model: gpt-4o
      base_url: http://127.0.0.1:8000/v1
      concurrency: 16
      rpm: 500
      tpm: 200000
      max_requests: 1000
      max_cost_usd: 20
      cache: ~/.cache/slime/teacher.sqlite
      questions: 3               # qa
      min_short_side: 672        # qa
      thumbnail_check: true      # qa
      rewrite: poor              # rationale: missing | poor | all

Records come in with their image bytes loaded and go out in input order. Answers are cached
on disk, so a rerun after a crash or a budget stop pays only for what was never answered.
When ``max_requests`` / ``max_cost_usd`` is reached the step raises ``BudgetExhausted`` after
the requests in flight have finished (and been cached): the caller writes nothing final.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable, Iterable, Iterator
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from slime_data.record import Record, Reject
from slime_data.steps.base import Step, register_step
from slime_data.teacher.cache import ResponseCache
from slime_data.teacher.client import TeacherClient
from slime_data.teacher.cluster import ClusterTeacherClient, adopt_cluster_settings, find_hub
from slime_data.teacher.config import load_teacher_config
from slime_data.teacher.errors import BudgetExhausted
from slime_data.teacher.modes import ModeSettings, Teacher
from slime_data.teacher.ordered import ordered_map
from slime_data.teacher.usage import Usage

# Records in flight per concurrent request: keeps the server busy while the head of the line
# waits on a slow answer, without holding more than a few hundred images in memory.
LOOKAHEAD_PER_SLOT = 4


class TeacherParams(BaseModel):
    model_config = ConfigDict(extra="forbid")

    mode: Literal["rationale", "qa", "verify"]
    config: Path | None = None
    model: str | None = None
    base_url: str | None = None
    concurrency: int | None = Field(None, ge=1)
    rpm: float | None = Field(None, gt=0)
    tpm: float | None = Field(None, gt=0)
    max_requests: int | None = Field(None, ge=0)
    max_cost_usd: float | None = Field(None, ge=0)
    cache: Path | None = None
    questions: int = Field(3, ge=1, le=20)
    min_short_side: int = Field(672, ge=1)
    thumbnail_check: bool = False
    rewrite: Literal["missing", "poor", "all"] = "poor"
    poor_below_words: int = Field(8, ge=0)

    def config_overrides(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "base_url": self.base_url,
            "cache": None if self.cache is None else str(self.cache.expanduser()),
            "limits": {
                "concurrency": self.concurrency,
                "rpm": self.rpm,
                "tpm": self.tpm,
                "max_requests": self.max_requests,
                "max_cost_usd": self.max_cost_usd,
            },
        }


@register_step
class TeacherStep(Step):
    name = "teacher"

    def __init__(self, **params: Any) -> None:
        try:
            self.params = TeacherParams(**params)
        except ValidationError as err:
            first = err.errors()[0]
            where = ".".join(str(part) for part in first["loc"]) or "params"
            raise ValueError(f"teacher step: {where}: {first['msg']}") from None
        self.config = load_teacher_config(self.params.config, self.params.config_overrides())
        settings = ModeSettings(
            questions=self.params.questions,
            min_short_side=self.params.min_short_side,
            thumbnail_check=self.params.thumbnail_check,
            rewrite=self.params.rewrite,
            poor_below_words=self.params.poor_below_words,
        )
        self.teacher = Teacher(self.config, self.params.mode, settings, step=self.name)
        adopt_cluster_settings(self.config)  # in a Ray task: the driver's URL and key, from the run's teacher hub
        # Fail now, not after the first record, on a bad URL or a missing key.
        self.config.resolved_base_url()
        self.config.resolved_api_key()
        # One tally for every run() of this step: the budget covers them all.
        self.usage = Usage(price=self.config.price())
        # Called once per input record when its results are out (e.g. a progress bar).
        self.on_record_done: Callable[[], None] | None = None

    @contextlib.asynccontextmanager
    async def _session(self) -> AsyncIterator[TeacherClient]:
        hub = find_hub(self.config)  # in a Ray task: the cluster's limiter, budget and cache
        if hub is not None:
            async with ClusterTeacherClient(self.config, hub, usage=self.usage) as client:
                yield client
            return
        with ResponseCache(self.config.resolved_cache()) as cache:
            async with TeacherClient(self.config, cache, usage=self.usage) as client:
                yield client

    def run(self, records: Iterable[Record]) -> Iterator[Record | Reject]:
        self.teacher.start_run()
        results = ordered_map(
            records,
            self.teacher.process,
            self._session,
            window=self.config.limits.concurrency * LOOKAHEAD_PER_SLOT,
            drain_on=(BudgetExhausted,),
        )
        try:
            for outputs in results:
                yield from outputs
                if self.on_record_done is not None:
                    self.on_record_done()
        except BudgetExhausted as err:
            # Raised once the requests in flight are done: now the spend is final.
            raise BudgetExhausted(f"{err}; this run spent {self._spent()}") from None

    def _spent(self) -> str:
        cost = self.usage.cost_usd
        money = "" if cost is None else f"{cost:.4f} USD on "
        return f"{money}{self.usage.requests_sent} request(s) ({self.usage.responses} answered)"

    def usage_counters(self) -> dict[str, float]:
        """Cumulative numeric usage (requests, tokens, cost): the build sums per-unit deltas into its manifest."""
        return {
            k: v for k, v in self.usage.to_json().items() if isinstance(v, (int, float)) and not isinstance(v, bool)
        }

    def summary(self) -> dict[str, Any]:
        """For the manifest: settings (no key), prompts, and this run's usage and cost."""
        return {
            "mode": self.params.mode,
            "settings": self.config.public(),
            "prompts": {kind: prompt.provenance() for kind, prompt in self.teacher.prompts.items()},
            "usage": self.usage.to_json(),
        }
