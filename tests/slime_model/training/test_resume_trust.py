"""Resume loads no pickle: DeepSpeed's `.pt` files are read with `weights_only=True`, so a tampered
file in a resume folder is refused, naming it, and the code its pickle carries never runs."""

from __future__ import annotations

import shutil

import pytest
import torch

from slime_model.training import checkpoint as ckpt
from slime_model.training.recipe import load_recipe
from slime_model.training.runner import train
from tests.slime_model.training.training_helpers import metrics


class CodeOnLoad:
    """Unpickling this opens (creates) `path`: what a hostile checkpoint could do with any code."""

    def __init__(self, path: str) -> None:
        self.path = path

    def __reduce__(self):
        return open, (self.path, "w")


def test_an_untouched_checkpoint_resumes_with_weights_only_loading(interrupted, tiny_mix, tmp_path):
    out, recipe = interrupted[0], load_recipe(interrupted[1])
    shutil.copytree(out, tmp_path / "out")
    assert ckpt.latest_resume_checkpoint(tmp_path / "out" / "stage-1a")["step"] == 1
    [result] = train(tiny_mix, recipe, tmp_path / "out", resume=True)
    assert (result.status, result.steps) == ("resumed", 3)
    assert [r["step"] for r in metrics(tmp_path / "out" / "stage-1a")] == [1, 2, 3]


@pytest.mark.parametrize("victim", ["mp_rank_00_model_states.pt", "zero_pp_rank_0_mp_rank_00_optim_states.pt"])
def test_a_tampered_pt_file_is_refused_and_its_code_never_runs(interrupted, tiny_mix, tmp_path, victim):
    out, recipe = interrupted[0], load_recipe(interrupted[1])
    shutil.copytree(out, tmp_path / "out")
    marker = tmp_path / "code-ran"
    tampered = tmp_path / "out" / "stage-1a" / "checkpoints" / "step-000001" / victim
    assert tampered.is_file()
    torch.save({"module": CodeOnLoad(str(marker))}, tampered)
    refused = f"{victim} holds more than tensors.*Unsupported global: GLOBAL io.open"
    with pytest.raises(ckpt.UntrustedCheckpointError, match=refused):
        train(tiny_mix, recipe, tmp_path / "out", resume=True)
    assert not marker.exists()
    assert [r["step"] for r in metrics(tmp_path / "out" / "stage-1a")] == [1, 2]  # no step ran
