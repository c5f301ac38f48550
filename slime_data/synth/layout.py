"""The native layout ``slime-data synth`` writes and the ``synth`` source adapter reads::

    DIR/
      synth.jsonl                  one question per line (SynthQuestion)
      figures.jsonl                one image per line with its generating data (SynthFigure)
      images/<kind>/<image_id>.png
      LLaVA-Pretrain/              the caption set, as the LLaVA-558K release lays it out
        blip_laion_cc_sbu_558k.json
        images/<first 5 digits>/<9-digit id>.jpg
      synth.json                   what was generated (SynthInfo); written last, marks a complete set

The row models are the single definition of the files: the generator writes them with
``model_dump_json`` and the adapter validates with ``model_validate``.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

QA_FILE = "synth.jsonl"
FIGURES_FILE = "figures.jsonl"
INFO_FILE = "synth.json"
IMAGES_DIR = "images"
CAPTIONS_DIR = "LLaVA-Pretrain"  # the release folder name the llava_pretrain adapter looks for
CAPTIONS_FILE = "blip_laion_cc_sbu_558k.json"
LICENSE = "CC0-1.0 (synthetic)"
GENERATOR_VERSION = "2"  # 2: the hatching kind

Kind = Literal["chart", "table", "document", "geometry", "hatching"]
KINDS: tuple[Kind, ...] = ("chart", "table", "document", "geometry", "hatching")


class SynthQuestion(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: str = Field(min_length=1)  # "<image_id>/<n>": n-th question about the image
    image_id: str = Field(min_length=1)
    image: str = Field(min_length=1)  # relative to DIR
    kind: Kind
    template: str  # the question family (see the kind's module)
    question: str = Field(min_length=1)
    choices: list[str] | None = Field(None, min_length=2, max_length=8)  # multiple choice: the option texts, in order
    answer: str = Field(min_length=1)  # multiple choice: the right option's text
    rationale: str = Field(min_length=1)
    unit: str | None = None
    args: dict[str, Any] = Field(default_factory=dict)  # what the question refers to in the figure's data

    @model_validator(mode="after")
    def _answer_is_an_option(self) -> SynthQuestion:
        if self.choices is not None and self.answer not in self.choices:
            raise ValueError(f"answer {self.answer!r} is not one of the choices {self.choices}")
        return self


class SynthFigure(BaseModel):
    model_config = ConfigDict(extra="forbid")

    image_id: str
    image: str
    kind: Kind
    width: int
    height: int
    caption: str
    data: dict[str, Any]  # the generating parameters: every answer is computed from these


class SynthInfo(BaseModel):
    model_config = ConfigDict(extra="forbid")

    generator: str = "slime-data synth"
    version: str = GENERATOR_VERSION
    license: str = LICENSE
    seed: int
    n: int
    kinds: list[Kind]
    extra: dict[Kind, int] = Field(default_factory=dict)  # more images of a kind after the round-robin n
    extra_captions: dict[Kind, int] = Field(default_factory=dict)  # more captions of a kind after `captions`
    captions: int
    images: dict[str, int]  # per kind
    questions: dict[str, int]  # per kind
    multiple_choice: dict[str, int]  # per kind
