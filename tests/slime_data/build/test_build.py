"""`slime-data build` end to end: real samples + synthetic source + planted duplicates and benchmark items."""

from __future__ import annotations

import html.parser
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from PIL import Image, ImageDraw
from typer.testing import CliRunner

from slime_data.cli.main import app
from slime_data.shards import ShardSet, validate_shard_set
from slime_data.synth.generate import SynthConfig, generate_synth

REAL_SAMPLES = Path(__file__).resolve().parents[3] / ".." / "shared" / "real-samples"
MATHVISTA = REAL_SAMPLES / "mathvista" / "data" / "testmini.json"
MMMU = REAL_SAMPLES / "mmmu" / "mmmu" / "answer_dict_val.json"
runner = CliRunner()

SAME_QUESTION = "What is the value of the tallest bar in 2019?"
OTHER_QUESTION = "How many bars are drawn in the chart?"
MMMU_OPTIONS = ["SERGE VINOGRADOV", "GEORGES SEURAT", "VINCENT WILLEM VAN GOGH", "PAUL GAUGUIN"]  # validation_Art_2


def chart_image(seed: int, size: tuple[int, int] = (900, 640)) -> Image.Image:
    """A bar chart with labels: enough structure for perceptual hashing to tell charts apart."""
    image = Image.new("RGB", size, "white")
    draw = ImageDraw.Draw(image)
    heights = [(seed * 37 + k * 53) % 400 + 60 for k in range(7)]
    for k, h in enumerate(heights):
        x = 60 + k * 115
        draw.rectangle([x, 600 - h, x + 80, 600], fill=((seed * 70 + k * 30) % 255, 90, 160))
        draw.text((x + 10, 610), f"{2013 + k}", fill="black")
    draw.line([50, 600, 880, 600], fill="black", width=3)
    return image


def plant_chartqa(root: Path) -> Path:
    """A ChartQA-layout source with near-duplicate copies of one chart and a MathVista question."""
    split_dir = root / "ChartQA Dataset" / "train"
    png = split_dir / "png"
    png.mkdir(parents=True)
    base = chart_image(1)
    base.save(png / "base.png")
    base.save(png / "copy_reencoded.jpg", quality=85)
    base.resize((720, 512)).save(png / "copy_resized.png")
    w, h = base.size
    base.crop((12, 8, w - 12, h - 8)).save(png / "copy_cropped.png")
    for k in range(2, 6):
        chart_image(k).save(png / f"other_{k}.png")
    mathvista = json.loads(MATHVISTA.read_text())
    records = [
        {"imgname": "base.png", "query": SAME_QUESTION, "label": "460"},
        {"imgname": "base.png", "query": OTHER_QUESTION, "label": "7"},
        {"imgname": "copy_reencoded.jpg", "query": SAME_QUESTION, "label": "460"},
        {"imgname": "copy_resized.png", "query": SAME_QUESTION + " ", "label": "460"},
        {"imgname": "copy_cropped.png", "query": SAME_QUESTION.lower(), "label": "460"},
        {"imgname": "other_2.png", "query": mathvista["1"]["question"], "label": mathvista["1"]["answer"]},
    ] + [
        {"imgname": f"other_{k}.png", "query": f"What is shown in chart number {k}?", "label": str(k)}
        for k in range(3, 6)
    ]
    (split_dir / "train_human.json").write_text(json.dumps(records))
    return root


def plant_scienceqa(root: Path) -> Path:
    """The real ScienceQA sample plus one train problem carrying an MMMU item's option set."""
    shutil.copytree(REAL_SAMPLES / "scienceqa", root)
    problems_file = root / "data" / "scienceqa" / "problems.json"
    problems = json.loads(problems_file.read_text())
    problems["900001"] = {
        "question": "Who painted this work?",
        "choices": MMMU_OPTIONS,
        "answer": 1,
        "hint": "",
        "image": None,
        "task": "closed choice",
        "grade": "grade12",
        "subject": "social science",
        "topic": "art",
        "category": "painters",
        "skill": "identify",
        "lecture": "",
        "solution": "",
        "split": "train",
    }
    problems_file.write_text(json.dumps(problems))
    splits_file = root / "data" / "scienceqa" / "pid_splits.json"
    splits = json.loads(splits_file.read_text())
    splits["train"].append("900001")
    splits_file.write_text(json.dumps(splits))
    return root


@pytest.fixture(scope="module")
def sources(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("sources")
    generate_synth(root / "synth", SynthConfig(n=12, captions=0, seed=3))
    plant_chartqa(root / "chartqa")
    plant_scienceqa(root / "scienceqa")
    return root


def write_recipe(path: Path, **overrides) -> Path:
    recipe = {
        "name": "test-build",
        "seed": 0,
        "chunk_size": 4,
        "sources": [
            {"name": "synth"},
            {"name": "chartqa"},
            {"name": "scienceqa", "splits": ["train", "test"], "cap": 40},
        ],
        "steps": [
            {"step": "load_image"},
            {"step": "resolution", "min_short_side": 64, "min_pixels": 4096, "max_aspect_ratio": 12},
            {"step": "quality", "min_blur_variance": 1, "min_pixel_std": 1},
            {"step": "teacher", "enabled": False, "mode": "rationale"},
            {"step": "exact_dedup"},
            {"step": "near_dedup", "max_hamming": 8, "min_jaccard": 0.7},
            {
                "step": "decontaminate",
                "benchmarks": [{"format": "mathvista", "path": str(MATHVISTA)}, {"format": "mmmu", "path": str(MMMU)}],
            },
            {"step": "cap"},
        ],
    }
    recipe.update(overrides)
    path.write_text(yaml.safe_dump(recipe, sort_keys=False))
    return path


def build(recipe: Path, root: Path, out: Path, *extra: str):
    return runner.invoke(
        app,
        ["build", "test", "--config", str(recipe), "--root", str(root), "--out", str(out), "--workers", "1", *extra],
    )


def shas(folder: Path) -> list[str]:
    return [s["sha256"] for s in ShardSet(folder).manifest["shards"]]


@pytest.fixture(scope="module")
def built(sources: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    work = tmp_path_factory.mktemp("built")
    result = build(write_recipe(work / "recipe.yaml"), sources, work / "out")
    assert result.exit_code == 0, result.output
    return work / "out"


def test_counts_balance_step_by_step(built: Path) -> None:
    manifest = ShardSet(built).manifest
    assert validate_shard_set(built) == []
    steps = manifest["steps"]
    for count in steps:
        if count["step"] != "source":
            assert count["in"] == count["out"] + count["rejected"], count
    for before, after in zip(steps[1:], steps[2:]):  # each step sees what the one before it kept
        assert after["in"] == before["out"], (before, after)
    read = steps[0]["in"]
    assert read == manifest["num_rows"] + manifest["rejects"]["total"]
    assert sum(c["rejected"] for c in steps) == manifest["rejects"]["total"]


def test_planted_duplicates_removed_and_other_questions_kept(built: Path) -> None:
    rejects = {r["id"]: r for r in ShardSet(built).rejects()}
    kept = {r.id for r in ShardSet(built)}
    copies = ["chartqa/train_human_2", "chartqa/train_human_3", "chartqa/train_human_4"]
    for copy in copies:
        assert copy in rejects and rejects[copy]["step"] in ("exact_dedup", "near_dedup"), copy
    assert "chartqa/train_human_0" in kept  # the original (highest resolution, lowest id)
    assert "chartqa/train_human_1" in kept  # same image, another question
    assert {f"chartqa/train_human_{k}" for k in (6, 7, 8)} <= kept


def test_planted_benchmark_items_dropped(built: Path) -> None:
    rejects = {r["id"]: r for r in ShardSet(built).rejects()}
    assert rejects["chartqa/train_human_5"]["reason"].endswith("mathvista_testmini")
    assert rejects["chartqa/train_human_5"]["step"] == "decontaminate"
    mmmu = rejects["scienceqa/900001"]
    assert mmmu["step"] == "decontaminate" and "mmmu" in mmmu["reason"]


def test_report_and_card_are_valid(built: Path) -> None:
    page = (built / "report.html").read_text()
    parser = html.parser.HTMLParser()
    parser.feed(page)
    for figure in ("composition", "rejects", "resolution", "quality", "lengths"):
        assert f'<figure id="{figure}"><img src="data:image/png;base64,' in page
    assert not (built / "report").exists()  # everything is in the page
    assert "<h3>scienceqa · science</h3>" in page and "<h3>chartqa · chart</h3>" in page
    header = yaml.safe_load((built / "README.md").read_text().split("---")[1])
    assert header["dataset_info"]["splits"][0]["num_examples"] == ShardSet(built).manifest["num_rows"]
    assert runner.invoke(app, ["report", str(built)]).exit_code == 0


def test_deterministic_across_workers(sources: Path, built: Path, tmp_path: Path) -> None:
    recipe = write_recipe(tmp_path / "recipe.yaml")
    result = runner.invoke(
        app,
        [
            "build",
            "t",
            "--config",
            str(recipe),
            "--root",
            str(sources),
            "--out",
            str(tmp_path / "two"),
            "--workers",
            "2",
        ],
    )
    assert result.exit_code == 0, result.output
    assert shas(tmp_path / "two") == shas(built)


def test_shards_then_merge_equals_one_build(sources: Path, built: Path, tmp_path: Path) -> None:
    recipe = write_recipe(tmp_path / "recipe.yaml")
    for i in range(2):
        assert build(recipe, sources, tmp_path / f"slice{i}", "--shard", f"{i}/2").exit_code == 0
    result = runner.invoke(
        app, ["merge", str(tmp_path / "slice0"), str(tmp_path / "slice1"), "--out", str(tmp_path / "merged")]
    )
    assert result.exit_code == 0, result.output
    assert sorted(r.id for r in ShardSet(tmp_path / "merged")) == sorted(r.id for r in ShardSet(built))
    assert ShardSet(tmp_path / "merged").manifest["rejects"] == ShardSet(built).manifest["rejects"]


@pytest.mark.slow
@pytest.mark.parametrize("kill_when", ["units", "phase2"])
def test_kill_9_then_rerun_is_byte_identical(sources: Path, built: Path, tmp_path: Path, kill_when: str) -> None:
    recipe = write_recipe(tmp_path / "recipe.yaml", chunk_size=1)
    clean = tmp_path / "clean"
    assert build(recipe, sources, clean).exit_code == 0
    out = tmp_path / "killed"
    args = [
        sys.executable,
        "-m",
        "slime_data.cli.main",
        "build",
        "t",
        "--config",
        str(recipe),
        "--root",
        str(sources),
        "--out",
        str(out),
        "--workers",
        "1",
    ]
    process = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)

    def ready() -> bool:
        if kill_when == "units":
            return len(list((out / ".stage1" / ".work").glob("unit-*.done"))) >= 10
        return (out / ".stage1" / "manifest.json").exists()

    deadline = time.monotonic() + 120
    while not ready() and time.monotonic() < deadline and process.poll() is None:
        time.sleep(0.02)
    assert process.poll() is None, "the build finished before it could be killed"
    os.killpg(process.pid, signal.SIGKILL)
    process.wait()
    assert not (out / "manifest.json").exists()
    assert build(recipe, sources, out).exit_code == 0
    assert shas(out) == shas(clean)


def test_clear_errors(sources: Path, tmp_path: Path) -> None:
    cases = [
        (write_recipe(tmp_path / "a.yaml", stpes=[]), "stpes"),
        (write_recipe(tmp_path / "b.yaml", steps=[{"step": "resolution", "min_short_sid": 3}]), "min_short_sid"),
        (write_recipe(tmp_path / "c.yaml", steps=[{"step": "deduplicate"}]), "unknown step 'deduplicate'"),
        (write_recipe(tmp_path / "d.yaml", sources=[{"name": "dvqa"}]), str(sources / "dvqa")),
    ]
    for recipe, needle in cases:
        result = build(recipe, sources, tmp_path / "out")
        assert result.exit_code == 2, (needle, result.output)
        assert needle in result.output.replace("\n", ""), (needle, result.output)
    optional = write_recipe(tmp_path / "e.yaml", sources=[{"name": "dvqa", "optional": True}, {"name": "synth"}])
    result = build(optional, sources, tmp_path / "out-optional")
    assert result.exit_code == 0, result.output
    assert "skipped optional source dvqa" in result.output.replace("\n", "")


def test_a_build_that_keeps_nothing_fails_loudly(sources: Path, tmp_path: Path) -> None:
    steps = [{"step": "load_image"}, {"step": "resolution", "min_short_side": 100_000}]
    recipe = write_recipe(tmp_path / "r.yaml", sources=[{"name": "synth"}], steps=steps)
    result = build(recipe, sources, tmp_path / "out")
    assert result.exit_code == 2, result.output
    message = " ".join(result.output.split())
    assert "every one of the 42 rows read was rejected (resolution min_short_side (42))" in message
    result = build(recipe, sources, tmp_path / "out", "--max-reject-ratio", "1")
    assert result.exit_code == 0 and "warning: every one of the 42 rows" in " ".join(result.output.split())


def test_teacher_step_runs_from_the_recipe_against_a_local_server(sources: Path, tmp_path: Path, monkeypatch) -> None:
    import re

    from slime_data.teacher.testing import FakeOpenAIServer, ScriptedReply

    def rationale(request) -> ScriptedReply:
        gold = re.search(r"The correct answer is: (.*)", request.user_text)[1].strip()
        return ScriptedReply(content=json.dumps({"reasoning": f"Step by step, it is {gold}.", "final_answer": gold}))

    monkeypatch.setenv("OPENAI_API_KEY", "sk-planted-build-key")
    with FakeOpenAIServer(rationale) as server:
        teacher = {
            "step": "teacher",
            "mode": "rationale",
            "rewrite": "all",
            "base_url": server.url,
            "cache": str(tmp_path / "cache.sqlite"),
        }
        recipe = write_recipe(
            tmp_path / "recipe.yaml", sources=[{"name": "synth"}], steps=[{"step": "load_image"}, teacher]
        )
        result = build(recipe, sources, tmp_path / "out")
        assert result.exit_code == 0, result.output
        sent = len(server.requests)
    shard_set = ShardSet(tmp_path / "out")
    assert sent == len(shard_set) > 0
    assert all(
        r.rationale.startswith("Step by step") and r.meta["teacher"]["rationale"]["prompt"] == "rationale.v1"
        for r in shard_set
    )
    manifest_text = (tmp_path / "out" / "manifest.json").read_text()
    assert json.loads(manifest_text)["usage"]["teacher"]["requests_sent"] == sent
    assert "sk-planted-build-key" not in manifest_text + (tmp_path / "out" / "README.md").read_text()
