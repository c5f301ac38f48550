"""The README's chain, as a new user runs it, ends with a model that has learned something.

build sophisticated -> mix --config pipelines/mix-demo.yaml --target 2k -> train -> eval (no arguments)
-> generate. The margin over chance is set from three training seeds of this chain (2026-12-05:
synth_heldout 24.5, 23.1 and 22.4 % against chance 10.6 %; the weakest seed clears chance by 11.9
points), so a lucky seed cannot pass it and a model that answers nothing cannot either.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from slime_data.paths import PIPELINES_DIR
from tests.slime_model.training.training_helpers import subprocess_env

MARGIN = 8.0  # points over chance; the weakest of three seeds cleared 11.9


def run(cwd: Path, app: str, *args: str) -> subprocess.CompletedProcess:
    code = f"import sys, torch; torch.set_num_threads(1); from {app} import app; sys.argv[0] = 'x'; app()"
    return subprocess.run(
        [sys.executable, "-c", code, *args], cwd=cwd, env=subprocess_env(), capture_output=True, text=True, timeout=900
    )


@pytest.mark.slow
def test_the_readme_chain_trains_a_model_that_beats_chance_and_answers(tmp_path: Path) -> None:
    for app, args in (
        ("slime_data.cli.main", ["build", "sophisticated"]),
        ("slime_data.cli.main", ["mix", "--config", str(PIPELINES_DIR / "mix-demo.yaml"), "--target", "2k"]),
        ("slime_model.cli", ["train", "--data", "manifests/mix.json"]),
        ("slime_model.cli", ["eval"]),
    ):
        done = run(tmp_path, app, *args)
        assert done.returncode == 0, f"{args}: {done.stderr[-3000:]}"

    results = json.loads((tmp_path / "eval" / "stage-3" / "results.json").read_text())
    held_out = results["benchmarks"]["synth_heldout"]
    accuracy, chance = held_out["metrics"]["accuracy"], held_out["metrics"]["chance"]
    assert held_out["n"] >= 100 and accuracy >= chance + MARGIN, (accuracy, chance)

    final_losses = [
        json.loads((tmp_path / "runs" / "tiny" / f"stage-{s}" / "metrics.jsonl").read_text().splitlines()[-1])["loss"]
        for s in ("1a", "3")
    ]
    assert final_losses[1] < 1.0 < final_losses[0], (
        "SFT learns the answers; the adapters alone cannot teach a random LM"
    )

    page = next((tmp_path / "eval" / "stage-3" / ".embedded" / "synth_heldout" / "images" / "hatching").glob("*.png"))
    # the training prompt's form (pipelines/source_prompts.yaml "open"): a 2-layer model knows no other
    question = (
        "Is the framed panel filled with parallel lines? Answer yes or no.\n"
        "Answer the question using a single word or phrase."
    )
    answer = run(
        tmp_path,
        "slime_model.cli",
        "generate",
        "--model",
        "runs/tiny/stage-3",
        "--image",
        str(page),
        "--prompt",
        question,
    )
    assert answer.returncode == 0, answer.stderr[-2000:]
    assert answer.stdout.strip() in ("yes", "no"), answer.stdout
