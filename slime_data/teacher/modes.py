"""What the teacher does to one record in each mode.

- ``rationale``: rows with a gold answer and a missing (or poor) rationale get step-by-step
  reasoning from the teacher, kept only if its final answer matches the gold answer after
  normalisation. The answer turn of the conversation is left as it is (the short answer the
  human turn asks for); the reasoning goes into the ``rationale`` column, and the build's ``present``
  step decides how to show it (``pipelines/presentation.yaml``). Other rows pass through untouched.
- ``qa``: each image whose shorter side is at least ``min_short_side`` gets up to ``questions``
  new detail-heavy question/answer/rationale rows with ids ``<record id>/qa-<n>``; the input row
  passes through too. With ``thumbnail_check``, one more request asks the same questions about
  a ``thumbnail_side`` thumbnail and drops every question it answers correctly. The questions
  depend on the image only, so they are asked once per distinct image (by content) in a run:
  the first row holding it in input order gets them, later rows sharing it pass through alone
  (otherwise every row of a multi-question image would repeat the same cached answer).
- ``verify``: rows with a rationale go to a judge; the ones it calls wrong are dropped.

Every kept row that the teacher touched gets ``meta["teacher"][mode]``: model, served model,
prompt version and sha256, and the tokens its requests used.
"""

from __future__ import annotations

import functools
import hashlib
import json
from dataclasses import dataclass, replace
from typing import Any, Literal

from slime_data.record import Record, Reject
from slime_data.sources.prompts import gpt_turn, human_turn
from slime_data.teacher.answers import answers_match, choice_index
from slime_data.teacher.client import Answer, ChatRequest, TeacherClient
from slime_data.teacher.config import TeacherConfig
from slime_data.teacher.images import ImagePart
from slime_data.teacher.prompts import PromptTemplate, load_prompt
from slime_data.teacher.replies import QAReply, RationaleReply, Reply, ThumbnailReply, VerifyReply, response_schema

Mode = Literal["rationale", "qa", "verify"]
PROMPT_KINDS: dict[str, tuple[str, ...]] = {
    "rationale": ("rationale",),
    "qa": ("qa", "thumbnail_check"),
    "verify": ("verify",),
}


@dataclass(frozen=True)
class ModeSettings:
    questions: int = 3  # qa: questions asked per image
    min_short_side: int = 672  # qa: only images at least this big on their shorter side
    thumbnail_check: bool = False  # qa: drop questions a thumbnail answers
    rewrite: Literal["missing", "poor", "all"] = "poor"  # rationale: which rows get a new one
    poor_below_words: int = 8  # rationale: "poor" = fewer words than this


@functools.cache
def _schema_text(model: type[Reply]) -> str:
    return json.dumps(response_schema(model), ensure_ascii=False)


class Teacher:
    """Prompts loaded once (a bad template fails before any request); ``process`` per record."""

    def __init__(self, config: TeacherConfig, mode: Mode, settings: ModeSettings, step: str = "teacher") -> None:
        self.config = config
        self.mode = mode
        self.settings = settings
        self.step = step
        self.prompts: dict[str, PromptTemplate] = {}
        self._questioned: set[str] = set()  # qa: content hashes of the images asked about in this run
        for kind in PROMPT_KINDS[mode]:
            if kind not in config.prompts:
                raise ValueError(f"teacher config: prompts has no {kind!r} entry")
            self.prompts[kind] = load_prompt(config.prompts[kind], kind)

    def start_run(self) -> None:
        """Forget which images qa asked about: a run (a stream of records) starts."""
        self._questioned.clear()

    async def process(self, client: TeacherClient, record: Record) -> list[Record | Reject]:
        if record.image is not None and record.image.bytes is None:
            return [self._reject(record.id, record, "teacher_image_missing", "the image bytes were not loaded")]
        if self.mode == "rationale":
            return await self.rationale(client, record)
        if self.mode == "qa":
            return await self.qa(client, record)
        return await self.verify(client, record)

    # -- helpers -----------------------------------------------------------------------------
    def _reject(self, row_id: str, record: Record, reason: str, detail: str) -> Reject:
        return Reject(id=row_id, source=record.source, step=self.step, reason=reason, detail=detail)

    def _request(self, kind: str, reply_model: type[Reply], image: ImagePart | None, **values: Any) -> ChatRequest:
        prompt = self.prompts[kind]
        system, user = prompt.render(schema=_schema_text(reply_model), **values)
        return ChatRequest(prompt=prompt, system=system, user=user, image=image, reply_model=reply_model)

    def _image(self, record: Record, max_side: int) -> ImagePart | None:
        return None if record.image is None else ImagePart(record.image.bytes, max_side)

    def _provenance(self, kind: str, answer: Answer, **extra: Any) -> dict[str, Any]:
        return {
            "model": self.config.model,
            "served_model": answer.served_model,
            **self.prompts[kind].provenance(),
            "usage": answer.usage.to_json(),
            **extra,
        }

    @staticmethod
    def _with_meta(record: Record, mode: str, provenance: dict[str, Any], **changes: Any) -> Record:
        meta = dict(record.meta)
        meta["teacher"] = {**meta.get("teacher", {}), mode: provenance}
        return replace(record, meta=meta, **changes)

    # -- rationale ---------------------------------------------------------------------------
    def wants_rationale(self, record: Record) -> bool:
        if not (record.answer or "").strip():
            return False
        current = (record.rationale or "").strip()
        rewrite = self.settings.rewrite
        return (
            rewrite == "all"
            or not current
            or (rewrite == "poor" and len(current.split()) < self.settings.poor_below_words)
        )

    def _gold_display(self, record: Record) -> str:
        """The gold answer as the teacher sees it: "B. blue" for an option, else as stored."""
        if record.choices:
            index = choice_index(record.answer, record.choices)
            if index is not None:
                return f"{chr(ord('A') + index)}. {record.choices[index]}"
        return record.answer

    async def rationale(self, client: TeacherClient, record: Record) -> list[Record | Reject]:
        if not self.wants_rationale(record):
            return [record]
        request = self._request(
            "rationale",
            RationaleReply,
            self._image(record, self.config.max_image_side),
            question=record.question,
            answer=self._gold_display(record),
        )
        answer = await client.ask(request)
        if answer.failure is not None:
            return [self._reject(record.id, record, *answer.failure)]
        reply: RationaleReply = answer.reply
        if not answers_match(reply.final_answer, record.answer, record.choices):
            detail = f"teacher's final answer {reply.final_answer!r} is not the gold answer {record.answer!r}"
            return [self._reject(record.id, record, "teacher_answer_mismatch", detail)]
        provenance = self._provenance("rationale", answer)
        return [self._with_meta(record, "rationale", provenance, rationale=reply.reasoning)]

    # -- qa ------------------------------------------------------------------------------------
    def wants_questions(self, record: Record) -> bool:
        return (
            record.image is not None
            and record.width is not None
            and record.height is not None
            and min(record.width, record.height) >= self.settings.min_short_side
        )

    def _first_with_image(self, record: Record) -> bool:
        """True for the first row of this run holding this image (records start in input order and
        this runs before their first await, so the claim is deterministic)."""
        key = record.image_hash or hashlib.sha256(record.image.bytes).hexdigest()
        if key in self._questioned:
            return False
        self._questioned.add(key)
        return True

    async def qa(self, client: TeacherClient, record: Record) -> list[Record | Reject]:
        if not self.wants_questions(record) or not self._first_with_image(record):
            return [record]
        wanted = self.settings.questions
        answer = await client.ask(
            self._request("qa", QAReply, self._image(record, self.config.max_image_side), n=wanted),
            check=lambda reply: None if reply.questions else "no questions",
        )
        if answer.failure is not None:
            return [record, self._reject(f"{record.id}/qa", record, *answer.failure)]
        items = answer.reply.questions[:wanted]
        provenance = self._provenance("qa", answer)

        thumbnail_answers: list[str] | None = None
        if self.settings.thumbnail_check:
            numbered = "\n".join(f"{i + 1}. {item.question}" for i, item in enumerate(items))
            check = await client.ask(
                self._request(
                    "thumbnail_check",
                    ThumbnailReply,
                    self._image(record, self.config.thumbnail_side),
                    questions=numbered,
                ),
                check=lambda reply: (
                    None
                    if len(reply.answers) == len(items)
                    else f"{len(reply.answers)} answers for {len(items)} questions"
                ),
            )
            if check.failure is not None:
                return [record, self._reject(f"{record.id}/qa", record, *check.failure)]
            thumbnail_answers = check.reply.answers
            provenance["thumbnail_check"] = self._provenance("thumbnail_check", check)

        out: list[Record | Reject] = [record]
        for n, item in enumerate(items):
            row_id = f"{record.id}/qa-{n}"
            if thumbnail_answers is not None and answers_match(thumbnail_answers[n], item.answer):
                detail = f"answered from a {self.config.thumbnail_side}-px thumbnail: {thumbnail_answers[n]!r}"
                out.append(self._reject(row_id, record, "teacher_qa_thumbnail_answerable", detail))
                continue
            meta = {key: value for key, value in record.meta.items() if key != "teacher"}
            meta.update(generated_from=record.id, teacher={"qa": provenance})
            out.append(
                replace(
                    record,
                    id=row_id,
                    conversations=[human_turn(item.question, has_image=True), gpt_turn(item.answer)],
                    answer=item.answer,
                    choices=None,
                    rationale=item.rationale,
                    meta=meta,
                )
            )
        return out

    # -- verify --------------------------------------------------------------------------------
    async def verify(self, client: TeacherClient, record: Record) -> list[Record | Reject]:
        if not (record.rationale or "").strip():
            return [record]
        request = self._request(
            "verify",
            VerifyReply,
            self._image(record, self.config.max_image_side),
            question=record.question,
            answer=self._gold_display(record) if record.answer else "(not given)",
            rationale=record.rationale,
        )
        answer = await client.ask(request)
        if answer.failure is not None:
            return [self._reject(record.id, record, *answer.failure)]
        reply: VerifyReply = answer.reply
        if reply.verdict == "wrong":
            return [self._reject(record.id, record, "teacher_verify_wrong", client.redact(reply.reason))]
        return [self._with_meta(record, "verify", self._provenance("verify", answer, verdict=reply.verdict))]
