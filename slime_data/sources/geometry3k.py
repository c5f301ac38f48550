"""Geometry3K (lupantech/InterGPS): four-choice geometry problems over a diagram.

SliME trained on the train split (ids 0–2100). Each problem is its own folder; the published
``detailed_solution`` is almost always a single space, so most records carry no rationale. The
choices are bare numbers, so a non-empty ``unit`` (e.g. "cm^2") goes into the prompt as
"(Unit: …)" after the question, as TabMWP's free-text questions do.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from slime_data.record import Record, Reject
from slime_data.sources import prompts
from slime_data.sources.base import SourceAdapter, SourceNotFound, register
from slime_data.sources.common import (
    BAD_JSON,
    BAD_VALUE,
    MISSING_FIELD,
    Malformed,
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

SPLITS = ("train", "val", "test")


def _problem_order(folder: Path) -> tuple[int, int | str]:
    """Numeric folder names in numeric order ("2" before "10"), any others after them by name."""
    return (0, int(folder.name)) if folder.name.isdigit() else (1, folder.name)


@register
class Geometry3K(SourceAdapter):
    name = "geometry3k"
    license = "MIT"
    default_splits = ("train",)
    layout = """\
<root>/data/geometry3k/            (or the geometry3k/ folder itself)
  <split>/<id>/data.json           {problem_text, choices [4], answer "A".."D", unit, detailed_solution, ...}
  <split>/<id>/img_diagram.png     the diagram      split = train (0-2100), val, test"""

    def locate(self, root: Path) -> Path:
        markers = tuple(f"{split}/*/data.json" for split in SPLITS)
        return locate_dataset(self.name, root, ("", "geometry3k", "data/geometry3k"), markers)

    def splits(self, root: Path) -> list[str]:
        root = self.locate(root)
        return [split for split in SPLITS if (root / split).is_dir()]

    def read(self, root: Path, split: str) -> Iterator[Record | Reject]:
        root = self.locate(root)
        if split not in SPLITS or not (root / split).is_dir():
            raise SourceNotFound(f"{self.name}: no split {split!r} ({root / split} is missing)")
        for folder in sorted((p for p in (root / split).iterdir() if p.is_dir()), key=_problem_order):
            yield record_or_reject(self, folder.name, lambda: self._record(root, split, folder))

    def _record(self, root: Path, split: str, folder: Path) -> Record:
        data_file = folder / "data.json"
        if not data_file.is_file():
            raise Malformed(MISSING_FIELD, f"{split}/{folder.name}/data.json is missing")
        try:
            data = read_json(data_file)
        except ValueError as err:  # one problem's file: a reject, not a failed run
            raise Malformed(BAD_JSON, str(err)) from None
        item = require_object(data)
        choices = require_str_list(item, "choices")
        answer = require_text(item, "answer").strip()
        letters = prompts.option_letters(len(choices))
        if answer not in letters:
            raise Malformed(BAD_VALUE, f"answer {answer!r} is not one of {', '.join(letters)}")
        unit = (require(item, "unit", str, optional=True) or "").strip() or None
        prompt = prompts.multiple_choice(self.name, require_text(item, "problem_text"), choices, unit=unit)
        return make_record(
            self,
            folder.name,
            split,
            task="geometry",
            conversations=single_turn(prompt, answer, has_image=True),
            image=image_ref(root, f"{split}/{folder.name}/img_diagram.png"),
            answer=answer,
            choices=choices,
            rationale=join_text(require(item, "detailed_solution", str, optional=True)),
            meta={
                "answer_text": choices[letters.index(answer)],
                "unit": unit,
                "problem_type_graph": item.get("problem_type_graph"),
                "problem_type_goal": item.get("problem_type_goal"),
            },
        )
