"""results.json and the Markdown table: every score with what can change it, beside the paper's."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

from slime_model.evaluation.runner import BenchmarkRun
from slime_model.evaluation.specs import BenchmarkSpec, load_paper_rows

RESULTS_FILE, TABLE_FILE = "results.json", "results.md"
SCHEMA_VERSION = 1


def config_hash(model) -> str:
    """sha256 of the model config (sorted JSON): which architecture and sizes were scored."""
    return hashlib.sha256(json.dumps(model.config.to_dict(), sort_keys=True, default=str).encode()).hexdigest()


def results_document(
    model_path: str,
    model_config_sha256: str,
    generation: dict[str, Any],
    runs: list[BenchmarkRun],
    specs: dict[str, BenchmarkSpec],
    skipped: dict[str, str],
) -> dict[str, Any]:
    benchmarks = {}
    for run in runs:
        spec = specs[run.name]
        benchmarks[run.name] = {
            "title": spec.title,
            "metrics": {key: round(value, 4) for key, value in run.values.items()},
            "headline": spec.headline,
            "n": run.n,
            "prompts": run.prompts,
            "metric": spec.metric,
            "max_new_tokens": generation.get("max_new_tokens") or spec.max_new_tokens,
            "seconds": round(run.seconds, 3),
            "samples_per_second": round(run.n / run.seconds, 3) if run.seconds else None,
        }
    return {
        "schema_version": SCHEMA_VERSION,
        "model": {"path": model_path, "config_sha256": model_config_sha256},
        "generation": generation,
        "benchmarks": benchmarks,
        "skipped": skipped,
        "paper": paper_comparison(benchmarks),
    }


def paper_comparison(benchmarks: dict[str, Any]) -> dict[str, Any]:
    source, rows = load_paper_rows()
    compared = []
    for row in rows:
        ours = benchmarks.get(row.benchmark, {}).get("metrics", {}).get(row.metric)
        if ours is None:
            continue
        compared.append(
            {
                "paper": row.paper,
                "benchmark": row.benchmark,
                "metric": row.metric,
                "ours": ours,
                "slime_7b": row.slime_7b,
                "slime_8b": row.slime_8b,
                "diff_7b": round(ours - row.slime_7b, 2),
                "diff_8b": round(ours - row.slime_8b, 2),
                "checked_against_paper": row.checked,
                **({"note": row.note} if row.note else {}),
            }
        )
    return {"source": source, "rows": compared}


def markdown_table(results: dict[str, Any]) -> str:
    """Every benchmark's headline; with the paper's row and the differences where it has one."""
    paper = {(r["benchmark"], r["metric"]): r for r in results["paper"]["rows"]}
    lines = [
        "| benchmark | metric | n | ours | SliME-7B | SliME-8B | Δ 7B | Δ 8B |",
        "|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    for name, bench in results["benchmarks"].items():
        keys = [key for (b, key) in paper if b == name] or [bench["headline"]]
        for key in keys:
            row = paper.get((name, key))
            ours = bench["metrics"].get(key)
            cells = [name, key, str(bench["n"]), _number(ours)]
            cells += [_number(row[k]) for k in ("slime_7b", "slime_8b")] if row else ["", ""]
            cells += [f"{row[k]:+.2f}" for k in ("diff_7b", "diff_8b")] if row else ["", ""]
            if "chance" in bench["metrics"] and not row:
                cells[4] = f"chance {_number(bench['metrics']['chance'])}"
            lines.append("| " + " | ".join(cells) + " |")
    for name, reason in results["skipped"].items():
        lines.append(f"| {name} | skipped: {reason} |  |  |  |  |  |  |")
    lines.append("")
    lines.append(f"Paper values: {results['paper']['source']}; not yet checked against the PDF.")
    return "\n".join(lines) + "\n"


def _number(value: float | None) -> str:
    return "" if value is None else f"{value:.2f}"


def write_results(out: Path, results: dict[str, Any]) -> None:
    """results.json and results.md, each written to a temporary file and renamed into place."""
    out.mkdir(parents=True, exist_ok=True)
    for name, text in (
        (RESULTS_FILE, json.dumps(results, indent=2, ensure_ascii=False) + "\n"),
        (TABLE_FILE, markdown_table(results)),
    ):
        temporary = out / f".{name}.tmp"
        temporary.write_text(text, encoding="utf-8")
        os.replace(temporary, out / name)
