"""The helpers every adapter shares: JSON readers, field checks, image paths, record building."""

from __future__ import annotations

import codecs
from pathlib import Path

import pytest

from slime_data.record import ImageRef
from slime_data.sources import REGISTRY, SourceNotFound
from slime_data.sources.common import (
    Malformed,
    choice_letter,
    image_ref,
    iter_json_list,
    iter_jsonl,
    join_text,
    llava_conversation,
    locate_dataset,
    make_record,
    record_or_reject,
    require,
    require_str_list,
    single_turn,
)


def test_iter_json_list_streams_items_before_a_broken_tail(tmp_path: Path) -> None:
    path = tmp_path / "list.json"
    path.write_bytes(codecs.BOM_UTF8 + b'\r\n[\r\n\t{"a": 1.5},\r\n\t{"b": "\xc3\xa9"},\r\n\t{"c": ')
    items = iter_json_list(path)
    assert next(items) == {"a": 1.5} and isinstance(next(iter_json_list(path))["a"], float)
    assert next(items) == {"b": "é"}
    with pytest.raises(ValueError, match="list.json is not valid JSON: .*premature EOF") as err:
        next(items)
    assert "\n" not in str(err.value)  # one line for the CLI


def test_iter_json_list_refuses_other_top_levels(tmp_path: Path) -> None:
    (tmp_path / "dict.json").write_text('{"0": {}}')
    with pytest.raises(ValueError, match="is not a JSON list"):
        list(iter_json_list(tmp_path / "dict.json"))
    with pytest.raises(SourceNotFound, match="does not exist"):
        list(iter_json_list(tmp_path / "absent.json"))


def test_iter_jsonl_reports_each_bad_line(tmp_path: Path) -> None:
    path = tmp_path / "lines.jsonl"
    path.write_bytes(codecs.BOM_UTF8 + b'{"id": "1"}\r\n\r\n{"id": \n"\xff"\n{"id": "\xe2\x82\xac"}')
    lines = list(iter_jsonl(path))
    assert [(entry.number, entry.value) for entry in lines] == [
        (1, {"id": "1"}),
        (3, None),
        (4, None),
        (5, {"id": "€"}),
    ]
    assert lines[1].error.startswith("line 3:") and lines[2].error.startswith("line 4:")


def test_require_checks_presence_and_type() -> None:
    item = {"n": 3, "flag": True, "none": None, "words": ["a", 1]}
    assert require(item, "n", int) == 3
    assert require(item, "none", str, optional=True) is None and require(item, "absent", str, optional=True) is None
    for key, kind, reason in [("flag", int, "wrong_type"), ("n", str, "wrong_type"), ("none", str, "missing_field")]:
        with pytest.raises(Malformed) as err:
            require(item, key, kind)
        assert err.value.reason == reason and repr(key) in err.value.detail
    with pytest.raises(Malformed, match="list of strings"):
        require_str_list(item, "words")


def test_image_ref_stays_inside_the_root(tmp_path: Path) -> None:
    (tmp_path / "images").mkdir()
    (tmp_path / "images" / "a.png").write_bytes(b"png")
    assert image_ref(tmp_path, "./images/../images/a.png") == ImageRef(path="images/a.png", bytes=None)
    for path, reason in [
        ("../a.png", "image_outside_root"),
        ("/etc/hostname", "image_outside_root"),
        ("images/../../a.png", "image_outside_root"),
        ("images/\x00a.png", "image_outside_root"),
        ("images/b.png", "image_missing"),
        ("images", "image_missing"),
    ]:
        with pytest.raises(Malformed) as err:
            image_ref(tmp_path, path)
        assert err.value.reason == reason


def test_image_ref_follows_a_symlinked_images_folder(tmp_path: Path) -> None:
    (tmp_path / "other-disk").mkdir()
    (tmp_path / "other-disk" / "a.png").write_bytes(b"png")
    (tmp_path / "dataset").mkdir()
    (tmp_path / "dataset" / "images").symlink_to(tmp_path / "other-disk", target_is_directory=True)
    assert image_ref(tmp_path / "dataset", "images/a.png") == ImageRef(path="images/a.png", bytes=None)


def test_locate_dataset_tries_candidates_in_order_with_globs(tmp_path: Path) -> None:
    (tmp_path / "inner" / "train" / "7").mkdir(parents=True)
    (tmp_path / "inner" / "train" / "7" / "data.json").write_text("{}")
    assert locate_dataset("x", tmp_path, ("", "inner"), ("train/*/data.json",)) == tmp_path / "inner"
    with pytest.raises(SourceNotFound) as err:
        locate_dataset("x", tmp_path, ("", "other"), ("a.json", "b.json"))
    assert str(err.value).count(str(tmp_path)) == 5  # the root, then all four paths tried


def test_conversation_and_record_helpers() -> None:
    turns = [{"from": "human", "value": "Describe it.\n<image>", "extra": 1}, {"from": "gpt", "value": "A cat."}]
    assert llava_conversation(turns, has_image=True) == [
        {"from": "human", "value": "<image>\nDescribe it."},
        {"from": "gpt", "value": "A cat."},
    ]
    assert llava_conversation(turns, has_image=False)[0] == {"from": "human", "value": "Describe it."}
    for bad, reason in [(None, "missing_field"), ("text", "wrong_type"), ([], "bad_value")]:
        with pytest.raises(Malformed) as err:
            llava_conversation(bad, has_image=True)
        assert err.value.reason == reason
    assert choice_letter(["x", "y", "z"], 2) == "C"
    with pytest.raises(Malformed, match="out of range"):
        choice_letter(["x"], 1)
    assert join_text(" lecture ", None, " ", "solution") == "lecture\n\nsolution" and join_text(" ", None) is None

    adapter = REGISTRY["scienceqa"]
    record = make_record(
        adapter,
        "7",
        "train",
        task="science",
        conversations=single_turn("Q?", "A", False),
        image=None,
        meta={"grade": "grade3"},
        part=2,
    )
    assert record.id == "scienceqa/7/2" and record.meta["native_id"] == "7" and record.meta["grade"] == "grade3"
    # A record that breaks the contract (two placeholders) becomes a reject, not an exception.
    broken = record_or_reject(
        adapter,
        "8",
        lambda: make_record(
            adapter, "8", "train", task="science", conversations=single_turn("<image> twice", "A", True), image=None
        ),
    )
    assert broken.reason == "invalid_record" and broken.id == "scienceqa/8"
