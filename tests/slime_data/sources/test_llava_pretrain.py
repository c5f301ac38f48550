"""LLaVA-Pretrain 558K adapter on the real record excerpt, laid out as the release unpacks."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from slime_data.sources import REGISTRY, SourceNotFound
from tests.slime_data.image_faults import plain_jpeg

adapter = REGISTRY["llava_pretrain"]
ANNOTATIONS = "blip_laion_cc_sbu_558k.json"


def release(root: Path, items: list, image_dir: str = "images/") -> Path:
    """``root/LLaVA-Pretrain`` with the annotations and a stand-in JPEG for every image named."""
    folder = root / "LLaVA-Pretrain"
    folder.mkdir(parents=True)
    (folder / ANNOTATIONS).write_text(json.dumps(items, indent=2))
    for item in items:
        if isinstance(item, dict) and isinstance(item.get("image"), str) and ".." not in item["image"]:
            plain_jpeg(folder / f"{image_dir}{item['image']}")
    return folder


@pytest.fixture
def excerpt(real_samples: Path) -> list[dict]:
    return json.loads((real_samples / "llava_pretrain" / "blip_laion_cc_sbu_558k.excerpt.json").read_text())


def test_locate_and_splits(tmp_path: Path, excerpt: list[dict]) -> None:
    folder = release(tmp_path, excerpt)
    assert adapter.locate(tmp_path) == folder and adapter.locate(folder) == folder
    assert adapter.splits(tmp_path) == ["train"] and adapter.default_splits == ("train",)
    with pytest.raises(SourceNotFound, match=ANNOTATIONS):
        adapter.locate(folder / "images")


def test_real_records_keep_their_captions_with_image_first(tmp_path: Path, excerpt: list[dict], read_split) -> None:
    out = read_split(adapter, release(tmp_path, excerpt), "train")
    assert out.ids == ["llava_pretrain/004539375", "llava_pretrain/001819539", "llava_pretrain/002838027"]
    record = out.records[0]
    assert record.conversations == [
        {"from": "human", "value": "<image>\nRender a clear and concise summary of the photo."},
        {"from": "gpt", "value": "select luxury furniture 3 - inch gel memory foam mattress topper"},
    ]
    assert record.image.path == "images/00453/004539375.jpg" and record.task == "caption"
    assert record.answer is None and record.rationale is None and record.meta["native_id"] == "004539375"


def test_image_first_records_and_folders_beside_the_json(tmp_path: Path, excerpt: list[dict], read_split) -> None:
    first = dict(
        excerpt[0],
        conversations=[
            {"from": "human", "value": "<image>\nDescribe the image concisely."},
            excerpt[0]["conversations"][1],
        ],
    )
    out = read_split(adapter, release(tmp_path, [first], image_dir=""), "train")
    assert out.records[0].image.path == "00453/004539375.jpg"
    assert out.records[0].conversations[0]["value"] == "<image>\nDescribe the image concisely."


def test_malformed_records_are_counted_rejects(tmp_path: Path, excerpt: list[dict], read_split) -> None:
    good = excerpt[0]
    items = [
        dict(good, id="1", image="../../outside.jpg"),
        dict(good, id="2", image="00000/2.jpg", conversations="Describe it"),
        dict(
            good,
            id="3",
            image="00000/3.jpg",
            conversations=[{"from": "system", "value": "x"}, good["conversations"][1]],
        ),
        dict(good, id="4", image="00000/4.jpg", conversations=good["conversations"][:1]),
        {k: v for k, v in dict(good, id="5").items() if k != "image"},
        dict(good, id=["6"], image="00000/6.jpg"),
        dict(good, id=7, image="00000/7.jpg"),  # an int id is tolerated (LLaVA-style files mix them)
        ["not", "an", "object"],
        good,
    ]
    folder = release(tmp_path, items)
    (folder / "images" / "00453" / "004539375.jpg").rename(folder / "moved.jpg")
    out = read_split(adapter, folder, "train")
    assert out.reasons == {
        "llava_pretrain/1": "image_outside_root",
        "llava_pretrain/2": "wrong_type",
        "llava_pretrain/3": "bad_value",
        "llava_pretrain/4": "bad_value",
        "llava_pretrain/5": "missing_field",
        "llava_pretrain/item5": "wrong_type",
        "llava_pretrain/item7": "not_an_object",
        "llava_pretrain/004539375": "image_missing",
    }
    assert out.ids == ["llava_pretrain/7"]


def test_unreadable_annotations_are_one_clear_error(tmp_path: Path, excerpt: list[dict]) -> None:
    folder = release(tmp_path, excerpt)
    text = (folder / ANNOTATIONS).read_text()
    (folder / ANNOTATIONS).write_text(text[: len(text) // 2])
    with pytest.raises(ValueError, match=f"{ANNOTATIONS} is not valid JSON"):
        list(adapter.read(folder, "train"))
