"""`slime-model plan`: what each stage of a training recipe needs on N GPUs, before renting them.

Per stage: parameters by group (counted on the meta device, so a 70B model costs nothing), the
trainable ones (LoRA adapters counted exactly), the memory one GPU holds under the stage's ZeRO
config, the activation memory of one sample, the largest micro-batch that fits, FLOPs per sample and
the GPU-hours of one epoch of the stage's data at a stated MFU. The data and hardware assumptions
are in `pipelines/plan.yaml`.

Memory per GPU (ZeRO paper, Rajbhandari et al. 2020), P parameters, T trainable, N GPUs, w bytes a
weight (2 in bf16/fp16, 4 in fp32):
    weights   P·w      (÷N under ZeRO-3, plus two gathered decoder layers, the one computing and the one
                        prefetched; on the CPU with offload_param, but for those two layers)
    gradients T·w      (÷N under ZeRO-2/3)
    optimizer T·12     (fp32 master copy + Adam's two moments; T·8 in fp32; ÷N under ZeRO-1/2/3; CPU with
    offload_optimizer)
Activations of one sample of L tokens through a Llama-style decoder (hidden H, KV width K, MLP width
I; what autograd saves, FlashAttention/SDPA keeping no L×L matrix):
    trained layer  w·L·(7H + 2K + 4I)   (both norms: input and output; q, k, v, attention output and its
                                        transposed copy into o_proj; gate, up, activation and product)
    frozen layer   w·L·(4H + 2K + 3I)   (a frozen linear layer saves no input: only the non-linearities do)
                   + w·L·2H in bf16/fp16 (the norms keep their input upcast to float32)
    with gradient checkpointing: every layer keeps its input (w·L·H) and one layer is live at a time
    logits         (w + 4)·A·V          (A answer tokens; logits only where a label is, upcast for the loss)
The frozen vision tower saves nothing; the adapters' share is left out (< 3% at 7B).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import yaml

from slime_data.paths import PIPELINES_DIR
from slime_model.configuration import SliMEConfig
from slime_model.slicing import choose_grid
from slime_model.training.ds_config import load_zero_config
from slime_model.training.lora import LoraSpec
from slime_model.training.recipe import StageSpec, TrainRecipe, plan_stages
from slime_model.training.telemetry import train_flops

ASSUMPTIONS = PIPELINES_DIR / "plan.yaml"
GB = 1e9


@dataclass(frozen=True)
class Hardware:
    gpus: int
    memory_gb: float
    peak_flops: float  # per GPU, dense bf16
    mfu: float
    reserve: float  # share of memory not available to the model


@dataclass
class StagePlan:
    name: str
    zero: int
    offload: list[str]
    params: dict[str, int]  # by parameter group
    trainable: int
    per_gpu_gb: dict[str, float]  # weights, gradients, optimizer (on the GPU)
    cpu_gb: float  # offloaded state per GPU
    tokens_per_sample: int  # mean: text + visual
    activation_gb_per_sample: float  # worst case: max_length tokens
    recipe_micro_batch: int
    max_micro_batch: int  # the largest that fits (0: not even one sample)
    flops_per_sample: float
    samples: int
    gpu_hours: float
    notes: list[str] = field(default_factory=list)


def load_assumptions(path: Path = ASSUMPTIONS) -> dict[str, Any]:
    return yaml.safe_load(path.read_text(encoding="utf-8"))


def model_config(recipe: TrainRecipe) -> SliMEConfig:
    source = recipe.model
    if source.checkpoint is not None:
        return SliMEConfig.from_pretrained(recipe.resolve(source.checkpoint))
    return SliMEConfig.from_name(source.preset)


def parameter_counts(config: SliMEConfig) -> tuple[dict[str, int], torch.nn.Module]:
    """Parameters by group of the model built on the meta device (no memory, no weights), and the model."""
    from slime_model.modeling import SliMEForConditionalGeneration

    with torch.device("meta"):
        model = SliMEForConditionalGeneration(config)
    return {group: sum(p.numel() for _, p in params) for group, params in model.parameter_groups().items()}, model


def lora_parameters(model: torch.nn.Module, spec: LoraSpec) -> int:
    """Exactly what peft adds: r·(in + out) for every targeted linear layer of the LLM."""
    targets = set(spec.target_modules)
    return sum(
        spec.rank * (m.in_features + m.out_features)
        for name, m in model.model.language_model.named_modules()
        if isinstance(m, torch.nn.Linear) and name.rsplit(".", 1)[-1] in targets
    )


def _layer_parameters(model: torch.nn.Module) -> int:
    """Parameters of one LLM decoder layer: what ZeRO-3 gathers at a time."""
    return sum(p.numel() for p in model.model.language_model.layers[0].parameters())


def visual_tokens(config: SliMEConfig, stage: StageSpec, image: tuple[int, int]) -> tuple[int, int]:
    """(mean, most) visual tokens of one image in this stage's branch: the selector keeps about top-p of the local
    ones."""
    grid = choose_grid(
        config.slicing_strategy,
        *image,
        config.crop_size,
        uhd_max_scale=config.uhd_max_scale,
        grid_max_side=config.grid_max_side,
        pinpoints=config.image_grid_pinpoints,
    )
    local = config.local_num_queries * grid.num_crops
    global_part = config.num_global_tokens + (1 if stage.branch == "both" else 0)
    if stage.branch == "global":
        return global_part, global_part
    if stage.branch == "local":
        return math.ceil(local * stage.top_p), local
    return global_part + math.ceil(local * stage.top_p), global_part + local


def activation_bytes(
    text, tokens: int, answer_tokens: int, width: int, llm_trained: bool, checkpointing: bool
) -> float:
    """What autograd keeps for one sample of `tokens` tokens (module docstring)."""
    hidden, kv = text.hidden_size, text.num_key_value_heads * (text.hidden_size // text.num_attention_heads)
    inter, layers = text.intermediate_size, text.num_hidden_layers
    per_token = (7 * hidden + 2 * kv + 4 * inter) if llm_trained else (4 * hidden + 2 * kv + 3 * inter)
    if width < 4:
        per_token += 2 * hidden  # RMSNorm saves its input upcast to float32: twice the bytes of a half-precision copy
    layer = width * tokens * per_token
    stored = layers * width * tokens * hidden + layer if checkpointing else layers * layer
    return stored + (width + 4) * answer_tokens * text.vocab_size


def plan_stage(
    recipe: TrainRecipe,
    stage: StageSpec,
    name: str,
    config: SliMEConfig,
    counts: dict[str, int],
    model: torch.nn.Module,
    hardware: Hardware,
    assumptions: dict[str, Any],
) -> StagePlan:
    zero_config = load_zero_config(recipe.resolve(stage.deepspeed))["zero_optimization"]
    zero = int(zero_config["stage"])
    offload = [part for part in ("param", "optimizer") if zero_config.get(f"offload_{part}", {}).get("device") == "cpu"]
    width = 4 if stage.precision == "fp32" else 2
    total = sum(counts.values())
    lora = lora_parameters(model, stage.lora) if stage.lora is not None else 0
    trainable = sum(counts[g] for g in stage.trainable if not (g == "llm" and stage.lora)) + lora
    n = hardware.gpus
    weights = (total + lora) * width / (n if zero == 3 else 1)
    gathered = 2 * _layer_parameters(model) * width if zero == 3 else 0.0
    grads = trainable * width / (n if zero >= 2 else 1)
    optimizer = trainable * (8 if stage.precision == "fp32" else 12) / n
    cpu = (weights if "param" in offload else 0.0) + (optimizer if "optimizer" in offload else 0.0)
    on_gpu = {
        "weights": gathered + (0.0 if "param" in offload else weights),
        "gradients": grads,
        "optimizer": 0.0 if "optimizer" in offload else optimizer,
    }

    data = assumptions["data"].get(stage.data)
    if data is None:
        raise ValueError(f"stage {name}: pipelines/plan.yaml has no data assumptions for mix stage {stage.data!r}")
    mean_visual, most_visual = visual_tokens(config, stage, tuple(data["image"]))
    mean_tokens = min(stage.max_length, data["text_tokens"] + round(data["image_share"] * mean_visual))
    llm_trained = "llm" in stage.trainable
    per_sample = activation_bytes(
        config.text_config, stage.max_length, data["text_tokens"], width, llm_trained, stage.gradient_checkpointing
    )
    free = hardware.memory_gb * GB * (1 - hardware.reserve) - sum(on_gpu.values())
    flops = train_flops(
        counts["llm"],
        counts["vision"],
        mean_tokens,
        config.num_global_tokens + 1,
        llm_trained and stage.lora is None,
        "vision" in stage.trainable,
    )
    samples = data["samples"] * (stage.epochs or 1)
    if stage.max_steps is not None:
        samples = min(samples, stage.max_steps * stage.global_batch)
    notes = (
        []
        if most_visual + data["text_tokens"] <= stage.max_length
        else [
            f"an image's {most_visual} visual tokens + text exceed max_length {stage.max_length}: long samples are cut"
        ]
    )
    return StagePlan(
        name=name,
        zero=zero,
        offload=offload,
        params=counts,
        trainable=trainable,
        per_gpu_gb={k: v / GB for k, v in on_gpu.items()},
        cpu_gb=cpu / GB,
        tokens_per_sample=mean_tokens,
        activation_gb_per_sample=per_sample / GB,
        recipe_micro_batch=stage.micro_batch,
        max_micro_batch=max(0, int(free // per_sample)),
        flops_per_sample=flops,
        samples=samples,
        gpu_hours=samples * flops / (hardware.peak_flops * hardware.mfu) / 3600,
        notes=notes,
    )


def plan_recipe(recipe: TrainRecipe, hardware: Hardware, assumptions: dict[str, Any] | None = None) -> list[StagePlan]:
    assumptions = assumptions or load_assumptions()
    config = model_config(recipe)
    counts, model = parameter_counts(config)
    return [
        plan_stage(recipe, planned.spec, planned.name, config, counts, model, hardware, assumptions)
        for planned in plan_stages(recipe)
    ]


def anchor_gpu_hours(assumptions: dict[str, Any], mfu: float) -> tuple[float, float]:
    """(this planner's GPU-hours for LLaVA-1.5-7B, the reported figure): the same FLOP formula, 7B LLM, CLIP-L/336."""
    anchor = assumptions["anchor"]
    counts, _ = parameter_counts(SliMEConfig.from_name("slime-vicuna-7b"))
    peak = float(assumptions["gpus"][anchor["gpu"]])
    hours = 0.0
    for stage, llm_trains in (("pretrain", False), ("sft", True)):
        part = anchor[stage]
        flops = train_flops(
            counts["llm"], counts["vision"], part["text_tokens"] + part["visual_tokens"], 577, llm_trains, False
        )
        hours += part["samples"] * flops / (peak * mfu) / 3600
    return hours, float(anchor["reported_gpu_hours"])
