"""`generate_synth`: determinism, image sizes and modes, the layout on disk, replacing and failing safely."""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from pathlib import Path

import pytest
from PIL import Image

from slime_data.synth import FIGURE_KINDS, KINDS, SynthConfig, generate_synth
from slime_data.synth.layout import SynthInfo


def digests(folder: Path) -> dict[str, str]:
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def test_same_seed_gives_the_same_bytes_whatever_the_workers(synth_dir: Path, tmp_path: Path) -> None:
    info = SynthInfo.model_validate_json((synth_dir / "synth.json").read_text())
    config = SynthConfig(n=info.n, seed=info.seed, kinds=tuple(info.kinds), captions=info.captions)
    generate_synth(tmp_path / "again", config, workers=2)
    assert digests(tmp_path / "again") == digests(synth_dir)


def test_another_seed_gives_other_images(synth_dir: Path, tmp_path: Path) -> None:
    generate_synth(tmp_path / "other", SynthConfig(n=4, seed=8, captions=0))
    first = digests(synth_dir)
    other = digests(tmp_path / "other")
    shared = [name for name in other if name.startswith("images/")]
    assert shared and all(first[name] != other[name] for name in shared)


def test_an_image_does_not_depend_on_the_other_kinds(synth_dir: Path, tmp_path: Path) -> None:
    generate_synth(tmp_path / "tables", SynthConfig(n=2, seed=7, kinds=("table",), captions=0))
    only_tables = digests(tmp_path / "tables")
    assert only_tables["images/table/table-00000.png"] == digests(synth_dir)["images/table/table-00000.png"]


def test_layout_counts_and_info(synth_dir: Path, questions: list[dict], figures: dict[str, dict]) -> None:
    info = SynthInfo.model_validate_json((synth_dir / "synth.json").read_text())
    assert info.images == {kind: 3 for kind in KINDS} and len(figures) == 15
    assert info.questions == dict(Counter(q["kind"] for q in questions))
    multiple_choice = Counter(q["kind"] for q in questions if q["choices"])
    assert info.multiple_choice == {kind: multiple_choice[kind] for kind in KINDS}
    assert len({q["id"] for q in questions}) == len(questions)
    for q in questions:
        figure = figures[q["image_id"]]
        assert q["image"] == figure["image"] == f"images/{q['kind']}/{q['image_id']}.png"
        assert q["id"].startswith(q["image_id"] + "/")
        assert q["answer"] in q["rationale"].rsplit("So the answer is ", 1)[1], "the rationale ends with the answer"
    per_image = Counter(q["image_id"] for q in questions)
    assert max(per_image.values()) >= 3, "some images carry several questions"
    assert any(q["choices"] for q in questions) and any(q["choices"] is None for q in questions)
    for q in questions:
        if q["choices"]:
            assert q["answer"] in q["choices"] and len(set(q["choices"])) == len(q["choices"]) >= 2


def test_images_are_high_resolution_and_match_their_rows(synth_dir: Path, figures: dict[str, dict]) -> None:
    for figure in figures.values():
        with Image.open(synth_dir / figure["image"]) as image:
            assert image.format == "PNG"
            assert image.size == (figure["width"], figure["height"])
            assert max(image.size) >= (224 if figure["kind"] == "hatching" else 1344)  # hatching.SIDE
            assert image.mode == FIGURE_KINDS[figure["kind"]].MODE
            extrema = image.convert("L").getextrema()
            assert extrema[0] < 60 and extrema[1] == 255, "dark ink on a white page"


def test_a_rerun_replaces_an_earlier_set(tmp_path: Path) -> None:
    out = tmp_path / "set"
    generate_synth(out, SynthConfig(n=8, captions=2))
    generate_synth(out, SynthConfig(n=4, captions=0))
    assert len(list((out / "images").rglob("*.png"))) == 4
    assert not (out / "LLaVA-Pretrain").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["set"], "no temporary folders are left"


def test_refuses_a_folder_that_is_not_a_synth_set(tmp_path: Path) -> None:
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("keep me")
    with pytest.raises(ValueError, match="not empty"):
        generate_synth(tmp_path / "mine", SynthConfig(n=1, captions=0))
    assert (tmp_path / "mine" / "notes.txt").read_text() == "keep me"


def test_an_interrupted_run_leaves_nothing_and_keeps_the_old_set(tmp_path: Path) -> None:
    out = tmp_path / "set"
    generate_synth(out, SynthConfig(n=2, captions=0))
    before = digests(out)
    done = 0

    def crash() -> None:
        nonlocal done
        done += 1
        if done == 3:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        generate_synth(out, SynthConfig(n=6, seed=1, captions=0), on_job_done=crash)
    assert digests(out) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["set"]


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"n": -1}, "greater than or equal"),
        ({"kinds": ()}, "at least one"),
        ({"kinds": ("chart", "chart")}, "repeat"),
        ({"kinds": ("maps",)}, "chart"),
    ],
)
def test_config_is_validated(fields: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        SynthConfig(**fields)


def test_extra_images_and_captions_continue_a_kinds_numbering(tmp_path: Path) -> None:
    """`extra` pages of a kind are the pages a longer round-robin would have drawn: (seed, kind, index) fixes each."""
    more = SynthConfig(
        n=2, seed=3, kinds=("table", "hatching"), extra={"hatching": 2}, captions=1, extra_captions={"hatching": 2}
    )
    generate_synth(tmp_path / "more", more)
    generate_synth(tmp_path / "plain", SynthConfig(n=6, seed=3, kinds=("table", "hatching"), captions=0))
    extra, plain = digests(tmp_path / "more"), digests(tmp_path / "plain")
    pages = [f"images/hatching/hatching-{i:05d}.png" for i in range(3)]
    assert [extra[p] for p in pages] == [plain[p] for p in pages]
    info = SynthInfo.model_validate_json((tmp_path / "more" / "synth.json").read_text())
    assert info.images == {"table": 1, "hatching": 3} and info.extra == {"hatching": 2}
    captions = json.loads((tmp_path / "more" / "LLaVA-Pretrain" / "blip_laion_cc_sbu_558k.json").read_text())
    assert [c["id"] for c in captions] == ["000000000", "000000001", "000000002"]
    assert all("panel" in c["conversations"][1]["value"] for c in captions[1:])
