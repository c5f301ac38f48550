"""``report.html`` for a built shard set (``slime-data report DIR`` regenerates it).

One self-contained page, to open first and to send to a colleague: tables of counts, steps,
rejects, duplicate clusters and decontamination; figures with captions and the recipe's filter
thresholds; a gallery of sample rows per source and task. Figures and thumbnails are embedded
as ``data:`` URLs, so the HTML file alone is the whole report.
"""

from __future__ import annotations

import html
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from slime_data.build.report_data import DEDUP_STEPS, Cluster, ReportData, Sample, collect
from slime_data.build.report_plots import Figure, all_figures
from slime_data.shards import ShardSet

REPORT = "report.html"
CLUSTERS_SHOWN = 25
IDS_PER_CLUSTER = 6
TEXT_PREVIEW = 600  # characters of a sample's rationale shown

STYLE = """
body{font:15px/1.5 system-ui,-apple-system,"Segoe UI",sans-serif;color:#222;max-width:1180px;margin:2em auto;
padding:0 1.5em}
h1{margin-bottom:.2em}h2{margin-top:2em;border-bottom:2px solid #e5e8eb;padding-bottom:.2em}
h3{margin:1.4em 0 .4em}.lead{color:#555;margin-top:0}
table{border-collapse:collapse;margin:.6em 0 1em;font-size:14px}
th,td{border-bottom:1px solid #e5e8eb;padding:4px 12px;text-align:right;vertical-align:top}
th{background:#f4f6f7;font-weight:600}th:first-child,td:first-child,td.text,th.text{text-align:left}
tr.total td{font-weight:600;border-top:2px solid #ccc}
code{background:#f4f6f7;padding:1px 4px;border-radius:3px;font-size:13px}
.muted{color:#777}.note{background:#fef9e7;border-left:4px solid #f4d03f;padding:.6em 1em;margin:1em 0}
figure{margin:1.2em 0 2em}figure img{max-width:100%;border:1px solid #eee}
figcaption{color:#444;font-size:14px;max-width:900px}
.gallery{display:grid;grid-template-columns:repeat(auto-fill,minmax(340px,1fr));gap:14px}
.card{border:1px solid #e5e8eb;border-radius:6px;padding:10px;background:#fff}
.card img{display:block;width:100%;height:260px;object-fit:contain;background:#fafafa;margin:0 0 8px}
.card .noimg{height:120px;display:flex;align-items:center;justify-content:center;background:#f4f6f7;color:#777;
margin-bottom:8px;border-radius:4px}
.card dl{margin:0;font-size:13.5px}.card dt{font-weight:600;color:#555;margin-top:4px}
.card dd{margin:0;white-space:pre-wrap}
.card .id{font-size:12px;color:#777;word-break:break-all}
"""


def esc(value: Any) -> str:
    return html.escape(str(value))


def table(
    header: Sequence[str] | None,
    rows: Iterable[Sequence[Any]],
    *,
    total: Sequence[Any] | None = None,
    text_columns: Sequence[int] = (),
) -> str:
    """An HTML table (no header row when ``header`` is None); ints get thousands separators;
    ``text_columns`` (by index) are left-aligned."""

    def cell(i: int, value: Any, tag: str = "td") -> str:
        shown = f"{value:,}" if isinstance(value, int) and not isinstance(value, bool) else esc(value)
        return f'<{tag} class="text">{shown}</{tag}>' if i in text_columns else f"<{tag}>{shown}</{tag}>"

    head = "" if header is None else "<tr>" + "".join(cell(i, h, "th") for i, h in enumerate(header)) + "</tr>"
    body = "".join("<tr>" + "".join(cell(i, v) for i, v in enumerate(row)) + "</tr>" for row in rows)
    if total is not None:
        body += '<tr class="total">' + "".join(cell(i, v) for i, v in enumerate(total)) + "</tr>"
    return f"<table>{head}{body}</table>"


def _percent(part: int, whole: int) -> str:
    return f"{100 * part / whole:.1f}%" if whole else "–"


def sources_section(data: ReportData) -> str:
    names = sorted(data.read, key=lambda n: -data.read[n])
    rows = [
        (
            name,
            data.read[name],
            data.rejected[name],
            data.kept[name],
            _percent(data.kept[name], data.read[name]),
            data.text_only[name],
            ", ".join(f"{t} {n:,}" for t, n in sorted(data.tasks_by_source.get(name, {}).items())),
        )
        for name in names
    ]
    read, kept = sum(data.read.values()), sum(data.kept.values())
    total = ("all", read, sum(data.rejected.values()), kept, _percent(kept, read), sum(data.text_only.values()), "")
    header = ("source", "read", "rejected", "kept", "kept %", "text-only", "tasks (kept rows)")
    return table(header, rows, total=total, text_columns=(6,))


def text_only_note(data: ReportData) -> str:
    n = sum(data.text_only.values())
    if not n:
        return ""
    where = ", ".join(f"{esc(s)} {c:,}" for s, c in sorted(data.text_only.items()))
    return (
        f'<p class="note"><b>{n:,} text-only rows</b> ({where}) have no image. They are kept on purpose: '
        "the paper's ScienceQA share is its whole train split, about half of it without an image; these rows "
        "teach reasoning in text and skip the image filters. The dataset card (README.md) says more, and how "
        "to leave them out.</p>"
    )


def steps_section(manifest: dict[str, Any]) -> str:
    rows = [(c["step"], c["in"], c["out"], c["rejected"]) for c in manifest.get("steps", [])]
    return table(("step", "rows in", "rows out", "rejected"), rows)


def rejects_section(data: ReportData) -> str:
    if not data.rejects:
        return "<p><b>No rejects</b>: every row read was kept.</p>"
    rows = []
    for step, reasons in data.rejects.items():
        for reason, n in sorted(reasons.items(), key=lambda item: -item[1]):
            example = data.reject_examples.get((step, reason), [{}])[0]
            rows.append((step, reason, n, f"{example.get('id', '')}: {example.get('detail', '')}"))
    total = sum(sum(r.values()) for r in data.rejects.values())
    return table(("step", "reason", "rows", "example"), rows, total=("all", "", total, ""), text_columns=(1, 3))


def _cluster_row(cluster: Cluster) -> tuple[str, str, int, str]:
    shown = ", ".join(cluster.dropped[:IDS_PER_CLUSTER])
    more = len(cluster.dropped) - IDS_PER_CLUSTER
    return cluster.step, cluster.kept, len(cluster.dropped), shown + (f" … and {more} more" if more > 0 else "")


def duplicates_section(data: ReportData, global_steps: dict[str, Any]) -> str:
    stats = [
        (step, s.get("rows", 0), s.get("pairs", 0), s.get("clusters", 0), s.get("dropped", 0))
        for step, s in global_steps.items()
        if step in DEDUP_STEPS
    ]
    if not stats and not data.clusters:
        return "<p class=muted>No dedup step in this build.</p>"
    parts = []
    if stats:
        parts.append(table(("step", "rows compared", "duplicate pairs", "clusters", "rows dropped"), stats))
    if not data.clusters:
        parts.append("<p><b>No duplicate clusters</b>: no two rows share an image and a question.</p>")
    else:
        shown = data.clusters[:CLUSTERS_SHOWN]
        which = (
            f"The {len(shown)} largest of {len(data.clusters):,} clusters"
            if len(shown) < len(data.clusters)
            else f"Every cluster ({len(shown)})"
        )
        parts.append(f"<p>{which}: one row kept (most pixels, then lowest id), the others dropped.</p>")
        parts.append(
            table(("step", "kept row", "dropped", "dropped rows"), map(_cluster_row, shown), text_columns=(1, 3))
        )
    return "".join(parts)


def decontamination_section(global_steps: dict[str, Any]) -> str:
    benchmarks = global_steps.get("decontaminate") or {}
    if not benchmarks:
        return "<p class=muted>No decontamination step in this build.</p>"
    keys = list(dict.fromkeys(k for counts in benchmarks.values() for k in counts))
    rows = [(name, *(counts.get(k, 0) for k in keys)) for name, counts in benchmarks.items()]
    caption = (
        "<p>What each benchmark offered to match against (questions, passages, templated questions, option "
        "sets, images) and how many rows of this set it removed.</p>"
    )
    return caption + table(("benchmark", *(k.replace("_", " ") for k in keys)), rows)


def presentation_section(global_steps: dict[str, Any]) -> str:
    stats = global_steps.get("present")
    if not stats:
        return "<p class=muted>No present step in this build: the gpt turns are as ingested.</p>"
    caption = (
        "<p>How the assistant turns were written (the <code>present</code> step, templates in "
        f"<code>pipelines/presentation.yaml</code>): rows per source, template and row; {stats['added']:,} rows "
        f"added by two-row templates, {stats['ingested']:,} kept their ingested turn.</p>"
    )
    rows = [(r["source"], r["template"], r["row"], r["rows"]) for r in stats["rows"]]
    return caption + table(("source", "template", "row", "rows"), rows, text_columns=(1, 2))


def usage_section(manifest: dict[str, Any]) -> str:
    usage = manifest.get("usage")
    if not usage:
        return ""
    rows = [(step, key.replace("_", " "), value) for step, counters in usage.items() for key, value in counters.items()]
    return "<h2>Teacher usage</h2>" + table(("step", "counter", "value"), rows, text_columns=(1,))


def figure_html(number: int, figure: Figure) -> str:
    return (
        f'<figure id="{esc(figure.key)}"><img src="{figure.url}" alt="{esc(figure.title)}">'
        f"<figcaption><b>Figure {number}. {esc(figure.title)}.</b> {esc(figure.caption)}</figcaption></figure>"
    )


def _card(sample: Sample) -> str:
    if sample.thumbnail:
        picture = f'<img src="{sample.thumbnail}" alt="{esc(sample.id)}" title="{sample.size[0]}×{sample.size[1]} px">'
        size = f" · {sample.size[0]}×{sample.size[1]} px"
    else:
        picture, size = '<div class="noimg">text only: no image</div>', ""
    rationale = sample.rationale or ""
    if len(rationale) > TEXT_PREVIEW:
        rationale = rationale[:TEXT_PREVIEW].rsplit(" ", 1)[0].rstrip() + " …"
    fields = [("question", sample.question), ("answer", sample.answer)]
    fields.append(("rationale", rationale or "(none in the source)"))
    body = "".join(f"<dt>{name}</dt><dd>{esc(value)}</dd>" for name, value in fields)
    return f'<div class="card">{picture}<div class="id">{esc(sample.id)}{size}</div><dl>{body}</dl></div>'


def gallery_section(samples: list[Sample]) -> str:
    if not samples:
        return "<p class=muted>The set is empty.</p>"
    groups: dict[tuple[str, str], list[Sample]] = {}
    for sample in samples:
        groups.setdefault((sample.source, sample.task), []).append(sample)
    return "".join(
        f"<h3>{esc(source)} · {esc(task)}</h3><div class=gallery>{''.join(map(_card, group))}</div>"
        for (source, task), group in groups.items()
    )


def render(manifest: dict[str, Any], data: ReportData, figures: list[Figure]) -> str:
    by_key = {figure.key: (number, figure) for number, figure in enumerate(figures, start=1)}

    def fig(key: str) -> str:
        return figure_html(*by_key[key]) if key in by_key else ""

    global_steps = manifest.get("global_steps", {})
    name = esc(manifest["name"])
    rejected = manifest["rejects"]["total"]
    facts = table(
        None,
        [
            ("rows kept", manifest["num_rows"]),
            ("rows rejected", rejected),
            ("Arrow shards", len(manifest["shards"])),
            ("made with", manifest["command"]),
            ("recipe sha256", manifest.get("config_sha256", "")[:16]),
            ("slime version", manifest["tool"]["version"]),
        ],
        text_columns=(0, 1),
    )
    no_images = "" if len(data.widths) else "<p class=muted>No image in this set: no resolution or quality figures.</p>"
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>{name} · slime build report</title><style>{STYLE}</style></head><body>
<h1>{name}</h1>
<p class="lead">Build report: {manifest["num_rows"]:,} rows kept from {manifest["num_rows"] + rejected:,} read,
in {len(data.read)} source(s). Every number below comes from the shard set's manifest, rows and
<code>rejects.jsonl</code>.</p>
{facts}
<h2>Sources</h2>{sources_section(data)}{text_only_note(data)}{fig("composition")}
<h2>Steps</h2>{steps_section(manifest)}
<h2>Rejects</h2>{rejects_section(data)}{fig("rejects")}
<h2>Duplicates</h2>{duplicates_section(data, global_steps)}
<h2>Decontamination</h2>{decontamination_section(global_steps)}
<h2>Presentation</h2>{presentation_section(global_steps)}
{usage_section(manifest)}
<h2>Images</h2>{no_images}{fig("resolution")}{fig("quality")}
<h2>Text</h2>{fig("lengths")}
<h2>Sample rows</h2>
<p>Up to three rows per source and task, spread over the set (first, middle, last).</p>
{gallery_section(data.samples)}
</body></html>
"""


def write_report(path: str | Path) -> Path:
    shard_set = ShardSet(path)
    data = collect(shard_set)
    page = render(shard_set.manifest, data, all_figures(data))
    target = shard_set.root / REPORT
    target.write_text(page, encoding="utf-8")
    return target
