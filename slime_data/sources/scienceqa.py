"""ScienceQA (lupantech/ScienceQA): multiple-choice science questions, about half with an image.

SliME trained on all 12.7K train problems with the question, its context (``hint``) and the
lettered options; the lecture and the solution together are the rationale. Problems with
``image: null`` become text-only records.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from slime_data.record import Record, Reject
from slime_data.sources import prompts
from slime_data.sources.base import SourceAdapter, SourceNotFound, register
from slime_data.sources.common import (
    MISSING_FIELD,
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

SPLITS = ("train", "val", "test")  # pid_splits.json also lists unions/subsets (trainval, minitrain…)


@register
class ScienceQA(SourceAdapter):
    name = "scienceqa"
    license = "CC BY-NC-SA 4.0"
    default_splits = ("train",)
    layout = """\
<root>/data/scienceqa/            (or the data/ or scienceqa/ folder itself)
  problems.json                   {pid: {question, choices, answer (0-based int), hint, image, lecture, solution, ...}}
  pid_splits.json                 {"train": [pid, ...], "val": [...], "test": [...], ...}
  images/<split>/<pid>/image.png  the question image (problems with image: null are text-only)"""

    def locate(self, root: Path) -> Path:
        return locate_dataset(self.name, root, ("", "scienceqa", "data/scienceqa"), ("problems.json",))

    def splits(self, root: Path) -> list[str]:
        pid_splits = self._pid_splits(self.locate(root))
        return [split for split in SPLITS if split in pid_splits]

    def read(self, root: Path, split: str) -> Iterator[Record | Reject]:
        root = self.locate(root)
        pid_splits = self._pid_splits(root)
        if split not in SPLITS or split not in pid_splits:
            raise ValueError(f"{self.name}: no split {split!r}; present: {', '.join(self.splits(root))}")
        problems = read_json(root / "problems.json")
        if not isinstance(problems, Mapping):
            raise ValueError(f"{root / 'problems.json'} must be a JSON object of pid -> problem")
        for pid in pid_splits[split]:
            pid = str(pid)
            if pid not in problems:
                yield self.reject(
                    pid, MISSING_FIELD, f"pid {pid} is listed in pid_splits.json but not in problems.json"
                )
                continue
            yield record_or_reject(self, pid, lambda: self._record(root, split, pid, problems[pid]))

    def _pid_splits(self, root: Path) -> Mapping[str, list[Any]]:
        path = root / "pid_splits.json"
        if not path.is_file():
            raise SourceNotFound(f"{self.name}: {path} is missing (it assigns problems to splits)")
        pid_splits = read_json(path)
        if not isinstance(pid_splits, Mapping) or not all(isinstance(v, list) for v in pid_splits.values()):
            raise ValueError(f"{path} must be a JSON object of split -> list of pids")
        return pid_splits

    def _record(self, root: Path, split: str, pid: str, item: Any) -> Record:
        item = require_object(item)
        question = require_text(item, "question")
        choices = require_str_list(item, "choices")
        index = require(item, "answer", int)
        answer = choice_letter(choices, index)
        image_name = require(item, "image", str, optional=True)
        image = image_ref(root, f"images/{split}/{pid}/{image_name}") if image_name else None
        prompt = prompts.multiple_choice(self.name, question, choices, context=require(item, "hint", str))
        return make_record(
            self,
            pid,
            split,
            task="science",
            conversations=single_turn(prompt, answer, has_image=image is not None),
            image=image,
            answer=answer,
            choices=choices,
            rationale=join_text(require(item, "lecture", str), require(item, "solution", str)),
            meta={
                "answer_text": choices[index],
                **{key: item.get(key) for key in ("grade", "subject", "topic", "category", "skill")},
                "question_type": item.get("task"),
            },
        )
