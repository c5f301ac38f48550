"""The teacher's settings: which model where, sampling, limits, retries, prices.

Defaults live in ``pipelines/teacher.yaml``; a user's own YAML (``--config``) and command-line
flags override them. The API key is read from ``OPENAI_API_KEY`` (the variable is
configurable) or an ``api_key`` entry in the user's config file; it is never part of what
``public()`` returns, so it cannot reach a manifest.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

import yaml
from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, model_validator

from slime_data.paths import PIPELINES_DIR
from slime_data.recipes import load_yaml

DEFAULT_CONFIG = PIPELINES_DIR / "teacher.yaml"
OPENAI_BASE_URL = "https://api.openai.com/v1"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Sampling(_Strict):
    temperature: float = Field(0.0, ge=0.0, le=2.0)
    top_p: float | None = Field(None, gt=0.0, le=1.0)
    max_tokens: int = Field(1024, ge=1)
    seed: int | None = 0


class Limits(_Strict):
    concurrency: int = Field(8, ge=1, description="requests in flight at once")
    rpm: float | None = Field(None, gt=0, description="requests per minute (token bucket, 1 s burst)")
    tpm: float | None = Field(None, gt=0, description="tokens per minute (estimated before, settled after)")
    max_requests: int | None = Field(None, ge=0, description="stop after sending this many requests (this run)")
    max_cost_usd: float | None = Field(
        None,
        ge=0,
        description="a ceiling on this run's estimated cost: a request whose worst case could pass it is not sent",
    )


class Retry(_Strict):
    max_attempts: int = Field(6, ge=1, description="per request, for 429/5xx/timeouts/connection errors")
    backoff_base_s: float = Field(1.0, ge=0)
    backoff_max_s: float = Field(60.0, ge=0)
    max_retry_after_s: float = Field(300.0, ge=0, description="cap on a server's Retry-After")
    timeout_s: float = Field(120.0, gt=0)
    malformed_retries: int = Field(2, ge=0, description="re-asks after a reply that is not the requested JSON")


class Price(_Strict):
    """US dollars per million tokens."""

    input: float = Field(ge=0)
    output: float = Field(ge=0)


class TeacherConfig(_Strict):
    model: str
    base_url: str | None = None  # None: $OPENAI_BASE_URL, else OpenAI
    api_key_env: str = "OPENAI_API_KEY"
    api_key: SecretStr | None = Field(None, exclude=True)  # prefer the environment variable
    structured_output: Literal["auto", "json_schema", "off"] = "auto"
    max_image_side: int = Field(1024, ge=32)
    thumbnail_side: int = Field(336, ge=32)
    image_detail: Literal["auto", "low", "high"] | None = "high"
    image_tokens_estimate: int = Field(800, ge=0, description="prompt tokens per image, for the TPM limiter")
    cache: Path | None = None  # None: default_cache_path()
    sampling: Sampling = Sampling()
    limits: Limits = Limits()
    retry: Retry = Retry()
    prompts: dict[str, str] = Field(description="prompt kind -> template file stem under pipelines/prompts/")
    prices: dict[str, Price] = {}

    @model_validator(mode="after")
    def _cost_limit_needs_a_price(self) -> TeacherConfig:
        if self.limits.max_cost_usd is not None and self.price() is None:
            raise ValueError(f"a cost limit needs a price for model {self.model!r}: add it under 'prices'")
        return self

    # -- resolved values -----------------------------------------------------------------
    def resolved_base_url(self) -> str:
        url = self.base_url or os.environ.get("OPENAI_BASE_URL") or OPENAI_BASE_URL
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"teacher base URL {url!r} is not an http(s) URL")
        if parts.username is not None or parts.password is not None:
            # It would be written into manifests with the URL: keep secrets in the key variable.
            raise ValueError(f"the teacher base URL must not hold credentials; put the key in ${self.api_key_env}")
        return url

    def resolved_api_key(self) -> str:
        """The key; local servers without auth get vLLM's conventional "EMPTY"."""
        if self.api_key is not None:
            return self.api_key.get_secret_value()
        key = os.environ.get(self.api_key_env)
        if key:
            return key
        if self.resolved_base_url().rstrip("/") == OPENAI_BASE_URL:
            raise ValueError(f"no API key: set {self.api_key_env} (or point --base-url at your own server)")
        return "EMPTY"

    def resolved_cache(self) -> Path:
        return self.cache or default_cache_path()

    def price(self) -> Price | None:
        """The price of ``model``: an exact entry, else the longest entry the model name starts with."""
        if self.model in self.prices:
            return self.prices[self.model]
        prefixes = [name for name in self.prices if self.model.startswith(name)]
        return self.prices[max(prefixes, key=len)] if prefixes else None

    def public(self) -> dict[str, Any]:
        """Settings safe to write into a manifest: no key (and URLs cannot hold credentials)."""
        data = self.model_dump(mode="json", exclude={"api_key", "prices"})
        data["base_url"] = self.resolved_base_url()
        price = self.price()
        data["price_per_million_tokens"] = None if price is None else price.model_dump()
        data["cache"] = str(self.resolved_cache())
        return data


def default_cache_path() -> Path:
    """``$SLIME_CACHE_DIR/teacher.sqlite``, else under ``$XDG_CACHE_HOME`` or ``~/.cache``/slime."""
    root = os.environ.get("SLIME_CACHE_DIR")
    if not root:
        root = os.path.join(os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "slime")
    return Path(root) / "teacher.sqlite"


def _merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def _read_yaml(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise FileNotFoundError(f"teacher config {path} not found")
    try:
        data = load_yaml(path) or {}
    except yaml.YAMLError as err:
        raise ValueError(f"{path} is not valid YAML: {err}") from None
    if not isinstance(data, dict):
        raise ValueError(f"{path} must hold a mapping of settings")
    return data


def load_teacher_config(path: Path | None = None, overrides: dict[str, Any] | None = None) -> TeacherConfig:
    """``pipelines/teacher.yaml``, then ``path`` (a user's YAML), then ``overrides``, validated.

    ``overrides`` is nested like the YAML (``{"limits": {"rpm": 60}}``); ``None`` values are
    ignored so unset command-line flags keep the file's value.
    """
    data = _read_yaml(DEFAULT_CONFIG)
    if path is not None:
        data = _merge(data, _read_yaml(Path(path)))
    data = _merge(data, _drop_none(overrides or {}))
    try:
        return TeacherConfig.model_validate(data)
    except ValidationError as err:
        first = err.errors()[0]
        where = ".".join(str(part) for part in first["loc"]) or "config"
        raise ValueError(f"teacher config: {where}: {first['msg']}") from None


def _drop_none(values: dict[str, Any]) -> dict[str, Any]:
    out = {}
    for key, value in values.items():
        if isinstance(value, dict):
            value = _drop_none(value)
            if value:
                out[key] = value
        elif value is not None:
            out[key] = value
    return out
