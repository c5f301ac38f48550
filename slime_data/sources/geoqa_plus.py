"""GeoQA+ (SCNU203/GeoQA-Plus), held as the pre-converted LLaVA-style ``geoqa+.jsonl``.

The jsonl is InternVL's redistribution (``OpenGVLab/InternVL-Chat-V1-2-SFT-Data``): one
``{"id", "image", "conversations"}`` object per line, image paths relative to the ``geoqa+/``
image root. Conversations are kept as published. The original GeoQA+ pickles are not read
here (they hold the images as numpy arrays); ``geoqa3`` reads GeoQA's pickles, for split ids
only, through a restricted unpickler.

This module also holds the reader of InternVL's pre-converted jsonl files, which AI2D
(``ai2d_train_12k.jsonl``) and DVQA (``dvqa_train_200k.jsonl``) share. InternVL lays them out as
``playground/opensource/<file>.jsonl`` (or ``playground/<file>.jsonl``) with images under
``playground/data/<dataset>/``; users also keep the jsonl beside the images.
"""

from __future__ import annotations

import posixpath
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from slime_data.record import GPT, Record, Reject
from slime_data.sources import prompts
from slime_data.sources.base import SourceAdapter, SourceNotFound, register
from slime_data.sources.common import (
    BAD_JSON,
    BAD_VALUE,
    image_ref,
    iter_jsonl,
    llava_conversation,
    locate_dataset,
    make_record,
    record_or_reject,
    require_object,
    require_text,
)

ANNOTATIONS = "geoqa+.jsonl"
SPLITS = ("train",)

# Option lines of a multiple-choice human turn ("A. 30°", "(B) 2", "C: x") and a bare-letter reply.
_OPTION_LINE = re.compile(r"^\(?([A-Z])[.):：]\s*(\S.*?)\s*$")
_LETTER_REPLY = re.compile(r"^\(?([A-Z])\)?\.?$")


# --------------------------------------------------------------------------------------
# InternVL's pre-converted LLaVA-style jsonl (shared with ai2d and dvqa)
# --------------------------------------------------------------------------------------


def llava_jsonl_markers(filename: str) -> tuple[str, ...]:
    """Paths (relative to a candidate root) that show the pre-converted jsonl is there."""
    return (filename, f"opensource/{filename}")


def find_llava_jsonl(root: Path, filename: str, dataset_dir: str) -> tuple[str, str] | None:
    """``(jsonl, image_dir)`` relative to ``root``, or None when the jsonl is not there.

    Image paths inside the jsonl are relative to the dataset's image root: ``data/<dataset>/``
    in InternVL's playground, ``<dataset>/`` beside the jsonl, or the jsonl's own folder.
    """
    for jsonl in llava_jsonl_markers(filename):
        if (root / jsonl).is_file():
            for image_dir in (f"data/{dataset_dir}", dataset_dir):
                if (root / image_dir).is_dir():
                    return jsonl, image_dir
            return jsonl, ""
    return None


def _gold_answer(conversation: list[dict[str, str]]) -> tuple[str | None, list[str] | None]:
    """``(answer, choices)`` read back from a single-question conversation, when it shows them.

    A bare-letter reply to a human turn listing options "A. …", "B. …" gives the letter and the
    option texts; any other one-line reply is the short answer itself; otherwise nothing.
    """
    replies = [turn["value"].strip() for turn in conversation if turn["from"] == GPT]
    if len(replies) != 1 or "\n" in replies[0]:
        return None, None
    reply = replies[0]
    letter = _LETTER_REPLY.match(reply)
    options = [m.groups() for m in map(_OPTION_LINE.match, conversation[0]["value"].splitlines()) if m]
    letters = [option_letter for option_letter, _ in options]
    if letter and options and letters == prompts.option_letters(len(options)) and letter.group(1) in letters:
        return letter.group(1), [text for _, text in options]
    return reply, None


def _llava_native_id(value: Any, line: int) -> str:
    """The item's ``id`` (InternVL writes ints), else its line, ``line<n>``."""
    native_id = value.get("id") if isinstance(value, dict) else None
    if isinstance(native_id, int) and not isinstance(native_id, bool):
        return str(native_id)
    return native_id.strip() if isinstance(native_id, str) and native_id.strip() else f"line{line}"


def _llava_record(
    adapter: SourceAdapter, root: Path, split: str, native_id: str, item: Any, *, task: str, image_dir: str, jsonl: str
) -> Record:
    item = require_object(item)
    image = image_ref(root, posixpath.join(image_dir, require_text(item, "image")))
    conversation = llava_conversation(item.get("conversations"), has_image=True)
    answer, choices = _gold_answer(conversation)
    return make_record(
        adapter,
        native_id,
        split,
        task=task,
        conversations=conversation,
        image=image,
        answer=answer,
        choices=choices,
        meta={"format": "llava_jsonl", "annotations": jsonl},
    )


def read_llava_jsonl(
    adapter: SourceAdapter, root: Path, split: str, *, filename: str, dataset_dir: str, task: str
) -> Iterator[Record | Reject]:
    """Records from InternVL's pre-converted ``filename`` under ``root``, in file order.

    A bad line, a malformed item or a repeated id is a counted reject.
    """
    found = find_llava_jsonl(root, filename, dataset_dir)
    if found is None:
        looked = ", ".join(str(root / marker) for marker in llava_jsonl_markers(filename))
        raise SourceNotFound(f"{adapter.name}: {filename} not found; looked for: {looked}")
    jsonl, image_dir = found
    seen: set[str] = set()
    for line in iter_jsonl(root / jsonl):
        native_id = _llava_native_id(line.value, line.number)
        if line.error is not None:
            yield adapter.reject(native_id, BAD_JSON, line.error)
        elif native_id in seen:
            yield adapter.reject(native_id, BAD_VALUE, f"line {line.number}: id {native_id!r} repeats an earlier line")
        else:
            seen.add(native_id)
            yield record_or_reject(
                adapter,
                native_id,
                lambda: _llava_record(
                    adapter, root, split, native_id, line.value, task=task, image_dir=image_dir, jsonl=jsonl
                ),
            )


# --------------------------------------------------------------------------------------
# The adapter
# --------------------------------------------------------------------------------------


@register
class GeoQAPlus(SourceAdapter):
    name = "geoqa_plus"
    license = "unstated by the GeoQA+ authors (research release); InternVL redistribution"
    default_splits = SPLITS
    layout = f"""\
<root>/                              InternVL playground, or the folder holding the jsonl
  {ANNOTATIONS}  (or opensource/{ANNOTATIONS})   one {{"id", "image", "conversations"}} per line
  geoqa+/images/ (or data/geoqa+/images/, or images/ beside the jsonl)
                                     "image" in the jsonl is relative to the geoqa+/ folder
split: train (the whole jsonl)"""

    def locate(self, root: Path) -> Path:
        return locate_dataset(self.name, root, ("", "playground"), llava_jsonl_markers(ANNOTATIONS))

    def splits(self, root: Path) -> list[str]:
        self.locate(root)
        return list(SPLITS)

    def read(self, root: Path, split: str) -> Iterator[Record | Reject]:
        root = self.locate(root)
        self.require_split(split, SPLITS)
        yield from read_llava_jsonl(self, root, split, filename=ANNOTATIONS, dataset_dir="geoqa+", task="geometry")
