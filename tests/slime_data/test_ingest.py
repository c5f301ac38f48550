"""`slime-data ingest` end to end: real samples round-trip, bad images are counted rejects, kill -9 resumes."""

from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pyarrow.dataset as pds
import pytest
from PIL import Image
from typer.testing import CliRunner

from slime_data.cli.main import app
from slime_data.shards import ShardSet, validate_shard_set
from tests.slime_data import image_faults

REAL_SAMPLES = Path(__file__).resolve().parents[2] / ".." / "shared" / "real-samples"
runner = CliRunner()


def cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "slime_data.cli.main", *args], capture_output=True, text=True, timeout=300
    )


def caption_source(root: Path, n: int, faults: dict[int, str] | None = None) -> Path:
    """A LLaVA-558K-format source with ``n`` generated JPEGs; ``faults`` plants bad images by index."""
    folder = root / "LLaVA-Pretrain"
    records = []
    for i in range(n):
        native = f"{i:09d}"
        relative = f"{native[:5]}/{native}.jpg"
        fault = (faults or {}).get(i, "plain_jpeg")
        if fault == "traversal":
            relative = "../../etc/passwd"
        elif fault != "missing":
            getattr(image_faults, fault)(folder / "images" / relative)
        records.append(
            {
                "id": native,
                "image": relative,
                "conversations": [
                    {"from": "human", "value": "Describe the image briefly.\n<image>"},
                    {"from": "gpt", "value": f"picture {i}"},
                ],
            }
        )
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "blip_laion_cc_sbu_558k.json").write_text(json.dumps(records))
    return root


def test_scienceqa_round_trip_loads_everywhere(tmp_path: Path) -> None:
    import datasets
    import polars as pl

    out = tmp_path / "sqa"
    result = runner.invoke(
        app, ["ingest", "scienceqa", "--root", str(REAL_SAMPLES / "scienceqa"), "--out", str(out), "--split", "all"]
    )
    assert result.exit_code == 0, result.output
    shard_set = ShardSet(out)
    assert len(shard_set) == 70 and validate_shard_set(out) == []
    files = [str(p) for p in shard_set.shard_paths]
    ds = datasets.load_dataset("arrow", data_files=files, split="train", cache_dir=str(tmp_path / "hf"))
    with_image = [i for i in range(len(shard_set)) if shard_set[i].image is not None]
    assert with_image, "the sample has test images"
    for i in with_image[:5]:
        assert isinstance(ds[i]["image"], Image.Image)
        assert ds[i]["image"].size == (shard_set[i].width, shard_set[i].height)
        assert ds[i]["conversations"] == shard_set[i].conversations
    assert pl.scan_ipc(files).select(pl.len()).collect().item() == 70
    assert pds.dataset(files, format="ipc").count_rows() == 70


def test_a_symlinked_images_folder_is_followed(tmp_path: Path) -> None:
    """The usual set-up: annotations in the dataset folder, images on another disk."""
    root = caption_source(tmp_path / "src", 6)
    images = root / "LLaVA-Pretrain" / "images"
    images.rename(tmp_path / "other-disk")
    images.symlink_to(tmp_path / "other-disk", target_is_directory=True)
    result = runner.invoke(app, ["ingest", "llava_pretrain", "--root", str(root), "--out", str(tmp_path / "out")])
    assert result.exit_code == 0, result.output
    assert ShardSet(tmp_path / "out").manifest["num_rows"] == 6


def test_a_run_that_cannot_read_its_rows_fails_above_max_reject_ratio(tmp_path: Path) -> None:
    root = caption_source(tmp_path / "src", 8, {i: "missing" for i in range(5)})  # 5 of 8 unreadable
    args = ["ingest", "llava_pretrain", "--root", str(root), "--out", str(tmp_path / "out")]
    result = runner.invoke(app, args)
    assert result.exit_code == 2, result.output
    message = " ".join(result.output.split())
    assert "5 of 8 rows (62%) could not be read" in message and "image_missing (5)" in message
    assert ShardSet(tmp_path / "out").manifest["num_rows"] == 3  # written, for inspection
    assert runner.invoke(app, [*args, "--max-reject-ratio", "0.7"]).exit_code == 0  # resumes, accepts

    nothing = caption_source(tmp_path / "none", 3, {i: "missing" for i in range(3)})
    args = ["ingest", "llava_pretrain", "--root", str(nothing), "--out", str(tmp_path / "out-none")]
    result = runner.invoke(app, args)
    assert result.exit_code == 2 and "3 of 3 rows (100%)" in " ".join(result.output.split())
    result = runner.invoke(app, [*args, "--max-reject-ratio", "1"])
    assert result.exit_code == 0 and "every one of the 3 rows read was rejected" in " ".join(result.output.split())


def test_bad_images_are_counted_rejects(tmp_path: Path) -> None:
    faults = {
        1: "truncated_jpeg",
        2: "zero_byte",
        3: "bomb_png",
        4: "cmyk_jpeg",
        5: "png16",
        6: "palette_alpha_png",
        7: "exif_rotated_jpeg",
        8: "traversal",
        9: "missing",
        10: "not_an_image",
    }
    root = caption_source(tmp_path / "src", 12, faults)
    out = tmp_path / "out"
    result = runner.invoke(app, ["ingest", "llava_pretrain", "--root", str(root), "--out", str(out)])
    assert result.exit_code == 0, result.output
    manifest = ShardSet(out).manifest
    rejects = {r["id"]: r["reason"] for r in ShardSet(out).rejects()}
    assert manifest["num_rows"] + manifest["rejects"]["total"] == 12
    assert rejects["llava_pretrain/000000001"] == "image_truncated"
    assert rejects["llava_pretrain/000000002"] == "image_empty"
    assert rejects["llava_pretrain/000000003"] == "image_too_large"
    assert rejects["llava_pretrain/000000008"] == "image_outside_root"
    assert rejects["llava_pretrain/000000009"] == "image_missing"
    assert "llava_pretrain/000000010" in rejects
    kept = {r.id: r for r in ShardSet(out)}
    for i in (4, 5, 6):  # CMYK, 16-bit and palette+alpha become plain RGB images
        with Image.open(io.BytesIO(kept[f"llava_pretrain/00000000{i}"].image.bytes)) as image:
            assert image.mode == "RGB"
    rotated = kept["llava_pretrain/000000007"]
    with Image.open(root / "LLaVA-Pretrain" / "images" / "00000" / "000000007.jpg") as original:
        assert (rotated.width, rotated.height) == (original.height, original.width)
    steps = {c["step"]: c for c in manifest["steps"]}
    assert steps["load_image"]["in"] == steps["load_image"]["out"] + steps["load_image"]["rejected"]


def test_user_mistakes_are_one_line(tmp_path: Path) -> None:
    for args, needle in [
        (["ingest", "nosuch", "--root", str(tmp_path), "--out", str(tmp_path / "o")], "unknown source"),
        (["ingest", "scienceqa", "--root", str(tmp_path / "missing"), "--out", str(tmp_path / "o")], "does not exist"),
        (
            [
                "ingest",
                "scienceqa",
                "--root",
                str(REAL_SAMPLES / "scienceqa"),
                "--out",
                str(tmp_path / "o"),
                "--split",
                "nope",
            ],
            "not found",
        ),
    ]:
        done = cli(*args)
        assert done.returncode == 2
        assert needle in done.stderr and "Traceback" not in done.stderr
        assert len(done.stderr.strip().splitlines()) <= 2


@pytest.mark.slow
def test_kill_9_then_rerun_is_byte_identical(tmp_path: Path) -> None:
    root = caption_source(tmp_path / "src", 240)
    clean = tmp_path / "clean"
    assert (
        cli("ingest", "llava_pretrain", "--root", str(root), "--out", str(clean), "--chunk-size", "8").returncode == 0
    )

    out = tmp_path / "killed"
    args = [
        sys.executable,
        "-m",
        "slime_data.cli.main",
        "ingest",
        "llava_pretrain",
        "--root",
        str(root),
        "--out",
        str(out),
        "--chunk-size",
        "8",
    ]
    process = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.monotonic() + 120
    while len(list((out / ".work").glob("unit-*.done"))) < 5 and time.monotonic() < deadline and process.poll() is None:
        time.sleep(0.05)
    assert process.poll() is None, "ingest finished before it could be killed; make the source bigger"
    os.killpg(process.pid, signal.SIGKILL)
    process.wait()
    assert not (out / "manifest.json").exists()
    finished_before = len(list((out / ".work").glob("unit-*.done")))

    rerun = cli("ingest", "llava_pretrain", "--root", str(root), "--out", str(out), "--chunk-size", "8")
    assert rerun.returncode == 0, rerun.stderr
    assert f"{finished_before} of 30 units were already done" in rerun.stderr.replace("\n", " ")
    shas = lambda folder: [s["sha256"] for s in ShardSet(folder).manifest["shards"]]  # noqa: E731
    assert shas(out) == shas(clean)
    assert (out / "rejects.jsonl").read_bytes() == (clean / "rejects.jsonl").read_bytes()
