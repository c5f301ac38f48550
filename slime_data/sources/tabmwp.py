"""TabMWP (lupantech/PromptPG): math word problems over a table image, with worked solutions.

SliME trained on the train split (about 30K problems with their solutions). The table is in
the image, so the prompt holds only the question (and the unit for free-text answers); the
table as text stays in ``meta["table"]`` for a text-only teacher. Multiple-choice problems
publish the text of the right choice: the record's gpt turn and ``answer`` are its letter.
"""

from __future__ import annotations

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

# dev1k / test1k (problems_dev1k.json, problems_test1k.json) are the 1,000-problem subsets of dev / test
# that PromptPG's own scripts evaluate on (--test_split dev1k|test1k); their records keep the pid, so
# they share ids with the full split's records.
SPLITS = ("train", "dev", "test", "dev1k", "test1k")
QUESTION_TYPES = ("free_text", "multi_choice")


@register
class TabMWP(SourceAdapter):
    name = "tabmwp"
    license = "CC BY-NC-SA 4.0"
    default_splits = ("train",)
    layout = """\
<root>/data/tabmwp/            (or the tabmwp/ folder itself)
  problems_<split>.json        {pid: {question, choices, answer (str), unit, table, solution, ques_type, ...}}
                               split = train, dev, test, dev1k, test1k (1,000-problem subsets of dev, test)
  splits.json                  {"train": [int pid, ...], ...}   optional: the order of each split it lists
  tables/<pid>.png             the table image"""

    def locate(self, root: Path) -> Path:
        markers = tuple(f"problems_{split}.json" for split in SPLITS)
        return locate_dataset(self.name, root, ("", "tabmwp", "data/tabmwp"), markers)

    def splits(self, root: Path) -> list[str]:
        root = self.locate(root)
        return [split for split in SPLITS if (root / f"problems_{split}.json").is_file()]

    def read(self, root: Path, split: str) -> Iterator[Record | Reject]:
        root = self.locate(root)
        path = root / f"problems_{split}.json"
        if split not in SPLITS or not path.is_file():
            raise SourceNotFound(f"{self.name}: no split {split!r} ({path} is missing)")
        problems = read_json(path)
        if not isinstance(problems, Mapping):
            raise ValueError(f"{path} must be a JSON object of pid -> problem")
        for pid in self._order(root, split, problems):
            if pid not in problems:
                yield self.reject(pid, MISSING_FIELD, f"pid {pid} is listed in splits.json but not in {path.name}")
                continue
            yield record_or_reject(self, pid, lambda: self._record(root, split, pid, problems[pid]))

    def _order(self, root: Path, split: str, problems: Mapping[str, Any]) -> list[str]:
        """splits.json's order (its ids are ints, the problem keys strings), then any pid it omits."""
        path = root / "splits.json"
        split_lists = read_json(path) if path.is_file() else {}
        listed = split_lists.get(split, []) if isinstance(split_lists, Mapping) else None
        if not isinstance(listed, list):
            raise ValueError(f"{path} must map each split to a list of pids")
        order = list(dict.fromkeys(str(pid) for pid in listed))
        seen = set(order)
        return order + [pid for pid in problems if pid not in seen]

    def _record(self, root: Path, split: str, pid: str, item: Any) -> Record:
        item = require_object(item)
        question = require_text(item, "question")
        answer_text = require_text(item, "answer")
        question_type = require(item, "ques_type", str)
        if question_type not in QUESTION_TYPES:
            raise Malformed(BAD_VALUE, f"ques_type {question_type!r} is not one of {', '.join(QUESTION_TYPES)}")
        title, table = require(item, "table_title", str, optional=True), require(item, "table", str)
        unit = require(item, "unit", str, optional=True)
        choices = require_str_list(item, "choices", optional=question_type == "free_text")
        if question_type == "multi_choice":
            if answer_text not in choices:
                raise Malformed(BAD_VALUE, f"answer {answer_text!r} is not one of the choices {choices}")
            answer = choice_letter(choices, choices.index(answer_text))
            prompt = prompts.multiple_choice(self.name, question, choices)
        else:
            choices, answer = None, answer_text.strip()
            prompt = prompts.open_question(self.name, question, unit=unit)
        return make_record(
            self,
            pid,
            split,
            task="table",
            conversations=single_turn(prompt, answer, has_image=True),
            image=image_ref(root, f"tables/{pid}.png"),
            answer=answer,
            choices=choices,
            rationale=join_text(require(item, "solution", str, optional=True)),
            meta={
                "answer_text": answer_text,
                "unit": unit,
                "table": join_text(title, table, sep="\n"),
                "question_type": question_type,
                "answer_type": item.get("ans_type"),
                "grade": item.get("grade"),
            },
        )
