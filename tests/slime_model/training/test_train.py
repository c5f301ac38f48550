"""The tiny recipe end to end in this process (DeepSpeed on CPU, gloo, one rank): four stages, the
parameter groups each one may change, telemetry, skipping finished stages, the final checkpoint
generating, the non-finite step guard."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import pytest
import torch
from PIL import Image
from safetensors.torch import load_file
from typer.testing import CliRunner

from slime_model.cli import app
from slime_model.generate import answer
from slime_model.generation import load_checkpoint
from slime_model.modeling import PARAMETER_GROUPS, SliMEForConditionalGeneration
from slime_model.training import checkpoint as ckpt
from slime_model.training.recipe import load_recipe
from slime_model.training.runner import TrainingAborted, train
from slime_model.training.telemetry import open_reporter
from tests.slime_model.training.training_helpers import color_png, metrics, write_recipe

STAGES = ["1a", "1b", "2", "3"]
QUICK = {"max_steps": 2, "global_batch": 4, "micro_batch": 2}


@pytest.fixture(scope="module")
def tiny_run(tiny_mix, tmp_path_factory):
    root = tmp_path_factory.mktemp("run")
    recipe = load_recipe(
        write_recipe(
            root / "tiny.yaml",
            stage_changes=QUICK,
            data={"shuffle_buffer": 64, "group_by_length": True, "num_workers": 0},
        )
    )
    results = train(tiny_mix, recipe, root / "out")
    return root / "out", recipe, results


def _groups(weights: dict[str, torch.Tensor]) -> dict[str, dict[str, torch.Tensor]]:
    groups: dict[str, dict[str, torch.Tensor]] = {name: {} for name in PARAMETER_GROUPS}
    for key, tensor in weights.items():
        group = next(g for g, prefixes in PARAMETER_GROUPS.items() if key.startswith(prefixes))
        groups[group][key] = tensor
    return groups


def _changed(before: Path, after: Path) -> set[str]:
    old, new = _groups(load_file(before / "model.safetensors")), _groups(load_file(after / "model.safetensors"))
    return {g for g in old if any(not torch.equal(old[g][k], new[g][k]) for k in old[g])}


def test_all_four_stages_run_and_leave_checkpoints_metrics_and_plots(tiny_run):
    out, _, results = tiny_run
    assert [(r.name, r.status, r.steps) for r in results] == [(s, "trained", 2) for s in STAGES]
    for stage in STAGES:
        folder = out / f"stage-{stage}"
        assert ckpt.read_complete(folder)["steps"] == 2
        assert (folder / "config.json").is_file() and (folder / "slime_processor.json").is_file()
        assert (folder / "loss.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        assert not (folder / "checkpoints").exists()  # resumable state goes once the stage is done
        records = metrics(folder)
        assert [r["step"] for r in records] == [1, 2]
        for record in records:
            assert (
                record["loss"] > 0 and record["grad_norm"] > 0 and record["samples"] == 4 and record["tokens_per_s"] > 0
            )
            assert record["visual_tokens_per_sample"] > 0 and record["mfu"] is None and record["skipped"] is False
    assert metrics(out / "stage-2")[0]["local_kept"] == 1.0  # top-p 1.0 in pre-training stages
    assert metrics(out / "stage-1a")[0]["local_kept"] is None  # global branch only
    assert 0 < metrics(out / "stage-3")[0]["local_kept"] <= 1.0


def test_each_stage_changes_only_its_parameter_groups(tiny_run):
    out, _, _ = tiny_run
    previous = out / "init"
    expected = {
        "1a": {"global.mlp"},
        "1b": {"global.resampler"},
        "2": {"local.compressor"},
        "3": {"llm", "global.mlp", "global.resampler", "global.gate", "local.compressor"},
    }
    for stage in STAGES:
        assert _changed(previous, out / f"stage-{stage}") == expected[stage], stage
        previous = out / f"stage-{stage}"


def test_a_rerun_skips_finished_stages_and_refuses_another_recipe(tiny_run, tiny_mix, tmp_path):
    out, recipe, _ = tiny_run
    again = train(tiny_mix, recipe, out)
    assert [r.status for r in again] == ["done before"] * 4
    other = load_recipe(write_recipe(tmp_path / "other.yaml", seed=7, stage_changes=QUICK))
    with pytest.raises(ValueError, match="holds a run of another recipe"):
        train(tiny_mix, other, out)


def test_an_interrupted_stage_needs_resume(tiny_mix, tmp_path):
    recipe = load_recipe(write_recipe(tmp_path / "r.yaml", stage_changes=QUICK))
    ckpt.write_json(tmp_path / "out" / "stage-1a" / "checkpoints" / "latest.json", {"tag": "step-000001", "step": 1})
    with pytest.raises(ValueError, match="pass --resume to continue it"):
        train(tiny_mix, recipe, tmp_path / "out")


def test_the_final_checkpoint_reloads_and_generates(tiny_run, tmp_path):
    out, _, _ = tiny_run
    model, processor = load_checkpoint(out / "stage-3")
    assert isinstance(model, SliMEForConditionalGeneration) and not model.training
    assert (model.config.branch, model.config.global_expert, processor.settings.chat_template) == (
        "both",
        "mix",
        "vicuna_v1",
    )
    saved = load_file(out / "stage-3" / "model.safetensors")
    weights = model.state_dict()
    assert saved.keys() == weights.keys() and all(torch.equal(saved[k], weights[k]) for k in saved)
    image = Image.open(__import__("io").BytesIO(color_png("red", 200, 120)))
    text, tokens = answer(model, processor, "What colour is the picture?", image, max_new_tokens=6)
    # The answer is the checkpoint's own greedy continuation, decoded: its first token is the argmax
    # of the prompt's last logits, and the text is exactly the generated tokens.
    conversation = [{"from": "human", "value": "<image>\nWhat colour is the picture?"}]
    prompt = processor([conversation], [image], add_generation_prompt=True).to(model.device)
    new_tokens = model.generate(
        **prompt,
        max_new_tokens=6,
        do_sample=False,
        pad_token_id=processor.pad_token_id,
        eos_token_id=processor.tokenizer.eos_token_id,
    )
    last_logits = model(**prompt).logits[0, -1]
    last_logits[processor.image_token_id] = float("-inf")  # generate never emits a placeholder
    assert new_tokens[0, 0] == last_logits.argmax()
    decoded = processor.batch_decode(new_tokens, skip_special_tokens=True)[0].strip()
    assert (text, tokens) == (decoded, new_tokens.shape[1])
    assert 1 <= tokens <= 6

    picture = tmp_path / "red.png"
    picture.write_bytes(color_png("red", 200, 120))
    result = CliRunner().invoke(
        app,
        [
            "generate",
            "--model",
            str(out / "stage-3"),
            "--image",
            str(picture),
            "--prompt",
            "Colour?",
            "--max-new-tokens",
            "4",
        ],
    )
    assert result.exit_code == 0, result.output
    _, count = answer(model, processor, "Colour?", Image.open(picture).convert("RGB"), max_new_tokens=4)
    assert re.search(r"new tokens\s*│\s*(\d+)", result.output).group(1) == str(count)  # the same greedy answer


def test_non_finite_steps_are_skipped_counted_and_abort_past_the_limit(tiny_mix, tmp_path, monkeypatch):
    stage = {
        **load_recipe().model_dump(mode="json")["stages"][0],
        "max_steps": 5,
        "global_batch": 2,
        "micro_batch": 1,
        "alternate": False,
    }
    recipe = load_recipe(write_recipe(tmp_path / "r.yaml", stages=[stage], max_bad_steps=1, data={"num_workers": 0}))
    forward, calls = SliMEForConditionalGeneration.forward, []

    def poisoned(self, *args, **kwargs):  # steps 2 and 3 (micro-batches 3–6) get a NaN loss
        out = forward(self, *args, **kwargs)
        calls.append(1)
        if 3 <= len(calls) <= 6:
            out.loss = out.loss * float("nan")
        return out

    monkeypatch.setattr(SliMEForConditionalGeneration, "forward", poisoned)
    with pytest.raises(TrainingAborted, match="2 optimizer steps had non-finite gradients.*max_bad_steps is 1"):
        train(tiny_mix, recipe, tmp_path / "out")
    records = metrics(tmp_path / "out" / "stage-1a")
    assert [(r["step"], r["skipped"], r["loss"] is None) for r in records] == [
        (1, False, False),
        (2, True, True),
        (3, True, True),
    ]
    assert records[1]["grad_norm"] is None


@pytest.mark.parametrize("kind, module", [("tensorboard", "torch.utils.tensorboard"), ("wandb", "wandb")])
def test_report_to_a_missing_package_says_what_to_install(kind, module, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, module, None)  # makes the import fail
    with pytest.raises(ValueError, match=f"--report-to {kind} needs the .* package: pip install"):
        open_reporter(kind, tmp_path, "1a", {})
