"""Tables with many rows (18 to 40) and several numeric columns, drawn in a small font.

Values are stored as integers in units of 10^-decimals (a price of 12.30 with 2 decimals is
1230), so sums and differences are exact and print the way the table prints them.
"""

from __future__ import annotations

import random
from typing import Any

from PIL import Image, ImageDraw

from slime_data.synth import words
from slime_data.synth.draw import GRID, INK, MUTED, WHITE, draw_text, numeric_choices, text_choices, text_width
from slime_data.synth.figure import QA, pick_questions, unique_max

MODE = "L"  # drawn in black and grey: a grayscale PNG is a third of the bytes to encode

# Per theme: the row entity and the candidate columns as (header, decimals, (low, high)) in stored units.
THEMES = (
    {
        "title": "City statistics",
        "row_header": "City",
        "row_plural": "cities",
        "labels": "cities",
        "columns": (
            ("Population (thousands)", 0, (120, 9800)),
            ("Area (km2)", 0, (40, 2400)),
            ("Rainfall (mm)", 0, (300, 1900)),
            ("Mean temp. (C)", 1, (-50, 250)),
            ("Parks", 0, (3, 180)),
            ("Museums", 0, (1, 60)),
        ),
    },
    {
        "title": "Product catalogue",
        "row_header": "Product",
        "row_plural": "products",
        "labels": "products",
        "columns": (
            ("Price ($)", 2, (199, 99999)),
            ("Units sold", 0, (10, 5000)),
            ("Returns", 0, (0, 120)),
            ("Rating", 1, (10, 50)),
            ("Stock", 0, (0, 900)),
            ("Weight (g)", 0, (50, 3000)),
        ),
    },
    {
        "title": "Exam results",
        "row_header": "Student",
        "row_plural": "students",
        "labels": "people",
        "columns": (
            ("Maths", 0, (20, 100)),
            ("Physics", 0, (20, 100)),
            ("Chemistry", 0, (20, 100)),
            ("History", 0, (20, 100)),
            ("Art", 0, (20, 100)),
            ("Attendance (%)", 1, (700, 1000)),
        ),
    },
    {
        "title": "Regional office report",
        "row_header": "Office",
        "row_plural": "offices",
        "labels": "cities",
        "columns": (
            ("Staff", 0, (4, 400)),
            ("Revenue (k$)", 1, (500, 99000)),
            ("Clients", 0, (10, 2500)),
            ("Growth (%)", 1, (-90, 250)),
            ("Projects", 0, (1, 90)),
        ),
    },
)


def fmt(value: int, decimals: int) -> str:
    """A stored integer as the table prints it: ``fmt(1230, 2) == "12.30"``, ``fmt(-5, 1) == "-0.5"``."""
    if decimals == 0:
        return str(value)
    whole, part = divmod(abs(value), 10**decimals)
    return f"{'-' if value < 0 else ''}{whole}.{part:0{decimals}d}"


def _labels(rng: random.Random, kind: str, count: int) -> list[str]:
    if kind == "people":
        names = [f"{f} {s}" for f in words.FIRST_NAMES for s in words.SURNAMES]
        return rng.sample(names, count)
    return rng.sample(list(words.CITIES if kind == "cities" else words.PRODUCTS), count)


NOTES = (
    "Source: synthetic data generated for training.",
    "Figures are rounded to the precision shown.",
    "Rows are listed in no particular order.",
    "Empty cells do not occur in this table.",
    "Units are given in the column headers.",
)
HEADER_SHADES = {"light": (232, 236, 242), "grey": (200, 200, 200), "dark": (60, 60, 60)}


def sample(rng: random.Random) -> dict[str, Any]:
    theme = rng.choice(THEMES)
    font_size = rng.randint(13, 16)
    n_rows = rng.randint(18, 40)
    width = rng.randrange(1344, 1793, 16)
    labels = _labels(rng, theme["labels"], n_rows)
    label_width = _label_width(labels, theme["row_header"], font_size)
    columns = list(rng.sample(theme["columns"], rng.randint(3, len(theme["columns"]))))

    def needed() -> float:  # every header fits its column
        return label_width + len(columns) * (max(text_width(c[0], font_size) for c in columns) + 24)

    while len(columns) > 2 and needed() > width - 80:
        columns.pop()
    # Layout varies (table width and place, header shade, stripes, notes) so that different
    # tables do not share one perceptual hash: dedup must not take them for copies.
    table_width = rng.randint(int(needed()), width - 80)
    return {
        "width": width,
        "title": f"{theme['title']}, {rng.randint(2001, 2023)}",
        "row_header": theme["row_header"],
        "row_plural": theme["row_plural"],
        "font_size": font_size,
        "row_height": font_size + rng.randint(10, 14),
        "columns": [{"name": name, "decimals": decimals} for name, decimals, _ in columns],
        "rows": [{"label": label, "values": [rng.randint(*bounds) for _, _, bounds in columns]} for label in labels],
        "style": {
            "table_left": rng.choice((40, (width - table_width) // 2, width - 40 - table_width)),
            "table_top": rng.randint(100, 240),
            "table_width": table_width,
            "title_centred": rng.random() < 0.5,
            "header": rng.choice(sorted(HEADER_SHADES)),
            "stripes": rng.random() < 0.6,
            "notes": rng.sample(NOTES, rng.randint(1, len(NOTES))),
        },
    }


def _label_width(labels: list[str], header: str, size: int) -> float:
    return max(text_width(label, size) for label in [*labels, header]) + 36


def height_of(data: dict[str, Any]) -> int:
    body = int(data["row_height"] * (len(data["rows"]) + 1.5))
    return data["style"]["table_top"] + body + 30 + (data["font_size"] + 8) * (len(data["style"]["notes"]) + 1) + 30


def render(data: dict[str, Any]) -> Image.Image:
    width, size, row_h, style = data["width"], data["font_size"], data["row_height"], data["style"]
    image = Image.new("RGB", (width, height_of(data)), WHITE)
    draw = ImageDraw.Draw(image)
    left, top = style["table_left"], style["table_top"]
    right = left + style["table_width"]
    if style["title_centred"]:
        draw_text(draw, ((left + right) / 2, 36), data["title"], size + 10, anchor="ma", bold=True)
    else:
        draw_text(draw, (left, 36), data["title"], size + 10, bold=True)
    label_width = _label_width([r["label"] for r in data["rows"]], data["row_header"], size)
    column_width = (right - left - label_width) / len(data["columns"])
    header_h = int(row_h * 1.5)
    header_ink = WHITE if style["header"] == "dark" else INK

    draw.rectangle([left, top, right, top + header_h], fill=HEADER_SHADES[style["header"]])
    draw_text(draw, (left + 12, top + header_h / 2), data["row_header"], size, fill=header_ink, anchor="lm", bold=True)
    for c, column in enumerate(data["columns"]):
        x = left + label_width + (c + 1) * column_width - 12
        draw_text(draw, (x, top + header_h / 2), column["name"], size, fill=header_ink, anchor="rm", bold=True)
    y = top + header_h
    for r, row in enumerate(data["rows"]):
        if style["stripes"] and r % 2:
            draw.rectangle([left, y, right, y + row_h], fill=(240, 240, 240))
        draw_text(draw, (left + 12, y + row_h / 2), row["label"], size, anchor="lm")
        for c, (column, value) in enumerate(zip(data["columns"], row["values"])):
            x = left + label_width + (c + 1) * column_width - 12
            draw_text(draw, (x, y + row_h / 2), fmt(value, column["decimals"]), size, anchor="rm")
        y += row_h
        draw.line([(left, y), (right, y)], fill=GRID)
    draw.rectangle([left, top, right, y], outline=INK, width=2)
    draw.line([(left + label_width, top), (left + label_width, y)], fill=INK)
    y += 30
    for note in [f"{len(data['rows'])} {data['row_plural']}.", *style["notes"]]:
        draw_text(draw, (left, y), note, size - 2, fill=MUTED)
        y += size + 8
    return image


# --------------------------------------------------------------------------------------
# Questions
# --------------------------------------------------------------------------------------


def _column(data: dict[str, Any], c: int) -> tuple[str, int, list[int]]:
    column = data["columns"][c]
    return column["name"], column["decimals"], [row["values"][c] for row in data["rows"]]


def table_lookup(data: dict[str, Any], rng: random.Random) -> QA:
    r, c = rng.randrange(len(data["rows"])), rng.randrange(len(data["columns"]))
    name, decimals, values = _column(data, c)
    label, cell = data["rows"][r]["label"], fmt(values[r], decimals)
    choices = None
    if rng.random() < 0.3:
        spread = max(3, abs(values[r]) // 4)
        choices = [fmt(v, decimals) for v in numeric_choices(rng, values[r], spread=spread)] if values[r] > 0 else None
    return QA(
        "table_lookup",
        f'What is the value in the "{name}" column for {label}?',
        cell,
        f'Find the row for {label} and the column "{name}". The cell reads {cell}. So the answer is {cell}.',
        {"row": r, "column": c},
        choices=choices,
    )


def table_difference(data: dict[str, Any], rng: random.Random) -> QA | None:
    c = rng.randrange(len(data["columns"]))
    r1, r2 = rng.sample(range(len(data["rows"])), 2)
    name, decimals, values = _column(data, c)
    if values[r1] == values[r2]:
        return None
    if values[r1] < values[r2]:
        r1, r2 = r2, r1
    a, b = data["rows"][r1]["label"], data["rows"][r2]["label"]
    va, vb, diff = fmt(values[r1], decimals), fmt(values[r2], decimals), fmt(values[r1] - values[r2], decimals)
    return QA(
        "table_difference",
        f'How much greater is the "{name}" value of {a} than that of {b}?',
        diff,
        f'In the "{name}" column, {a} has {va} and {b} has {vb}. The difference is {va} - {vb} = {diff}. '
        f"So the answer is {diff}.",
        {"rows": [r1, r2], "column": c},
    )


def table_extreme(data: dict[str, Any], rng: random.Random) -> QA | None:
    """The row with the highest (multiple choice) or lowest value of a column: one per table,
    as the two questions differ by a word only."""
    highest = rng.random() < 0.5
    c = rng.randrange(len(data["columns"]))
    name, decimals, values = _column(data, c)
    signed = values if highest else [-v for v in values]
    best = unique_max(signed)
    if best is None:
        return None
    runner_up = sorted(range(len(values)), key=lambda i: signed[i], reverse=True)[1]
    word = "highest" if highest else "lowest"
    label, other = data["rows"][best]["label"], data["rows"][runner_up]["label"]
    return QA(
        f"table_{'max' if highest else 'min'}",
        f'Which {data["row_header"].lower()} has the {word} value in the "{name}" column?',
        label,
        f'Scan the "{name}" column over all {len(values)} rows. The {word} value is '
        f"{fmt(values[best], decimals)} ({label}); the next is {fmt(values[runner_up], decimals)} ({other}). "
        f"So the answer is {label}.",
        {"column": c},
        choices=text_choices(rng, label, [row["label"] for row in data["rows"]]) if highest else None,
    )


def table_count(data: dict[str, Any], rng: random.Random) -> QA | None:
    c = rng.randrange(len(data["columns"]))
    name, decimals, values = _column(data, c)
    threshold = sorted(values, reverse=True)[rng.randint(1, 8)]
    above = [(row["label"], v) for row, v in zip(data["rows"], values) if v > threshold]
    if not above:
        return None
    t = fmt(threshold, decimals)
    listed = ", ".join(f"{label} ({fmt(v, decimals)})" for label, v in above)
    return QA(
        "table_count",
        f'How many {data["row_plural"]} have a "{name}" value greater than {t}?',
        str(len(above)),
        f'Check the "{name}" column row by row. The values greater than {t} are: {listed}. '
        f"That makes {len(above)}. So the answer is {len(above)}.",
        {"column": c, "threshold": threshold},
    )


def table_sum(data: dict[str, Any], rng: random.Random) -> QA:
    c = rng.randrange(len(data["columns"]))
    rows = sorted(rng.sample(range(len(data["rows"])), 3))
    name, decimals, values = _column(data, c)
    labels = [data["rows"][r]["label"] for r in rows]
    parts = [fmt(values[r], decimals) for r in rows]
    total = fmt(sum(values[r] for r in rows), decimals)
    return QA(
        "table_sum",
        f'What is the total "{name}" of {labels[0]}, {labels[1]} and {labels[2]}?',
        total,
        f'In the "{name}" column: {labels[0]} {parts[0]}, {labels[1]} {parts[1]}, {labels[2]} {parts[2]}. '
        f"Adding them: {' + '.join(parts)} = {total}. So the answer is {total}.",
        {"rows": rows, "column": c},
    )


TEMPLATES = [table_lookup, table_difference, table_extreme, table_count, table_sum]


def ask(data: dict[str, Any], rng: random.Random) -> list[QA]:
    return pick_questions(TEMPLATES, data, rng, rng.randint(2, 4))


def describe(data: dict[str, Any]) -> str:
    headers = ", ".join(c["name"].lower() for c in data["columns"])
    first = data["rows"][0]
    return (
        f'a table titled "{data["title"].lower()}" with {len(data["rows"])} rows of {data["row_plural"]} and '
        f"{len(data['columns']) + 1} columns ({data['row_header'].lower()}, {headers}) ; the first row is "
        f"{first['label'].lower()} with {data['columns'][0]['name'].lower()} "
        f"{fmt(first['values'][0], data['columns'][0]['decimals'])}"
    )
