"""Per-step telemetry: a JSONL line per optimizer step, TensorBoard / Weights & Biases, MFU, the stage plot.

`metrics.jsonl` (rank 0, one JSON object per step) holds: step, epoch, loss (null on a skipped
non-finite or empty step), lr, grad_norm, samples, tokens, samples_per_s, tokens_per_s,
visual_tokens_per_sample, local_kept (share of local tokens the selector kept), mfu (GPU only),
skipped (DeepSpeed discarded the step), empty (no sample was left, so it was skipped), dropped_rows,
dummy_batches and batch (a hash of the row ids, to compare runs). A resumed stage first cuts the
file back to its checkpoint's step, so every step appears once.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Protocol

import torch

from slime_data.shards import fsync_write

METRICS = "metrics.jsonl"
DROPPED = "dropped-rank{rank}.jsonl"  # per rank: {step, id, reason} of every row left out
PLOT = "loss.png"
REPORT_TO = ("none", "tensorboard", "wandb")
# Dense bf16 tensor-core peak in TFLOP/s, by a substring of the CUDA device name.
PEAK_BF16_TFLOPS = {
    "H100": 989.0,
    "H200": 989.0,
    "H800": 989.0,
    "A100": 312.0,
    "A800": 312.0,
    "L40S": 362.0,
    "L4": 121.0,
}


class StepLog:
    """A JSONL file of records keyed by optimizer step (metrics, dropped rows)."""

    def __init__(self, path: Path, keep_until_step: int) -> None:
        """Open for appending, keeping only the lines of steps <= keep_until_step (0 = start afresh)."""
        self.path = path
        kept = [line for line in read_metrics(path) if line["step"] <= keep_until_step]
        fsync_write(path, "".join(json.dumps(line) + "\n" for line in kept).encode("utf-8"))
        self._file = open(path, "a", encoding="utf-8")

    def append(self, record: dict[str, Any]) -> None:
        self._file.write(json.dumps(record) + "\n")
        self._file.flush()

    def close(self) -> None:
        self._file.close()


def read_metrics(path: Path) -> list[dict[str, Any]]:
    """The step records of a metrics file; a torn last line (kill -9 mid-write) is ignored."""
    if not path.is_file():
        return []
    records = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError:
            break
    return records


class Reporter(Protocol):
    def log(self, metrics: dict[str, float], step: int) -> None: ...
    def close(self) -> None: ...


class NoReporter:
    def log(self, metrics: dict[str, float], step: int) -> None:
        pass

    def close(self) -> None:
        pass


class TensorBoardReporter:
    def __init__(self, log_dir: Path) -> None:
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError:
            raise ValueError("--report-to tensorboard needs the tensorboard package: pip install tensorboard") from None
        self.writer = SummaryWriter(log_dir=str(log_dir))

    def log(self, metrics: dict[str, float], step: int) -> None:
        for name, value in metrics.items():
            self.writer.add_scalar(name, value, step)

    def close(self) -> None:
        self.writer.close()


class WandbReporter:
    def __init__(self, out_dir: Path, run_name: str, config: dict[str, Any]) -> None:
        try:
            import wandb
        except ImportError:
            raise ValueError("--report-to wandb needs the wandb package: pip install wandb") from None
        self.run = wandb.init(project="slime", name=run_name, dir=str(out_dir), config=config, reinit="finish_previous")

    def log(self, metrics: dict[str, float], step: int) -> None:
        self.run.log(metrics, step=step)

    def close(self) -> None:
        self.run.finish()


def open_reporter(kind: str, stage_dir: Path, run_name: str, config: dict[str, Any]) -> Reporter:
    if kind == "none":
        return NoReporter()
    if kind == "tensorboard":
        return TensorBoardReporter(stage_dir / "tensorboard")
    if kind == "wandb":
        return WandbReporter(stage_dir, run_name, config)
    raise ValueError(f"--report-to {kind!r} is not one of {', '.join(REPORT_TO)}")


def scalar_metrics(record: dict[str, Any], stage: str) -> dict[str, float]:
    """The numeric fields of a step record, named `stage/field` for the reporters."""
    skip = {"step", "epoch", "batch"}
    return {
        f"{stage}/{k}": float(v)
        for k, v in record.items()
        if k not in skip and isinstance(v, (int, float)) and not isinstance(v, bool)
    }


class StageTelemetry:
    """Where a stage's step records go: metrics.jsonl and the reporter (rank 0), dropped rows (each rank)."""

    def __init__(
        self, stage_dir: Path, rank: int, start_step: int, report_to: str, run_name: str, config: dict[str, Any]
    ) -> None:
        self.main = rank == 0
        self.dropped = StepLog(stage_dir / DROPPED.format(rank=rank), keep_until_step=start_step)
        self.metrics = StepLog(stage_dir / METRICS, keep_until_step=start_step) if self.main else None
        self.reporter = open_reporter(report_to, stage_dir, run_name, config) if self.main else NoReporter()
        self.run_name = run_name

    def step(self, record: dict[str, Any], dropped: list[tuple[str, str]]) -> None:
        for row_id, reason in dropped:
            self.dropped.append({"step": record["step"], "id": row_id, "reason": reason})
        if self.main:
            self.metrics.append(record)
            self.reporter.log(scalar_metrics(record, self.run_name), record["step"])

    def close(self) -> None:
        self.dropped.close()
        if self.main:
            self.metrics.close()
        self.reporter.close()


# ---- model FLOPs utilisation ---------------------------------------------------------------------
def peak_flops(device: torch.device) -> float | None:
    """Peak dense bf16 FLOP/s of the GPU, None on CPU or an unknown GPU (then no MFU is reported)."""
    if device.type != "cuda":
        return None
    name = torch.cuda.get_device_name(device)
    return next((tflops * 1e12 for key, tflops in PEAK_BF16_TFLOPS.items() if key in name), None)


def train_flops(
    llm_params: int, vision_params: int, llm_tokens: int, vision_tokens: int, llm_trains: bool, vision_trains: bool
) -> float:
    """FLOPs of one step: 2·N per token forward, 2·N more for activation gradients where gradients
    flow (the LLM always: trainable adapters sit below it), 2·N more for weight gradients of trained
    parts. Attention's quadratic term and the small adapters are left out."""
    llm = 2.0 * llm_params * llm_tokens * (2 + int(llm_trains))
    vision = 2.0 * vision_params * vision_tokens * (3 if vision_trains else 1)
    return llm + vision


# ---- the stage plot ----------------------------------------------------------------------------
def plot_metrics(metrics: Path, png: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    records = read_metrics(metrics)
    trained = [r for r in records if r.get("loss") is not None]
    fig, (loss_ax, lr_ax) = plt.subplots(2, 1, figsize=(7, 5), sharex=True)
    loss_ax.plot([r["step"] for r in trained], [r["loss"] for r in trained], color="tab:blue")
    loss_ax.set_ylabel("loss")
    loss_ax.set_title(title)
    loss_ax.grid(alpha=0.3)
    lr_ax.plot([r["step"] for r in records], [r["lr"] for r in records], color="tab:orange")
    lr_ax.set_ylabel("learning rate")
    lr_ax.set_xlabel("optimizer step")
    lr_ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(png, dpi=100)
    plt.close(fig)
