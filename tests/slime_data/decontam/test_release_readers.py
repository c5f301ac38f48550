"""The evaluation-only release readers (decontam/releases.py) on excerpts in each release layout."""

from __future__ import annotations

from pathlib import Path

import pytest

from slime_data.decontam.benchmarks import read_benchmark
from tests.slime_data.decontam.release_fixtures import image_bytes, write_root


@pytest.fixture(scope="module")
def root(tmp_path_factory) -> Path:
    return write_root(tmp_path_factory.mktemp("benchmarks"))


def test_mmbench_tsv(root: Path) -> None:
    items = read_benchmark("mmbench", root / "mmbench_en" / "mmbench_dev_20230712.tsv").items
    assert [i.item_id for i in items] == ["0", "1000000", "7"]
    first, copy, third = items
    assert first.choices == ["red", "green", "blue", "yellow"] and first.gold == "C" and first.context is None
    assert first.answers == ["C", "blue"] and first.images == [image_bytes(1)]  # base64 decoded
    assert copy.meta["circular_group"] == "0" and copy.gold == "D"  # the rotated copy of question 0
    assert third.choices == ["happy", "sad", "calm"] and third.context == "The picture was taken at dusk."
    assert third.meta["category"] == "image_emotion"


def test_mme_both_folder_layouts(root: Path) -> None:
    items = read_benchmark("mme", root / "mme" / "MME_Benchmark_release_version").items
    by_category = {}
    for item in items:
        by_category.setdefault(item.meta["category"], []).append(item)
    assert sorted(by_category) == ["artwork", "code_reasoning", "count"]
    artwork = by_category["artwork"]
    assert [i.gold for i in artwork] == ["Yes", "No"] and artwork[0].images[0].name == "10002.jpg"
    assert artwork[0].images[0].parent.name == "images" and artwork[0].images[0].is_file()
    assert by_category["code_reasoning"][0].images[0].suffix == ".png"  # found beside the .txt
    assert by_category["count"][1].question.startswith("Are there four giraffes")
    assert by_category["count"][0].meta["image_id"] == by_category["count"][1].meta["image_id"] == "count/000000006040"


def test_pope_splits_and_image_folder(root: Path) -> None:
    items = read_benchmark("pope", root / "pope" / "coco", images=root / "pope" / "val2014").items
    assert [i.item_id for i in items] == ["adversarial/1", "adversarial/2", "random/1", "random/2"]
    assert items[0].question == "Is there a snowboard in the image?" and items[0].gold == "yes"
    assert all(i.images[0].is_file() for i in items)


def test_vqa_family(root: Path) -> None:
    (textvqa,) = read_benchmark("textvqa", root / "textvqa" / "TextVQA_0.5.1_val.json").items
    assert textvqa.item_id == "34602" and len(textvqa.gold) == 10 and textvqa.gold.count("dakota") == 5
    assert textvqa.images[0] == root / "textvqa" / "train_images" / "003a8ae2ef43b901.jpg"
    (gqa,) = read_benchmark("gqa", root / "gqa" / "testdev_balanced_questions.json").items
    assert (gqa.item_id, gqa.gold, gqa.images[0].name) == ("20968379", "woman", "n288870.jpg")
    vqav2 = read_benchmark("vqav2", root / "vqav2").items
    assert [i.item_id for i in vqav2] == ["262148000", "262148002"]  # sorted by question id
    assert vqav2[0].gold.count("down") == 7 and vqav2[0].images[0].name == "COCO_val2014_000000262148.jpg"
    assert vqav2[0].images[0].is_file()


def test_amber_mmvet_llava_bench_mathverse(root: Path) -> None:
    amber = read_benchmark("amber", root / "amber").items
    assert [(i.item_id, i.gold) for i in amber] == [("1005", "yes"), ("1006", "no")]  # generative rows left out
    assert amber[0].images[0] == root / "amber" / "image" / "AMBER_1.jpg" and amber[0].images[0].is_file()
    (mmvet,) = read_benchmark("mmvet", root / "mmvet" / "mm-vet.json").items
    assert mmvet.gold == "-1 <AND> -5" and mmvet.meta["capability"] == ["ocr", "math"] and mmvet.images[0].is_file()
    (bench,) = read_benchmark("llava_bench", root / "llava_bench").items
    assert bench.gold.startswith("The famous sight") and bench.meta["caption"].startswith("An aerial view")
    assert bench.meta["category"] == "conv" and bench.images[0].is_file()
    mathverse = read_benchmark("mathverse", root / "mathverse").items
    assert [i.gold for i in mathverse] == ["B", "12"] and mathverse[0].meta["query_wo"].startswith("Please directly")
    assert mathverse[1].meta["problem_version"] == "Vision Only" and mathverse[0].images[0].is_file()


def test_bad_release_files(tmp_path: Path) -> None:
    bad = tmp_path / "bad.tsv"
    bad.write_text("id\ttext\n1\thello\n", encoding="utf-8")
    with pytest.raises(ValueError, match="not an MMBench TSV"):
        read_benchmark("mmbench", bad)
    (tmp_path / "mme" / "count").mkdir(parents=True)
    (tmp_path / "mme" / "count" / "1.txt").write_text("no tab here\n", encoding="utf-8")
    with pytest.raises(ValueError, match="expected 'question<TAB>Yes|No'"):
        read_benchmark("mme", tmp_path / "mme")
    with pytest.raises(FileNotFoundError, match="v2_mscoco_val2014_annotations.json"):
        (tmp_path / "v2_OpenEnded_mscoco_val2014_questions.json").write_text('{"questions": []}')
        read_benchmark("vqav2", tmp_path)
