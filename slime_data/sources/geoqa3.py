"""GeoQA (chen-judge/GeoQA, ACL Findings 2021): 4,998 Chinese middle-school geometry problems.

The release (``data.zip``) holds one ``GeoQA3/json/<id>.json`` per problem with its diagram in
``GeoQA3/image/<id>.png``, and the official split (3,499 / 745 / 754) as pickles
``GeoQA2.2/{train,dev,test}.pk``.

JSON fields. The repository documents none; the names below are those public loaders of the
release read: ``subject`` (the question), ``choices`` (four option strings), ``label`` (the
right option). Assumptions, not checked against the release itself: ``label`` is a 0-based
index as in the pickles (a letter "A".."D" or a digit string is accepted too); ``comment``,
when present, is the worked solution (kept as the rationale); ``formal_point`` (knowledge
points) and ``manual_program`` are kept in ``meta`` when present. The file name's stem is the id.

Splits. The JSON carries none, so a split's problems are the ``id``s of its pickle. The pickles
also hold every diagram as a numpy array; they are read only through ``RestrictedUnpickler``,
which admits plain containers, strings, numbers and numpy arrays and refuses anything else
before it runs (``UnsafePickle``). SliME's "GeoQA3 + GeoQA+ 76K" is GeoQA+'s 72K plus GeoQA
train (3.5K), so the default split is train. Without the pickles the release is offered only
as split ``all``.
"""

from __future__ import annotations

import codecs
import functools
import pickle
import posixpath
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from slime_data.record import Record, Reject
from slime_data.sources import prompts
from slime_data.sources.base import SourceAdapter, SourceNotFound, register
from slime_data.sources.common import (
    BAD_JSON,
    BAD_VALUE,
    Malformed,
    choice_letter,
    image_ref,
    join_text,
    locate_dataset,
    make_record,
    read_json,
    record_or_reject,
    require,
    require_object,
    require_str_list,
    require_text,
    single_turn,
)

try:  # numpy >= 2
    from numpy._core import multiarray as _np_multiarray
    from numpy._core import numeric as _np_numeric
except ImportError:  # numpy 1.x
    from numpy.core import multiarray as _np_multiarray
    from numpy.core import numeric as _np_numeric

PICKLE_SPLITS = ("train", "dev", "test")
ALL = "all"  # the whole JSON release, when no split pickles are present
PROBLEM_MISSING = "problem_missing"  # a split pickle names an id with no json/<id>.json


# --------------------------------------------------------------------------------------
# Restricted unpickling
# --------------------------------------------------------------------------------------


class UnsafePickle(ValueError):
    """A pickle that references something other than plain data and numpy arrays."""


# Every global a pickle of plain data and numpy arrays needs (numpy 1.x and 2.x spellings,
# protocols 2-5). Containers, strings and numbers are pickle opcodes and need no global.
_SAFE_GLOBALS: dict[tuple[str, str], Any] = {
    **{(f"numpy.{core}.multiarray", "_reconstruct"): _np_multiarray._reconstruct for core in ("core", "_core")},
    **{(f"numpy.{core}.multiarray", "scalar"): _np_multiarray.scalar for core in ("core", "_core")},
    **{(f"numpy.{core}.numeric", "_frombuffer"): _np_numeric._frombuffer for core in ("core", "_core")},
    ("numpy", "ndarray"): np.ndarray,
    ("numpy", "dtype"): np.dtype,
    ("_codecs", "encode"): codecs.encode,  # how protocol 2 spells bytes
}


class RestrictedUnpickler(pickle.Unpickler):
    """Unpickles plain containers, strings, numbers and numpy arrays; refuses any other global.

    A pickle runs code only through the globals it names (``find_class``), so refusing every
    global outside ``_SAFE_GLOBALS`` stops a malicious pickle before anything executes.
    """

    def find_class(self, module: str, name: str) -> Any:
        try:
            return _SAFE_GLOBALS[(module, name)]
        except KeyError:
            raise UnsafePickle(
                f"refusing to unpickle {module}.{name}: only plain containers, strings, numbers "
                "and numpy arrays are allowed"
            ) from None


def load_restricted_pickle(path: Path) -> Any:
    """The contents of ``path`` through ``RestrictedUnpickler``; ValueError (naming it) otherwise."""
    try:
        with open(path, "rb") as f:
            # latin1: numpy arrays pickled under Python 2 store their buffers as 8-bit str.
            return RestrictedUnpickler(f, encoding="latin1").load()
    except UnsafePickle as err:
        raise UnsafePickle(f"{path}: {err}") from None
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError, IndexError) as err:
        raise ValueError(f"{path} is not a readable pickle: {err}") from None


@functools.lru_cache(maxsize=8)
def _pickle_ids(path: str, mtime_ns: int, size: int) -> tuple[str, ...]:
    """The problem ids of a split pickle, in the numeric order of ``_id_order``.

    Cached by path, mtime and size: ``splits`` and ``read`` both need them.
    """
    problems = load_restricted_pickle(Path(path))
    if not isinstance(problems, list) or not all(isinstance(p, dict) and "id" in p for p in problems):
        raise ValueError(f"{path}: expected a list of problems, each with an 'id'")
    ids = {str(int(p["id"])) if isinstance(p["id"], (int, np.integer)) else str(p["id"]).strip() for p in problems}
    return tuple(sorted(ids, key=_id_order))


def _id_order(native_id: str) -> tuple[int, int | str]:
    """Numeric ids in numeric order ("2" before "10"), any others after them by name."""
    return (0, int(native_id)) if native_id.isdigit() else (1, native_id)


# --------------------------------------------------------------------------------------
# The adapter
# --------------------------------------------------------------------------------------


@register
class GeoQA3(SourceAdapter):
    name = "geoqa3"
    license = "unstated by the GeoQA authors (research release)"
    default_splits = ("train",)
    layout = """\
<root>/data/  (data.zip unpacked; or the GeoQA3/ folder itself)
  GeoQA3/json/<id>.json     {"subject", "choices": [4], "label": 0-based index, "comment"?, ...}
  GeoQA3/image/<id>.png
  GeoQA2.2/{train,dev,test}.pk  (or GeoQA3/*.pk) the official split, read for ids only
                            (restricted unpickler)
splits: train, dev, test (from the pickles); without the pickles only: all"""

    def locate(self, root: Path) -> Path:
        return locate_dataset(self.name, root, ("", "data"), ("GeoQA3/json", "json"))

    def splits(self, root: Path) -> list[str]:
        root = self.locate(root)
        return list(_split_pickles(root)) or [ALL]

    def read(self, root: Path, split: str) -> Iterator[Record | Reject]:
        root = self.locate(root)
        base = _base(root)
        pickles = _split_pickles(root)
        if split == ALL and not pickles:
            ids = sorted((p.stem for p in (root / base / "json").glob("*.json")), key=_id_order)
        elif split in pickles:
            stat = pickles[split].stat()
            ids = list(_pickle_ids(str(pickles[split]), stat.st_mtime_ns, stat.st_size))
        else:
            present = ", ".join(pickles) or ALL
            raise SourceNotFound(f"{self.name}: no split {split!r} under {root}; present: {present}")
        for native_id in ids:
            yield record_or_reject(self, native_id, lambda: self._record(root, base, split, native_id))

    def _record(self, root: Path, base: str, split: str, native_id: str) -> Record:
        if not native_id.isdigit():  # GeoQA ids are numbers; anything else is no problem file (nor a path)
            raise Malformed(BAD_VALUE, f"problem id {native_id!r} is not a number")
        path = root / base / "json" / f"{native_id}.json"
        if not path.is_file():
            raise Malformed(PROBLEM_MISSING, f"the {split} split names problem {native_id}, but {path.name} is missing")
        try:
            data = read_json(path)
        except ValueError as err:
            raise Malformed(BAD_JSON, str(err)) from None
        item = require_object(data)
        choices = require_str_list(item, "choices")
        letter = _label_letter(require(item, "label", (int, str)), choices)
        prompt = prompts.multiple_choice(self.name, require_text(item, "subject"), choices)
        return make_record(
            self,
            native_id,
            split,
            task="geometry",
            conversations=single_turn(prompt, letter, has_image=True),
            image=image_ref(root, posixpath.join(base, "image", f"{native_id}.png")),
            answer=letter,
            choices=choices,
            rationale=join_text(require(item, "comment", str, optional=True)),
            meta={
                "answer_text": choices[prompts.option_letters(len(choices)).index(letter)],
                "language": "zh",
                "knowledge_points": item.get("formal_point"),
                "manual_program": item.get("manual_program"),
            },
        )


def _base(root: Path) -> str:
    """The GeoQA3 folder relative to the located root."""
    return "GeoQA3" if (root / "GeoQA3" / "json").is_dir() else ""


def _split_pickles(root: Path) -> dict[str, Path]:
    """split -> its pickle, for the official splits present (GeoQA2.2/ first, then GeoQA3/)."""
    found: dict[str, Path] = {}
    for folder in ("GeoQA2.2", _base(root)):
        for split in PICKLE_SPLITS:
            path = root / folder / f"{split}.pk"
            if split not in found and path.is_file():
                found[split] = path
    return {split: found[split] for split in PICKLE_SPLITS if split in found}


def _label_letter(label: int | str, choices: list[str]) -> str:
    """The letter of the right option: ``label`` is a 0-based index, a digit string or a letter."""
    if isinstance(label, int):
        return choice_letter(choices, label)
    label = label.strip().upper()
    if label.isdigit():
        return choice_letter(choices, int(label))
    if label in prompts.option_letters(len(choices)):
        return label
    raise Malformed(BAD_VALUE, f"label {label!r} is neither an option index nor an option letter")
