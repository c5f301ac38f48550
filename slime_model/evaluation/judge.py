"""LLM-judged benchmarks (MM-Vet, LLaVA-Bench in-the-wild) through slime_data.teacher's client, so a
judge call is cached on disk (a rerun pays nothing twice), budgeted and retried like a teacher call.

MM-Vet: the judge grades each prediction 0.0-1.0 against the ground truth; the score is the mean,
in percent. LLaVA-Bench: the judge rates the reference (GPT-4) answer and ours 1-10; the score is
ours relative to the reference, mean(ours) / mean(reference) * 100, as LLaVA's summarize script does.
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import yaml

from slime_data.decontam.items import BenchmarkItem
from slime_data.teacher.cache import ResponseCache
from slime_data.teacher.client import ChatRequest, TeacherClient
from slime_data.teacher.config import TeacherConfig
from slime_data.teacher.prompts import PromptTemplate
from slime_data.teacher.replies import Reply

PROMPTS_FILE = Path(__file__).parent / "judge_prompts.yaml"
FIRST_NUMBER = re.compile(r"-?\d+(?:\.\d+)?")


@dataclass(frozen=True)
class JudgeSettings:
    model: str
    base_url: str
    cache: Path
    max_requests: int | None = None  # the teacher client's budget: stop after this many requests
    concurrency: int = 8


@functools.cache
def judge_prompt(name: str) -> tuple[PromptTemplate, str]:
    """(the template, its source note)."""
    raw = PROMPTS_FILE.read_bytes()
    spec = yaml.safe_load(raw)[name]
    template = PromptTemplate(
        kind=f"judge_{name}",
        version=str(spec["version"]),
        system=spec["system"],
        user=spec["user"],
        sha256=hashlib.sha256(yaml.safe_dump(spec, sort_keys=True).encode()).hexdigest(),
    )
    return template, spec["source"]


def parse_mmvet(reply: str) -> float:
    """The grade: the first number of the reply, clipped to [0, 1]; 0 when there is none."""
    match = FIRST_NUMBER.search(reply or "")
    return min(1.0, max(0.0, float(match.group()))) if match else 0.0


def parse_llava_bench(reply: str) -> tuple[float, float] | None:
    """LLaVA's ``parse_score``: the first line holds the two scores; None when it does not."""
    first = (reply or "").strip().split("\n")[0].replace(",", " ").split()
    try:
        return (float(first[0]), float(first[1])) if len(first) == 2 else None
    except ValueError:
        return None


def _config(settings: JudgeSettings) -> TeacherConfig:
    return TeacherConfig(
        model=settings.model,
        base_url=settings.base_url,
        structured_output="off",
        image_detail=None,
        cache=settings.cache,
        prompts={},
        sampling={"temperature": 0.0, "max_tokens": 256, "seed": 0},
        limits={"concurrency": settings.concurrency, "max_requests": settings.max_requests},
    )


async def _ask_all(settings: JudgeSettings, template: PromptTemplate, fields: list[dict[str, str]]) -> list[str]:
    settings.cache.parent.mkdir(parents=True, exist_ok=True)
    cache = ResponseCache(settings.cache)
    async with TeacherClient(_config(settings), cache) as client:

        async def one(values: dict[str, str]) -> str:
            system, user = template.render(**values)
            completion = await client.complete(ChatRequest(template, system, user, None, Reply))
            return completion.content or ""

        return list(await asyncio.gather(*(one(values) for values in fields)))


def score_mmvet(pairs: list[tuple[BenchmarkItem, str]], settings: JudgeSettings) -> dict[str, float]:
    template, _ = judge_prompt("mmvet")
    fields = [{"question": i.question or "", "gold": str(i.gold), "prediction": p.replace("\n", " ")} for i, p in pairs]
    grades = [parse_mmvet(reply) for reply in asyncio.run(_ask_all(settings, template, fields))]
    return {"score": 100 * sum(grades) / len(grades) if grades else 0.0}


def score_llava_bench(pairs: list[tuple[BenchmarkItem, str]], settings: JudgeSettings) -> dict[str, float]:
    template, _ = judge_prompt("llava_bench")
    fields = [
        {"context": str(i.meta.get("caption", "")), "question": i.question or "", "gold": str(i.gold), "prediction": p}
        for i, p in pairs
    ]
    scores = [parse_llava_bench(reply) for reply in asyncio.run(_ask_all(settings, template, fields))]
    rated = [s for s in scores if s is not None]
    reference = sum(s[0] for s in rated) / len(rated) if rated else 0.0
    ours = sum(s[1] for s in rated) / len(rated) if rated else 0.0
    return {
        "relative_score": 100 * ours / reference if reference else 0.0,
        "model_score": ours,
        "reference_score": reference,
        "unparsed": float(len(scores) - len(rated)),
    }


JUDGED: dict[str, Callable[[list[tuple[BenchmarkItem, str]], JudgeSettings], dict[str, float]]] = {
    "judge_mmvet": score_mmvet,
    "judge_llava_bench": score_llava_bench,
}
