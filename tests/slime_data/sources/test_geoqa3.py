"""GeoQA3 adapter on a tiny fixture in the published layout, with split pickles written by the
tests, and the restricted unpickler against a malicious pickle."""

from __future__ import annotations

import json
import os
import pickle
from pathlib import Path

import numpy as np
import pytest

from slime_data.sources import REGISTRY, SourceNotFound
from slime_data.sources.geoqa3 import UnsafePickle, load_restricted_pickle

adapter = REGISTRY["geoqa3"]


@pytest.fixture
def geoqa(source_fixtures: Path, copy_of) -> Path:
    return copy_of(source_fixtures / "geoqa3")


def _problem(problem_id, label: int = 0) -> dict:
    """One problem as GeoQA's pickles hold it: the diagram as a greyscale array, tokens, program."""
    return {
        "id": problem_id,
        "image": np.full((6, 8), 255, dtype=np.uint8),  # (H, W)
        "token_list": ["如图", "，", "N_0"],
        "manual_program": ["g_half", "N_0"],
        "numbers": [np.float64(50.0)],
        "choice_nums": [50.0, 60.0, 65.0, None],
        "label": label,
    }


def _write_pickle(path: Path, problems: list, protocol: int = 4) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(pickle.dumps(problems, protocol=protocol))


class _Exploit:
    """Unpickling this runs ``touch <marker>`` through os.system, unless the unpickler refuses."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_locate_from_release_root_or_inner_folder(geoqa: Path, tmp_path: Path, read_split) -> None:
    assert adapter.locate(geoqa) == geoqa / "data"
    assert adapter.locate(geoqa / "data") == geoqa / "data"
    inner = geoqa / "data" / "GeoQA3"
    assert adapter.locate(inner) == inner
    assert read_split(adapter, inner, "all").records[0].image.path == "image/0.png"
    with pytest.raises(SourceNotFound, match="GeoQA3/json"):
        adapter.locate(tmp_path)


def test_without_split_pickles_the_release_is_split_all(geoqa: Path, read_split) -> None:
    assert adapter.default_splits == ("train",)
    assert adapter.splits(geoqa) == ["all"]
    with pytest.raises(SourceNotFound, match="no split 'train'.*present: all"):
        list(adapter.read(geoqa, "train"))
    out = read_split(adapter, geoqa, "all")
    assert out.ids == ["geoqa3/0", "geoqa3/1", "geoqa3/10"] and not out.rejects  # numeric order


def test_records_are_lettered_multiple_choice_with_the_worked_solution(geoqa: Path, read_split) -> None:
    out = read_split(adapter, geoqa, "all")
    record = out.by_id("geoqa3/0")
    assert record.conversations[0]["value"] == (
        "<image>\n如图，AB∥CD，直线EF交AB于点E，交CD于点F，EG平分∠BEF，交CD于点G，∠EFG＝50°，则∠EGF等于（）\n"
        "A. 50°\nB. 60°\nC. 65°\nD. 90°\nAnswer with the option's letter from the given choices directly."
    )
    assert record.conversations[1] == {"from": "gpt", "value": "C"}
    assert record.answer == "C" and record.choices == ["50°", "60°", "65°", "90°"] and record.task == "geometry"
    assert record.rationale.startswith("解：∵AB∥CD") and record.image.path == "GeoQA3/image/0.png"
    assert record.meta["knowledge_points"] == ["平行线的性质", "角平分线的定义"] and record.meta["answer_text"] == "65°"
    assert out.by_id("geoqa3/1").rationale is None  # empty comment
    assert out.by_id("geoqa3/10").rationale is None and out.by_id("geoqa3/10").answer == "A"  # no comment


@pytest.mark.parametrize("protocol", [2, 4, 5])
def test_official_splits_come_from_the_pickles(geoqa: Path, read_split, protocol: int) -> None:
    pickles = geoqa / "data" / "GeoQA2.2"
    _write_pickle(pickles / "train.pk", [_problem(10), _problem(np.int64(0))], protocol)
    _write_pickle(pickles / "dev.pk", [_problem(1), _problem(99)], protocol)
    _write_pickle(pickles / "test.pk", [_problem("1")], protocol)
    assert adapter.splits(geoqa) == ["train", "dev", "test"]
    assert read_split(adapter, geoqa, "train").ids == ["geoqa3/0", "geoqa3/10"]
    dev = read_split(adapter, geoqa, "dev")
    assert dev.ids == ["geoqa3/1"] and dev.reasons == {"geoqa3/99": "problem_missing"}
    with pytest.raises(SourceNotFound, match="no split 'all'"):
        list(adapter.read(geoqa, "all"))


def test_pickles_inside_the_geoqa3_folder_are_found_too(geoqa: Path, read_split) -> None:
    inner = geoqa / "data" / "GeoQA3"
    _write_pickle(inner / "train.pk", [_problem(1)])
    assert adapter.splits(inner) == ["train"]
    assert read_split(adapter, inner, "train").ids == ["geoqa3/1"]


def test_a_malicious_pickle_is_refused_before_it_runs(geoqa: Path, tmp_path: Path) -> None:
    marker = tmp_path / "exploited"
    path = geoqa / "data" / "GeoQA2.2" / "train.pk"
    _write_pickle(path, [_problem(0), {"id": 1, "image": _Exploit(marker)}])
    with pytest.raises(UnsafePickle, match=r"train.pk: refusing to unpickle (posix|nt)\.system"):
        load_restricted_pickle(path)
    assert adapter.splits(geoqa) == ["train"]  # listing splits does not open the pickles
    with pytest.raises(UnsafePickle, match="only plain containers, strings, numbers and numpy arrays"):
        list(adapter.read(geoqa, "train"))
    assert not marker.exists()


@pytest.mark.parametrize("payload", [b"", b"\x80\x04not a pickle", pickle.dumps({"id": 0})])
def test_unreadable_or_unexpected_pickles_are_clear_errors(geoqa: Path, payload: bytes) -> None:
    path = geoqa / "data" / "GeoQA2.2" / "train.pk"
    path.parent.mkdir(parents=True)
    path.write_bytes(payload)
    with pytest.raises(ValueError, match="train.pk"):
        list(adapter.read(geoqa, "train"))


def test_malformed_problems_are_counted_rejects(geoqa: Path, read_split) -> None:
    json_dir = geoqa / "data" / "GeoQA3" / "json"
    good = json.loads((json_dir / "0.json").read_text())
    changes = {"2": {"label": 7}, "3": {"label": "E"}, "4": {"choices": "50°, 60°"}, "5": {"subject": None}, "6": {}}
    for name, change in changes.items():
        (json_dir / f"{name}.json").write_text(json.dumps(dict(good, **change)))
    (json_dir / "7.json").write_text('{"subject": ')
    (json_dir / "8.json").write_text("[]")
    (json_dir / "notes.json").write_text(json.dumps(good))  # not a problem id
    for name in ("2", "3", "4", "5", "7", "8"):
        (geoqa / "data" / "GeoQA3" / "image" / f"{name}.png").write_bytes(b"")
    out = read_split(adapter, geoqa, "all")
    assert out.ids == ["geoqa3/0", "geoqa3/1", "geoqa3/10"]
    assert out.reasons == {
        "geoqa3/2": "bad_value",
        "geoqa3/3": "bad_value",
        "geoqa3/4": "wrong_type",
        "geoqa3/5": "missing_field",
        "geoqa3/6": "image_missing",
        "geoqa3/7": "bad_json",
        "geoqa3/8": "not_an_object",
        "geoqa3/notes": "bad_value",
    }
