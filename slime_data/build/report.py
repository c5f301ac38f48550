"""``report.html`` with PNG plots for a built shard set (``slime-data report DIR`` regenerates it).

Everything comes from the shard set's compact columns, its manifest and ``rejects.jsonl``;
images are never decoded.
"""

from __future__ import annotations

import html
import json
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from slime_data.shards import ShardSet  # noqa: E402

REPORT = "report.html"
PLOTS = "report"


def collect(shard_set: ShardSet) -> dict[str, Any]:
    """Per-row numbers the plots need, read column by column."""
    widths, heights, blur, question_len, answer_len = [], [], [], [], []
    sources: Counter[str] = Counter()
    for batch in shard_set.iter_batches(columns=["source", "width", "height", "conversations", "meta"]):
        sources.update(batch.column("source").to_pylist())
        for w, h in zip(batch.column("width").to_pylist(), batch.column("height").to_pylist()):
            if w and h:
                widths.append(w)
                heights.append(h)
        for conversation in batch.column("conversations").to_pylist():
            question_len += [len(t["value"].split()) for t in conversation if t["from"] == "human"]
            answer_len += [len(t["value"].split()) for t in conversation if t["from"] == "gpt"]
        for meta in batch.column("meta").to_pylist():
            score = json.loads(meta or "{}").get("quality", {}).get("blur")
            if score is not None:
                blur.append(score)
    rejects_by_source: Counter[str] = Counter()
    rejects_by_reason: dict[str, Counter[str]] = defaultdict(Counter)
    for reject in shard_set.rejects():
        rejects_by_source[reject["source"]] += 1
        rejects_by_reason[reject["step"]][reject["reason"]] += 1
    before = Counter(sources)
    before.update(rejects_by_source)
    return {
        "widths": np.array(widths), "heights": np.array(heights), "blur": np.array(blur),
        "question_len": np.array(question_len), "answer_len": np.array(answer_len),
        "after": sources, "before": before, "rejects": rejects_by_reason,
    }


def _save(fig: plt.Figure, path: Path) -> str:
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path.name


def plot_all(data: dict[str, Any], folder: Path) -> dict[str, str]:
    folder.mkdir(parents=True, exist_ok=True)
    plots = {}

    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 4))
    if len(data["widths"]):
        left.scatter(data["widths"], data["heights"], s=4, alpha=0.5)
        right.hist(np.minimum(data["widths"], data["heights"]), bins=40)
    left.set(title="image size", xlabel="width (px)", ylabel="height (px)")
    right.set(title="short side", xlabel="px", ylabel="rows")
    plots["resolution"] = _save(fig, folder / "resolution.png")

    names = sorted(data["before"])
    fig, ax = plt.subplots(figsize=(max(6, len(names) * 0.9), 4))
    x = np.arange(len(names))
    ax.bar(x - 0.2, [data["before"][n] for n in names], 0.4, label="read")
    ax.bar(x + 0.2, [data["after"][n] for n in names], 0.4, label="kept")
    ax.set_xticks(x, names, rotation=30, ha="right")
    ax.set(title="rows per source, before and after", ylabel="rows")
    ax.legend()
    plots["composition"] = _save(fig, folder / "composition.png")

    labels = [f"{step}: {reason}" for step, reasons in data["rejects"].items() for reason in reasons]
    values = [n for reasons in data["rejects"].values() for n in reasons.values()]
    fig, ax = plt.subplots(figsize=(7, max(2.5, 0.35 * len(labels) + 1)))
    ax.barh(labels or ["(none)"], values or [0])
    ax.set(title="rejects by step and reason", xlabel="rows")
    plots["rejects"] = _save(fig, folder / "rejects.png")

    fig, ax = plt.subplots(figsize=(6, 4))
    if len(data["blur"]):
        ax.hist(np.log10(1 + data["blur"]), bins=40)
    ax.set(title="blur score (kept rows)", xlabel="log10(1 + Laplacian variance)", ylabel="rows")
    plots["blur"] = _save(fig, folder / "blur.png")

    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 4))
    if len(data["question_len"]):
        left.hist(data["question_len"], bins=40)
    if len(data["answer_len"]):
        right.hist(data["answer_len"], bins=40)
    left.set(title="question length", xlabel="words", ylabel="turns")
    right.set(title="answer length", xlabel="words", ylabel="turns")
    plots["lengths"] = _save(fig, folder / "lengths.png")
    return plots


def write_report(path: str | Path) -> Path:
    shard_set = ShardSet(path)
    data = collect(shard_set)
    plots = plot_all(data, shard_set.root / PLOTS)
    manifest = shard_set.manifest
    rows = "".join(
        f"<tr><td>{html.escape(c['step'])}</td><td>{c['in']}</td><td>{c['out']}</td><td>{c['rejected']}</td></tr>"
        for c in manifest["steps"]
    )
    sources = "".join(
        f"<tr><td>{html.escape(n)}</td><td>{data['before'][n]}</td><td>{data['after'][n]}</td></tr>" for n in sorted(data["before"])
    )
    images = "".join(
        f'<figure><img src="{PLOTS}/{html.escape(f)}" alt="{html.escape(k)}"><figcaption>{html.escape(k)}</figcaption></figure>'
        for k, f in plots.items()
    )
    page = f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{html.escape(manifest['name'])} — slime build report</title>
<style>body{{font-family:sans-serif;max-width:1100px;margin:2em auto}}table{{border-collapse:collapse}}
td,th{{border:1px solid #ccc;padding:3px 8px;text-align:right}}td:first-child{{text-align:left}}img{{max-width:100%}}</style>
</head><body>
<h1>{html.escape(manifest['name'])}</h1>
<p>{manifest['num_rows']} rows in {len(manifest['shards'])} shard(s); {manifest['rejects']['total']} rejected.
Made with <code>{html.escape(manifest['command'])}</code>.</p>
<h2>Steps</h2><table><tr><th>step</th><th>in</th><th>out</th><th>rejected</th></tr>{rows}</table>
<h2>Sources</h2><table><tr><th>source</th><th>read</th><th>kept</th></tr>{sources}</table>
<h2>What the global steps found</h2><pre>{html.escape(json.dumps(manifest.get("global_steps", {}), indent=2))}</pre>
<h2>Plots</h2>{images}
</body></html>
"""
    target = shard_set.root / REPORT
    target.write_text(page, encoding="utf-8")
    return target
