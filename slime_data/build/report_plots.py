"""The figures of ``report.html``, as PNG ``data:`` URLs with their captions (no side files).

Each function returns a ``Figure`` or None when there is nothing to draw (e.g. no images); a
filter's threshold from the recipe is drawn on the histogram it cuts, and the caption says so.
"""

from __future__ import annotations

import base64
import io
import math
from dataclasses import dataclass

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.ticker import FuncFormatter, MaxNLocator  # noqa: E402

from slime_data.build.report_data import ReportData  # noqa: E402

THRESHOLD = {"color": "#c0392b", "linestyle": "--", "linewidth": 1.5}
KEPT, READ = "#2e86c1", "#aed6f1"


@dataclass
class Figure:
    key: str
    title: str
    caption: str
    url: str  # data:image/png;base64,...


def _encode(fig: plt.Figure) -> str:
    fig.tight_layout()
    out = io.BytesIO()
    fig.savefig(out, format="png", dpi=100)
    plt.close(fig)
    return "data:image/png;base64," + base64.b64encode(out.getvalue()).decode("ascii")


def integer_bins(values: np.ndarray, max_bins: int = 40) -> np.ndarray:
    """Bin edges on half-integers, each bin a whole number of units wide (word counts, pixels)."""
    low, high = int(values.min()), int(values.max())
    width = max(1, math.ceil((high - low + 1) / max_bins))
    return np.arange(low, high + width + 1, width) - 0.5


def _threshold(ax: plt.Axes, x: float, label: str) -> None:
    ax.axvline(x, **THRESHOLD, label=label)
    ax.legend(loc="upper right", fontsize=8)


def composition(data: ReportData) -> Figure:
    names = sorted(data.read, key=lambda n: data.read[n])
    fig, ax = plt.subplots(figsize=(8, 0.45 * len(names) + 1.4))
    y = np.arange(len(names))
    ax.barh(y + 0.2, [data.read[n] for n in names], 0.4, color=READ, label="read")
    ax.barh(y - 0.2, [data.kept[n] for n in names], 0.4, color=KEPT, label="kept")
    for i, name in enumerate(names):
        ax.text(max(data.kept[name], 1) * 1.08, i - 0.2, f"{data.kept[name]:,}", va="center", fontsize=8)
    ax.set_xscale("log")
    ax.xaxis.set_major_formatter(FuncFormatter(lambda value, _: f"{value:,.0f}"))
    ax.set_xlim(0.8, max(data.read.values()) * 3)
    ax.set_yticks(y, names)
    ax.set(xlabel="rows (log scale)")
    ax.legend(loc="lower right", fontsize=8)
    return Figure(
        "composition",
        "Rows per source",
        (
            "Rows read from each source (light) and kept in the set (dark), on a log scale so that a source of "
            "ten rows shows beside one of hundreds of thousands; the number is the rows kept."
        ),
        _encode(fig),
    )


def resolution(data: ReportData) -> Figure | None:
    if not len(data.widths):
        return None
    limits = data.thresholds.get("resolution", {})
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4))
    left.scatter(data.widths, data.heights, s=6, alpha=0.4, color=KEPT)
    left.set(xlabel="width (px)", ylabel="height (px)", title="image sizes", xlim=(0, None), ylim=(0, None))
    short = np.minimum(data.widths, data.heights)
    right.hist(short, bins=integer_bins(short), color=KEPT)
    right.set(xlabel="shorter side (px)", ylabel="images", title="shorter side")
    right.yaxis.set_major_locator(MaxNLocator(integer=True))
    caption = f"Size of the {len(short):,} kept images: width against height (left) and the shorter side (right)."
    if limits.get("min_short_side"):
        _threshold(right, limits["min_short_side"], f"min_short_side = {limits['min_short_side']} px")
        caption += (
            f" The dashed line is the resolution filter's min_short_side ({limits['min_short_side']} px):"
            " images below it were rejected, so none of the kept ones fall left of it."
        )
    if limits.get("min_pixels"):
        caption += f" The filter also drops images under {limits['min_pixels']:,} pixels"
        caption += f" and longer than {limits['max_aspect_ratio']:g}:1." if "max_aspect_ratio" in limits else "."
    return Figure("resolution", "Image resolution", caption, _encode(fig))


def quality(data: ReportData) -> Figure | None:
    if not len(data.blur):
        return None
    limits = data.thresholds.get("quality", {})
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 3.8))
    left.hist(np.log10(1 + data.blur), bins=40, color=KEPT)
    left.set(xlabel="log10(1 + variance of the Laplacian)", ylabel="images", title="sharpness")
    std = data.pixel_std[~np.isnan(data.pixel_std)]
    right.hist(std, bins=40, color=KEPT)
    right.set(xlabel="standard deviation of the grey levels", ylabel="images", title="contrast")
    for ax in (left, right):
        ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    caption = (
        f"Quality scores of the {len(data.blur):,} kept images: sharpness (low = blurry) and contrast "
        "(low = a nearly flat image)."
    )
    if limits.get("min_blur_variance") is not None:
        blur = limits["min_blur_variance"]
        _threshold(left, math.log10(1 + blur), f"min_blur_variance = {blur:g}")
    if limits.get("min_pixel_std") is not None:
        _threshold(right, limits["min_pixel_std"], f"min_pixel_std = {limits['min_pixel_std']:g}")
    if limits:
        caption += (
            " Dashed lines: the quality filter's thresholds; images left of them were rejected. "
            "Tune them on these histograms."
        )
    return Figure("quality", "Image quality", caption, _encode(fig))


def lengths(data: ReportData) -> Figure | None:
    if not len(data.question_words):
        return None
    fig, axes = plt.subplots(1, 2, figsize=(11, 3.8))
    for ax, values, what in ((axes[0], data.question_words, "question"), (axes[1], data.answer_words, "answer")):
        if len(values):
            ax.hist(values, bins=integer_bins(values), color=KEPT)
            median = np.median(values)
            label = f"median: {median:g} word{'' if median == 1 else 's'}"
            ax.axvline(median, color="#555", linestyle=":", label=label)
            ax.legend(loc="upper right", fontsize=8)
        ax.set(xlabel=f"{what} length (words)", ylabel="turns", title=f"{what}s")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    caption = (
        f"Words per human turn ({len(data.question_words):,} questions, the <image> placeholder not counted) "
        f"and per model turn ({len(data.answer_words):,} answers). Short answers are single words or option "
        "letters; long ones carry their reasoning."
    )
    return Figure("lengths", "Text length", caption, _encode(fig))


def rejects(data: ReportData) -> Figure | None:
    labels = [(step, reason, n) for step, reasons in data.rejects.items() for reason, n in reasons.items()]
    if not labels:
        return None
    labels.sort(key=lambda item: item[2])
    fig, ax = plt.subplots(figsize=(8, 0.35 * len(labels) + 1.3))
    ax.barh([f"{step}: {reason}" for step, reason, _ in labels], [n for *_, n in labels], color="#cd6155")
    ax.set(xlabel="rows rejected")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    return Figure(
        "rejects",
        "Rejects by step and reason",
        "Rows each step dropped, by reason (every row read is either kept or counted here).",
        _encode(fig),
    )


def all_figures(data: ReportData) -> list[Figure]:
    made = [composition(data), rejects(data), resolution(data), quality(data), lengths(data)]
    return [figure for figure in made if figure is not None]
