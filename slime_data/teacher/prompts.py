"""Versioned prompt templates: ``pipelines/prompts/<kind>.v<N>.yaml``.

A template file holds ``kind``, ``version``, a ``system`` message and a ``user`` message with
``{placeholders}``. A wording change means a new file (``rationale.v2.yaml``) and a new entry in
``pipelines/teacher.yaml``; the version and the file's sha256 go into every row's ``meta`` and
into the cache key, so an edited template never reuses answers to the old wording.
"""

from __future__ import annotations

import hashlib
import string
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from slime_data.paths import PIPELINES_DIR

PROMPTS_DIR = PIPELINES_DIR / "prompts"

# The placeholders each kind of prompt may use (all are filled by slime_data.teacher.modes).
PROMPT_FIELDS: dict[str, frozenset[str]] = {
    "rationale": frozenset({"question", "answer", "schema"}),
    "qa": frozenset({"n", "schema"}),
    "thumbnail_check": frozenset({"questions", "schema"}),
    "verify": frozenset({"question", "answer", "rationale", "schema"}),
}


@dataclass(frozen=True)
class PromptTemplate:
    kind: str
    version: str
    system: str
    user: str
    sha256: str  # of the file's bytes

    @property
    def ref(self) -> str:
        return f"{self.kind}.{self.version}"

    def render(self, **values: Any) -> tuple[str, str]:
        """(system, user) with the placeholders filled."""
        return self.system.format(**values), self.user.format(**values)

    def provenance(self) -> dict[str, str]:
        return {"prompt": self.ref, "prompt_sha256": self.sha256}


def _placeholders(text: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(text) if name is not None}


def load_prompt(ref: str, kind: str, directory: Path = PROMPTS_DIR) -> PromptTemplate:
    """Load ``ref`` (a stem like ``rationale.v1`` or a path to a YAML file) as a ``kind`` prompt."""
    path = Path(ref) if ref.endswith((".yaml", ".yml")) else directory / f"{ref}.yaml"
    if not path.is_file():
        raise FileNotFoundError(f"prompt template {ref!r} not found (looked for {path})")
    raw = path.read_bytes()
    try:
        data = yaml.safe_load(raw)
    except yaml.YAMLError as err:
        raise ValueError(f"{path} is not valid YAML: {err}") from None
    if not isinstance(data, dict) or set(data) != {"kind", "version", "system", "user"}:
        raise ValueError(f"{path} must have exactly the keys kind, version, system, user")
    if data["kind"] != kind:
        raise ValueError(f"{path} is a {data['kind']!r} prompt, expected {kind!r}")
    if path.parent == directory and path.stem != f"{kind}.{data['version']}":
        raise ValueError(f"{path}: version {data['version']!r} does not match the file name")
    allowed = PROMPT_FIELDS[kind]
    for part in ("system", "user"):
        if not isinstance(data[part], str):
            raise ValueError(f"{path}: {part} must be a string")
        try:
            unknown = _placeholders(data[part]) - allowed
        except ValueError as err:
            raise ValueError(f"{path}: {part}: {err} (write literal braces as {{{{ }}}})") from None
        if unknown:
            raise ValueError(
                f"{path}: {part} uses unknown placeholder(s) {', '.join(sorted(unknown))}; "
                f"a {kind} prompt may use {', '.join(sorted(allowed))}"
            )
    return PromptTemplate(
        kind=kind,
        version=str(data["version"]),
        system=data["system"],
        user=data["user"],
        sha256=hashlib.sha256(raw).hexdigest(),
    )
