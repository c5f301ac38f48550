"""`slime-model eval` without the CLI: pick benchmarks under a root (or the embedded ones), run each,
write results.json and results.md."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from slime_model.evaluation.judge import JUDGED, JudgeSettings, judge_prompt
from slime_model.evaluation.results import config_hash, results_document, write_results
from slime_model.evaluation.runner import BenchmarkRun, GenerateFn, run_benchmark
from slime_model.evaluation.specs import (
    BenchmarkLayoutError,
    BenchmarkSpec,
    load_benchmarks,
    load_paper_rows,
    load_prompts,
    read_for_eval,
)
from slime_model.generation import generate_batch

EXCERPTS = Path(__file__).parent / "excerpts"
EMBEDDED = ("scienceqa_img", "synth_heldout")
HELD_OUT_SEED = 1  # the bundled training recipes generate synth data with seed 0
HELD_OUT_IMAGES = 25  # five of each synth kind ...
HELD_OUT_EXTRA = {"hatching": 20}  # ... and 20 more hatching pages, as the demo set leans on them (its `extra`)


@dataclass
class EvalSettings:
    benchmarks: str = "paper"  # "paper", "all" or a comma-separated list of names
    root: Path | None = None  # None: the embedded excerpts + a held-out synthetic split
    out: Path = Path("eval")
    batch: int = 8
    limit: int | None = None  # at most this many items per benchmark (the first in reader order)
    max_new_tokens: int | None = None  # None: each benchmark's own
    judge: JudgeSettings | None = None
    extra: dict[str, Any] = field(default_factory=dict)  # recorded as is (dtype, device)


def select(settings: EvalSettings, root: Path) -> tuple[list[BenchmarkSpec], dict[str, str]]:
    """The benchmarks to run and those skipped (with why). Named benchmarks must exist under root;
    "paper" and "all" take the ones present."""
    specs = load_benchmarks()
    skipped: dict[str, str] = {}
    if settings.benchmarks in ("paper", "all"):
        paper = {row.benchmark for row in load_paper_rows()[1]}
        wanted = [s for s in specs.values() if settings.benchmarks == "all" or s.name in paper]
        present = [s for s in wanted if (root / s.name).is_dir()]
        skipped |= {s.name: f"no {root / s.name}" for s in wanted if s not in present}
    else:
        names = [n.strip() for n in settings.benchmarks.split(",") if n.strip()]
        unknown = [n for n in names if n not in specs]
        if unknown:
            raise ValueError(f"unknown benchmark(s) {', '.join(unknown)}; known: {', '.join(specs)}")
        present = [specs[n] for n in names]
    chosen = []
    for spec in present:
        if spec.judged and settings.judge is None:
            skipped[spec.name] = "needs an LLM judge: pass --judge-model and --judge-base-url"
        else:
            chosen.append(spec)
    return chosen, skipped


def prepare_embedded(folder: Path) -> Path:
    """A root holding the bundled excerpts and a held-out synthetic split (generated once)."""
    from slime_data.synth import SynthConfig, generate_synth

    folder.mkdir(parents=True, exist_ok=True)
    for excerpt in EXCERPTS.iterdir():
        if excerpt.is_dir() and not (folder / excerpt.name).exists():
            shutil.copytree(excerpt, folder / excerpt.name)
    synth = folder / "synth_heldout"
    if not (synth / "synth.jsonl").is_file():
        generate_synth(synth, SynthConfig(n=HELD_OUT_IMAGES, seed=HELD_OUT_SEED, captions=0, extra=HELD_OUT_EXTRA))
    return folder


def evaluate(
    model_path: str,
    model,
    processor,
    settings: EvalSettings,
    *,
    generate: GenerateFn = generate_batch,
    on_start: Callable[[BenchmarkSpec, int], None] | None = None,
    on_done: Callable[[int], None] | None = None,
) -> dict[str, Any]:
    """Run the selected benchmarks, write ``results.json`` and ``results.md`` under ``settings.out``,
    return the results document."""
    if settings.root is None:
        root, names = prepare_embedded(settings.out / ".embedded"), ",".join(EMBEDDED)
        settings = EvalSettings(**{**settings.__dict__, "benchmarks": names})
    else:
        root = settings.root
    specs, skipped = select(settings, root)
    model_sha = config_hash(model)
    prompts = load_prompts()
    runs: list[BenchmarkRun] = []
    for spec in specs:
        items = read_for_eval(spec, root / spec.name)
        if not items:
            raise BenchmarkLayoutError(f"{spec.name}: no items under {root / spec.name}")
        items = items[: settings.limit] if settings.limit else items
        if on_start:
            on_start(spec, len(items))
        score = None
        if spec.judged:
            judge = JUDGED[spec.metric]
            score = lambda pairs, judge=judge: judge(pairs, settings.judge)  # noqa: E731
        used = [name for name in (spec.prompt, spec.prompt_open) if name]
        fingerprint = {"model_config_sha256": model_sha, "prompts": {n: prompts[n].version for n in used}}
        run = run_benchmark(
            spec,
            items,
            model,
            processor,
            settings.out,
            batch=settings.batch,
            max_new_tokens=settings.max_new_tokens,
            generate=generate,
            on_done=on_done,
            score=score,
            fingerprint=fingerprint,
        )
        if spec.judged:
            template, _ = judge_prompt(spec.metric.removeprefix("judge_"))
            run.prompts["judge"] = template.ref
        runs.append(run)
    generation = {
        "decoding": "greedy",
        "batch": settings.batch,
        "max_new_tokens": settings.max_new_tokens,
        "limit": settings.limit,
        "root": str(root),
        **settings.extra,
    }
    if settings.judge is not None:
        generation["judge"] = {"model": settings.judge.model, "base_url": settings.judge.base_url}
    results = results_document(model_path, model_sha, generation, runs, load_benchmarks(), skipped)
    write_results(settings.out, results)
    return results
