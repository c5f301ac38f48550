"""The build recipe (``pipelines/sophisticated.yaml``): sources with caps and roots, then steps.

Validated at load: an unknown key anywhere is an error naming the key, an unknown step names
the known ones, a step's parameters are checked by the step itself.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

from slime_data.recipes import load_recipe_file
from slime_data.steps import STEP_REGISTRY
from slime_data.steps.base import Step, make_step
from slime_data.synth.generate import SynthConfig


class SourceSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(description="adapter name (see `slime-data sources`)")
    root: str | None = Field(
        None,
        description="dataset folder; default <--root>/<name>; relative to --root if given, else to the working "
        "directory; {package} = the slime_data package folder, {data} = the folder holding --out",
    )
    splits: list[str] | None = Field(None, description="default: the split SliME trained on; ['all'] = every split")
    cap: int | None = Field(None, ge=0, description="keep at most this many rows (the `cap` step)")
    optional: bool = Field(False, description="skip with a warning when the data is not there")
    limit: int | None = Field(None, ge=1, description="read at most N native items (for trials)")


class SynthSpec(SynthConfig):
    """Generate the synthetic source (and caption set) before the build, if not done yet: the generator's
    own settings (SynthConfig) plus where it writes."""

    out: str = Field(
        description="where the generator writes; relative to the working directory; {data} = the folder holding --out"
    )
    n: int = Field(120, ge=1)
    captions: int = Field(200, ge=0)

    def config(self) -> SynthConfig:
        return SynthConfig(**self.model_dump(exclude={"out"}))


class CompanionSpec(BaseModel):
    """Another source ingested into its own shard set by the same build (e.g. demo captions)."""

    model_config = ConfigDict(extra="forbid")
    source: str
    root: str
    out: str


class StepSpec(BaseModel):
    model_config = ConfigDict(extra="allow")
    step: str
    enabled: bool = True

    @property
    def params(self) -> dict[str, Any]:
        return dict(self.model_extra or {})


class BuildRecipe(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str
    seed: int = 0
    chunk_size: int = Field(512, ge=1, description="native items per unit of work (the resume granularity)")
    max_pixels: int = Field(8192 * 8192, ge=1, description="decompression-bomb limit (pixels)")
    synth: SynthSpec | None = None
    companions: list[CompanionSpec] = Field(default_factory=list)
    sources: list[SourceSpec]
    steps: list[StepSpec]

    @model_validator(mode="after")
    def _check(self) -> BuildRecipe:
        names = [s.name for s in self.sources]
        duplicated = sorted({n for n in names if names.count(n) > 1})
        if duplicated:
            raise ValueError(f"sources listed twice: {', '.join(duplicated)}")
        for spec in self.steps:
            if spec.step not in STEP_REGISTRY:
                raise ValueError(f"unknown step {spec.step!r}; known steps: {', '.join(sorted(STEP_REGISTRY))}")
        scopes = [STEP_REGISTRY[s.step].scope for s in self.steps if s.enabled]
        if "global" in scopes and "record" in scopes[scopes.index("global") :]:
            raise ValueError("record steps must come before global steps (dedup, decontaminate, cap, group)")
        enabled = [s.step for s in self.steps if s.enabled]
        if "present" in enabled and enabled[-1] != "present":
            # group copies merged rows' turns as ingested; dedup and decontamination compare ingested questions
            after = ", ".join(enabled[enabled.index("present") + 1 :])
            raise ValueError(
                f"step 'present' must come last (after dedup, decontaminate, cap, group), not before {after}"
            )
        return self

    @property
    def caps(self) -> dict[str, int]:
        return {s.name: s.cap for s in self.sources if s.cap is not None}

    def step_specs(self, scope: str) -> list[StepSpec]:
        return [s for s in self.steps if s.enabled and STEP_REGISTRY[s.step].scope == scope]


def build_step(spec: StepSpec, recipe: BuildRecipe, root: str | None = None, workers: int = 1) -> Step:
    """Instantiate a step from its recipe entry. ``root``: for ``load_image`` the dataset folder of
    the unit being processed, for ``decontaminate`` the build's ``--root`` (benchmark paths);
    ``workers``: the processes a global step (dedup, decontamination) may use."""
    context = {
        "root": root,
        "caps": recipe.caps,
        "seed": recipe.seed,
        "max_pixels": recipe.max_pixels,
        "workers": workers,
    }
    return make_step(spec.step, spec.params, context)


def load_recipe(path: str | Path) -> tuple[BuildRecipe, dict[str, Any]]:
    """Parse and validate (steps that are cheap to build are built once, so a bad parameter fails
    here, before any work); returns the model and the raw dict (stored in the manifest)."""
    recipe, raw = load_recipe_file(path, BuildRecipe, "recipe")
    for spec in recipe.steps:
        if spec.enabled and STEP_REGISTRY[spec.step].validate_at_load:
            try:
                make_step(spec.step, spec.params, {})
            except ValueError as err:
                raise ValueError(f"{path}: {err}") from None
    return recipe, raw
