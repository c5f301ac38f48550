"""Training recipes (`pipelines/train/*.yaml`): the model to start from and the ordered stages.

A stage is data, not code (DESIGN §2): the parameter groups it trains, the branch and global expert
the model uses, the mix stage it reads, optimiser and schedule, length (epochs or steps), global
batch, max length, selector top-p, gradient checkpointing, precision and the DeepSpeed config.
`rounds` repeats the stages marked `alternate` (the global/local pair) before the others run.

Validated at load: an unknown key anywhere is an error naming it; a stage that trains a group its
branch never uses is an error (ZeRO would wait forever for that group's gradients). Paths inside a
recipe (DeepSpeed configs) are relative to the recipe file; a DeepSpeed config may also be named
(`zero2`), so a copied recipe still finds the shipped ones.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from slime_data.paths import PIPELINES_DIR
from slime_data.recipes import load_recipe_file
from slime_model.configuration import BRANCHES, GLOBAL_EXPERTS
from slime_model.modeling import PARAMETER_GROUPS
from slime_model.templates import CHAT_TEMPLATE_NAMES
from slime_model.training.lora import LoraSpec

DEFAULT_RECIPE = PIPELINES_DIR / "train" / "tiny.yaml"
DEEPSPEED_DIR = PIPELINES_DIR / "deepspeed"
PRECISIONS = ("bf16", "fp16", "fp32")

# Which (branch, global expert) combinations run a parameter group in the forward pass.
_GROUP_USED_BY = {
    "vision": lambda branch, expert: True,
    "global.mlp": lambda branch, expert: True,  # the MLP also projects the local tokens
    "global.resampler": lambda branch, expert: branch != "local" and expert in ("resampler", "mix"),
    "global.gate": lambda branch, expert: branch != "local" and expert == "mix",
    "local.compressor": lambda branch, expert: branch != "global",
    "llm": lambda branch, expert: True,
}


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ModelSource(_Strict):
    """Where the weights come from: a SliME checkpoint, or a preset plus a vision tower and an LLM.

    `preset` names the SliME settings (`SliMEConfig.from_name`); with `vision_tower` and `llm`
    (local folders or hub ids) their configs and weights replace the preset's, and the tokenizer
    is the LLM's. The `tiny` preset alone builds a random model and its local tokenizer.
    """

    preset: str | None = None
    vision_tower: str | None = None
    llm: str | None = None
    checkpoint: str | None = Field(
        None, description="a SliME checkpoint folder (save_pretrained / slime-model convert)"
    )

    @model_validator(mode="after")
    def _one_source(self) -> ModelSource:
        parts = self.vision_tower is not None, self.llm is not None
        if self.checkpoint is not None:
            if self.preset or any(parts):
                raise ValueError("give either checkpoint, or preset (with vision_tower and llm), not both")
        elif self.preset is None:
            raise ValueError("give a preset (e.g. tiny, slime-vicuna-7b) or a checkpoint")
        elif any(parts) and not all(parts):
            raise ValueError("vision_tower and llm go together")
        elif not any(parts) and self.preset != "tiny":
            raise ValueError(
                f"preset {self.preset!r} needs vision_tower and llm (only the tiny preset builds from nothing)"
            )
        return self


class OptimizerSpec(_Strict):
    """AdamW with a cosine schedule and linear warm-up (all SliME stages)."""

    name: Literal["adamw"] = "adamw"
    lr: float = Field(gt=0)
    weight_decay: float = Field(0.0, ge=0)
    betas: tuple[float, float] = (0.9, 0.999)
    eps: float = Field(1e-8, gt=0)
    schedule: Literal["cosine", "constant"] = "cosine"
    warmup_ratio: float = Field(0.03, ge=0, lt=1)
    max_grad_norm: float = Field(1.0, gt=0)


class StageSpec(_Strict):
    name: str = Field(pattern=r"^[A-Za-z0-9_.-]+$", description="also the folder OUT/stage-NAME")
    trainable: list[str] = Field(min_length=1, description=f"parameter groups: {', '.join(PARAMETER_GROUPS)}")
    branch: Literal[BRANCHES] = "both"
    global_expert: Literal[GLOBAL_EXPERTS] = "mix"
    data: str = Field(description="the mix stage it reads (pretrain, sft, ...)")
    chat_template: Literal[CHAT_TEMPLATE_NAMES]
    optimizer: OptimizerSpec
    epochs: int | None = Field(None, ge=1)
    max_steps: int | None = Field(None, ge=1, description="optimizer steps; stops before the epochs end")
    global_batch: int = Field(ge=1, description="samples per optimizer step over all ranks")
    micro_batch: int = Field(
        ge=1, description="largest per-rank micro-batch; the trainer picks the largest that divides"
    )
    max_length: int = Field(2048, ge=16, description="merged sequence (text + visual tokens)")
    top_p: float = Field(
        gt=0,
        le=1,
        description="selector top-p while training and in the saved checkpoint (1.0 keeps every local token)",
    )
    gradient_checkpointing: bool = False
    precision: Literal[PRECISIONS] = "bf16"
    deepspeed: str = Field(
        description="DeepSpeed config (ZeRO section): a path relative to the recipe, or a shipped one's name (zero2)"
    )
    alternate: bool = Field(False, description="part of the global/local alternation that `rounds` repeats")
    lora: LoraSpec | None = Field(
        None, description="train LoRA adapters on the LLM instead of its weights (`llm` must be trainable)"
    )

    @model_validator(mode="after")
    def _check(self) -> StageSpec:
        unknown = sorted(set(self.trainable) - PARAMETER_GROUPS.keys())
        if unknown:
            raise ValueError(f"unknown parameter group(s) {unknown}; choose from {list(PARAMETER_GROUPS)}")
        unused = [g for g in self.trainable if not _GROUP_USED_BY[g](self.branch, self.global_expert)]
        if unused:
            raise ValueError(
                f"trains {unused} but branch={self.branch!r} with global_expert={self.global_expert!r} never runs them"
            )
        if self.lora is not None and "llm" not in self.trainable:
            raise ValueError("has a lora section but does not train the llm group (LoRA adapts the LLM)")
        if self.epochs is None and self.max_steps is None:
            raise ValueError("give epochs, max_steps or both")
        return self


class DataSpec(_Strict):
    shuffle: bool = True
    shuffle_buffer: int = Field(10_000, ge=1, description="rows shuffled together in memory (after the shard order)")
    group_by_length: bool = Field(False, description="micro-batches of similar length (less padding)")
    num_workers: int = Field(2, ge=0, description="DataLoader processes decoding and slicing images")


class TrainRecipe(_Strict):
    name: str
    seed: int = 0
    model: ModelSource
    data: DataSpec = DataSpec()
    rounds: int = Field(1, ge=1, description="how many times the `alternate` stages run, in order, before the others")
    checkpoint_every: int = Field(500, ge=1, description="optimizer steps between resumable checkpoints")
    keep_checkpoints: int = Field(2, ge=1, description="resumable checkpoints kept per stage")
    max_bad_steps: int = Field(10, ge=0, description="skipped non-finite steps tolerated per stage before aborting")
    max_drop_ratio: float = Field(
        0.01, ge=0, le=1, description="share of a stage's rows that may be dropped (unreadable image, too long)"
    )
    max_weight_growth: float = Field(
        100.0, ge=0, description="times the trainable weights' RMS may grow in a stage (from >= 0.01); 0 = no check"
    )
    stages: list[StageSpec] = Field(min_length=1)
    path: Path | None = Field(None, exclude=True, description="the recipe file (set by load_recipe)")

    @model_validator(mode="after")
    def _check(self) -> TrainRecipe:
        names = [s.name for s in self.stages]
        twice = sorted({n for n in names if names.count(n) > 1})
        if twice:
            raise ValueError(f"stages listed twice: {', '.join(twice)}")
        block = [i for i, stage in enumerate(self.stages) if stage.alternate]
        if block and block != list(range(block[0], block[-1] + 1)):
            raise ValueError("the `alternate` stages must be listed next to each other")
        return self

    def resolve(self, relative: str) -> Path:
        """A path from the recipe, relative to the recipe file."""
        path = Path(relative)
        return path if path.is_absolute() or self.path is None else (self.path.parent / path).resolve()

    def deepspeed_config(self, stage: StageSpec) -> Path:
        """The stage's DeepSpeed config: the path relative to the recipe file if it is there, else the shipped
        config of that name (``zero2``, ``zero3.json``, or a copied recipe's ``../deepspeed/zero2.json``)."""
        given = self.resolve(stage.deepspeed)
        if given.is_file():
            return given
        name = Path(stage.deepspeed).name
        for shipped in (DEEPSPEED_DIR / name, DEEPSPEED_DIR / f"{name}.json"):
            if shipped.is_file():
                return shipped
        known = ", ".join(sorted(p.stem for p in DEEPSPEED_DIR.glob("*.json")))
        raise ValueError(f"stage {stage.name}: deepspeed config {given} not found, nor shipped: {known}")

    def sha256(self) -> str:
        return hashlib.sha256(json.dumps(self.model_dump(mode="json"), sort_keys=True).encode()).hexdigest()


class PlannedStage(BaseModel):
    """A stage as it runs: the recipe's spec, its round and its folder name."""

    model_config = ConfigDict(frozen=True)
    spec: StageSpec
    round: int

    @property
    def name(self) -> str:
        return self.spec.name if self.round == 1 else f"{self.spec.name}-r{self.round}"


def plan_stages(recipe: TrainRecipe) -> list[PlannedStage]:
    """Stages in run order: the `alternate` block `rounds` times (round 2 of `1a` is `1a-r2`), then the rest, in
    place."""
    planned: list[PlannedStage] = []
    block_done = False
    for stage in recipe.stages:
        if not stage.alternate:
            planned.append(PlannedStage(spec=stage, round=1))
        elif not block_done:
            block = [s for s in recipe.stages if s.alternate]
            planned += [PlannedStage(spec=s, round=r) for r in range(1, recipe.rounds + 1) for s in block]
            block_done = True
    return planned


def load_recipe(path: str | Path | None = None) -> TrainRecipe:
    """Read and validate a recipe; None = the tiny CPU recipe (`pipelines/train/tiny.yaml`)."""
    path = Path(path) if path is not None else DEFAULT_RECIPE
    recipe, _ = load_recipe_file(path, TrainRecipe, "training recipe", path=path.resolve())
    for stage in recipe.stages:
        try:
            recipe.deepspeed_config(stage)
        except ValueError as err:
            raise ValueError(f"{path}: {err}") from None
    return recipe
