"""Step logs survive a kill (torn line) and a resume (cut back to the checkpoint); the plot; FLOPs."""

from __future__ import annotations

import json

import torch

from slime_model.training.telemetry import StepLog, peak_flops, plot_metrics, read_metrics, train_flops


def test_step_log_keeps_steps_up_to_the_checkpoint_and_ignores_a_torn_line(tmp_path):
    path = tmp_path / "metrics.jsonl"
    path.write_text(
        "".join(json.dumps({"step": s, "loss": 1.0 / s, "lr": 0.1}) + "\n" for s in range(1, 7)) + '{"step": 7, "lo'
    )
    assert [r["step"] for r in read_metrics(path)] == [1, 2, 3, 4, 5, 6]
    log = StepLog(path, keep_until_step=4)
    log.append({"step": 5, "loss": 0.5, "lr": 0.1})
    log.close()
    assert [r["step"] for r in read_metrics(path)] == [1, 2, 3, 4, 5]
    StepLog(path, keep_until_step=0).close()
    assert read_metrics(path) == []


def test_plot_has_loss_and_lr_and_tolerates_skipped_steps(tmp_path):
    path = tmp_path / "metrics.jsonl"
    records = [{"step": s, "loss": None if s == 3 else 2.0 / s, "lr": 1e-3 * s} for s in range(1, 6)]
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    plot_metrics(path, tmp_path / "loss.png", "stage 1a")
    assert (tmp_path / "loss.png").read_bytes()[:4] == b"\x89PNG"


def test_train_flops_counts_forward_activation_and_weight_gradients():
    frozen_llm = train_flops(
        llm_params=10, vision_params=4, llm_tokens=3, vision_tokens=5, llm_trains=False, vision_trains=False
    )
    assert frozen_llm == 2 * 10 * 3 * 2 + 2 * 4 * 5
    assert train_flops(10, 4, 3, 5, llm_trains=True, vision_trains=False) == 2 * 10 * 3 * 3 + 2 * 4 * 5
    assert peak_flops(torch.device("cpu")) is None
