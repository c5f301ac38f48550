"""Every answer is recomputed here from the generating data alone, with code independent of the
generator's (Decimal arithmetic for tables, trigonometry for the parallel-lines angles).

Two sources of QAs: the stored set on disk (synth.jsonl joined with figures.jsonl) and many
sampled figures per kind without rendering, so every question family is exercised.
"""

from __future__ import annotations

import math
import random
import re
from collections import Counter
from decimal import Decimal

import numpy as np
import pytest

from slime_data.synth import FIGURE_KINDS
from slime_data.synth import document as document_kind


def number(answer: str) -> int:
    """The leading integer of an answer such as "57°", "10 cm" or "36π cm^2"."""
    match = re.match(r"-?\d+", answer)
    assert match, f"no number in {answer!r}"
    return int(match.group())


def argmax_unique(values: list[int]) -> int:
    best = max(values)
    assert values.count(best) == 1, "a maximum question needs a unique maximum"
    return values.index(best)


def check_chart(template: str, answer: str, args: dict, data: dict) -> None:
    values, categories, series = data["values"], data["categories"], data["series"]
    if template == "bar_value":
        assert answer == str(values[args["series"]][args["category"]])
    elif template == "bar_difference":
        high, low = (values[s][args["category"]] for s in args["series"])
        assert int(answer) == high - low > 0
    elif template == "bar_total":
        assert int(answer) == sum(values[args["series"]])
    elif template == "bar_tallest":
        assert answer == categories[argmax_unique(values[args["series"]])]
    elif template == "bar_count_higher":
        first, second = (values[s] for s in args["series"])
        assert int(answer) == sum(a > b for a, b in zip(first, second))
    elif template == "legend_colour":
        assert answer == series[args["series"]]["colour"]
    elif template == "line_peak":
        row = values[args["series"]]
        best = argmax_unique(row)
        assert answer == categories[best]
        assert row[best] - sorted(row)[-2] > data["y_step"] / 2, "the peak stands out on the grid"
    elif template == "line_top_series":
        column = [row[args["category"]] for row in values]
        assert answer == series[argmax_unique(column)]["name"]
        assert sorted(column)[-1] - sorted(column)[-2] > data["y_step"] / 2
    elif template == "line_compare":
        a, b = (values[s][args["category"]] for s in args["series"])
        assert abs(a - b) >= data["y_step"] / 2
        assert answer == ("Yes" if a > b else "No")
    elif template == "series_count":
        assert int(answer) == len(series)
    else:
        pytest.fail(f"unchecked chart template {template}")


def check_table(template: str, answer: str, args: dict, data: dict) -> None:
    def cell(row: int, column: int) -> Decimal:
        decimals = data["columns"][column]["decimals"]
        return Decimal(data["rows"][row]["values"][column]).scaleb(-decimals)

    def same(value: Decimal, text: str, column: int) -> bool:
        return Decimal(text) == value and len(text.partition(".")[2]) == data["columns"][column]["decimals"]

    labels = [row["label"] for row in data["rows"]]
    if template in ("table_max", "table_min"):
        column = [cell(r, args["column"]) for r in range(len(labels))]
        best = max(column) if template == "table_max" else min(column)
        assert column.count(best) == 1 and answer == labels[column.index(best)]
        return
    c = args["column"]
    if template == "table_lookup":
        assert same(cell(args["row"], c), answer, c)
    elif template == "table_difference":
        high, low = (cell(r, c) for r in args["rows"])
        assert high > low and same(high - low, answer, c)
    elif template == "table_count":
        threshold = Decimal(args["threshold"]).scaleb(-data["columns"][c]["decimals"])
        assert int(answer) == sum(cell(r, c) > threshold for r in range(len(labels))) >= 1
    elif template == "table_sum":
        assert len(set(args["rows"])) == 3 and same(sum(cell(r, c) for r in args["rows"]), answer, c)
    else:
        pytest.fail(f"unchecked table template {template}")


def check_document(template: str, answer: str, args: dict, data: dict) -> None:
    sections = data["sections"]
    if template == "doc_fact":
        item = sections[args["section"]]["items"][args["item"]]
        assert answer == item["values"][args["field"]]
        assert answer in document_kind.sentence(item)
        facts = [i["fact"] for s in sections for i in s["items"] if "fact" in i]
        assert facts.count(item["fact"]) == 1, "each fact type appears once per page"
    elif template == "doc_reference":
        assert answer == data["reference"]
    elif template == "doc_page":
        assert answer == str(data["page"]) and data["page"] <= data["pages"]
    elif template == "doc_heading":
        assert f"{args['section'] + 1}. {answer}" == sections[args["section"]]["heading"]
    elif template == "doc_section_count":
        assert int(answer) == len(sections)
    else:
        pytest.fail(f"unchecked document template {template}")


def parallel_angle(theta: int, position: str) -> int:
    """The angle between the two rays bounding ``position`` at a crossing, from their directions."""
    right, up, left, down = 0.0, math.radians(theta), math.pi, math.radians(theta) + math.pi
    bounds = {"UR": (right, up), "UL": (up, left), "LL": (left, down), "LR": (down, 2 * math.pi)}[position]
    return round(math.degrees(bounds[1] - bounds[0]))


def check_geometry(template: str, answer: str, args: dict, data: dict) -> None:
    panel = data["panels"][args["panel"]]
    value = number(answer)
    if template == "triangle_angle_sum":
        assert value == 180 - sum(panel["angles"]) > 0
    elif template == "right_triangle_hypotenuse":
        assert value == math.hypot(*panel["legs"])
    elif template == "right_triangle_area":
        assert value * 2 == panel["legs"][0] * panel["legs"][1]
    elif template == "inscribed_angle":
        assert value * 2 == panel["central"]
    elif template == "circle_area":
        assert value == panel["radius"] ** 2 and answer.endswith("π cm^2")
    elif template == "circle_circumference":
        assert value == 2 * panel["radius"] and answer.endswith("π cm")
    elif template == "parallel_lines":
        assert value == parallel_angle(panel["theta"], panel["unknown"])
    elif template.startswith("rectangle_"):
        w, h = panel["sides"]
        expected = {"rectangle_area": w * h, "rectangle_perimeter": 2 * (w + h), "rectangle_diagonal": math.hypot(w, h)}
        assert value == expected[template]
    else:
        pytest.fail(f"unchecked geometry template {template}")


def fill_seen_in_pixels(panel: np.ndarray) -> str:
    """The fill of a rendered panel [H, W] read back from its pixels alone."""
    if (panel == panel[0, 0]).all():
        return "plain"
    rows_constant, cols_constant = (panel == panel[:, :1]).all(), (panel == panel[:1, :]).all()
    if rows_constant:
        return "horizontal"
    if cols_constant:
        return "vertical"
    return "dotted" if panel.min() == 0 else "checkered"


def check_hatching(template: str, answer: str, args: dict, data: dict) -> None:
    assert args["fill"] == data["fill"]
    expected = {"hatching_lines": "yes" if data["fill"] in ("horizontal", "vertical") else "no"}
    assert answer == expected.get(template, data["fill"]) and template in (
        "hatching_fill",
        "hatching_lines",
        "hatching_choice",
    )
    page = np.asarray(FIGURE_KINDS["hatching"].render(data).convert("L"), dtype=np.int64)
    left, top, right, bottom = data["box"]
    panel = page[top:bottom, left:right]
    assert fill_seen_in_pixels(panel) == data["fill"]
    even = panel[: (bottom - top) // 2 * 2, : (right - left) // 2 * 2]
    blocks = even.reshape(even.shape[0] // 2, 2, even.shape[1] // 2, 2).mean(axis=(1, 3))
    assert np.abs(blocks - 191).max() <= 0.5, "a 2x downsample must see the same grey for every fill"


CHECKERS = {
    "chart": check_chart,
    "table": check_table,
    "document": check_document,
    "geometry": check_geometry,
    "hatching": check_hatching,
}


def test_stored_answers_recompute_from_stored_data(questions: list[dict], figures: dict[str, dict]) -> None:
    for q in questions:
        figure = figures[q["image_id"]]
        assert figure["kind"] == q["kind"]
        CHECKERS[q["kind"]](q["template"], q["answer"], q["args"], figure["data"])


@pytest.mark.parametrize("kind", sorted(FIGURE_KINDS))
def test_every_question_family_is_correct_over_many_figures(kind: str) -> None:
    module, seen = FIGURE_KINDS[kind], Counter()
    for seed in range(60):
        rng = random.Random(f"answers/{kind}/{seed}")
        data = module.sample(rng)
        qas = module.ask(data, rng)
        assert qas, "every figure gets at least one question"
        assert len({qa.question for qa in qas}) == len(qas), "no question twice about one image"
        for qa in qas:
            CHECKERS[kind](qa.template, qa.answer, qa.args, data)
            if qa.choices:
                assert qa.answer in qa.choices and len(set(qa.choices)) == len(qa.choices)
            seen[qa.template] += 1
    families = {"chart": 10, "table": 6, "document": 5, "geometry": 10, "hatching": 3}
    assert len(seen) == families[kind], f"families exercised: {sorted(seen)}"
