"""MathVision / MATH-V (mathllm/MATH-V): competition math problems with one image each.

SliME trained on the test split minus testmini. The testmini ids are read from
``data/testmini.jsonl`` (when present) and never enter the output: each becomes a counted
``in_testmini`` reject, and ``testmini`` is not offered as a split.

The ``<image1>``… placeholders all point at parts of the one image file, which the record's own
``<image>`` stands for. A placeholder that stands alone (on its own line, or after the end of a
sentence) or right after a word that already names it ("in the figure <image2>?") is removed; one
inside a sentence ("Which side is opposite to <image2>?") becomes a neutral reference
(``image_reference`` in pipelines/source_prompts.yaml: "the picture shown") so the sentence still
reads. Problems whose options are pictures (``<image2>``… in ``options``) are counted
``options_are_pictures`` rejects: their letters point at pictures the text cannot name, and the
one image need not label them. Solutions were OCRed by Mathpix and embed its crops as
``![](https://cdn.mathpix.com/...)``; the model never sees those images, so the links are removed
from the rationale.
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
    record_or_reject,
    require,
    require_object,
    require_str_list,
    require_text,
    single_turn,
)

SPLITS = ("test",)  # testmini is a benchmark: never offered
IN_TESTMINI = "in_testmini"
OPTIONS_ARE_PICTURES = "options_are_pictures"
_IMAGE_PLACEHOLDER = re.compile(r"[ \t]*<image\d+>")  # with the spaces before it: "figure <image2>?" -> "figure?"
# Text before a placeholder that makes it redundant: nothing (line start), a sentence end, another
# placeholder, or a word that already names the picture.
_NAMED_ALREADY = re.compile(r"(^|[.?!:;>]|\b(figures?|pictures?|images?|diagrams?|drawings?|below|above|shown))$", re.I)
# A Mathpix crop in markdown, "![](https://cdn.mathpix.com/cropped/...jpg?height=..)", or a bare link to one.
_MATHPIX_IMAGE = re.compile(
    r"[ \t]*(!\[[^\]]*\]\(\s*https?://cdn\.mathpix\.com/[^)]*\)|https?://cdn\.mathpix\.com/\S+)"
)


def _tidy(text: str) -> str:
    """Strip each line and squeeze the blank lines left where something was removed."""
    lines = (line.strip() for line in text.splitlines())
    return re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip()


def strip_image_placeholders(question: str) -> str:
    """Remove ``<image1>``… that stand alone or follow a word naming them; others become a reference."""
    reference = prompts.template("mathvision", "image_reference")

    def replace(match: re.Match[str]) -> str:
        before = match.string[: match.start()].rsplit("\n", 1)[-1].rstrip()
        return "" if _NAMED_ALREADY.search(before) else f" {reference}"

    return _tidy(_IMAGE_PLACEHOLDER.sub(replace, question))


def strip_mathpix_images(solution: str) -> str:
    """The solution without the Mathpix image links the model never sees."""
    return _tidy(_MATHPIX_IMAGE.sub("", solution))


@register
class MathVision(SourceAdapter):
    name = "mathvision"
    license = "MIT"
    default_splits = ("test",)
    layout = """\
<root>/                        (the MATH-V clone)
  data/test.jsonl              one problem a line:
                               {id (str), question, options, answer, solution, level, subject, image}
  data/testmini.jsonl          the benchmark subset: its ids are excluded from test
  images/<id>.jpg              the image ("image" field, relative to <root>)"""

    def locate(self, root: Path) -> Path:
        return locate_dataset(self.name, root, ("", "MATH-V", "MathVision"), ("data/test.jsonl",))

    def splits(self, root: Path) -> list[str]:
        self.locate(root)
        return list(SPLITS)

    def read(self, root: Path, split: str) -> Iterator[Record | Reject]:
        root = self.locate(root)
        if split not in SPLITS:
            raise ValueError(f"{self.name}: no split {split!r}; only {', '.join(SPLITS)} (testmini is never read)")
        testmini = self._testmini_ids(root)
        for line in iter_jsonl(root / "data" / f"{split}.jsonl"):
            if line.error is not None:
                yield self.reject(f"line{line.number}", BAD_JSON, line.error)
                continue
            item = line.value
            native_id = item.get("id") if isinstance(item, dict) else None
            native_id = native_id if isinstance(native_id, str) and native_id else f"line{line.number}"
            if native_id in testmini:
                yield self.reject(native_id, IN_TESTMINI, "testmini is a benchmark subset; it never enters training")
                continue
            yield record_or_reject(self, native_id, lambda: self._record(root, split, native_id, item))

    def _testmini_ids(self, root: Path) -> set[str]:
        """Ids in data/testmini.jsonl. An unreadable line fails the run: exclusion must be complete."""
        path = root / "data" / "testmini.jsonl"
        if not path.is_file():
            return set()
        ids = set()
        for line in iter_jsonl(path):
            item_id = line.value.get("id") if isinstance(line.value, dict) else None
            if line.error is not None or not isinstance(item_id, (str, int)):
                raise ValueError(f"{path}: line {line.number} has no readable id, so testmini cannot be excluded")
            ids.add(str(item_id))
        return ids

    def _record(self, root: Path, split: str, native_id: str, item: Any) -> Record:
        item = require_object(item)
        require_text(item, "id")
        question = strip_image_placeholders(require_text(item, "question"))
        options = require_str_list(item, "options")
        if any(_IMAGE_PLACEHOLDER.search(option) for option in options):
            raise Malformed(OPTIONS_ARE_PICTURES, f"options {options} are pictures the prompt cannot show as text")
        answer = require_text(item, "answer").strip()
        if options:
            letters = prompts.option_letters(len(options))
            if answer not in letters and answer in options:
                answer = letters[options.index(answer)]
            if answer not in letters:
                raise Malformed(BAD_VALUE, f"answer {answer!r} is not one of the options {', '.join(letters)}")
            if options == letters:  # the option texts are drawn in the image
                prompt = prompts.template(self.name, "multiple_choice_in_image").format(
                    question=question, letters=", ".join(letters)
                )
            else:
                prompt = prompts.multiple_choice(self.name, question, options)
        else:
            prompt = prompts.open_question(self.name, question)
        return make_record(
            self,
            native_id,
            split,
            task="math",
            conversations=single_turn(prompt, answer, has_image=True),
            image=image_ref(root, require_text(item, "image")),
            answer=answer,
            choices=options or None,
            rationale=join_text(strip_mathpix_images(require(item, "solution", str, optional=True) or "")),
            meta={
                "answer_text": options[letters.index(answer)] if options else answer,
                "level": item.get("level"),
                "subject": item.get("subject"),
            },
        )
