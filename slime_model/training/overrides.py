"""`--override KEY=VALUE`: the settings a started run may change, recorded in OUT/train.json.

A run folder holds one recipe (its sha256 is checked on every rerun), so editing the recipe file
midway is refused. What a stopped run most often needs is a lower learning rate or a different
tolerance; those may change through overrides, which every later rerun of the folder reapplies:

    STAGE.lr=1e-4                  short for STAGE.optimizer.lr
    STAGE.optimizer.FIELD=VALUE    any optimizer field: lr, weight_decay, betas, eps, schedule,
                                   warmup_ratio, max_grad_norm (STAGE: the recipe's stage name;
                                   with `rounds`, every round of it not yet finished)
    max_bad_steps=N, max_drop_ratio=R, max_weight_growth=G

Only stages not finished yet can change. Values are YAML (`1e-4`, `[0.9, 0.95]`) and are
validated as if they were in the recipe. A resumed stage gets the new settings on top of its
restored optimizer state (moments kept; learning rate, betas, decay, eps and clipping replaced).
"""

from __future__ import annotations

from typing import Any

import yaml

from slime_model.training.recipe import OptimizerSpec, TrainRecipe

OPTIMIZER_FIELDS = tuple(f for f in OptimizerSpec.model_fields if f != "name")
RUN_FIELDS = ("max_bad_steps", "max_drop_ratio", "max_weight_growth")


def parse_overrides(items: list[str]) -> dict[str, Any]:
    """["1b.lr=1e-4", ...] -> {"1b.optimizer.lr": 0.0001, ...} (keys in their long form)."""
    overrides = {}
    for item in items:
        key, sep, raw = item.partition("=")
        if not sep or not key:
            raise ValueError(f"--override {item!r}: write KEY=VALUE, e.g. 1b.lr=1e-4")
        parts = key.split(".")
        if len(parts) == 2 and parts[1] in OPTIMIZER_FIELDS:
            key = f"{parts[0]}.optimizer.{parts[1]}"
        overrides[key] = _value(raw)
    return overrides


def _value(raw: str) -> Any:
    """YAML, except that `1e-4` is a number (YAML 1.1 reads exponents without a dot as strings)."""
    value = yaml.safe_load(raw)
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            pass
    return value


def overridden_stage(key: str) -> str | None:
    """The stage an override key changes (None for run-wide keys)."""
    return None if key in RUN_FIELDS else key.partition(".optimizer.")[0]


def apply_overrides(recipe: TrainRecipe, overrides: dict[str, Any]) -> TrainRecipe:
    """The recipe with `overrides` applied and validated again; ValueError for a key that may not change."""
    if not overrides:
        return recipe
    data = recipe.model_dump(mode="json")
    stages = {stage["name"]: stage for stage in data["stages"]}
    for key, value in overrides.items():
        stage, sep, field = key.partition(".optimizer.")
        if key in RUN_FIELDS:
            data[key] = value
        elif sep and stage in stages and field in OPTIMIZER_FIELDS:
            stages[stage]["optimizer"][field] = value
        else:
            raise ValueError(
                f"--override {key}: only STAGE.optimizer.FIELD (STAGE one of {', '.join(stages)}; FIELD one of "
                f"{', '.join(OPTIMIZER_FIELDS)}; STAGE.lr for short) or {' / '.join(RUN_FIELDS)} may change"
            )
    return TrainRecipe.model_validate(data).model_copy(update={"path": recipe.path})
