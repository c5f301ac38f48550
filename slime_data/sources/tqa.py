"""TextbookQA (allenai TQA, "Are You Smarter Than A Sixth Grader?"): science lessons with diagrams.

``{split}/tqa_v1_{split}.json`` is a list of lessons; image paths inside are relative to the
split's folder (``question_images/``, ``abc_question_images/``, ``teaching_images/``,
``textbook_images/``). SliME (DESIGN §3) makes two kinds of records, both task ``diagram``:

- every *diagram question* as VQA: the question with its lettered options (``answerChoices``
  in key order a, b, c, …), answered by the letter of ``correctAnswer.processedText``;
- every *instructional diagram* (``teaching_images/``) as a "describe in detail" prompt answered
  by the lesson's human-written description of that diagram (``processedText``).

Questions without a diagram (``nonDiagramQuestions``) are not part of SliME's use and are not
read. Text fields use ``processedText`` (the cleaned form), falling back to ``rawText``.
"""

from __future__ import annotations

import posixpath
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from slime_data.record import Record, Reject
from slime_data.sources import prompts
from slime_data.sources.base import SourceAdapter, SourceNotFound, register
from slime_data.sources.common import (
    BAD_VALUE,
    MISSING_FIELD,
    Malformed,
    choice_letter,
    image_ref,
    locate_dataset,
    make_record,
    read_json,
    record_or_reject,
    require,
    require_object,
    require_text,
    single_turn,
)

SPLITS = ("train", "val", "test")


@register
class TQA(SourceAdapter):
    name = "tqa"
    license = "CC BY-NC 3.0"
    default_splits = ("train",)
    layout = """\
<root>/tqa_train_val_test/  (or that folder itself, or one split folder)
  {split}/tqa_v1_{split}.json      [{globalID, lessonName, instructionalDiagrams, questions:
                                     {diagramQuestions, nonDiagramQuestions}, ...}, ...]
  {split}/question_images/ abc_question_images/ teaching_images/ textbook_images/
                                   split = train, val, test"""

    def locate(self, root: Path) -> Path:
        markers = tuple(path for split in SPLITS for path in _split_files(split))
        return locate_dataset(self.name, root, ("", "tqa_train_val_test"), markers)

    def splits(self, root: Path) -> list[str]:
        root = self.locate(root)
        return [split for split in SPLITS if _split_file(root, split)]

    def read(self, root: Path, split: str) -> Iterator[Record | Reject]:
        root = self.locate(root)
        found = _split_file(root, split) if split in SPLITS else None
        if found is None:
            present = ", ".join(self.splits(root))
            raise SourceNotFound(f"{self.name}: no split {split!r} under {root}; present: {present}")
        lessons = read_json(root / found)
        if not isinstance(lessons, list):
            raise ValueError(f"{root / found} is not a list of lessons")
        base = posixpath.dirname(found)  # image paths are relative to the split's folder
        for index, lesson in enumerate(lessons):
            yield from self._lesson(root, base, split, index, lesson)

    def _lesson(self, root: Path, base: str, split: str, index: int, lesson: Any) -> Iterator[Record | Reject]:
        """The diagram questions, then the instructional diagrams, of one lesson."""
        lesson_id = lesson.get("globalID") if isinstance(lesson, dict) else None
        lesson_id = lesson_id if isinstance(lesson_id, str) and lesson_id else f"lesson{index}"
        try:
            lesson = require_object(lesson)
            questions = require(lesson, "questions", dict)
            diagram_questions = require(questions, "diagramQuestions", dict, optional=True) or {}
            diagrams = require(lesson, "instructionalDiagrams", dict, optional=True) or {}
        except Malformed as err:
            yield self.reject(lesson_id, err.reason, f"lesson {lesson_id}: {err.detail}")
            return
        context = {"lesson_id": lesson_id, "lesson_name": lesson.get("lessonName")}
        for key, question in diagram_questions.items():
            native_id = _global_id(question, key)
            yield record_or_reject(
                self, native_id, lambda: self._question(root, base, split, native_id, question, context)
            )
        for key, diagram in diagrams.items():
            native_id = f"{lesson_id}-{key}"
            yield record_or_reject(
                self, native_id, lambda: self._diagram(root, base, split, native_id, diagram, context)
            )

    def _question(
        self, root: Path, base: str, split: str, native_id: str, item: Any, context: Mapping[str, Any]
    ) -> Record:
        item = require_object(item)
        options = require(item, "answerChoices", dict)
        keys = sorted(options)
        choices = [_text(require(options, key, dict), f"answerChoices.{key}") for key in keys]
        correct = _text(require(item, "correctAnswer", dict), "correctAnswer").lower().strip("(). ")
        if correct not in keys:
            raise Malformed(BAD_VALUE, f"correctAnswer {correct!r} is not one of the options {', '.join(keys)}")
        letter = choice_letter(choices, keys.index(correct))
        prompt = prompts.multiple_choice(self.name, _text(require(item, "beingAsked", dict), "beingAsked"), choices)
        return make_record(
            self,
            native_id,
            split,
            task="diagram",
            conversations=single_turn(prompt, letter, has_image=True),
            image=image_ref(root, posixpath.join(base, require_text(item, "imagePath"))),
            answer=letter,
            choices=choices,
            meta={
                **context,
                "kind": "diagram_question",
                "answer_text": choices[keys.index(correct)],
                "question_subtype": item.get("questionSubType"),
            },
        )

    def _diagram(
        self, root: Path, base: str, split: str, native_id: str, item: Any, context: Mapping[str, Any]
    ) -> Record:
        item = require_object(item)
        description = _text(item, "instructional diagram")
        prompt = prompts.template(self.name, "describe_diagram")
        return make_record(
            self,
            native_id,
            split,
            task="diagram",
            conversations=single_turn(prompt, description, has_image=True),
            image=image_ref(root, posixpath.join(base, require_text(item, "imagePath"))),
            meta={**context, "kind": "instructional_diagram", "image_name": item.get("imageName")},
        )


def _split_files(split: str) -> tuple[str, str]:
    """Where a split's JSON may sit, relative to the located root."""
    return (f"{split}/tqa_v1_{split}.json", f"tqa_v1_{split}.json")


def _split_file(root: Path, split: str) -> str | None:
    return next((path for path in _split_files(split) if (root / path).is_file()), None)


def _global_id(item: Any, key: str) -> str:
    global_id = item.get("globalID") if isinstance(item, dict) else None
    return global_id if isinstance(global_id, str) and global_id else key


def _text(field: Mapping[str, Any], name: str) -> str:
    """A TQA text object's ``processedText``, else its ``rawText``; Malformed when both are blank."""
    for key in ("processedText", "rawText"):
        value = field.get(key)
        if isinstance(value, str) and value.strip():
            return value.strip()
    raise Malformed(MISSING_FIELD, f"{name} has no processedText or rawText")
