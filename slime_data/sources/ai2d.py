"""AI2D (allenai, "A Diagram Is Worth A Dozen Images"): multiple-choice questions on science diagrams.

Native release (``ai2d-all.zip``): one ``questions/<img>.png.json`` per diagram holding every
question on it. A question whose ``abcLabel`` is true refers to letter labels, so it is paired
with the lettered copy of its diagram in ``abc_images/`` instead of ``images/`` (SliME, DESIGN §3).
The official train/test split is the separate ``ai2d_test_ids.csv`` (one diagram id per line):
AI2D test is a benchmark, so without that file the release is offered only as split ``all``.

Also accepted: InternVL's pre-converted ``ai2d_train_12k.jsonl`` (the train split, LLaVA-style,
read by ``geoqa_plus.read_llava_jsonl``). When both layouts are present the native one is read.
"""

from __future__ import annotations

import posixpath
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from slime_data.record import Record, Reject
from slime_data.sources import prompts
from slime_data.sources.base import SourceAdapter, SourceNotFound, register
from slime_data.sources.common import (
    BAD_JSON,
    BAD_VALUE,
    Malformed,
    choice_letter,
    image_ref,
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
from slime_data.sources.geoqa_plus import find_llava_jsonl, llava_jsonl_markers, read_llava_jsonl

JSONL = "ai2d_train_12k.jsonl"
TEST_IDS = "ai2d_test_ids.csv"
QUESTION_SUFFIX = ".png.json"  # questions/<img>.png.json


@register
class AI2D(SourceAdapter):
    name = "ai2d"
    license = "AI2 research terms (no licence file in ai2d-all.zip; check before redistributing)"
    default_splits = ("train",)
    layout = f"""\
<root>/ai2d/  (or that folder itself)          ai2d-all.zip unpacked
  questions/<img>.png.json   {{"imageName", "questions": {{<question text>: {{"abcLabel", "answerTexts" [4],
                                                         "correctAnswer" (0-based), "questionId"}}}}}}
  images/<img>.png           abc_images/<img>.png (letter-labelled, used when abcLabel is true)
  {TEST_IDS}          beside ai2d/ or inside it; splits train/test (without it: only "all")
or the pre-converted jsonl (split train):
  <root>/{JSONL}  (or opensource/{JSONL}) with abc_images/ images/ under ai2d/, data/ai2d/ or beside it"""

    def locate(self, root: Path) -> Path:
        markers = ("questions", "ai2d/questions", *llava_jsonl_markers(JSONL))
        return locate_dataset(self.name, root, ("", "playground"), markers)

    def splits(self, root: Path) -> list[str]:
        root = self.locate(root)
        base = _native_base(root)
        if base is None:
            return ["train"]
        return ["train", "test"] if _test_ids_file(root, base) else ["all"]

    def read(self, root: Path, split: str) -> Iterator[Record | Reject]:
        root = self.locate(root)
        present = self.splits(root)
        if split not in present:
            raise SourceNotFound(f"{self.name}: no split {split!r} under {root}; present: {', '.join(present)}")
        base = _native_base(root)
        if base is None:
            yield from read_llava_jsonl(self, root, split, filename=JSONL, dataset_dir="ai2d", task="diagram")
            return
        ids_file = _test_ids_file(root, base)
        test_ids = _read_test_ids(ids_file) if ids_file else set()
        for path in sorted((root / base / "questions").glob(f"*{QUESTION_SUFFIX}")):
            diagram_id = path.name.removesuffix(QUESTION_SUFFIX)
            if split != "all" and (diagram_id in test_ids) != (split == "test"):
                continue
            yield from self._diagram_questions(root, base, split, path)

    def _diagram_questions(self, root: Path, base: str, split: str, path: Path) -> Iterator[Record | Reject]:
        """Every question of one ``questions/<img>.png.json``; a broken file is one reject."""
        try:
            item = read_json(path)
        except ValueError as err:
            yield self.reject(path.name, BAD_JSON, str(err))
            return
        try:
            item = require_object(item)
            image_name = require_text(item, "imageName")
            questions = require(item, "questions", dict)
        except Malformed as err:
            yield self.reject(path.name, err.reason, f"{path.name}: {err.detail}")
            return
        for number, (question, entry) in enumerate(questions.items()):
            question_id = entry.get("questionId") if isinstance(entry, dict) else None
            native_id = question_id if isinstance(question_id, str) and question_id else f"{image_name}-q{number}"
            yield record_or_reject(
                self, native_id, lambda: self._record(root, base, split, native_id, image_name, question, entry)
            )

    def _record(
        self, root: Path, base: str, split: str, native_id: str, image_name: str, question: str, entry: Any
    ) -> Record:
        entry = require_object(entry)
        abc_label = require(entry, "abcLabel", bool)
        choices = require_str_list(entry, "answerTexts")
        letter = choice_letter(choices, require(entry, "correctAnswer", int))
        image_dir = "abc_images" if abc_label else "images"
        if not question.strip():
            raise Malformed(BAD_VALUE, "the question text is empty")
        prompt = prompts.multiple_choice(self.name, question, choices)
        return make_record(
            self,
            native_id,
            split,
            task="diagram",
            conversations=single_turn(prompt, letter, has_image=True),
            image=image_ref(root, posixpath.join(base, image_dir, image_name)),
            answer=letter,
            choices=choices,
            meta={
                "answer_text": choices[prompts.option_letters(len(choices)).index(letter)],
                "abc_label": abc_label,
                "image_name": image_name,
                "format": "native",
            },
        )


def _native_base(root: Path) -> str | None:
    """The folder holding ``questions/`` relative to ``root`` ("" or "ai2d"); None for the jsonl layout."""
    for base in ("", "ai2d"):
        if (root / base / "questions").is_dir():
            return base
    if find_llava_jsonl(root, JSONL, "ai2d") is None:
        raise SourceNotFound(f"ai2d: neither questions/ nor {JSONL} under {root}")
    return None


def _test_ids_file(root: Path, base: str) -> Path | None:
    for path in (root / TEST_IDS, root / base / TEST_IDS):
        if path.is_file():
            return path
    return None


def _read_test_ids(path: Path) -> set[str]:
    """Diagram ids ("1024", or "1024.png") of the official test split, one per line."""
    lines = path.read_text(encoding="utf-8-sig").splitlines()
    return {line.strip().removesuffix(".png") for line in lines if line.strip()}
