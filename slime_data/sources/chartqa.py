"""ChartQA (vis-nlp/ChartQA): open questions about chart images.

SliME trained on the train split, human-written (ChartQA-H) and machine-generated (ChartQA-M)
questions together (28.3K). The files carry no ids: a record's native id is the question set
and its position in the file, ``<split>_<human|augmented>_<index>``, stable for a given release.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

from slime_data.record import Record, Reject
from slime_data.sources import prompts
from slime_data.sources.base import SourceAdapter, SourceNotFound, register
from slime_data.sources.common import (
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

SPLITS = ("train", "val", "test")
QUESTION_SETS = ("human", "augmented")


def _question_file(root: Path, split: str, question_set: str) -> Path:
    return root / split / f"{split}_{question_set}.json"


@register
class ChartQA(SourceAdapter):
    name = "chartqa"
    license = "GPL-3.0 (reported; the release states none)"
    default_splits = ("train",)
    layout = """\
<root>/ChartQA Dataset/                (or that folder itself)
  <split>/<split>_human.json           [{"imgname", "query", "label"}, ...]   split = train, val, test
  <split>/<split>_augmented.json       same, machine-generated questions
  <split>/png/<imgname>                the chart image"""

    def locate(self, root: Path) -> Path:
        markers = tuple(f"{s}/{s}_{q}.json" for s in SPLITS for q in QUESTION_SETS)
        return locate_dataset(self.name, root, ("", "ChartQA Dataset"), markers)

    def splits(self, root: Path) -> list[str]:
        root = self.locate(root)
        return [s for s in SPLITS if any(_question_file(root, s, q).is_file() for q in QUESTION_SETS)]

    def read(self, root: Path, split: str) -> Iterator[Record | Reject]:
        root = self.locate(root)
        files = [(q, _question_file(root, split, q)) for q in QUESTION_SETS]
        files = [(q, path) for q, path in files if path.is_file()]
        if not files:
            raise SourceNotFound(f"{self.name}: no {split}_human.json or {split}_augmented.json under {root / split}")
        for question_set, path in files:
            for index, item in enumerate(iter_json_list(path)):
                native_id = f"{split}_{question_set}_{index}"
                yield record_or_reject(
                    self, native_id, lambda: self._record(root, split, native_id, question_set, item)
                )

    def _record(self, root: Path, split: str, native_id: str, question_set: str, item: Any) -> Record:
        item = require_object(item)
        imgname = require(item, "imgname", str)
        # Queries carry doubled spaces and stray line breaks: collapse them.
        query = " ".join(require_text(item, "query").split())
        label = require_text(item, "label").strip()
        return make_record(
            self,
            native_id,
            split,
            task="chart",
            conversations=single_turn(prompts.open_question(self.name, query), label, has_image=True),
            image=image_ref(root, f"{split}/png/{imgname}"),
            answer=label,
            meta={"imgname": imgname, "question_set": question_set},
        )
