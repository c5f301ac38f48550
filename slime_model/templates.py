"""Chat templates (data in `chat_templates.yaml`) and their rendering into typed text segments.

A conversation renders to a list of (text, kind) segments whose concatenation is the prompt; the
processor tokenizes the whole prompt once and gives each token the kind of the segment its last
character falls in. So labels (ANSWER) and the selector's user-turn mask (USER) are exact for any
fast tokenizer, without re-tokenizing pieces and counting lengths as the released code does.
"""

from __future__ import annotations

import enum
import functools
from collections.abc import Mapping, Sequence
from importlib import resources

import yaml
from pydantic import BaseModel, ConfigDict, model_validator

HUMAN, GPT = "human", "gpt"


class SegmentKind(enum.IntEnum):
    FRAME = 0  # system text, role markers, separators: no label, not seen by the selector
    USER = 1  # user-turn content: the selector's text guidance
    ANSWER = 2  # assistant content and its end-of-turn suffix: the labels


class TurnFormat(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    prefix: str
    suffix: str


class ChatTemplate(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    system_prefix: str
    user: TurnFormat
    assistant: TurnFormat
    generation_prefix: str
    keep_user_text: bool

    @model_validator(mode="after")
    def _generation_prefix_starts_the_assistant_prefix(self) -> ChatTemplate:
        if not self.assistant.prefix.startswith(self.generation_prefix):
            raise ValueError(
                f"generation_prefix {self.generation_prefix!r} must begin assistant.prefix {self.assistant.prefix!r}: "
                "a generated answer continues exactly where a trained one starts"
            )
        return self

    @property
    def answer_lead(self) -> str:
        """What the assistant prefix adds after the generation prompt (vicuna's space after "ASSISTANT:").

        A generated answer starts right after `generation_prefix`, so these characters belong to the answer:
        a tokenizer that keeps the space as a token of its own (the tiny BPE before a rare letter) must
        learn to emit it, or generation starts with a token no label ever showed the model.
        """
        return self.assistant.prefix[len(self.generation_prefix) :]


@functools.lru_cache(maxsize=1)
def chat_templates() -> dict[str, ChatTemplate]:
    text = resources.files("slime_model").joinpath("chat_templates.yaml").read_text(encoding="utf-8")
    return {name: ChatTemplate.model_validate(spec) for name, spec in yaml.safe_load(text).items()}


CHAT_TEMPLATE_NAMES = tuple(chat_templates())


def get_chat_template(name: str) -> ChatTemplate:
    templates = chat_templates()
    if name not in templates:
        raise ValueError(f"unknown chat template {name!r}; choose one of {sorted(templates)}")
    return templates[name]


def _user_content(value: str, image_token: str, keep_text: bool) -> str:
    """LLaVA's placement: the turn's image placeholders first, then a newline and the stripped text."""
    num_images = value.count(image_token)
    if not keep_text:
        return image_token * num_images
    if num_images == 0:
        return value
    return image_token * num_images + "\n" + value.replace(image_token, "").strip()


def render_conversation(
    template: ChatTemplate,
    conversation: Sequence[Mapping[str, str]],
    image_token: str,
    add_generation_prompt: bool = False,
) -> list[tuple[str, SegmentKind]]:
    """[{from: human|gpt, value}, …] (the Record layout) -> [(text, kind), …]."""
    turns = list(conversation)
    if turns and turns[0].get("from") == GPT:
        turns = turns[1:]  # LLaVA drops a leading assistant turn
    segments: list[tuple[str, SegmentKind]] = [(template.system_prefix, SegmentKind.FRAME)]
    for index, turn in enumerate(turns):
        role, value = turn.get("from"), turn.get("value")
        expected = HUMAN if index % 2 == 0 else GPT
        if role != expected or not isinstance(value, str):
            raise ValueError(
                f"turn {index} must be {{'from': {expected!r}, 'value': "
                f"str}} (turns alternate human, gpt), got {dict(turn)!r}"
            )
        if role == HUMAN:
            content = _user_content(value, image_token, template.keep_user_text)
            segments += [
                (template.user.prefix, SegmentKind.FRAME),
                (content, SegmentKind.USER),
                (template.user.suffix, SegmentKind.FRAME),
            ]
        else:
            segments += [
                (template.generation_prefix, SegmentKind.FRAME),
                (template.answer_lead, SegmentKind.ANSWER),
                (value, SegmentKind.ANSWER),
                (template.assistant.suffix, SegmentKind.ANSWER),
            ]
    if add_generation_prompt:
        if not turns or turns[-1]["from"] != HUMAN:
            raise ValueError("add_generation_prompt needs a conversation that ends with a human turn")
        segments.append((template.generation_prefix, SegmentKind.FRAME))
    return [(text, kind) for text, kind in segments if text]
