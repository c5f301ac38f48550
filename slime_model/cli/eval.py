"""`slime-model eval`: score a checkpoint on the paper's benchmarks, beside the paper's numbers."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated

import typer

from slime_data.ui import UserError, console, progress, user_errors

DTYPES = ("auto", "bfloat16", "float16", "float32")


def list_benchmarks() -> None:
    """Each benchmark's files under --root/<name>/, its prompt, metric and paper row, on stdout (plain
    text: layouts are paths, which a table would cut)."""
    from slime_model.evaluation.specs import load_benchmarks, load_paper_rows, load_prompts

    paper = {row.benchmark: row.paper for row in load_paper_rows()[1]}
    prompts = load_prompts()
    for spec in load_benchmarks().values():
        row = f"; paper row {paper[spec.name]}" if spec.name in paper else ""
        print(f"{spec.name}: {spec.title}")
        print(f"  prompt {spec.prompt} v{prompts[spec.prompt].version}; metric {spec.metric} ({spec.headline}){row}")
        for line in spec.layout.strip().splitlines():
            print(f"  --root/{spec.name}/{line.strip()}" if not line.startswith(" ") else f"    {line.strip()}")


DEMO_CHECKPOINT = Path("runs/tiny/stage-3")  # where the README's `slime-model train` leaves its last stage
ModelOption = Annotated[
    Path | None, typer.Option("--model", help=f"Checkpoint folder; default {DEMO_CHECKPOINT} (the demo chain's).")
]
BenchmarksOption = Annotated[
    str,
    typer.Option(
        "--benchmarks",
        help="'paper' (all the paper reports that are under --root), 'all', or names separated by commas.",
    ),
]
RootOption = Annotated[
    Path | None,
    typer.Option(
        "--root",
        help="One sub-folder per benchmark (see --list). Default: bundled excerpts + held-out synthetic split.",
    ),
]
OutOption = Annotated[
    Path | None,
    typer.Option(
        "--out", help="Where predictions, results.json and results.md go. Default: eval/<checkpoint folder name>."
    ),
]
BatchOption = Annotated[int, typer.Option("--batch", min=1, help="Prompts generated together.")]
LimitOption = Annotated[int | None, typer.Option("--limit", min=1, help="At most this many items per benchmark.")]
TokensOption = Annotated[
    int | None, typer.Option("--max-new-tokens", min=1, help="Override each benchmark's answer length.")
]
DtypeOption = Annotated[str, typer.Option("--dtype", help=f"{', '.join(DTYPES)} (auto = the checkpoint's).")]
DeviceOption = Annotated[str, typer.Option("--device", help="cpu, cuda, cuda:1 ... (auto = cuda when there is one).")]
JudgeModelOption = Annotated[
    str | None,
    typer.Option("--judge-model", help="Judge LLM for MM-Vet and LLaVA-Bench (any OpenAI-compatible server)."),
]
JudgeUrlOption = Annotated[
    str | None, typer.Option("--judge-base-url", help="The judge server's base URL (key from $OPENAI_API_KEY).")
]
JudgeBudgetOption = Annotated[
    int | None, typer.Option("--judge-max-requests", min=0, help="Budget: stop after this many judge requests.")
]
ListOption = Annotated[bool, typer.Option("--list", help="Print each benchmark's layout, prompt and metric; exit.")]


@user_errors
def eval_command(
    model: ModelOption = None,
    benchmarks: BenchmarksOption = "paper",
    root: RootOption = None,
    out: OutOption = None,
    batch: BatchOption = 8,
    limit: LimitOption = None,
    max_new_tokens: TokensOption = None,
    dtype: DtypeOption = "auto",
    device: DeviceOption = "auto",
    judge_model: JudgeModelOption = None,
    judge_base_url: JudgeUrlOption = None,
    judge_max_requests: JudgeBudgetOption = None,
    list_: ListOption = False,
) -> None:
    """Score a checkpoint on the paper's benchmarks; predictions are kept, so a killed run resumes.

    Examples:
      slime-model eval                                                (the demo's runs/tiny/stage-3 on the bundled
                                                                       excerpts + held-out synthetic splits)
      slime-model eval --model models/slime-7b --root ~/benchmarks --benchmarks paper --batch 16
      slime-model eval --list
    """
    if list_:
        list_benchmarks()
        return
    import torch
    from transformers.utils import logging as transformers_logging

    from slime_model.evaluation.evaluate import EvalSettings, evaluate
    from slime_model.evaluation.judge import JudgeSettings
    from slime_model.evaluation.results import TABLE_FILE
    from slime_model.modeling import SliMEForConditionalGeneration
    from slime_model.processing import SliMEProcessor

    if model is None:
        if not (DEMO_CHECKPOINT / "config.json").is_file():
            raise UserError(
                f"no --model and no {DEMO_CHECKPOINT}: train the demo (slime-model train --data manifests/mix.json) "
                "or pass --model CHECKPOINT"
            )
        model = DEMO_CHECKPOINT
    if not (model / "config.json").is_file():
        raise UserError(f"--model {model} is not a checkpoint folder (no config.json)")
    if root is not None and not root.is_dir():
        raise UserError(f"--root {root} is not a folder (see slime-model eval --list for the layout)")
    if dtype not in DTYPES:
        raise UserError(f"--dtype {dtype!r} is not one of {', '.join(DTYPES)}")
    if (judge_model is None) != (judge_base_url is None):
        raise UserError("--judge-model and --judge-base-url go together")
    out = out or Path("eval") / model.name
    judge = None
    if judge_model is not None:
        judge = JudgeSettings(judge_model, judge_base_url, out / "judge-cache.sqlite", judge_max_requests)
    target = device if device != "auto" else ("cuda" if torch.cuda.is_available() else "cpu")
    transformers_logging.disable_progress_bar()
    with console.status(f"loading {model}"):
        loaded = SliMEForConditionalGeneration.from_pretrained(model, dtype=dtype).eval().to(target)
        processor = SliMEProcessor.from_pretrained(model)
    settings = EvalSettings(
        benchmarks=benchmarks,
        root=root,
        out=out,
        batch=batch,
        limit=limit,
        max_new_tokens=max_new_tokens,
        judge=judge,
        extra={"dtype": str(loaded.dtype).removeprefix("torch."), "device": target},
    )
    started = time.perf_counter()
    with progress() as bar:
        state: dict = {}

        def on_start(spec, total: int) -> None:
            state.update(task=bar.add_task(spec.name, total=total), name=spec.name, clock=time.perf_counter(), count=0)

        def on_done(count: int) -> None:
            state["count"] += count
            rate = state["count"] / max(time.perf_counter() - state["clock"], 1e-9)
            bar.update(state["task"], advance=count, description=f"{state['name']} {rate:.2f} samples/s")

        if root is None:
            console.print("no --root: scoring the bundled excerpts and a held-out synthetic split")
        results = evaluate(str(model), loaded, processor, settings, on_start=on_start, on_done=on_done)
    console.print((out / TABLE_FILE).read_text(encoding="utf-8"), markup=False, highlight=False)
    for name, reason in results["skipped"].items():
        console.print(f"skipped {name}: {reason}", highlight=False)
    console.print(
        f"{len(results['benchmarks'])} benchmark(s) in {time.perf_counter() - started:.1f} s; "
        f"results in {out / 'results.json'} and {out / TABLE_FILE}",
        highlight=False,
    )


def register(app: typer.Typer) -> None:
    app.command("eval")(eval_command)
