"""``slime-data synth``: write a synthetic detail-heavy VQA source and a caption set.

Every image is a pure function of (seed, stream, kind, index): its random generator is seeded
from that string, so output is byte-identical for a seed whatever the number of workers, and
adding a kind does not change the images of the others. Work is one job per image; workers
render and write images, the main process writes the JSONL files in job order.

The set is built in a temporary sibling folder and moved into place at the end, so an
interrupted run leaves no half-written set; a rerun replaces an earlier synth output.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any, Literal

from PIL import Image
from pydantic import BaseModel, ConfigDict, Field, field_validator

from slime_data.parallel import map_in_processes
from slime_data.synth import chart, document, geometry, hatching, table
from slime_data.synth.captions import caption_entry, caption_image_path
from slime_data.synth.figure import FigureKind
from slime_data.synth.layout import (
    CAPTIONS_DIR,
    CAPTIONS_FILE,
    FIGURES_FILE,
    IMAGES_DIR,
    INFO_FILE,
    KINDS,
    QA_FILE,
    Kind,
    SynthFigure,
    SynthInfo,
    SynthQuestion,
)

FIGURE_KINDS: dict[str, FigureKind] = {  # type: ignore[dict-item]
    "chart": chart,
    "table": table,
    "document": document,
    "geometry": geometry,
    "hatching": hatching,
}
JPEG_QUALITY = 90  # caption images are JPEG like the 558K release; QA images are lossless PNG


class SynthConfig(BaseModel):
    """What to generate. The output depends on these fields only (not on the worker count)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    n: int = Field(200, ge=0, description="QA images, shared round-robin among the kinds")
    seed: int = 0
    kinds: tuple[Kind, ...] = KINDS
    captions: int = Field(64, ge=0, description="images in the caption set")
    extra: dict[Kind, int] = Field(
        default_factory=dict, description="more QA images of a kind after the round-robin ones (a kind's own indices)"
    )
    extra_captions: dict[Kind, int] = Field(default_factory=dict, description="more captions of a kind after those")

    @field_validator("kinds")
    @classmethod
    def _distinct(cls, kinds: tuple[str, ...]) -> tuple[str, ...]:
        if not kinds:
            raise ValueError("at least one kind is needed")
        if len(set(kinds)) != len(kinds):
            raise ValueError(f"kinds repeat: {', '.join(kinds)}")
        return kinds


@dataclass(frozen=True)
class Job:
    stream: Literal["qa", "caption"]
    kind: str
    index: int  # within the kind for "qa", the caption number for "caption"
    seed: int

    def rng(self) -> random.Random:
        # str seeds hash with SHA-512: the same in every process and on every platform.
        return random.Random(f"slime-synth/{self.seed}/{self.stream}/{self.kind}/{self.index}")


def plan_jobs(config: SynthConfig) -> list[Job]:
    kinds = config.kinds
    qa = [Job("qa", kinds[i % len(kinds)], i // len(kinds), config.seed) for i in range(config.n)]
    for kind, count in config.extra.items():
        first = sum(job.kind == kind for job in qa)  # continue the kind's numbering: images stay (seed, kind, index)
        qa += [Job("qa", kind, first + i, config.seed) for i in range(count)]
    captions = [Job("caption", kinds[i % len(kinds)], i, config.seed) for i in range(config.captions)]
    for kind, count in config.extra_captions.items():
        first = len(captions)  # caption numbers run on: each is one image of the caption set
        captions += [Job("caption", kind, first + i, config.seed) for i in range(count)]
    return qa + captions


def run_job(job: Job, out_dir: str) -> dict[str, Any]:
    """Render one image into ``out_dir`` and return its JSON rows (runs in a worker)."""
    rng = job.rng()
    kind = FIGURE_KINDS[job.kind]
    data = kind.sample(rng)
    image = kind.render(data).convert(kind.MODE)
    if job.stream == "caption":
        relative = f"{CAPTIONS_DIR}/{caption_image_path(job.index)}"
        _save(image, Path(out_dir) / relative, "JPEG", quality=JPEG_QUALITY)
        return {"caption": caption_entry(job.index, kind.describe(data), rng)}

    image_id = f"{job.kind}-{job.index:05d}"
    relative = f"{IMAGES_DIR}/{job.kind}/{image_id}.png"
    _save(image, Path(out_dir) / relative, "PNG", compress_level=6)
    figure = SynthFigure(
        image_id=image_id,
        image=relative,
        kind=job.kind,
        width=image.width,
        height=image.height,
        caption=kind.describe(data),
        data=data,
    )
    questions = [
        SynthQuestion(
            id=f"{image_id}/{n}",
            image_id=image_id,
            image=relative,
            kind=job.kind,
            template=qa.template,
            question=qa.question,
            choices=qa.choices,
            answer=qa.answer,
            rationale=qa.rationale,
            unit=qa.unit,
            args=qa.args,
        )
        for n, qa in enumerate(kind.ask(data, rng))
    ]
    return {
        "kind": job.kind,
        "long_side": max(image.size),
        "figure": figure.model_dump_json(),
        "questions": [q.model_dump_json() for q in questions],
        "multiple_choice": sum(q.choices is not None for q in questions),
    }


def _save(image: Image.Image, path: Path, fmt: str, **options: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    image.save(path, fmt, **options)


@dataclass
class SynthSummary:
    out: Path
    info: SynthInfo
    seconds: float
    sizes: dict[str, tuple[int, int]] = field(default_factory=dict)  # kind -> (smallest, largest) long side


def generate_synth(
    out: str | Path,
    config: SynthConfig | None = None,
    *,
    workers: int = 1,
    on_job_done: Callable[[], None] | None = None,
) -> SynthSummary:
    """Write the synthetic set to ``out`` (replacing an earlier synth output there)."""
    config = config or SynthConfig()
    out = Path(out)
    _check_out(out)
    started = time.perf_counter()
    partial = out.parent / f".{out.name}.partial-{os.getpid()}"
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir(parents=True)
    try:
        info, sizes = _write(partial, config, workers, on_job_done)
        _replace(partial, out)
    except BaseException:
        shutil.rmtree(partial, ignore_errors=True)
        raise
    return SynthSummary(out=out, info=info, seconds=time.perf_counter() - started, sizes=sizes)


def _write(
    out: Path, config: SynthConfig, workers: int, on_job_done: Callable[[], None] | None
) -> tuple[SynthInfo, dict[str, tuple[int, int]]]:
    images: Counter[str] = Counter()
    questions: Counter[str] = Counter()
    multiple_choice: Counter[str] = Counter()
    sizes: dict[str, tuple[int, int]] = {}
    captions: list[dict[str, Any]] = []
    with (
        open(out / QA_FILE, "w", encoding="utf-8") as qa_file,
        open(out / FIGURES_FILE, "w", encoding="utf-8") as figures_file,
    ):
        for result in map_in_processes(partial(run_job, out_dir=str(out)), plan_jobs(config), workers):
            if "caption" in result:
                captions.append(result["caption"])
            else:
                kind, long_side = result["kind"], result["long_side"]
                figures_file.write(result["figure"] + "\n")
                qa_file.writelines(line + "\n" for line in result["questions"])
                images[kind] += 1
                questions[kind] += len(result["questions"])
                multiple_choice[kind] += result["multiple_choice"]
                low, high = sizes.get(kind, (long_side, long_side))
                sizes[kind] = (min(low, long_side), max(high, long_side))
            if on_job_done:
                on_job_done()
    if config.captions:
        (out / CAPTIONS_DIR).mkdir(exist_ok=True)
        with open(out / CAPTIONS_DIR / CAPTIONS_FILE, "w", encoding="utf-8") as f:
            json.dump(captions, f, ensure_ascii=False, indent=1)
    info = SynthInfo(
        seed=config.seed,
        n=config.n,
        kinds=list(config.kinds),
        extra=dict(config.extra),
        extra_captions=dict(config.extra_captions),
        captions=config.captions,
        images=dict(images),
        questions=dict(questions),
        multiple_choice=dict(multiple_choice),
    )
    (out / INFO_FILE).write_text(info.model_dump_json(indent=2) + "\n", encoding="utf-8")
    return info, sizes


def _check_out(out: Path) -> None:
    if Path.cwd().resolve().is_relative_to(out.resolve()):
        raise ValueError(f"--out {out} is the working folder or holds it; choose a folder below it")
    if out.exists() and not out.is_dir():
        raise ValueError(f"--out {out} is a file, not a folder")
    if out.is_dir() and any(out.iterdir()) and not (out / INFO_FILE).is_file():
        raise ValueError(
            f"--out {out} is not empty and holds no earlier synth output ({INFO_FILE}); choose another folder"
        )


def _replace(partial: Path, out: Path) -> None:
    """Move the finished set into place; an earlier synth output there goes only after that."""
    if not out.exists():
        partial.rename(out)
        return
    old = out.parent / f".{out.name}.old-{os.getpid()}"
    out.rename(old)
    partial.rename(out)
    shutil.rmtree(old)
