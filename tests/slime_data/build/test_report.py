"""report.html on a small shard set written here: tables, an embedded gallery and figures, the filter
thresholds, no file references outside the page, and "no rejects" rather than an empty axis."""

from __future__ import annotations

import html.parser
import io
import re
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageDraw

from slime_data.build.report import write_report
from slime_data.build.report_plots import integer_bins
from slime_data.record import ImageRef, Record, Reject
from slime_data.shards import ShardWriter, write_shard_set

RECIPE = {
    "name": "tiny",
    "steps": [
        {"step": "load_image"},
        {"step": "resolution", "min_short_side": 96, "min_pixels": 9000},
        {"step": "quality", "min_blur_variance": 7},
        {"step": "exact_dedup"},
    ],
}


def chart_png(seed: int, size: tuple[int, int] = (160, 120)) -> bytes:
    image = Image.new("RGB", size, "white")
    draw = ImageDraw.Draw(image)
    for k in range(4):
        draw.rectangle([10 + k * 35, 100 - (seed * 13 + k * 21) % 80, 35 + k * 35, 110], fill=(40 * k, 90, 160))
    out = io.BytesIO()
    image.save(out, "PNG")
    return out.getvalue()


def row(i: int, source: str, *, image: bool = True, question: str | None = None) -> Record:
    question = question or f"What is the height of bar {i}?"
    return Record(
        id=f"{source}/{i}",
        source=source,
        split="train",
        task="chart" if image else "science",
        conversations=[
            {"from": "human", "value": ("<image>\n" if image else "") + question},
            {"from": "gpt", "value": f"{i} units"},
        ],
        image=ImageRef(bytes=chart_png(i), path=f"{i}.png") if image else None,
        width=160 if image else None,
        height=120 if image else None,
        answer=f"{i}",
        rationale=f"Reading bar {i} against the axis gives {i}.",
        meta={"quality": {"blur": 100.0 + i, "std": 30.0 + i}} if image else {},
    )


def build_like(folder: Path, rejects: list[Reject]) -> Path:
    """A shard set shaped like a build's output: 120 rows of one source, 4 of another, 2 text-only."""
    rows = [row(i, "bigsource") for i in range(120)]
    rows += [row(i, "small", question="Which <b>bar</b> & label is tallest?") for i in range(4)]
    rows += [row(i, "scienceqa", image=False) for i in range(2)]
    dropped = sum(r.step == "exact_dedup" for r in rejects)
    with ShardWriter(folder, config=RECIPE, name="tiny") as writer:
        writer.add_all([*rows, *rejects])
        stats = {"rows": len(rows) + dropped, "pairs": dropped, "clusters": min(dropped, 1), "dropped": dropped}
        writer.extra["global_steps"] = {"exact_dedup": stats}
    return folder


DUPLICATES = [
    *(
        Reject(
            f"bigsource/{n}",
            "bigsource",
            "exact_dedup",
            "exact_duplicate",
            "same image and question as bigsource/7 (kept; 3 copies)",
        )
        for n in (900, 901)
    ),
    Reject("small/77", "small", "resolution", "min_short_side", "60x40: short side 40 < 96"),
]


def report_of(folder: Path) -> str:
    page = write_report(folder).read_text(encoding="utf-8")
    html.parser.HTMLParser().feed(page)
    return page


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    folder = build_like(tmp_path_factory.mktemp("report") / "set", DUPLICATES)
    return folder, report_of(folder)


def test_the_page_is_self_contained(built: tuple[Path, str]) -> None:
    folder, page = built
    sources = re.findall(r'(?:src|href)="([^"]*)"', page)
    assert sources and all(s.startswith("data:image/") for s in sources)
    assert "url(" not in page and "<link" not in page and "<script" not in page
    figures = re.findall(r'src="data:image/png;base64,', page)
    assert len(figures) == 5  # composition, rejects, resolution, quality, lengths
    # 3 samples of each (source, task) with an image; the text-only ones have no thumbnail.
    assert len(re.findall(r'src="data:image/jpeg;base64,', page)) == 3 + 3
    assert sorted(p.name for p in folder.iterdir()) == [
        "README.md",
        "data-00000-of-00001.arrow",
        "manifest.json",
        "rejects.jsonl",
        "report.html",
    ]


def test_tables_gallery_and_thresholds(built: tuple[Path, str]) -> None:
    _, page = built
    assert "<pre>" not in page  # no raw JSON dumps
    sources = page[page.index("<h2>Sources</h2>") : page.index("<h2>Steps</h2>")]
    assert "<td>bigsource</td><td>122</td><td>2</td><td>120</td><td>98.4%</td>" in sources
    assert "<td>small</td><td>5</td><td>1</td><td>4</td><td>80.0%</td>" in sources
    assert "2 text-only rows" in sources and "log scale" in sources
    rejects = page[page.index("<h2>Rejects</h2>") : page.index("<h2>Duplicates</h2>")]
    assert '<td class="text">min_short_side</td><td>1</td>' in rejects and "small/77: 60x40" in rejects
    duplicates = page[page.index("<h2>Duplicates</h2>") : page.index("<h2>Decontamination</h2>")]
    assert '<td class="text">bigsource/7</td><td>2</td><td class="text">bigsource/900, bigsource/901</td>' in duplicates
    # Thresholds from the recipe, drawn and named in the captions.
    assert "min_short_side (96 px)" in page and "under 9,000 pixels" in page and "quality filter" in page
    # The gallery: question, answer and rationale per sample, user text escaped.
    gallery = page[page.index("<h2>Sample rows</h2>") :]
    assert "<h3>small · chart</h3>" in gallery and "<h3>scienceqa · science</h3>" in gallery
    assert "Which &lt;b&gt;bar&lt;/b&gt; &amp; label is tallest?" in gallery and "<b>bar</b>" not in gallery
    assert "Reading bar 2 against the axis gives 2." in gallery and "<dd>2 units</dd>" in gallery
    assert gallery.count("text only: no image") == 2
    assert "bigsource/0" in gallery and "bigsource/119" in gallery  # spread over the set, not the first three


def test_no_rejects_says_so_instead_of_an_empty_axis(tmp_path: Path) -> None:
    page = report_of(build_like(tmp_path / "set", []))
    assert "<b>No rejects</b>" in page and "(none)" not in page
    assert "No duplicate clusters" in page
    assert len(re.findall(r'src="data:image/png;base64,', page)) == 4  # no rejects figure


def test_an_empty_set_still_renders(tmp_path: Path) -> None:
    write_shard_set(tmp_path / "empty", [Reject("x/1", "x", "source", "bad_json", "line 1")], name="empty")
    page = report_of(tmp_path / "empty")
    assert "The set is empty." in page and "<td>x</td><td>1</td><td>1</td><td>0</td><td>0.0%</td>" in page
    assert "No dedup step in this build." in page and "No decontamination step in this build." in page


def test_word_count_bins_are_whole_numbers() -> None:
    for values in (np.array([1, 1, 2, 3]), np.array([4, 17, 250, 1200])):
        edges = integer_bins(values)
        assert edges[0] == values.min() - 0.5 and edges[-1] >= values.max() + 0.5
        widths = np.diff(edges)
        assert np.all(widths == widths[0]) and widths[0] == int(widths[0]) and len(widths) <= 41


def test_the_card_says_why_text_only_rows_are_there(built: tuple[Path, str], tmp_path: Path) -> None:
    folder, _ = built
    card = (folder / "README.md").read_text()
    assert "## Text-only rows" in card and "2 of 126 rows have no image (scienceqa: 2)" in card
    assert "12,726" in card and "row['image'] is not None" in card
    write_shard_set(tmp_path / "images-only", [row(0, "bigsource")])
    assert "Text-only" not in (tmp_path / "images-only" / "README.md").read_text()
