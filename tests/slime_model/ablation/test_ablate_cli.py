"""`slime-model ablate --quick` end to end, as a user runs it: data, every arm trained and scored, the summary."""

from __future__ import annotations

import json
import subprocess
import sys

from PIL import Image

from slime_model.ablation.config import load_ablation


def _ablate(out, *extra):
    return subprocess.run(
        [
            sys.executable,
            "-c",
            "from slime_model.cli import app; app()",
            "ablate",
            "--quick",
            "--out",
            str(out),
            *extra,
        ],
        capture_output=True,
        text=True,
        timeout=900,
    )


def test_quick_mode_trains_and_scores_every_arm_then_reuses_them(tmp_path):
    out = tmp_path / "ablation"
    done = _ablate(out)
    assert done.returncode == 0, done.stderr[-3000:]
    config = load_ablation()
    arms = config.arm_names()
    scores = [json.loads(line) for line in (out / "scores.jsonl").read_text().splitlines()]
    assert sorted(s["arm"] for s in scores) == sorted(arms) and {s["seed"] for s in scores} == set(config.quick.seeds)
    assert all(0 <= s["accuracy"] <= 100 and 0 < s["chance"] < 100 for s in scores)
    for arm in arms:  # each run is a real training folder scored by slime-model eval
        results = json.loads((out / "runs" / arm / "seed-0" / "eval" / "results.json").read_text())
        assert results["benchmarks"]["hatching_heldout"]["n"] == 3 * config.quick.data.heldout_images
        assert results["generation"]["ablation"]["arm"] == arm
    summary = json.loads((out / "summary.json").read_text())
    assert [(a["claim"], a["arm"]) for a in summary["arms"]] == [
        (claim.key, arm) for claim in config.claim_list for arm in claim.arms
    ]
    table = (out / "summary.md").read_text()
    assert all(f"| {arm} |" in table for arm in arms) and "reference" in table
    with Image.open(out / "claims.png") as plot:
        assert plot.format == "PNG" and plot.width > plot.height
    assert "runs in" in done.stderr and "global-only" in done.stderr

    again = _ablate(out)  # finished runs are reused: nothing is trained again
    assert again.returncode == 0, again.stderr[-3000:]
    assert len((out / "scores.jsonl").read_text().splitlines()) == len(arms)
    assert json.loads((out / "summary.json").read_text())["runs"] == summary["runs"]


def test_a_missing_config_is_one_line(tmp_path):
    done = _ablate(tmp_path / "x", "--config", str(tmp_path / "none.yaml"))
    assert done.returncode == 2 and "--config" in done.stderr and "Traceback" not in done.stderr
