"""DVQA (kushalkafle/DVQA_dataset): open questions on synthetic bar charts.

Native release: ``qa/{split}_qa.json`` (split = train, val_easy, val_hard), each a JSON list of
``{"image": "bar_train_00000001.png", "question", "answer", "template_id", "answer_bbox",
"question_id"}`` with the charts in ``images/``. The released files name the question type
``template_id`` and the answer box ``answer_bbox``; some descriptions call them
``question_type`` / ``bbox_answer``: both spellings are read. The train list holds 2.3M
questions, so it is streamed.

SliME uses the *reasoning* questions (DESIGN §3): the adapter's ``question_types`` chooses the
types read, ``("reasoning",)`` by default (the registered adapter); the others are not part of
the source's output (not rejects). ``DVQA(question_types=("structure", "data", "reasoning"))``
reads them all.

Also accepted: InternVL's pre-converted ``dvqa_train_200k.jsonl`` (split train, LLaVA-style,
read by ``geoqa_plus.read_llava_jsonl``); it carries no question type, so ``question_types``
does not apply to it. When both layouts are present the native one is read.
"""

from __future__ import annotations

import posixpath
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from slime_data.record import Record, Reject
from slime_data.sources import prompts
from slime_data.sources.base import SourceAdapter, SourceNotFound, register
from slime_data.sources.common import (
    BAD_VALUE,
    MISSING_FIELD,
    Malformed,
    image_ref,
    iter_json_list,
    locate_dataset,
    make_record,
    record_or_reject,
    require,
    require_object,
    require_text,
    single_turn,
)
from slime_data.sources.geoqa_plus import llava_jsonl_markers, read_llava_jsonl

SPLITS = ("train", "val_easy", "val_hard")
QUESTION_TYPES = ("structure", "data", "reasoning")
JSONL = "dvqa_train_200k.jsonl"
NATIVE_BASES = ("", "dvqa", "DVQA")  # the folder holding images/ and the qa files, from the root


@register
class DVQA(SourceAdapter):
    name = "dvqa"
    license = "CC BY-NC 4.0"
    default_splits = ("train",)
    layout = f"""\
<root>/DVQA/  (or dvqa/, or that folder itself)
  qa/{{split}}_qa.json   (or {{split}}_qa.json)   split = train, val_easy, val_hard
                       [{{"image", "question", "answer", "template_id": structure|data|reasoning,
                         "answer_bbox", "question_id"}}, ...]   reasoning questions by default
  images/bar_{{split}}_xxxxxxxx.png
or the pre-converted jsonl (split train, all of it):
  <root>/{JSONL}  (or opensource/{JSONL}) with images/ under dvqa/, data/dvqa/ or beside it"""

    def __init__(self, question_types: Iterable[str] = ("reasoning",)):
        self.question_types = tuple(question_types)
        unknown = sorted(set(self.question_types) - set(QUESTION_TYPES))
        if unknown or not self.question_types:
            raise ValueError(f"dvqa: question_types must be among {', '.join(QUESTION_TYPES)}, got {unknown or 'none'}")

    def locate(self, root: Path) -> Path:
        qa_files = [f"{split}_qa.json" for split in SPLITS]
        markers = tuple(
            posixpath.join(base, folder, name) for base in NATIVE_BASES for folder in ("qa", "") for name in qa_files
        )
        return locate_dataset(self.name, root, ("", "playground"), (*markers, *llava_jsonl_markers(JSONL)))

    def splits(self, root: Path) -> list[str]:
        root = self.locate(root)
        native = _native_qa_files(root)
        return list(native) if native else ["train"]

    def read(self, root: Path, split: str) -> Iterator[Record | Reject]:
        root = self.locate(root)
        native = _native_qa_files(root)
        if not native:
            if split != "train":
                raise SourceNotFound(f"{self.name}: {JSONL} holds only the train split, not {split!r}")
            yield from read_llava_jsonl(self, root, split, filename=JSONL, dataset_dir="dvqa", task="chart")
            return
        if split not in native:
            raise SourceNotFound(f"{self.name}: no split {split!r} under {root}; present: {', '.join(native)}")
        qa_file, image_dir = native[split]
        for index, item in enumerate(iter_json_list(root / qa_file)):
            native_id = _native_id(item, split, index)
            try:
                if _question_type(item) not in self.question_types:
                    continue
            except Malformed as err:
                yield self.reject(native_id, err.reason, err.detail)
                continue
            yield record_or_reject(self, native_id, lambda: self._record(root, split, native_id, image_dir, item))

    def _record(self, root: Path, split: str, native_id: str, image_dir: str, item: Any) -> Record:
        require(item, "question_id", (int, str))
        answer = require(item, "answer", (str, int, float))
        answer = answer.strip() if isinstance(answer, str) else str(answer)  # "never a number"
        if not answer:
            raise Malformed(BAD_VALUE, "field 'answer' is empty")
        prompt = prompts.open_question(self.name, require_text(item, "question"))
        return make_record(
            self,
            native_id,
            split,
            task="chart",
            conversations=single_turn(prompt, answer, has_image=True),
            image=image_ref(root, posixpath.join(image_dir, require_text(item, "image"))),
            answer=answer,
            meta={
                "question_type": _question_type(item),
                "answer_bbox": item.get("answer_bbox", item.get("bbox_answer")) or None,
                "format": "native",
            },
        )


def _native_id(item: Any, split: str, index: int) -> str:
    """``question_id`` (an int in the release), else the item's position, ``<split>-item<index>``."""
    question_id = item.get("question_id") if isinstance(item, dict) else None
    if isinstance(question_id, (int, str)) and not isinstance(question_id, bool) and str(question_id).strip():
        return str(question_id).strip()
    return f"{split}-item{index}"


def _question_type(item: Any) -> str:
    """``template_id`` (as released) or ``question_type``; Malformed when absent or unknown."""
    item = require_object(item)
    key = "template_id" if "template_id" in item else "question_type"
    if item.get(key) is None:
        raise Malformed(MISSING_FIELD, "field 'template_id' (or 'question_type') is missing")
    question_type = require(item, key, str)
    if question_type not in QUESTION_TYPES:
        raise Malformed(BAD_VALUE, f"{key} {question_type!r} is not one of {', '.join(QUESTION_TYPES)}")
    return question_type


def _native_qa_files(root: Path) -> dict[str, tuple[str, str]]:
    """split -> (qa file, image dir), relative to ``root``, for the native splits present."""
    found: dict[str, tuple[str, str]] = {}
    for base in NATIVE_BASES:
        for split in SPLITS:
            for qa_file in (posixpath.join(base, "qa", f"{split}_qa.json"), posixpath.join(base, f"{split}_qa.json")):
                if split not in found and (root / qa_file).is_file():
                    found[split] = (qa_file, posixpath.join(base, "images"))
    return {split: found[split] for split in SPLITS if split in found}
