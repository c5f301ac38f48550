"""Bar and line charts with many series, small tick labels, value labels and a legend.

Bar charts print every bar's value in a small font, so value questions are exact. Line charts
carry no value labels: their questions compare points (peaks, the top series in a year) and
are only asked when the gap is at least half a grid step, so they can be read off the grid.
"""

from __future__ import annotations

import random
from typing import Any

from PIL import Image, ImageDraw

from slime_data.synth import words
from slime_data.synth.draw import (
    COLOURS,
    GRID,
    INK,
    WHITE,
    draw_text,
    draw_vertical_text,
    nice_step,
    text_choices,
    text_width,
)
from slime_data.synth.figure import QA, pick_questions, unique_max

MODE = "RGB"  # colours tell the series apart

# (title, y-axis label, series names, x-axis label, x values, plural of the x label)
THEMES = (
    ("Fruit exports by year", "Exports (thousand tonnes)", words.FRUITS, "Year", "years", "years"),
    ("Monthly sales by product line", "Units sold (hundreds)", words.PRODUCTS, "Month", "months", "months"),
    ("Visitors to city museums", "Visitors (thousands)", words.CITIES, "Year", "years", "years"),
    ("Harvest by region", "Yield (tonnes per hectare x 10)", words.CITIES, "Crop", words.FRUITS, "crops"),
    ("Downloads by product", "Downloads (thousands)", words.PRODUCTS, "City", words.CITIES, "cities"),
)
MONTH_ABBREVIATIONS = tuple(m[:3] for m in words.MONTHS)


def _x_values(rng: random.Random, pool: Any, count: int) -> list[str]:
    if pool == "years":
        start = rng.randint(1990, 2024 - count)
        return [str(start + i) for i in range(count)]
    if pool == "months":
        start = rng.randint(0, 12 - count)
        return list(MONTH_ABBREVIATIONS[start : start + count])
    return rng.sample(list(pool), count)


def sample(rng: random.Random) -> dict[str, Any]:
    chart = rng.choice(("bar", "line"))
    title, y_label, series_pool, x_label, x_pool, x_plural = rng.choice(THEMES)
    if chart == "bar":
        n_series, n_x = rng.randint(2, 5), rng.randint(4, 8)
        values = [[rng.randint(3, 99) for _ in range(n_x)] for _ in range(n_series)]
    else:
        n_series, n_x = rng.randint(3, 6), rng.randint(6, 12)
        values = []
        for _ in range(n_series):
            level = rng.randint(15, 85)
            row = []
            for _ in range(n_x):
                level = min(98, max(2, level + rng.randint(-14, 14)))
                row.append(level)
            values.append(row)
    top = max(max(row) for row in values)
    step = nice_step(top, rng.randint(5, 10))
    width = rng.randrange(1344, 2049, 16)
    colours = rng.sample(list(COLOURS), n_series)
    categories = _x_values(rng, x_pool, n_x)
    period = f"{categories[0]}-{categories[-1]}" if x_pool == "years" else str(rng.randint(2001, 2023))
    return {
        "chart": chart,
        "width": width,
        "height": int(width * rng.uniform(0.6, 0.78)),
        "title": f"{title}, {period}",
        "x_label": x_label,
        "x_plural": x_plural,
        "y_label": y_label,
        "categories": categories,
        "series": [{"name": n, "colour": c} for n, c in zip(rng.sample(list(series_pool), n_series), colours)],
        "values": values,
        "y_step": step,
        "y_max": (top // step + 1) * step,  # headroom above the tallest value for its label
        "tick_size": rng.randint(11, 14),
        "value_size": rng.randint(10, 12),
        "label_size": rng.randint(14, 17),
        "title_size": rng.randint(22, 28),
    }


# --------------------------------------------------------------------------------------
# Rendering
# --------------------------------------------------------------------------------------


def render(data: dict[str, Any]) -> Image.Image:
    width, height = data["width"], data["height"]
    image = Image.new("RGB", (width, height), WHITE)
    draw = ImageDraw.Draw(image)
    tick, label = data["tick_size"], data["label_size"]
    legend_width = max(text_width(s["name"], tick) for s in data["series"]) + 56
    ticks = range(0, data["y_max"] + 1, data["y_step"])
    left = 40 + label + max(text_width(str(t), tick) for t in ticks)
    right = width - legend_width - 30
    top = 50 + 2 * data["title_size"]
    bottom = height - (3 * tick + 2 * label + 20)

    def y_of(value: float) -> float:
        return bottom - value / data["y_max"] * (bottom - top)

    draw_text(draw, (width / 2, 24), data["title"], data["title_size"], anchor="ma", bold=True)
    draw_vertical_text(image, (22 + label / 2, (top + bottom) / 2), data["y_label"], label)
    draw_text(draw, ((left + right) / 2, height - 16), data["x_label"], label, anchor="md")
    for t in ticks:
        draw.line([(left, y_of(t)), (right, y_of(t))], fill=GRID, width=1)
        draw_text(draw, (left - 8, y_of(t)), str(t), tick, anchor="rm")
    draw.line([(left, top), (left, bottom), (right, bottom)], fill=INK, width=2)

    group = (right - left) / len(data["categories"])
    for c, category in enumerate(data["categories"]):
        draw_text(draw, (left + (c + 0.5) * group, bottom + 8), category, tick, anchor="ma")
    if data["chart"] == "bar":
        _draw_bars(draw, data, left, bottom, group, y_of)
    else:
        _draw_lines(draw, data, left, group, y_of)

    # Legend: a swatch and the series name per row, right of the plot.
    x, y = right + 30, top + 10
    draw.rectangle([x - 10, y - 10, width - 12, y + 24 * len(data["series"]) + 2], outline=GRID)
    for s, series in enumerate(data["series"]):
        colour = COLOURS[series["colour"]]
        draw.rectangle([x, y + 24 * s, x + 14, y + 24 * s + 14], fill=colour)
        draw_text(draw, (x + 22, y + 24 * s + 7), series["name"], tick, anchor="lm")
    return image


def _draw_bars(draw: ImageDraw.ImageDraw, data: dict[str, Any], left: float, bottom: float, group: float, y_of) -> None:
    bar = group * 0.8 / len(data["series"])
    for s, series in enumerate(data["series"]):
        colour = COLOURS[series["colour"]]
        for c, value in enumerate(data["values"][s]):
            x0 = left + c * group + group * 0.1 + s * bar
            draw.rectangle([x0, y_of(value), x0 + bar - 2, bottom - 1], fill=colour)
            draw_text(draw, (x0 + bar / 2 - 1, y_of(value) - 3), str(value), data["value_size"], anchor="md")


def _draw_lines(draw: ImageDraw.ImageDraw, data: dict[str, Any], left: float, group: float, y_of) -> None:
    for s, series in enumerate(data["series"]):
        colour = COLOURS[series["colour"]]
        points = [(left + (c + 0.5) * group, y_of(v)) for c, v in enumerate(data["values"][s])]
        draw.line(points, fill=colour, width=3, joint="curve")
        for x, y in points:
            draw.ellipse([x - 4, y - 4, x + 4, y + 4], fill=colour)


# --------------------------------------------------------------------------------------
# Questions
# --------------------------------------------------------------------------------------


def _series(data: dict[str, Any], s: int) -> tuple[str, str]:
    return data["series"][s]["name"], data["series"][s]["colour"]


def bar_value(data: dict[str, Any], rng: random.Random) -> QA:
    s, c = rng.randrange(len(data["series"])), rng.randrange(len(data["categories"]))
    name, colour = _series(data, s)
    category, value = data["categories"][c], data["values"][s][c]
    return QA(
        "bar_value",
        f"What is the value of the {name} bar for {category}?",
        str(value),
        f"The legend shows {name} in {colour}. In the group for {category}, the {colour} bar is "
        f"labelled {value}. So the answer is {value}.",
        {"series": s, "category": c},
    )


def bar_difference(data: dict[str, Any], rng: random.Random) -> QA | None:
    c = rng.randrange(len(data["categories"]))
    s1, s2 = rng.sample(range(len(data["series"])), 2)
    a, b = data["values"][s1][c], data["values"][s2][c]
    if a == b:
        return None
    if a < b:
        (s1, a), (s2, b) = (s2, b), (s1, a)
    (n1, c1), (n2, c2) = _series(data, s1), _series(data, s2)
    category = data["categories"][c]
    return QA(
        "bar_difference",
        f"For {category}, how much higher is the {n1} bar than the {n2} bar?",
        str(a - b),
        f"For {category}, the {c1} bar ({n1}) is labelled {a} and the {c2} bar ({n2}) is labelled {b}. "
        f"The difference is {a} - {b} = {a - b}. So the answer is {a - b}.",
        {"series": [s1, s2], "category": c},
    )


def bar_total(data: dict[str, Any], rng: random.Random) -> QA:
    s = rng.randrange(len(data["series"]))
    name, colour = _series(data, s)
    row = data["values"][s]
    listed = ", ".join(f"{cat}: {v}" for cat, v in zip(data["categories"], row))
    return QA(
        "bar_total",
        f"What is the sum of all {name} bars in the chart?",
        str(sum(row)),
        f"The {colour} bars belong to {name}. Their labels are {listed}. "
        f"Adding them: {' + '.join(map(str, row))} = {sum(row)}. So the answer is {sum(row)}.",
        {"series": s},
    )


def bar_tallest(data: dict[str, Any], rng: random.Random) -> QA | None:
    s = rng.randrange(len(data["series"]))
    row = data["values"][s]
    best = unique_max(row)
    if best is None:
        return None
    name, colour = _series(data, s)
    answer = data["categories"][best]
    listed = ", ".join(f"{cat}: {v}" for cat, v in zip(data["categories"], row))
    return QA(
        "bar_tallest",
        f"For which {data['x_label'].lower()} is the {name} bar the tallest?",
        answer,
        f"The {colour} bars belong to {name}: {listed}. The largest value is {row[best]}, for {answer}. "
        f"So the answer is {answer}.",
        {"series": s},
        choices=text_choices(rng, answer, data["categories"]),
    )


def bar_count_higher(data: dict[str, Any], rng: random.Random) -> QA:
    s1, s2 = rng.sample(range(len(data["series"])), 2)
    (n1, c1), (n2, c2) = _series(data, s1), _series(data, s2)
    higher = [cat for cat, a, b in zip(data["categories"], data["values"][s1], data["values"][s2]) if a > b]
    pairs = "; ".join(
        f"{cat}: {a} vs {b}" for cat, a, b in zip(data["categories"], data["values"][s1], data["values"][s2])
    )
    return QA(
        "bar_count_higher",
        f"For how many {data['x_plural']} is the {n1} bar higher than the {n2} bar?",
        str(len(higher)),
        f"Compare the {c1} bars ({n1}) with the {c2} bars ({n2}): {pairs}. {n1} is higher for "
        f"{', '.join(higher) if higher else 'none of them'}, which "
        f"makes {len(higher)}. So the answer is {len(higher)}.",
        {"series": [s1, s2]},
    )


def legend_colour(data: dict[str, Any], rng: random.Random) -> QA:
    s = rng.randrange(len(data["series"]))
    name, colour = _series(data, s)
    return QA(
        "legend_colour",
        f"Which colour represents {name} in the legend?",
        colour,
        f"In the legend, the swatch next to {name} is {colour}. So the answer is {colour}.",
        {"series": s},
        choices=text_choices(rng, colour, list(COLOURS)),
    )


def line_peak(data: dict[str, Any], rng: random.Random) -> QA | None:
    s = rng.randrange(len(data["series"]))
    row = data["values"][s]
    best = unique_max(row, margin=data["y_step"] / 2)
    if best is None:
        return None
    name, colour = _series(data, s)
    answer = data["categories"][best]
    return QA(
        "line_peak",
        f"In which {data['x_label'].lower()} does {name} reach its highest value?",
        answer,
        f"Follow the {colour} line ({name}). Its points are "
        f"{', '.join(f'{c}: {v}' for c, v in zip(data['categories'], row))}. "
        f"The highest point is {row[best]}, at {answer}. So the answer is {answer}.",
        {"series": s},
    )


def line_top_series(data: dict[str, Any], rng: random.Random) -> QA | None:
    c = rng.randrange(len(data["categories"]))
    column = [row[c] for row in data["values"]]
    best = unique_max(column, margin=data["y_step"] / 2)
    if best is None:
        return None
    category = data["categories"][c]
    answer, _ = _series(data, best)
    readings = ", ".join(f"{s['name']} ({s['colour']}) {v}" for s, v in zip(data["series"], column))
    return QA(
        "line_top_series",
        f"Which series has the highest value in {category}?",
        answer,
        f"Read each line at {category}: {readings}. The highest is "
        f"{answer} with {column[best]}. So the answer is {answer}.",
        {"category": c},
        choices=text_choices(rng, answer, [s["name"] for s in data["series"]]),
    )


def line_compare(data: dict[str, Any], rng: random.Random) -> QA | None:
    c = rng.randrange(len(data["categories"]))
    s1, s2 = rng.sample(range(len(data["series"])), 2)
    a, b = data["values"][s1][c], data["values"][s2][c]
    if abs(a - b) < data["y_step"] / 2:
        return None
    (n1, c1), (n2, c2) = _series(data, s1), _series(data, s2)
    category, answer = data["categories"][c], "Yes" if a > b else "No"
    return QA(
        "line_compare",
        f"Is {n1} higher than {n2} in {category}?",
        answer,
        f"At {category}, the {c1} line ({n1}) is at {a} and the {c2} line ({n2}) is at {b}. "
        f"{a} is {'greater' if a > b else 'less'} than {b}. So the answer is {answer}.",
        {"series": [s1, s2], "category": c},
    )


def line_series_count(data: dict[str, Any], rng: random.Random) -> QA:
    names = [s["name"] for s in data["series"]]
    return QA(
        "series_count",
        f'How many series are shown in the chart "{data["title"]}"?',
        str(len(names)),
        f"The legend lists {', '.join(names)}. That is {len(names)} series. So the answer is {len(names)}.",
    )


BAR_TEMPLATES = [bar_value, bar_difference, bar_total, bar_tallest, bar_count_higher, legend_colour]
LINE_TEMPLATES = [line_peak, line_top_series, line_compare, line_series_count, legend_colour]


def ask(data: dict[str, Any], rng: random.Random) -> list[QA]:
    templates = BAR_TEMPLATES if data["chart"] == "bar" else LINE_TEMPLATES
    return pick_questions(templates, data, rng, rng.randint(2, 4))


def describe(data: dict[str, Any]) -> str:
    series = ", ".join(f"{s['name'].lower()} in {s['colour']}" for s in data["series"])
    flat = [v for row in data["values"] for v in row]
    cats = data["categories"]
    return (
        f'a {data["chart"]} chart titled "{data["title"].lower()}" with {len(data["series"])} series '
        f"({series}) over {len(cats)} {data['x_plural']} from {cats[0].lower()} to {cats[-1].lower()} ; "
        f"values range from {min(flat)} to {max(flat)}"
    )
