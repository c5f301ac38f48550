"""Dense document pages: numbered sections of small print in one or two columns.

Each page hides a handful of facts (years, counts, names, codes, dates) among filler
sentences; the questions ask for those facts, so the answer is in one sentence of small text.
Every fact type appears at most once per page, so each question has exactly one answer.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any

from PIL import Image, ImageDraw

from slime_data.synth import words
from slime_data.synth.draw import GRID, INK, MUTED, WHITE, draw_text, draw_words, font, text_choices, text_width, wrap
from slime_data.synth.figure import QA, pick_questions

MODE = "L"  # drawn in black and grey: a grayscale PNG is a third of the bytes to encode

GUTTER = 36
HEADER_HEIGHT = 120

# Fact type -> (sentence template, {askable field: question template}). Values are display strings.
FACTS: dict[str, tuple[str, dict[str, str]]] = {
    "founded": (
        "The {org} was founded in {year} in {city}.",
        {"year": "In which year was the {org} founded?", "city": "In which city was the {org} founded?"},
    ),
    "staff": (
        "At present the {org} employs {staff} people across {offices} offices.",
        {
            "staff": "How many people does the {org} employ?",
            "offices": "Across how many offices does the {org} employ its staff?",
        },
    ),
    "budget": (
        "For {year}, the approved budget of the {department} was {amount} euros.",
        {"amount": "What was the approved budget of the {department} for {year}, in euros?"},
    ),
    "appointment": (
        "In {month} {year}, {person} was appointed as {role}.",
        {"person": "Who was appointed as {role}?", "month": "In which month was {person} appointed as {role}?"},
    ),
    "facility": (
        "The {facility} in {city} covers {area} square metres and has {rooms} rooms.",
        {
            "area": "How many square metres does the {facility} in {city} cover?",
            "rooms": "How many rooms does the {facility} in {city} have?",
        },
    ),
    "deadline": (
        "Applications for the {programme} must arrive by {date}.",
        {"date": "By what date must applications for the {programme} arrive?"},
    ),
    "code": (
        "Enquiries about the {topic} should quote the reference code {code}.",
        {"code": "Which reference code should enquiries about the {topic} quote?"},
    ),
}
TITLES = ("Annual report of the {org}", "Minutes of the general meeting of the {org}", "Newsletter of the {org}")


def _code(rng: random.Random) -> str:
    letters = "".join(rng.choice("ABCDEFGHJKLMNPQRSTUVWXYZ") for _ in range(rng.randint(2, 3)))
    return f"{letters}-{rng.randint(1000, 99999)}"


def _date(rng: random.Random, year: int) -> str:
    return f"{rng.randint(1, 28)} {rng.choice(words.MONTHS)} {year}"


def _fact_values(rng: random.Random, org: str) -> dict[str, dict[str, str]]:
    """One candidate set of values per fact type, all about the same organisation."""
    cities = rng.sample(words.CITIES, 2)
    return {
        "founded": {"org": org, "year": str(rng.randint(1850, 1999)), "city": cities[0]},
        "staff": {"org": org, "staff": str(rng.randint(12, 900)), "offices": str(rng.randint(2, 19))},
        "budget": {
            "department": rng.choice(words.DEPARTMENTS),
            "year": str(rng.randint(2005, 2023)),
            "amount": f"{rng.randint(20, 9900) * 100:,}",
        },
        "appointment": {
            "person": f"{rng.choice(words.FIRST_NAMES)} {rng.choice(words.SURNAMES)}",
            "role": rng.choice(words.ROLES),
            "month": rng.choice(words.MONTHS),
            "year": str(rng.randint(2005, 2023)),
        },
        "facility": {
            "facility": rng.choice(words.FACILITIES),
            "city": cities[1],
            "area": str(rng.randint(80, 4000)),
            "rooms": str(rng.randint(3, 60)),
        },
        "deadline": {"programme": rng.choice(words.PROGRAMMES), "date": _date(rng, rng.randint(2010, 2025))},
        "code": {"topic": rng.choice(words.FILLER_NOUNS), "code": _code(rng)},
    }


def sentence(item: dict[str, Any]) -> str:
    """The text of one paragraph item: a filler sentence or a fact rendered from its values."""
    if "filler" in item:
        return item["filler"]
    return FACTS[item["fact"]][0].format(**item["values"])


def _filler(rng: random.Random) -> dict[str, str]:
    pattern = rng.choice(words.FILLER_PATTERNS)
    return {"filler": pattern.format(noun=rng.choice(words.FILLER_NOUNS), verb=rng.choice(words.FILLER_VERBS))}


# --------------------------------------------------------------------------------------
# Layout: where each line of text goes (shared by sampling, to fill the page, and rendering)
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Line:
    x: float
    y: float
    text: str
    size: int
    bold: bool = False


def layout(data: dict[str, Any]) -> tuple[list[Line], bool]:
    """The body's lines, flowed column by column; the flag is True when the text overflows."""
    size, line_h, n_cols = data["font_size"], data["line_height"], data["columns"]
    margin = data["margin"]
    col_w = (data["width"] - 2 * margin - GUTTER * (n_cols - 1)) / n_cols
    top, bottom = margin + HEADER_HEIGHT, data["height"] - margin - 30
    lines: list[Line] = []
    col, y = 0, top

    def room_for(n: int) -> bool:
        nonlocal col, y
        if y + n * line_h <= bottom:
            return True
        col, y = col + 1, top
        return col < n_cols

    for section in data["sections"]:
        if not room_for(2):  # a heading is never left alone at the foot of a column
            return lines, True
        x = margin + col * (col_w + GUTTER)
        lines.append(Line(x, y, section["heading"], size + 2, bold=True))
        y += line_h + 4
        for text in wrap(" ".join(sentence(item) for item in section["items"]), size, col_w):
            if not room_for(1):
                return lines, True
            lines.append(Line(margin + col * (col_w + GUTTER), y, text, size))
            y += line_h
        y += line_h // 2
    return lines, False


def sample(rng: random.Random) -> dict[str, Any]:
    width = rng.randrange(1000, 1241, 8)
    org = f"{rng.choice(words.CITIES)} {rng.choice(words.ORG_FIELDS)} {rng.choice(words.ORG_TYPES)}"
    n_sections = rng.randint(4, 7)
    facts = _fact_values(rng, org)
    chosen = rng.sample(sorted(facts), rng.randint(4, len(facts)))
    sections = [
        {"heading": f"{i + 1}. {topic}", "items": [_filler(rng)]}
        for i, topic in enumerate(rng.sample(words.SECTION_TOPICS, n_sections))
    ]
    for fact in chosen:
        items = rng.choice(sections)["items"]
        items.insert(rng.randint(0, len(items)), {"fact": fact, "values": facts[fact]})
    font_size = rng.randint(13, 16)
    pages = rng.randint(2, 40)
    data = {
        "width": width,
        "height": int(width * 1.414),  # A-series page
        "font_size": font_size,
        "line_height": font_size + rng.randint(5, 7),
        "columns": rng.choice((1, 2)),
        # Margins and a letterhead band vary the page's coarse layout, so that different pages
        # do not share one perceptual hash (dedup must not take them for copies).
        "margin": rng.randint(48, 110),
        "banner": rng.random() < 0.4,
        "title": rng.choice(TITLES).format(org=org),
        "reference": _code(rng),
        "date": _date(rng, rng.randint(2005, 2024)),
        "page": rng.randint(1, pages),
        "pages": pages,
        "sections": sections,
    }
    _fill_page(data, rng)
    return data


def _fill_page(data: dict[str, Any], rng: random.Random) -> None:
    """Add filler sentences until the page is full (estimate first, then trim exactly)."""
    n_cols = data["columns"]
    margin = data["margin"]
    col_w = (data["width"] - 2 * margin - GUTTER * (n_cols - 1)) / n_cols
    capacity = n_cols * (data["height"] - 2 * margin - HEADER_HEIGHT - 30) / data["line_height"]
    used = sum(2.5 + len(wrap(" ".join(map(sentence, s["items"])), data["font_size"], col_w)) for s in data["sections"])
    added: list[list[dict[str, Any]]] = []
    while used < capacity * 0.95:
        items = rng.choice(data["sections"])["items"]
        filler = _filler(rng)
        items.insert(rng.randint(0, len(items)), filler)
        added.append(items)
        used += text_width(filler["filler"], data["font_size"]) / col_w
    while layout(data)[1]:
        items = added.pop() if added else None
        if items is None:
            raise RuntimeError("document facts alone overflow the page")  # the page sizes above rule this out
        items.remove(next(i for i in reversed(items) if "filler" in i))


def render(data: dict[str, Any]) -> Image.Image:
    width, height, size = data["width"], data["height"], data["font_size"]
    image = Image.new("RGB", (width, height), WHITE)
    draw = ImageDraw.Draw(image)
    margin = data["margin"]
    ink, muted = INK, MUTED
    if data["banner"]:  # a letterhead band across the top, the header printed on it in white
        draw.rectangle([0, 0, width, margin + HEADER_HEIGHT - 24], fill=(70, 70, 70))
        ink = muted = WHITE
    draw_text(draw, (margin, margin), data["title"], size + 12, fill=ink, bold=True)
    draw_text(draw, (margin, margin + size + 30), f"Ref. {data['reference']}", size - 1, fill=muted)
    draw_text(draw, (width - margin, margin + size + 30), f"Issued {data['date']}", size - 1, fill=muted, anchor="ra")
    draw.line(
        [(margin, margin + HEADER_HEIGHT - 24), (width - margin, margin + HEADER_HEIGHT - 24)], fill=GRID, width=2
    )
    for line in layout(data)[0]:
        if line.bold:
            draw_text(draw, (line.x, line.y), line.text, line.size, bold=True)
        else:
            draw_words(image, (line.x, line.y + font(line.size).getmetrics()[0]), line.text, line.size)
    draw_text(
        draw,
        (width - margin, height - margin),
        f"Page {data['page']} of {data['pages']}",
        size - 2,
        fill=MUTED,
        anchor="rd",
    )
    return image


# --------------------------------------------------------------------------------------
# Questions
# --------------------------------------------------------------------------------------


def _facts(data: dict[str, Any]) -> list[tuple[int, int, dict[str, Any]]]:
    return [
        (s, i, item)
        for s, section in enumerate(data["sections"])
        for i, item in enumerate(section["items"])
        if "fact" in item
    ]


def doc_fact(data: dict[str, Any], rng: random.Random, fact: tuple[int, int, dict[str, Any]]) -> QA:
    s, i, item = fact
    field = rng.choice(sorted(FACTS[item["fact"]][1]))
    answer = item["values"][field]
    heading = data["sections"][s]["heading"]
    return QA(
        "doc_fact",
        FACTS[item["fact"]][1][field].format(**item["values"]),
        answer,
        f'Section "{heading}" says: "{sentence(item)}" So the answer is {answer}.',
        {"section": s, "item": i, "field": field},
    )


def doc_reference(data: dict[str, Any], rng: random.Random) -> QA:
    return QA(
        "doc_reference",
        f'What is the reference number printed under the title "{data["title"]}"?',
        data["reference"],
        f'Under the title, the small grey line reads "Ref. {data["reference"]}". So the answer is {data["reference"]}.',
    )


def doc_page(data: dict[str, Any], rng: random.Random) -> QA:
    page = str(data["page"])
    return QA(
        "doc_page",
        f'Which page number is printed in the footer of "{data["title"]}"?',
        page,
        f'The footer at the bottom right reads "Page {page} of {data["pages"]}". So the answer is {page}.',
    )


def doc_heading(data: dict[str, Any], rng: random.Random) -> QA:
    s = rng.randrange(len(data["sections"]))
    number, title = data["sections"][s]["heading"].split(". ", 1)
    others = [h["heading"].split(". ", 1)[1] for h in data["sections"]]
    return QA(
        "doc_heading",
        f"What is the heading of section {number}?",
        title,
        f'The heading numbered {number} reads "{number}. {title}". So the answer is {title}.',
        {"section": s},
        choices=text_choices(rng, title, others),
    )


def doc_section_count(data: dict[str, Any], rng: random.Random) -> QA:
    headings = [s["heading"] for s in data["sections"]]
    n = len(headings)
    return QA(
        "doc_section_count",
        f'How many numbered sections does the page "{data["title"]}" contain?',
        str(n),
        f"The numbered headings are {', '.join(headings)}. That is {n} sections. So the answer is {n}.",
    )


def ask(data: dict[str, Any], rng: random.Random) -> list[QA]:
    """Two to four questions on different facts, plus one about the page's layout.

    One question per fact: "In which year was X founded?" and "In which city was X founded?"
    about one image would differ by a word only, and dedup would take them for copies.
    """
    facts = rng.sample(_facts(data), min(rng.randint(2, 4), len(_facts(data))))
    questions = [doc_fact(data, rng, fact) for fact in facts]
    return questions + pick_questions([doc_reference, doc_page, doc_heading, doc_section_count], data, rng, 1)


def describe(data: dict[str, Any]) -> str:
    headings = ", ".join(s["heading"].split(". ", 1)[1].lower() for s in data["sections"])
    layout_word = "two-column" if data["columns"] == 2 else "single-column"
    return (
        f'a dense {layout_word} text page titled "{data["title"].lower()}" with {len(data["sections"])} numbered '
        f"sections ({headings}) ; reference {data['reference'].lower()}, page {data['page']} of {data['pages']}"
    )
