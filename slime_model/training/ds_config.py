"""DeepSpeed config of a stage: the ZeRO section from `pipelines/deepspeed/*.json`, the rest from the recipe.

The JSON files hold what is about memory and communication (ZeRO stage, buckets, offload). Batch
sizes, optimiser, precision and clipping belong to the recipe: the files leave them out or set
them to "auto"; any other value there is an error, so one setting never has two sources. As in
the Hugging Face integration, three ZeRO sizes may be "auto" and follow the LLM width H:
reduce_bucket_size = H², stage3_prefetch_bucket_size = 0.9·H², stage3_param_persistence_threshold = 10·H.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from slime_model.training.recipe import StageSpec

RECIPE_KEYS = (
    "train_batch_size",
    "train_micro_batch_size_per_gpu",
    "gradient_accumulation_steps",
    "optimizer",
    "scheduler",
    "gradient_clipping",
    "bf16",
    "fp16",
)
AUTO_ZERO_SIZES = {
    "reduce_bucket_size": lambda hidden: hidden * hidden,
    "stage3_prefetch_bucket_size": lambda hidden: int(0.9 * hidden * hidden),
    "stage3_param_persistence_threshold": lambda hidden: 10 * hidden,
}


@dataclass(frozen=True)
class BatchLayout:
    micro_batch: int  # samples per rank per forward
    accumulation: int  # micro-batches per optimizer step
    world_size: int

    @property
    def global_batch(self) -> int:
        return self.micro_batch * self.accumulation * self.world_size


def batch_layout(stage: str, global_batch: int, max_micro_batch: int, world_size: int) -> BatchLayout:
    """The largest micro-batch <= max_micro_batch with global = micro × accumulation × world."""
    if global_batch % world_size:
        raise ValueError(f"stage {stage}: global_batch {global_batch} is not a multiple of the {world_size} processes")
    per_rank = global_batch // world_size
    micro = max(m for m in range(1, min(max_micro_batch, per_rank) + 1) if per_rank % m == 0)
    return BatchLayout(micro_batch=micro, accumulation=per_rank // micro, world_size=world_size)


def load_zero_config(path: Path) -> dict[str, Any]:
    try:
        config = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as err:
        raise ValueError(f"DeepSpeed config {path}: {err}") from None
    for key in RECIPE_KEYS:
        if key in config and config[key] != "auto":
            raise ValueError(
                f'DeepSpeed config {path}: {key!r} comes from the training recipe; remove it or set it to "auto"'
            )
    stage = config.get("zero_optimization", {}).get("stage")
    if stage not in (1, 2, 3):
        raise ValueError(
            f"DeepSpeed config {path}: zero_optimization.stage must be 1, 2 or 3 "
            f"(got {stage!r}); the trainer relies on ZeRO's non-finite step check"
        )
    return config


def deepspeed_config(path: Path, stage: StageSpec, layout: BatchLayout, hidden_size: int) -> dict[str, Any]:
    config = {k: v for k, v in load_zero_config(path).items() if k not in RECIPE_KEYS}
    zero = dict(config["zero_optimization"])
    for key, value in zero.items():
        if value == "auto":
            if key not in AUTO_ZERO_SIZES:
                raise ValueError(
                    f"DeepSpeed config {path}: zero_optimization.{key} "
                    f'cannot be "auto" (only {", ".join(AUTO_ZERO_SIZES)})'
                )
            zero[key] = AUTO_ZERO_SIZES[key](hidden_size)
    opt = stage.optimizer
    return {
        **config,
        "zero_optimization": zero,
        "train_batch_size": layout.global_batch,
        "train_micro_batch_size_per_gpu": layout.micro_batch,
        "gradient_accumulation_steps": layout.accumulation,
        # torch's AdamW: nothing to compile (DeepSpeed's fused and CPU Adam are JIT-built C++/CUDA ops).
        "optimizer": {
            "type": "AdamW",
            "params": {
                "lr": opt.lr,
                "betas": list(opt.betas),
                "eps": opt.eps,
                "weight_decay": opt.weight_decay,
                "torch_adam": True,
            },
        },
        "gradient_clipping": opt.max_grad_norm,
        "bf16": {"enabled": stage.precision == "bf16"},
        "fp16": {"enabled": stage.precision == "fp16"},
        "steps_per_print": 2**31 - 1,  # the trainer does its own telemetry
        "wall_clock_breakdown": False,
    }


def is_zero3(config: dict[str, Any]) -> bool:
    return config["zero_optimization"]["stage"] == 3
