"""The mix recipe (``pipelines/mix-2m.yaml``): stages of sources, how to share the target, hygiene.

Validated at load: an unknown key anywhere is an error naming the key; a stage or source may
have a ``weight`` or a fixed ``count``, not both; inside a stage either every source without a
``count`` has an explicit ``weight`` or none has (then the stage's ``sampling`` rule decides).
"""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from slime_data.build.recipe import StepSpec
from slime_data.recipes import load_recipe_file
from slime_data.steps import STEP_REGISTRY


class Temperature(BaseModel):
    """Share of a source proportional to ``available ** (1 / temperature)`` (1 = proportional, 2 = sqrt)."""

    model_config = ConfigDict(extra="forbid")
    temperature: float = Field(gt=0)


Sampling = Literal["proportional", "sqrt"] | Temperature


class _Share(BaseModel):
    """Either a relative ``weight`` or a fixed ``count`` of rows (neither: decided by the parent's rule)."""

    model_config = ConfigDict(extra="forbid")
    weight: float | None = Field(None, gt=0)
    count: int | None = Field(None, ge=0)

    @model_validator(mode="after")
    def _weight_or_count(self) -> _Share:
        if self.weight is not None and self.count is not None:
            raise ValueError("give a weight or a count, not both")
        return self


class MixSource(_Share):
    name: str = Field(pattern=r"^[A-Za-z0-9_.-]+$")
    input: str = Field(description="shard-set folder (or its manifest.json); relative to the working directory")
    make: str | None = Field(None, description="the command that makes the input, shown when it is missing")
    max_repeats: int | None = Field(None, ge=1, description="overrides the recipe's max_repeats for this source")

    @property
    def make_command(self) -> str:
        return self.make or f"slime-data ingest {self.name} --root <its release folder> --out {self.input}"


class MixStage(_Share):
    name: str = Field(pattern=r"^[a-z0-9_-]+$", description="also the stage's folder name under --out")
    sampling: Sampling = "proportional"
    sources: list[MixSource] = Field(min_length=1)

    @model_validator(mode="after")
    def _explicit_weights_all_or_none(self) -> MixStage:
        free = [s for s in self.sources if s.count is None]
        weighted = [s for s in free if s.weight is not None]
        if weighted and len(weighted) != len(free):
            missing = ", ".join(s.name for s in free if s.weight is None)
            raise ValueError(
                f"some sources have a weight and {missing} has none: give every "
                "source a weight or count, or none (then `sampling` decides)"
            )
        return self

    @property
    def rule(self) -> str:
        """How the sources without a count share the stage: 'weight', 'proportional', 'sqrt' or 'temperature=τ'."""
        if any(s.weight is not None for s in self.sources):
            return "weight"
        if isinstance(self.sampling, Temperature):
            return f"temperature={self.sampling.temperature:g}"
        return self.sampling


class MixRecipe(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str
    seed: int = 0
    max_repeats: int = Field(3, ge=1, description="a source's rows appear at most this many times")
    rows_per_shard: int = Field(
        10_000, ge=1, description="rows per output shard (the unit of parallel work and of resume)"
    )
    images: Literal["copy", "reference"] = Field(
        "copy",
        description="copy each row's image bytes into the mix, or point at "
        "them in the input shards (slime_data.mix.references)",
    )
    hygiene: list[StepSpec] = Field(
        default_factory=list, description="global steps over all inputs together: dedup, decontaminate"
    )
    stages: list[MixStage] = Field(min_length=1)

    @model_validator(mode="after")
    def _check(self) -> MixRecipe:
        for kind, names in (
            ("stages", [s.name for s in self.stages]),
            ("sources", [src.name for s in self.stages for src in s.sources]),
            ("inputs", [src.input for s in self.stages for src in s.sources]),
        ):
            twice = sorted({n for n in names if names.count(n) > 1})
            if twice:
                raise ValueError(f"{kind} listed twice: {', '.join(twice)}")
        for spec in self.hygiene:
            if spec.step not in STEP_REGISTRY:
                raise ValueError(f"unknown hygiene step {spec.step!r}; known steps: {', '.join(sorted(STEP_REGISTRY))}")
            if STEP_REGISTRY[spec.step].scope != "global" or spec.step == "cap":
                raise ValueError(
                    f"hygiene step {spec.step!r} does not belong in a mix: hygiene runs "
                    "exact_dedup, near_dedup, decontaminate (sizes come from weights and counts)"
                )
        return self

    def repeats_cap(self, source: MixSource) -> int:
        return source.max_repeats if source.max_repeats is not None else self.max_repeats


def load_mix_recipe(path: str | Path) -> MixRecipe:
    return load_recipe_file(path, MixRecipe, "mix recipe")[0]


_TARGET = re.compile(r"(\d+(?:\.\d+)?)([kKmM]?)")
_MULTIPLIER = {"": 1, "k": 1_000, "m": 1_000_000}


def parse_target(text: str) -> int:
    """'2M' -> 2_000_000, '1.5M', '500k', '2k', '2000000'. Exact decimal arithmetic: '1.1M' is 1_100_000."""
    match = _TARGET.fullmatch(text.strip().replace("_", ""))
    rows = None
    if match:
        try:
            value = Decimal(match[1]) * _MULTIPLIER[match[2].lower()]
        except InvalidOperation:
            value = None
        if value is not None and value == value.to_integral_value() and value >= 1:
            rows = int(value)
    if rows is None:
        raise ValueError(f"--target must be a whole number of rows like 2M, 1.5M, 500k or 2000000, got {text!r}")
    return rows


def recipe_config(recipe: MixRecipe) -> dict[str, Any]:
    """The resolved recipe as plain JSON (defaults filled in): what the manifest stores and hashes."""
    return recipe.model_dump(mode="json")
