"""ArxivQA (MMInstruction/ArxivQA, "Multimodal ArXiv"): multiple-choice questions on arXiv figures.

``arxivqa.jsonl`` holds one ``{"id", "image", "question", "options", "label", "rationale"}``
per line; ``options`` are "A) …" strings and ``label`` is the letter, sometimes followed by
the option ("B) 0.5"). SliME uses the rationale as the answer (DESIGN §3): the gpt turn is the
rationale and the gold ``answer`` the letter. A record with no rationale keeps the letter as
its reply. The figures are mostly plots from papers, so the task is ``chart``.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from slime_data.record import Record, Reject
from slime_data.sources import prompts
from slime_data.sources.base import SourceAdapter, register
from slime_data.sources.common import (
    BAD_JSON,
    BAD_VALUE,
    Malformed,
    image_ref,
    iter_jsonl,
    join_text,
    locate_dataset,
    make_record,
    native_id_of,
    record_or_reject,
    require,
    require_object,
    require_str_list,
    require_text,
    single_turn,
)

ANNOTATIONS = "arxivqa.jsonl"
SPLITS = ("train",)

# "A) text", "A. text", "(A) text", "A: text" -> letter, text
_OPTION = re.compile(r"^\s*\(?([A-Z])\s*[).:]\s*(.*?)\s*$", re.DOTALL)
# "A", "A)", "(A)", "[A]", "A. text", "A) text"
_LABEL = re.compile(r"^\s*[(\[]?([A-Z])(?:$|[)\].:,\s])")


@register
class ArxivQA(SourceAdapter):
    name = "arxivqa"
    license = "CC BY-SA 4.0"
    default_splits = SPLITS
    layout = f"""\
<root>/ArxivQA/  (or that folder itself)
  {ANNOTATIONS}      {{"id", "image": "images/…", "question", "options": ["A) …", …],
                       "label": "A" or "A) …", "rationale"}} per line
  images/            images.tgz unpacked
split: train (the whole file)"""

    def locate(self, root: Path) -> Path:
        return locate_dataset(self.name, root, ("", "ArxivQA", "arxivqa"), (ANNOTATIONS,))

    def splits(self, root: Path) -> list[str]:
        self.locate(root)
        return list(SPLITS)

    def read(self, root: Path, split: str) -> Iterator[Record | Reject]:
        root = self.locate(root)
        self.require_split(split, SPLITS)
        for line in iter_jsonl(root / ANNOTATIONS):
            native_id = native_id_of(line.value, line.number)
            if line.error is not None:
                yield self.reject(native_id, BAD_JSON, line.error)
                continue
            yield record_or_reject(self, native_id, lambda: self._record(root, split, native_id, line.value))

    def _record(self, root: Path, split: str, native_id: str, item: Any) -> Record:
        item = require_object(item)
        require_text(item, "id")
        raw_options = require_str_list(item, "options")
        if not raw_options:
            raise Malformed(BAD_VALUE, "field 'options' is empty")
        choices = _option_texts(raw_options)
        letter = _label_letter(require(item, "label", str), choices)
        rationale = join_text(require(item, "rationale", str, optional=True))
        prompt = prompts.multiple_choice(self.name, require_text(item, "question"), choices)
        return make_record(
            self,
            native_id,
            split,
            task="chart",
            conversations=single_turn(prompt, rationale or letter, has_image=True),
            image=image_ref(root, require_text(item, "image")),
            answer=letter,
            choices=choices,
            rationale=rationale,
            meta={"answer_text": choices[prompts.option_letters(len(choices)).index(letter)], "label": item["label"]},
        )


def _option_texts(options: list[str]) -> list[str]:
    """The texts of "A) …", "B) …", …; options not lettered A, B, C… in order are kept whole."""
    matches = [_OPTION.match(option) for option in options]
    lettered = all(m and m.group(2) for m in matches)
    if lettered and [m.group(1) for m in matches] == prompts.option_letters(len(options)):
        return [m.group(2) for m in matches]
    return [option.strip() for option in options]


def _label_letter(label: str, choices: list[str]) -> str:
    """The option letter named by ``label``: its leading letter, or the option whose text it is."""
    letters = prompts.option_letters(len(choices))
    match = _LABEL.match(label)
    if match and match.group(1) in letters:
        return match.group(1)
    if label.strip() in choices:
        return letters[choices.index(label.strip())]
    raise Malformed(BAD_VALUE, f"label {label!r} names none of the options {', '.join(letters)}")
