"""Resumable checkpoints inside a stage, and what a finished stage leaves behind.

    OUT/stage-NAME/
      checkpoints/step-000500/    DeepSpeed state (weights, optimizer, scheduler) + per rank:
                                  trainer-rankR.json (step, data position, counters) and
                                  rng-rankR.safetensors (torch CPU/CUDA generators)
      checkpoints/latest.json     {"tag", "step"}: rank 0 writes it once every rank has saved, so a
                                  kill -9 mid-save leaves the previous checkpoint in charge
      model.safetensors, config.json, tokenizer files, slime_processor.json   (at the stage's end)
      COMPLETE.json               written last: the stage is done and a rerun skips it

The trainer's own files are JSON and safetensors. DeepSpeed's files are its own `torch.save` format,
which DeepSpeed 0.19 loads with `torch.load(weights_only=False)`: a pickle that may run any code. The
trainer loads them with `weights_only=True` instead (its checkpoint engine's `load` replaced for the
resume), allowing only tensors, plain containers and the few DeepSpeed value classes its ZeRO
optimizers save (`DEEPSPEED_STATE_CLASSES`); anything else refuses the resume, naming the file,
before a single step runs. The stage's weights are safetensors.
"""

from __future__ import annotations

import importlib
import json
import pickle
import random
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors.torch import load_file, save_file

from slime_data.shards import fsync_write
from slime_model.permissions import follow_umask

CHECKPOINTS = "checkpoints"
LATEST = "latest.json"
COMPLETE = "COMPLETE.json"


def tag_of(step: int) -> str:
    return f"step-{step:06d}"


def write_json(path: Path, data: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fsync_write(path, (json.dumps(data, indent=2, sort_keys=True) + "\n").encode("utf-8"))


def read_json(path: Path) -> Any | None:
    """The file's JSON, or None when it is missing or torn (a kill during a write)."""
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (FileNotFoundError, json.JSONDecodeError):
        return None


# ---- random number generators -------------------------------------------------------------------
def rng_tensors() -> dict[str, torch.Tensor]:
    tensors = {"torch_cpu": torch.get_rng_state()}
    if torch.cuda.is_available():
        tensors["torch_cuda"] = torch.cuda.get_rng_state()
    return tensors


def python_rng_state() -> dict[str, Any]:
    version, words, gauss = random.getstate()
    numpy_state = np.random.get_state(legacy=False)
    numpy_state["state"]["key"] = numpy_state["state"]["key"].tolist()
    return {"python": [version, list(words), gauss], "numpy": numpy_state}


def restore_rng(tensors: dict[str, torch.Tensor], python_state: dict[str, Any]) -> None:
    torch.set_rng_state(tensors["torch_cpu"])
    if "torch_cuda" in tensors and torch.cuda.is_available():
        torch.cuda.set_rng_state(tensors["torch_cuda"])
    version, words, gauss = python_state["python"]
    random.setstate((version, tuple(words), gauss))
    numpy_state = python_state["numpy"]
    numpy_state["state"]["key"] = np.asarray(numpy_state["state"]["key"], dtype=np.uint32)
    np.random.set_state(numpy_state)


# ---- resumable checkpoints ----------------------------------------------------------------------
def save_resume_checkpoint(engine, stage_dir: Path, step: int, state: dict[str, Any], rank: int) -> None:
    """Collective: every rank saves its DeepSpeed partition, data position and RNG states."""
    root = stage_dir / CHECKPOINTS
    tag = tag_of(step)
    engine.save_checkpoint(str(root), tag=tag, save_latest=False)
    write_json(root / tag / f"trainer-rank{rank}.json", {**state, "rng": python_rng_state()})
    save_file(rng_tensors(), str(root / tag / f"rng-rank{rank}.safetensors"))
    follow_umask(root / tag / f"rng-rank{rank}.safetensors")


def commit_resume_checkpoint(stage_dir: Path, step: int, keep: int) -> None:
    """Rank 0, after a barrier: point `latest.json` at the new checkpoint and drop the oldest ones."""
    root = stage_dir / CHECKPOINTS
    write_json(root / LATEST, {"tag": tag_of(step), "step": step})
    tags = sorted(p.name for p in root.glob("step-*") if p.is_dir())
    for old in tags[: max(0, len(tags) - keep)]:
        shutil.rmtree(root / old, ignore_errors=True)


def latest_resume_checkpoint(stage_dir: Path) -> dict[str, Any] | None:
    return read_json(stage_dir / CHECKPOINTS / LATEST)


def load_resume_checkpoint(engine, stage_dir: Path, tag: str, rank: int, world_size: int) -> dict[str, Any]:
    """Collective: restore DeepSpeed state and this rank's RNGs; returns this rank's trainer state."""
    root = stage_dir / CHECKPOINTS
    state = read_json(root / tag / f"trainer-rank{rank}.json")
    if state is None:
        raise ValueError(
            f"{root / tag} has no trainer state for rank {rank}: it was written by a run with fewer processes"
        )
    if state["world_size"] != world_size:
        raise ValueError(
            f"{root / tag} was written by {state['world_size']} "
            f"processes; resume with the same number (now {world_size})"
        )
    engine.checkpoint_engine.load = weights_only_load  # every DeepSpeed resume read goes through it
    path, _ = engine.load_checkpoint(str(root), tag=tag)
    if path is None:
        raise ValueError(f"DeepSpeed could not load the checkpoint {root / tag}")
    restore_rng(load_file(str(root / tag / f"rng-rank{rank}.safetensors")), state.pop("rng"))
    return state


# Classes DeepSpeed 0.19's ZeRO optimizers pickle besides tensors and containers: plain values, no
# code runs to rebuild them (instances get their __dict__ set; enums and dataclasses of ints).
DEEPSPEED_STATE_CLASSES = (
    "deepspeed.runtime.fp16.loss_scaler:LossScaler",
    "deepspeed.runtime.fp16.loss_scaler:DynamicLossScaler",
    "deepspeed.runtime.zero.config:ZeroStageEnum",
    "deepspeed.utils.tensor_fragment:fragment_address",
)


class UntrustedCheckpointError(ValueError):
    """A resume file holds something other than tensors and known DeepSpeed state: it is not loaded."""


def _state_classes() -> list[type]:
    classes = []
    for name in DEEPSPEED_STATE_CLASSES:
        module, attr = name.split(":")
        classes.append(getattr(importlib.import_module(module), attr))
    return classes


def weights_only_load(path: str, map_location=None) -> Any:
    """DeepSpeed's checkpoint-engine `load`, without pickle's code execution."""
    with torch.serialization.safe_globals(_state_classes()):
        try:
            return torch.load(path, map_location=map_location, weights_only=True)
        except pickle.UnpicklingError as err:
            lines = str(err).splitlines()
            reason = next((line.strip() for line in lines if "Unsupported global" in line), lines[0])
            raise UntrustedCheckpointError(
                f"{path} holds more than tensors and DeepSpeed state, so it was not loaded ({reason}); "
                "resume only from checkpoints this trainer wrote, or delete the stage folder to restart the stage"
            ) from None


def remove_resume_checkpoints(stage_dir: Path) -> None:
    """Optimizer states are only for resuming; a finished stage keeps its Hugging Face checkpoint."""
    shutil.rmtree(stage_dir / CHECKPOINTS, ignore_errors=True)


# ---- the stage's end products ------------------------------------------------------------------
def full_state_dict(engine, zero3: bool) -> dict[str, torch.Tensor] | None:
    """Collective under ZeRO-3: the whole model's weights gathered layer by layer onto rank 0
    (None elsewhere, and None without ZeRO-3, where every rank holds the full weights)."""
    return engine._zero3_consolidated_16bit_state_dict() if zero3 else None


def write_complete(stage_dir: Path, summary: dict[str, Any]) -> None:
    write_json(stage_dir / COMPLETE, summary)


def read_complete(stage_dir: Path) -> dict[str, Any] | None:
    return read_json(stage_dir / COMPLETE)
