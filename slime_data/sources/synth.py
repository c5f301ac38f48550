"""The synthetic detail-heavy source written by ``slime-data synth``.

One record per question (several per image: ``synth/<image_id>/<n>``), worded like every other
source (``slime_data.sources.prompts``): multiple choice gets lettered options and the letter
as answer, open questions the short answer (with the unit when there is one). The rationale is
the generator's step-by-step working. The caption set under ``LLaVA-Pretrain/`` is read by the
``llava_pretrain`` adapter, not by this one.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from pydantic import ValidationError

from slime_data.record import Record, Reject
from slime_data.sources import prompts
from slime_data.sources.base import SourceAdapter, SourceNotFound, register
from slime_data.sources.common import (
    BAD_JSON,
    BAD_VALUE,
    MISSING_FIELD,
    WRONG_TYPE,
    Malformed,
    choice_letter,
    image_ref,
    iter_jsonl,
    locate_dataset,
    make_record,
    read_json,
    record_or_reject,
    single_turn,
)
from slime_data.synth.layout import INFO_FILE, LICENSE, QA_FILE, SynthInfo, SynthQuestion

SPLIT = "train"
TASKS = {"chart": "chart", "table": "table", "document": "document", "geometry": "geometry", "hatching": "general"}


@register
class Synth(SourceAdapter):
    name = "synth"
    license = LICENSE
    default_splits = (SPLIT,)
    layout = f"""\
<root>/synth/          (or the folder `slime-data synth --out` wrote)
  {QA_FILE}            one question per line: id, image_id, image, kind, template, question,
                       choices (null = open), answer (multiple choice: the option text),
                       rationale, unit, args
  figures.jsonl        one image per line with the data it was drawn from
  images/<kind>/<image_id>.png
  {INFO_FILE}           generator version, seed, counts (written last)
  LLaVA-Pretrain/      the caption set (LLaVA-558K format, read by the llava_pretrain adapter)"""

    def locate(self, root: Path) -> Path:
        return locate_dataset(self.name, root, ("", "synth"), (INFO_FILE,))

    def splits(self, root: Path) -> list[str]:
        self.locate(root)
        return [SPLIT]

    def read(self, root: Path, split: str) -> Iterator[Record | Reject]:
        root = self.locate(root)
        if split != SPLIT:
            raise SourceNotFound(f"{self.name}: no split {split!r}; the synthetic set has only {SPLIT!r}")
        try:
            info = SynthInfo.model_validate(read_json(root / INFO_FILE))
        except ValidationError as err:
            raise ValueError(f"{root / INFO_FILE} is not a synth info file: {_first_error(err)}") from None
        for line in iter_jsonl(root / QA_FILE):
            native_id = f"{QA_FILE}:{line.number}"
            if line.error is not None:
                yield self.reject(native_id, BAD_JSON, line.error)
                continue
            native_id = line.value.get("id", native_id) if isinstance(line.value, dict) else native_id
            yield record_or_reject(self, str(native_id), lambda: self._record(root, info, line.value, line.number))

    def _record(self, root: Path, info: SynthInfo, value: object, line_number: int) -> Record:
        try:
            row = SynthQuestion.model_validate(value)
        except ValidationError as err:
            missing = any(e["type"] == "missing" for e in err.errors())
            reason = MISSING_FIELD if missing else (WRONG_TYPE if _is_type_error(err) else BAD_VALUE)
            raise Malformed(reason, f"line {line_number}: {_first_error(err)}") from None
        if row.choices:
            answer = choice_letter(row.choices, row.choices.index(row.answer))
            prompt = prompts.multiple_choice(self.name, row.question, row.choices)
        else:
            answer = row.answer
            prompt = prompts.open_question(self.name, row.question, unit=row.unit)
        return make_record(
            self,
            row.id,  # "<image_id>/<n>": the record id is "synth/<image_id>/<n>"
            SPLIT,
            task=TASKS[row.kind],
            conversations=single_turn(prompt, answer, has_image=True),
            image=image_ref(root, row.image),
            answer=answer,
            choices=row.choices or None,
            rationale=row.rationale,
            meta={
                "answer_text": row.answer,
                "unit": row.unit,
                "kind": row.kind,
                "template": row.template,
                "generator_version": info.version,
                "seed": info.seed,
            },
        )


def _first_error(err: ValidationError) -> str:
    first = err.errors()[0]
    where = ".".join(str(p) for p in first["loc"]) or "row"
    return f"{where}: {first['msg']}"


def _is_type_error(err: ValidationError) -> bool:
    return any(e["type"].endswith("_type") or e["type"] == "model_type" for e in err.errors())
