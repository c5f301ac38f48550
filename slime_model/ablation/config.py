"""The ablation file (pipelines/ablation/claims.yaml) as typed config, and one arm's training recipe.

An arm is the reference recipe with some stages dropped and some fields of others replaced; each arm
is validated as a full `TrainRecipe` when the file loads, so a typo fails before any training.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from slime_data.paths import PIPELINES_DIR
from slime_data.recipes import load_recipe_file, validation_message
from slime_model.ablation.summary import Claim, load_claims
from slime_model.training.recipe import TrainRecipe

DEFAULT_ABLATION = PIPELINES_DIR / "ablation" / "claims.yaml"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class AblationData(_Strict):
    train_images: int = Field(ge=1, description="hatching pages to train on (seed 0), 3 questions each")
    captions: int = Field(ge=1, description="caption rows of the pretraining stages")
    heldout_images: int = Field(ge=1, description="held-out pages (seed 1), 3 scored questions each")


class QuickMode(_Strict):
    data: AblationData
    seeds: list[int] = Field(min_length=1)
    step_scale: float = Field(gt=0, le=1)


class Arm(_Strict):
    drop: list[str] = Field(default_factory=list, description="reference stages this arm leaves out")
    stages: dict[str, dict[str, Any]] = Field(default_factory=dict, description="stage name -> fields to replace")


class AblationConfig(_Strict):
    data: AblationData
    seeds: list[int] = Field(min_length=1)
    quick: QuickMode
    recipe: dict[str, Any]
    arms: dict[str, Arm]
    claims: list[dict[str, Any]] = Field(min_length=1, description="summary.Claim fields: key, title, paper, arms")
    path: Path | None = Field(None, exclude=True)

    @property
    def claim_list(self) -> list[Claim]:
        return load_claims({"claims": self.claims})

    @model_validator(mode="after")
    def _check(self) -> AblationConfig:
        for claim in self.claim_list:
            unknown = [arm for arm in claim.arms if arm not in self.arms]
            if unknown:
                raise ValueError(f"claim {claim.key} lists unknown arm(s) {unknown}; arms: {', '.join(self.arms)}")
        for name in self.arms:
            arm_recipe(self, name, seed=0)  # raises ValueError naming the arm
        return self

    def arm_names(self) -> list[str]:
        """Every arm some claim uses, in first-use order (the reference is shared, trained once per seed)."""
        return list(dict.fromkeys(arm for claim in self.claim_list for arm in claim.arms))


def arm_recipe(config: AblationConfig, arm: str, seed: int, step_scale: float = 1.0) -> TrainRecipe:
    """The reference recipe with `arm`'s changes, seeded, every stage's max_steps scaled (at least 1)."""
    patch = config.arms[arm]
    stages = {stage["name"]: dict(stage) for stage in config.recipe["stages"]}
    missing = sorted((set(patch.drop) | set(patch.stages)) - set(stages))
    if missing:
        raise ValueError(f"arm {arm}: no reference stage(s) {missing}; stages: {', '.join(stages)}")
    chosen = []
    for name, stage in stages.items():
        if name in patch.drop:
            continue
        stage |= patch.stages.get(name, {})
        stage["max_steps"] = max(1, round(stage["max_steps"] * step_scale))
        chosen.append(stage)
    try:
        return TrainRecipe.model_validate({**config.recipe, "name": f"ablation-{arm}", "seed": seed, "stages": chosen})
    except ValidationError as err:
        raise ValueError(f"arm {arm}: {validation_message(err)}") from None


def load_ablation(path: str | Path | None = None) -> AblationConfig:
    path = Path(path) if path is not None else DEFAULT_ABLATION
    if not path.is_file():
        raise ValueError(f"ablation file {path} not found")
    return load_recipe_file(path, AblationConfig, "ablation file", path=path.resolve())[0]
