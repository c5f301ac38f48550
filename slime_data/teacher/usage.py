"""Token and cost accounting: per run (for the manifest and --max-cost) and per row (for meta)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from slime_data.teacher.config import Price


@dataclass
class Completion:
    """The parts of one chat completion we use, whether it came from the server or the cache."""

    content: str | None
    refusal: str | None
    finish_reason: str | None
    prompt_tokens: int
    completion_tokens: int
    served_model: str | None  # what the server says answered (e.g. a dated snapshot)
    cached: bool


@dataclass
class RowUsage:
    """The responses one row used (the same whether replayed from the cache or not)."""

    requests: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0

    def add(self, completion: Completion) -> None:
        self.requests += 1
        self.prompt_tokens += completion.prompt_tokens
        self.completion_tokens += completion.completion_tokens

    def merge(self, other: RowUsage) -> None:
        self.requests += other.requests
        self.prompt_tokens += other.prompt_tokens
        self.completion_tokens += other.completion_tokens

    def to_json(self) -> dict[str, int]:
        return {
            "requests": self.requests,
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
        }


@dataclass
class Usage:
    """What one run sent and spent. Cache hits cost nothing and are counted apart."""

    price: Price | None = None
    requests_sent: int = 0  # HTTP requests, retries included
    responses: int = 0  # complete responses received (and cached)
    retries: int = 0
    cache_hits: int = 0
    prompt_tokens: int = 0  # billed this run
    completion_tokens: int = 0
    cached_prompt_tokens: int = 0  # replayed from the cache: already paid for in an earlier run
    cached_completion_tokens: int = 0
    retry_causes: dict[str, int] = field(default_factory=dict)
    reserved_usd: float = 0.0  # worst-case cost of the requests in flight (see TeacherClient._reserve_request)

    def record(self, completion: Completion) -> None:
        if completion.cached:
            self.cache_hits += 1
            self.cached_prompt_tokens += completion.prompt_tokens
            self.cached_completion_tokens += completion.completion_tokens
        else:
            self.responses += 1
            self.prompt_tokens += completion.prompt_tokens
            self.completion_tokens += completion.completion_tokens

    def retried(self, cause: str) -> None:
        self.retries += 1
        self.retry_causes[cause] = self.retry_causes.get(cause, 0) + 1

    def worst_case_usd(self, prompt_tokens: int, max_tokens: int) -> float | None:
        """The most one request can cost: its prompt estimate plus ``max_tokens`` of output."""
        if self.price is None:
            return None
        return (prompt_tokens * self.price.input + max_tokens * self.price.output) / 1e6

    @property
    def cost_usd(self) -> float | None:
        """Estimated cost of this run's billed tokens; None without a price for the model."""
        if self.price is None:
            return None
        return (self.prompt_tokens * self.price.input + self.completion_tokens * self.price.output) / 1e6

    def to_json(self) -> dict[str, Any]:
        cost = self.cost_usd
        return {
            "requests_sent": self.requests_sent,
            "responses": self.responses,
            "retries": self.retries,
            "retry_causes": dict(sorted(self.retry_causes.items())),
            "cache_hits": self.cache_hits,
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
            "cached_prompt_tokens": self.cached_prompt_tokens,
            "cached_completion_tokens": self.cached_completion_tokens,
            "estimated_cost_usd": None if cost is None else round(cost, 6),
        }
