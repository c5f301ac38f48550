"""LoRA on the LLM (peft), for the paper's LoRA runs (SliME-Llama3-70B, the 8B† variant).

A stage with a `lora` section trains low-rank adapters on the LLM's linear layers instead of its full
weights: `llm` in the stage's `trainable` then means "the LLM's LoRA adapters"; every other group
trains as the stage says. peft injects the adapters in place (`inject_adapter_in_model`), so the
parameter names stay the model's own plus `.base_layer.` / `.lora_A.default.` / `.lora_B.default.`,
DeepSpeed (ZeRO-2 and ZeRO-3) sees ordinary parameters, and resumable checkpoints need nothing new.

At the end of the stage the adapters are merged into the base weights on the gathered state dict,
W ← W + (alpha / r) · B @ A, so the stage's Hugging Face checkpoint has exactly the keys of a model
without LoRA and loads without peft. `keep_adapters: true` also writes the adapters in peft's format
(`OUT/stage-NAME/lora/adapter_model.safetensors` + `adapter_config.json`, keys relative to the LLM).
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
from pydantic import BaseModel, ConfigDict, Field
from safetensors.torch import save_file

# Every linear layer of a Llama-family decoder block (attention and MLP), as QLoRA and LLaVA's LoRA
# scripts target them.
LLAMA_LINEAR_LAYERS = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")
ADAPTER_DIR = "lora"
_LLM_PREFIX = "model.language_model."
_BASE, _A, _B = ".base_layer.", ".lora_A.default.weight", ".lora_B.default.weight"


class LoraSpec(BaseModel):
    """The LoRA section of a stage (defaults: LLaVA-1.5's LoRA script, r 128 / alpha 256, no dropout)."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    rank: int = Field(128, ge=1, description="r, the adapters' inner dimension")
    alpha: float = Field(256.0, gt=0, description="scaling numerator: updates are scaled by alpha / rank")
    dropout: float = Field(0.05, ge=0, lt=1)
    target_modules: list[str] = Field(default_factory=lambda: list(LLAMA_LINEAR_LAYERS), min_length=1)
    keep_adapters: bool = Field(
        False, description="also write the adapters alone (peft format) next to the merged checkpoint"
    )

    @property
    def scaling(self) -> float:
        return self.alpha / self.rank

    def peft_config(self):
        from peft import LoraConfig

        return LoraConfig(
            r=self.rank,
            lora_alpha=self.alpha,
            lora_dropout=self.dropout,
            target_modules=list(self.target_modules),
            bias="none",
        )


def add_lora(model: torch.nn.Module, spec: LoraSpec) -> None:
    """Inject adapters into the SliME model's LLM, in place. B starts at zero: the model is unchanged."""
    from peft import inject_adapter_in_model

    llm = model.model.language_model
    targets = {name.rsplit(".", 1)[-1] for name, module in llm.named_modules() if isinstance(module, torch.nn.Linear)}
    missing = sorted(set(spec.target_modules) - targets)
    if missing:
        raise ValueError(f"lora.target_modules {missing} are not linear layers of the LLM; it has {sorted(targets)}")
    inject_adapter_in_model(spec.peft_config(), llm)


def restrict_llm_to_adapters(model: torch.nn.Module) -> None:
    """After `set_trainable`: of the LLM group only the adapters train (base weights and LM head stay frozen)."""
    from slime_model.modeling import PARAMETER_GROUPS

    for name, param in model.named_parameters():
        if name.startswith(PARAMETER_GROUPS["llm"]) and not is_adapter(name):
            param.requires_grad_(False)


def is_adapter(name: str) -> bool:
    return ".lora_A." in name or ".lora_B." in name


def merge_state_dict(state: dict[str, torch.Tensor], scaling: float) -> dict[str, torch.Tensor]:
    """The state dict with every adapter folded into its base weight and the LoRA keys gone.

    `x.base_layer.weight` [out, in] + scaling · `x.lora_B.default.weight` [out, r] @ `x.lora_A.default.weight` [r, in]
    becomes `x.weight`; `x.base_layer.bias` becomes `x.bias`. Computed in float32, stored in the base dtype.
    """
    merged: dict[str, torch.Tensor] = {}
    for key, value in state.items():
        if is_adapter(key):
            continue
        if _BASE not in key:
            merged[key] = value
            continue
        layer, leaf = key.split(_BASE)
        target = f"{layer}.{leaf}"
        if leaf == "weight":
            a, b = state[layer + _A].float(), state[layer + _B].float()
            value = (value.float() + scaling * (b @ a)).to(value.dtype)
        merged[target] = value
    return merged


def save_adapters(state: dict[str, torch.Tensor], spec: LoraSpec, out: Path) -> Path:
    """The adapters alone, as peft writes them for the LLM (`base_model.model.<name>` keys, no adapter name)."""
    folder = out / ADAPTER_DIR
    folder.mkdir(parents=True, exist_ok=True)
    tensors = {
        "base_model.model." + key[len(_LLM_PREFIX) :].replace(".default.", "."): value.contiguous()
        for key, value in state.items()
        if is_adapter(key)
    }
    save_file(tensors, folder / "adapter_model.safetensors", metadata={"format": "pt"})
    config = spec.peft_config().to_dict()
    config["target_modules"] = sorted(config["target_modules"])
    (folder / "adapter_config.json").write_text(json.dumps(config, indent=2, sort_keys=True, default=str) + "\n")
    return folder
