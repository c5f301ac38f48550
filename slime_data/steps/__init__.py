"""Pipeline steps. Importing this package registers every step under its recipe name."""

from slime_data.steps import (  # noqa: F401  (imported for registration)
    cap,
    decontaminate,
    dedup,
    group,
    load_image,
    present,
    quality,
    resolution,
    teacher,
)
from slime_data.steps.base import STEP_REGISTRY, GlobalStep, Step, register_step

__all__ = ["STEP_REGISTRY", "GlobalStep", "Step", "register_step"]
