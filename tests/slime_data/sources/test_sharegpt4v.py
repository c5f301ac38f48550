"""ShareGPT4V mix adapter on the real record excerpt: multi-turn, text-only, repeated ids."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from slime_data.sources import REGISTRY, SourceNotFound
from slime_data.sources.sharegpt4v import ANNOTATIONS
from tests.slime_data.image_faults import plain_jpeg

adapter = REGISTRY["sharegpt4v"]
TEXT_ONLY = {
    "id": "i6IyJda_0",
    "model": "",
    "conversations": [
        {"from": "human", "value": "How to tell if a customer segment is well segmented? In 3 bullet points."},
        {"from": "gpt", "value": "1. Homogeneity\n2. Distinctiveness\n3. Stability"},
    ],
}


def data_root(root: Path, items: list) -> Path:
    """``root/data`` as the ShareGPT4V docs lay it out, a stand-in JPEG for every image named."""
    data = root / "data"
    (data / "sharegpt4v").mkdir(parents=True)
    (data / "sharegpt4v" / ANNOTATIONS).write_text(json.dumps(items, indent=2))
    for item in items:
        if isinstance(item, dict) and isinstance(item.get("image"), str) and ".." not in item["image"]:
            plain_jpeg(data / item["image"])
    return data


@pytest.fixture
def excerpt(real_samples: Path) -> dict:
    return json.loads((real_samples / "sharegpt4v" / "llava_mix665k_style.excerpt.json").read_text())[0]


def test_locate_and_splits(tmp_path: Path, excerpt: dict) -> None:
    data = data_root(tmp_path, [excerpt])
    assert adapter.locate(tmp_path) == data and adapter.locate(data) == data
    assert adapter.splits(data) == ["train"] and adapter.default_splits == ("train",)
    with pytest.raises(SourceNotFound, match=f"sharegpt4v/{ANNOTATIONS}"):
        adapter.locate(data / "coco")
    # The JSON may also sit directly in the data root.
    (data / "sharegpt4v" / ANNOTATIONS).rename(data / ANNOTATIONS)
    assert adapter.locate(data) == data and len(list(adapter.read(data, "train"))) == 1


def test_multi_turn_record_kept_as_published(tmp_path: Path, excerpt: dict, read_split) -> None:
    out = read_split(adapter, data_root(tmp_path, [excerpt]), "train")
    record = out.by_id("sharegpt4v/000000033471")
    assert record.conversations == excerpt["conversations"]  # "<image>\n…" first already
    assert record.image.path == "coco/train2017/000000033471.jpg" and record.task == "general"


def test_text_only_image_last_and_repeated_ids(tmp_path: Path, excerpt: dict, read_split) -> None:
    image_last = dict(
        excerpt,
        conversations=[
            {"from": "human", "value": "What are the colors of the bus in the image?\n<image>"},
            *excerpt["conversations"][1:],
        ],
    )
    items = [excerpt, TEXT_ONLY, image_last, excerpt]
    out = read_split(adapter, data_root(tmp_path, items), "train")
    assert out.ids == [
        "sharegpt4v/000000033471",
        "sharegpt4v/i6IyJda_0",
        "sharegpt4v/000000033471/1",
        "sharegpt4v/000000033471/2",
    ]
    text = out.by_id("sharegpt4v/i6IyJda_0")
    assert text.image is None and text.conversations == TEXT_ONLY["conversations"]
    moved = out.by_id("sharegpt4v/000000033471/1")
    assert moved.conversations[0]["value"] == "<image>\nWhat are the colors of the bus in the image?"
    assert moved.conversations[1:] == excerpt["conversations"][1:]
    assert moved.meta["native_id"] == "000000033471"


def test_malformed_records_are_counted_rejects(tmp_path: Path, excerpt: dict, read_split) -> None:
    turns = excerpt["conversations"]
    items = [
        dict(excerpt, id="a", image="../../../outside.jpg"),
        dict(excerpt, id="b", image=["coco/train2017/1.jpg"]),
        dict(excerpt, id="c", image="sam/images/missing.jpg"),
        dict(excerpt, id="d", conversations=[turns[1], turns[0]]),
        dict(excerpt, id="e", conversations=[{"from": "human", "value": 3}, turns[1]]),
        {k: v for k, v in dict(excerpt, id="f").items() if k != "conversations"},
        dict(excerpt, id="a"),  # a repeat of a rejected id still gets its own suffix
    ]
    data = data_root(tmp_path, items)
    (data / "sam/images/missing.jpg").unlink()
    out = read_split(adapter, data, "train")
    assert out.reasons == {
        "sharegpt4v/a": "image_outside_root",
        "sharegpt4v/b": "wrong_type",
        "sharegpt4v/c": "image_missing",
        "sharegpt4v/d": "bad_value",
        "sharegpt4v/e": "wrong_type",
        "sharegpt4v/f": "missing_field",
    }
    assert out.ids == ["sharegpt4v/a/1"]


def test_not_a_list_is_one_clear_error(tmp_path: Path, excerpt: dict) -> None:
    data = data_root(tmp_path, [excerpt])
    (data / "sharegpt4v" / ANNOTATIONS).write_text(json.dumps({"data": [excerpt]}))
    with pytest.raises(ValueError, match="is not a JSON list"):
        list(adapter.read(data, "train"))
