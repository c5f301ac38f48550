"""Geometry worksheets: two to four numbered figures drawn to scale with small labels.

Each figure (a panel) gets one question whose answer follows from the labelled measures by one
theorem (angle sum, Pythagoras, inscribed angle, parallel lines, circle and rectangle formulas).
The measures are only in the image; the question names the figure and what to find.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable
from typing import Any

from PIL import Image, ImageDraw

from slime_data.synth.draw import GRID, INK, MUTED, WHITE, draw_text, numeric_choices
from slime_data.synth.figure import QA

MODE = "L"  # drawn in black and grey: a grayscale PNG is a third of the bytes to encode

Point = tuple[float, float]
TRIANGLE_LETTERS = ("ABC", "DEF", "PQR", "XYZ", "KLM")
QUAD_LETTERS = ("ABCD", "PQRS", "EFGH", "KLMN")
TRIPLES = ((3, 4, 5), (5, 12, 13), (8, 15, 17), (7, 24, 25), (20, 21, 29), (6, 8, 10), (9, 12, 15))
LINE = 2


# --------------------------------------------------------------------------------------
# Panel sampling: each returns the panel's measures (JSON-able)
# --------------------------------------------------------------------------------------


def _triangle_angles(rng: random.Random) -> dict[str, Any]:
    a = rng.randint(30, 100)
    b = rng.randint(30, 150 - a)
    return {"type": "triangle_angles", "letters": rng.choice(TRIANGLE_LETTERS), "angles": [a, b]}


def _right_triangle(rng: random.Random) -> dict[str, Any]:
    legs = list(rng.choice(TRIPLES)[:2])
    rng.shuffle(legs)
    return {
        "type": "right_triangle",
        "letters": rng.choice(TRIANGLE_LETTERS),
        "legs": legs,
        "find": rng.choice(("hypotenuse", "area")),
    }


def _circle_inscribed(rng: random.Random) -> dict[str, Any]:
    return {
        "type": "circle_inscribed",
        "letters": rng.choice(TRIANGLE_LETTERS),
        "central": 2 * rng.randint(20, 80),
        "start": rng.randint(0, 359),  # where the first point sits on the circle, degrees
        "c_at": round(rng.uniform(0.3, 0.7), 3),  # where the third point sits along the major arc
    }


def _circle_measure(rng: random.Random) -> dict[str, Any]:
    return {
        "type": "circle_measure",
        "radius": rng.randint(2, 15),
        "find": rng.choice(("area", "circumference")),
        "direction": rng.randint(0, 359),  # of the drawn radius, degrees
    }


POSITIONS = ("UR", "UL", "LL", "LR")  # the four angles at a crossing, counter-clockwise from "up-right"
POSITION_WORDS = {"UR": "upper right", "UL": "upper left", "LL": "lower left", "LR": "lower right"}


def _parallel_lines(rng: random.Random) -> dict[str, Any]:
    theta = rng.choice((rng.randint(35, 80), rng.randint(100, 145)))
    return {
        "type": "parallel_lines",
        "theta": theta,  # the transversal's direction, degrees from the parallel lines
        "marked": rng.choice(POSITIONS),  # at the upper crossing, labelled with its measure
        "unknown": rng.choice(POSITIONS),  # at the lower crossing, labelled "x"
    }


def _rectangle(rng: random.Random) -> dict[str, Any]:
    find = rng.choice(("area", "perimeter", "diagonal"))
    if find == "diagonal":
        sides = list(rng.choice(TRIPLES)[:2])
        rng.shuffle(sides)
    else:
        sides = [rng.randint(3, 30), rng.randint(3, 30)]
    return {"type": "rectangle", "letters": rng.choice(QUAD_LETTERS), "sides": sides, "find": find}


PANEL_SAMPLERS: list[Callable[[random.Random], dict[str, Any]]] = [
    _triangle_angles,
    _right_triangle,
    _circle_inscribed,
    _circle_measure,
    _parallel_lines,
    _rectangle,
]


def angle_at(theta: int, position: str) -> int:
    """The measure of the angle in ``position`` at a crossing of a transversal at ``theta``."""
    return theta if position in ("UR", "LL") else 180 - theta


def sample(rng: random.Random) -> dict[str, Any]:
    n_panels = rng.randint(2, 4)
    cols = 2 if n_panels == 4 else n_panels
    width = rng.randrange(1344, 1793, 16)
    panel_w = width // cols
    panel_h = min(panel_w, rng.randint(520, 760))
    return {
        "width": width,
        "height": 80 + (2 if n_panels == 4 else 1) * panel_h,
        "columns": cols,
        "panel_height": panel_h,
        "label_size": rng.randint(14, 18),
        "sheet": rng.randint(1, 99),
        # Distinct figure types: two questions about one image never differ by a letter only.
        "panels": [sampler(rng) for sampler in rng.sample(PANEL_SAMPLERS, n_panels)],
    }


# --------------------------------------------------------------------------------------
# Rendering
# --------------------------------------------------------------------------------------


class Frame:
    """Maps figure coordinates (y up) into a pixel box (y down), uniformly scaled and centred."""

    def __init__(self, points: list[Point], box: tuple[float, float, float, float], pad: float):
        xs, ys = [p[0] for p in points], [p[1] for p in points]
        x0, y0, x1, y1 = box
        span = max(max(xs) - min(xs), max(ys) - min(ys), 1e-9)
        self.scale = min((x1 - x0 - 2 * pad), (y1 - y0 - 2 * pad)) / span
        self.cx, self.cy = (min(xs) + max(xs)) / 2, (min(ys) + max(ys)) / 2
        self.ox, self.oy = (x0 + x1) / 2, (y0 + y1) / 2

    def __call__(self, p: Point) -> Point:
        return (self.ox + (p[0] - self.cx) * self.scale, self.oy - (p[1] - self.cy) * self.scale)


def _polar(angle: float, r: float = 1.0, at: Point = (0.0, 0.0)) -> Point:
    return (at[0] + r * math.cos(math.radians(angle)), at[1] + r * math.sin(math.radians(angle)))


def _direction(p: Point, q: Point) -> float:
    """Degrees (figure coordinates, counter-clockwise) of the ray from p to q."""
    return math.degrees(math.atan2(q[1] - p[1], q[0] - p[0])) % 360


def _arc(
    draw: ImageDraw.ImageDraw, centre_px: Point, start: float, sweep: float, radius: float, text: str, size: int
) -> None:
    """Mark the angle from ``start`` sweeping ``sweep`` degrees counter-clockwise, and label it."""
    x, y = centre_px
    box = [x - radius, y - radius, x + radius, y + radius]
    # Pillow's arcs run clockwise on screen (y down): a counter-clockwise sweep in figure
    # coordinates from a to a+s is the screen arc from -(a+s) to -a.
    draw.arc(box, -(start + sweep), -start, fill=INK, width=LINE)
    middle = math.radians(start + sweep / 2)
    offset = radius + 6 + size * 0.9
    draw_text(draw, (x + offset * math.cos(middle), y - offset * math.sin(middle)), text, size, anchor="mm")


def _vertex_labels(draw: ImageDraw.ImageDraw, points_px: list[Point], letters: str, size: int) -> None:
    """Each letter just outside its vertex, away from the centroid."""
    cx = sum(p[0] for p in points_px) / len(points_px)
    cy = sum(p[1] for p in points_px) / len(points_px)
    for (x, y), letter in zip(points_px, letters):
        d = math.hypot(x - cx, y - cy) or 1.0
        draw_text(
            draw,
            (x + (x - cx) / d * size * 1.2, y + (y - cy) / d * size * 1.2),
            letter,
            size + 2,
            anchor="mm",
            bold=True,
        )


def _side_label(draw: ImageDraw.ImageDraw, p: Point, q: Point, inside: Point, text: str, size: int) -> None:
    """``text`` beside the segment pq, on the side away from ``inside`` (all in pixels)."""
    mx, my = (p[0] + q[0]) / 2, (p[1] + q[1]) / 2
    nx, ny = -(q[1] - p[1]), q[0] - p[0]
    length = math.hypot(nx, ny) or 1.0
    nx, ny = nx / length, ny / length
    if (inside[0] - mx) * nx + (inside[1] - my) * ny > 0:
        nx, ny = -nx, -ny
    draw_text(draw, (mx + nx * size * 1.4, my + ny * size * 1.4), text, size, anchor="mm")


def _polygon(draw: ImageDraw.ImageDraw, points_px: list[Point]) -> None:
    draw.line([*points_px, points_px[0]], fill=INK, width=LINE, joint="curve")


def _triangle_points(a: float, b: float) -> list[Point]:
    """Vertices with angle ``a`` at the first and ``b`` at the second, base of length 1."""
    c = 180 - a - b
    side = math.sin(math.radians(b)) / math.sin(math.radians(c))  # law of sines
    return [(0.0, 0.0), (1.0, 0.0), _polar(a, side)]


def _draw_panel(
    draw: ImageDraw.ImageDraw, panel: dict[str, Any], box: tuple[float, float, float, float], size: int
) -> None:
    kind = panel["type"]
    if kind == "triangle_angles":
        a, b = panel["angles"]
        pts = _triangle_points(a, b)
        frame = Frame(pts, box, 70)
        px = [frame(p) for p in pts]
        _polygon(draw, px)
        _vertex_labels(draw, px, panel["letters"], size)
        _arc(draw, px[0], 0, a, 34, f"{a}°", size)
        _arc(draw, px[1], 180 - b, b, 34, f"{b}°", size)
        _arc(draw, px[2], _direction(pts[2], pts[0]), 180 - a - b, 28, "?", size)
    elif kind == "right_triangle":
        a, b = panel["legs"]
        pts = [(0.0, 0.0), (float(a), 0.0), (0.0, float(b))]
        frame = Frame(pts, box, 70)
        px = [frame(p) for p in pts]
        _polygon(draw, px)
        _vertex_labels(draw, px, panel["letters"], size)
        mark = 16  # the right-angle square, pixels
        draw.line(
            [(px[0][0] + mark, px[0][1]), (px[0][0] + mark, px[0][1] - mark), (px[0][0], px[0][1] - mark)],
            fill=INK,
            width=LINE,
        )
        centre = tuple(sum(c) / 3 for c in zip(*px))
        _side_label(draw, px[0], px[1], centre, f"{a} cm", size)
        _side_label(draw, px[0], px[2], centre, f"{b} cm", size)
        if panel["find"] == "hypotenuse":
            _side_label(draw, px[1], px[2], centre, "?", size)
    elif kind == "circle_inscribed":
        start, central = panel["start"], panel["central"]
        pts = [_polar(start), _polar(start + central), _polar(start + central + (360 - central) * panel["c_at"])]
        frame = Frame([(-1.0, -1.0), (1.0, 1.0)], box, 60)
        o, px = frame((0.0, 0.0)), [frame(p) for p in pts]
        r = frame.scale
        draw.ellipse([o[0] - r, o[1] - r, o[0] + r, o[1] + r], outline=INK, width=LINE)
        draw.line([px[0], o, px[1]], fill=INK, width=LINE)
        draw.line([px[0], px[2], px[1]], fill=INK, width=LINE)
        draw.ellipse([o[0] - 3, o[1] - 3, o[0] + 3, o[1] + 3], fill=INK)
        away = math.radians(start + central / 2 + 180)  # opposite the marked angle
        draw_text(draw, (o[0] + size * math.cos(away), o[1] - size * math.sin(away)), "O", size, anchor="mm", bold=True)
        _vertex_labels(draw, [*px, o], panel["letters"], size)
        _arc(draw, o, start, central, 26, f"{central}°", size)
    elif kind == "circle_measure":
        frame = Frame([(-1.0, -1.0), (1.0, 1.0)], box, 50)
        o, r = frame((0.0, 0.0)), frame.scale
        end = frame(_polar(panel["direction"]))
        draw.ellipse([o[0] - r, o[1] - r, o[0] + r, o[1] + r], outline=INK, width=LINE)
        draw.line([o, end], fill=INK, width=LINE)
        draw.ellipse([o[0] - 3, o[1] - 3, o[0] + 3, o[1] + 3], fill=INK)
        draw_text(draw, (o[0] - 8, o[1] + 8), "O", size, anchor="ra", bold=True)
        _side_label(draw, o, end, frame(_polar(panel["direction"] + 90, 0.5)), f"{panel['radius']} cm", size)
    elif kind == "parallel_lines":
        _draw_parallel(draw, panel, box, size)
    elif kind == "rectangle":
        w, h = panel["sides"]
        pts = [(0.0, 0.0), (float(w), 0.0), (float(w), float(h)), (0.0, float(h))]
        frame = Frame(pts, box, 70)
        px = [frame(p) for p in pts]
        _polygon(draw, px)
        _vertex_labels(draw, px, panel["letters"], size)
        centre = tuple(sum(c) / 4 for c in zip(*px))
        _side_label(draw, px[0], px[1], centre, f"{w} cm", size)
        _side_label(draw, px[1], px[2], centre, f"{h} cm", size)
        if panel["find"] == "diagonal":
            draw.line([px[0], px[2]], fill=INK, width=LINE)


def _draw_parallel(
    draw: ImageDraw.ImageDraw, panel: dict[str, Any], box: tuple[float, float, float, float], size: int
) -> None:
    theta = panel["theta"]
    run = 1 / math.tan(math.radians(theta))  # horizontal shift of the transversal per unit of height
    crossings = [(run, 1.0), (-run, -1.0)]  # upper line (l), lower line (m)
    ends = [(-2.6, 1.0), (2.6, 1.0), (-2.6, -1.0), (2.6, -1.0), (1.9 * run, 1.9), (-1.9 * run, -1.9)]
    frame = Frame(ends, box, 50)
    for y, name in ((1.0, "l"), (-1.0, "m")):
        left, right = frame((-2.6, y)), frame((2.6, y))
        draw.line([left, right], fill=INK, width=LINE)
        draw_text(draw, (right[0] + 6, right[1]), name, size, anchor="lm", bold=True)
        # Arrowheads mark the lines as parallel.
        tip = frame((2.2, y))
        draw.line([(tip[0] - 9, tip[1] - 6), tip, (tip[0] - 9, tip[1] + 6)], fill=INK, width=LINE)
    draw.line([frame(ends[4]), frame(ends[5])], fill=INK, width=LINE)
    starts = {"UR": 0, "UL": theta, "LL": 180, "LR": 180 + theta}
    for crossing, position, text in (
        (crossings[0], panel["marked"], f"{angle_at(theta, panel['marked'])}°"),
        (crossings[1], panel["unknown"], "x"),
    ):
        _arc(draw, frame(crossing), starts[position], angle_at(theta, position), 24, text, size)


def render(data: dict[str, Any]) -> Image.Image:
    width, height, size = data["width"], data["height"], data["label_size"]
    image = Image.new("RGB", (width, height), WHITE)
    draw = ImageDraw.Draw(image)
    draw_text(draw, (24, 24), f"Exercise sheet {data['sheet']}", size + 6, bold=True)
    panel_w = width / data["columns"]
    for k, panel in enumerate(data["panels"]):
        row, col = divmod(k, data["columns"])
        x0, y0 = col * panel_w, 80 + row * data["panel_height"]
        box = (x0 + 8, y0 + 8, x0 + panel_w - 8, y0 + data["panel_height"] - 8)
        draw.rectangle(box, outline=GRID, width=1)
        draw_text(draw, (box[0] + 10, box[1] + 8), f"Figure {k + 1}", size, fill=MUTED)
        _draw_panel(draw, panel, (box[0], box[1] + 24, box[2], box[3]), size)
    return image


# --------------------------------------------------------------------------------------
# Questions: one per panel
# --------------------------------------------------------------------------------------


def _numeric_qa(
    rng: random.Random,
    template: str,
    question: str,
    value: int,
    suffix: str,
    unit: str,
    rationale: str,
    args: dict[str, Any],
) -> QA:
    """Half the questions are multiple choice (GeoQA style, options ``f"{v}{suffix}"``), the rest
    open with the answer as a bare number and ``unit`` beside it."""
    if rng.random() < 0.5:
        return QA(template, question, str(value), rationale, args, unit=unit)
    choices = [f"{v}{suffix}" for v in numeric_choices(rng, value)]
    return QA(template, question, f"{value}{suffix}", rationale, args, choices=choices)


def ask_panel(panel: dict[str, Any], figure: int, rng: random.Random) -> QA:
    kind, fig = panel["type"], f"Figure {figure}"
    args = {"panel": figure - 1}
    if kind == "triangle_angles":
        a, b = panel["angles"]
        p, q, r = panel["letters"]
        c = 180 - a - b
        return _numeric_qa(
            rng,
            "triangle_angle_sum",
            f"In {fig}, what is the measure of angle {r} in triangle {p}{q}{r}?",
            c,
            "°",
            "degrees",
            f"In {fig}, triangle {p}{q}{r} has angle {p} = {a}° and angle {q} = {b}°. The angles of a triangle add "
            f"up to 180°, so angle {r} = 180° - {a}° - {b}° = {c}°. So the answer is {c}°.",
            args,
        )
    if kind == "right_triangle":
        a, b = panel["legs"]
        p, q, r = panel["letters"]
        if panel["find"] == "hypotenuse":
            c = math.isqrt(a * a + b * b)
            return _numeric_qa(
                rng,
                "right_triangle_hypotenuse",
                f"In {fig}, triangle {p}{q}{r} has a right angle at {p}. What is the length of {q}{r}?",
                c,
                " cm",
                "cm",
                f"In {fig}, the legs are {p}{q} = {a} cm and {p}{r} = {b} cm, with the right angle at {p}. By the "
                f"Pythagorean theorem, {q}{r} = sqrt({a}^2 + {b}^2) = "
                f"sqrt({a * a} + {b * b}) = sqrt({a * a + b * b}) = {c} cm. "
                f"So the answer is {c} cm.",
                args,
            )
        area = a * b // 2  # every Pythagorean triple has an even leg
        return _numeric_qa(
            rng,
            "right_triangle_area",
            f"In {fig}, triangle {p}{q}{r} has a right angle at {p}. What is its area?",
            area,
            " cm^2",
            "cm^2",
            f"In {fig}, the legs are {a} cm and {b} cm. The area of a right triangle is half the product of its legs: "
            f"{a} x {b} / 2 = {area} cm^2. So the answer is {area} cm^2.",
            args,
        )
    if kind == "circle_inscribed":
        p, q, r = panel["letters"]
        central, inscribed = panel["central"], panel["central"] // 2
        return _numeric_qa(
            rng,
            "inscribed_angle",
            f"In {fig}, O is the centre of the circle. What is the measure of angle {p}{r}{q}?",
            inscribed,
            "°",
            "degrees",
            f"In {fig}, the central angle {p}O{q} is {central}°. The inscribed angle {p}{r}{q} stands on the same arc "
            f"{p}{q}, so it is half the central angle: {central}° / 2 = {inscribed}°. So the answer is {inscribed}°.",
            args,
        )
    if kind == "circle_measure":
        radius = panel["radius"]
        if panel["find"] == "area":
            coef, formula, what = radius * radius, f"pi x {radius}^2 = {radius * radius}π", "area"
            unit = " cm^2"
        else:
            coef, formula, what = 2 * radius, f"2 x pi x {radius} = {2 * radius}π", "circumference"
            unit = " cm"
        answer = f"{coef}π{unit}"
        return QA(
            f"circle_{what}",
            f"In {fig}, what is the {what} of the circle with centre O?",
            answer,
            f"In {fig}, the radius is {radius} cm. The {what} is "
            f"{'pi r^2' if what == 'area' else '2 pi r'} = {formula}{unit}. "
            f"So the answer is {answer}.",
            args,
            choices=[f"{v}π{unit}" for v in numeric_choices(rng, coef)],
        )
    if kind == "parallel_lines":
        theta, marked, unknown = panel["theta"], panel["marked"], panel["unknown"]
        m, x = angle_at(theta, marked), angle_at(theta, unknown)
        at_m = (
            f"At line m, the angle in the {POSITION_WORDS[marked]} "
            f"position equals the marked {m}° (corresponding angles)."
        )
        where = f"x is in the {POSITION_WORDS[unknown]} position"
        if unknown == marked:
            step = f"{where}, the same one, so x = {m}°."
        elif x == m:
            step = f"{where}, vertically opposite to it, so x = {m}°."
        else:
            step = f"{where}; x and that angle lie on a straight line, so x = 180° - {m}° = {x}°."
        return _numeric_qa(
            rng,
            "parallel_lines",
            f"In {fig}, lines l and m are parallel. What is the value of x?",
            x,
            "°",
            "degrees",
            f"In {fig}, the transversal meets line l with a marked angle of {m}° in the {POSITION_WORDS[marked]} "
            f"position. Because l and m are parallel, the transversal makes the same angles at m. {at_m} {step} "
            f"So the answer is {x}°.",
            args,
        )
    w, h = panel["sides"]
    a, b, c, d = panel["letters"]
    name = f"rectangle {a}{b}{c}{d}"
    if panel["find"] == "area":
        value, working, unit = w * h, f"{w} x {h} = {w * h} cm^2", "cm^2"
        question = f"In {fig}, what is the area of {name}?"
    elif panel["find"] == "perimeter":
        value, working, unit = 2 * (w + h), f"2 x ({w} + {h}) = {2 * (w + h)} cm", "cm"
        question = f"In {fig}, what is the perimeter of {name}?"
    else:
        value = math.isqrt(w * w + h * h)
        working, unit = f"sqrt({w}^2 + {h}^2) = sqrt({w * w + h * h}) = {value} cm", "cm"
        question = f"In {fig}, what is the length of the diagonal {a}{c} of {name}?"
    return _numeric_qa(
        rng,
        f"rectangle_{panel['find']}",
        question,
        value,
        f" {unit}",
        unit,
        f"In {fig}, the sides of {name} are {w} cm and {h} cm. The {panel['find']} is {working}. "
        f"So the answer is {value} {unit}.",
        args,
    )


def ask(data: dict[str, Any], rng: random.Random) -> list[QA]:
    return [ask_panel(panel, k + 1, rng) for k, panel in enumerate(data["panels"])]


def describe_panel(panel: dict[str, Any]) -> str:
    kind = panel["type"]
    if kind == "triangle_angles":
        return f"a triangle with angles of {panel['angles'][0]} and {panel['angles'][1]} degrees"
    if kind == "right_triangle":
        return f"a right triangle with legs of {panel['legs'][0]} and {panel['legs'][1]} cm"
    if kind == "circle_inscribed":
        return f"a circle with an inscribed angle and a central angle of {panel['central']} degrees"
    if kind == "circle_measure":
        return f"a circle of radius {panel['radius']} cm"
    if kind == "parallel_lines":
        return f"two parallel lines cut by a transversal at {panel['theta']} degrees"
    return f"a {panel['sides'][0]} by {panel['sides'][1]} cm rectangle"


def describe(data: dict[str, Any]) -> str:
    figures = " ; ".join(f"figure {k + 1}, {describe_panel(p)}" for k, p in enumerate(data["panels"]))
    return f"a geometry exercise sheet with {len(data['panels'])} figures : {figures}"
