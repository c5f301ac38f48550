"""Question normalisation and the text a record is deduplicated on (row by row, and from Arrow)."""

from __future__ import annotations

import random
import re
import sys
import unicodedata

import numpy as np
import pyarrow as pa
import pytest

from slime_data.dedup.text import _PLACEHOLDER, _TOKEN, dedup_text, dedup_texts, human_text, normalize_text, tokens
from slime_data.record import ARROW_SCHEMA, GPT, HUMAN


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("What is the VALUE of x?", "what is the value of x"),
        ("What  is\tthe value\r\nof x ?", "What is the value of x?"),
        ("<image>\nHow many bars?", "How many bars"),
        ("Look at <image 1> and <image2>. Which is larger?", "Look at and . Which is larger?"),
        ("ＡＢＣ ｘ", "ABC x"),  # NFKC folds full-width forms
        ("“Quoted” (words) [here]!", '"quoted" words here'),
    ],
)
def test_surface_variants_normalise_alike(a: str, b: str) -> None:
    assert normalize_text(a) == normalize_text(b)


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("What is 2+3?", "What is 2-3?"),  # math symbols are tokens
        ("Is it 3.5 m?", "Is it 35 m?"),  # the decimal point stays inside the number
        ("x = 4", "x < 4"),
        ("Find a/b", "Find a*b"),
    ],
)
def test_meaningful_differences_survive(a: str, b: str) -> None:
    assert normalize_text(a) != normalize_text(b)


def test_tokens() -> None:
    assert tokens("What's 3.5 + 2,000?") == ["what", "s", "3.5", "+", "2,000"]
    assert tokens("  ?! ") == []
    assert normalize_text("") == ""


def test_dedup_text_uses_questions_for_images_and_whole_conversation_without() -> None:
    conversation = [
        {"from": "human", "value": "<image>\nQ1"},
        {"from": "gpt", "value": "A1"},
        {"from": "human", "value": "Q2"},
        {"from": "gpt", "value": "A2"},
    ]
    assert human_text(conversation) == "<image>\nQ1\nQ2"
    assert dedup_text(conversation, has_image=True) == "<image>\nQ1\nQ2"
    assert dedup_text(conversation, has_image=False) == "<image>\nQ1\nA1\nQ2\nA2"


def reference_normalize(text: str) -> str:
    """The definition in one regex scan, as ``normalize_text`` was first written."""
    return " ".join(_TOKEN.findall(_PLACEHOLDER.sub(" ", unicodedata.normalize("NFKC", text).casefold())))


def test_normalize_text_is_one_regex_scan_of_the_text() -> None:
    # normalize_text tokenises word by word and takes words of letters whole: the same tokens.
    pool = list("abcXYZ019_.,;:!?'\"()[]{}+-*/=<>^%$\\@#&|~ßéÉﬁ²½٣一二αΩ") + [
        " ",
        "\t",
        "\n",
        "\r",
        "\x0b",
        "\x0c",
        "\x1c",
        "\x1f",
        "\x85",
        "\xa0",
        "\u2003",
        "\u2028",
        "\u3000",
        "\u0301",
        "\u200b",
        "<image>",
        "<image 2>",
        "<IMAGE1>",
        "3.5",
        "2,000",
        "、",
        "。",
        "“",
        "…",
    ]
    rng = random.Random(0)
    texts = ["".join(rng.choice(pool) for _ in range(rng.randint(0, 30))) for _ in range(20_000)]
    assert [normalize_text(t) for t in texts] == [reference_normalize(t) for t in texts]


def test_what_the_fast_path_relies_on_holds_for_every_code_point() -> None:
    # str.split() splits where the regex's \s matches, and a letter always matches [^\W_] and never \d.
    space, word, digit = re.compile(r"\s"), re.compile(r"[^\W_]"), re.compile(r"\d")
    for code in range(sys.maxunicode + 1):
        char = chr(code)
        assert char.isspace() == bool(space.match(char)), hex(code)
        assert not char.isalpha() or (word.match(char) and not digit.match(char)), hex(code)


def test_dedup_texts_from_arrow_equal_dedup_text_row_by_row() -> None:
    rng = random.Random(1)
    rows: list[list[dict[str, str]] | None] = []
    for i in range(600):
        turns = rng.randint(0, 5)
        speakers = [rng.choice([HUMAN, GPT, "system"]) for _ in range(turns)]
        values = [rng.choice(["", "a", "<image>\nWhat is x?", "ünï\ncode", "2+3"]) + str(i) for _ in range(turns)]
        rows.append(None if rng.random() < 0.05 else [{"from": s, "value": v} for s, v in zip(speakers, values)])
    column = pa.array(rows, ARROW_SCHEMA.field("conversations").type)
    has_image = np.array([rng.random() < 0.5 for _ in rows])
    for start, length in [(0, 600), (7, 100), (599, 1), (50, 0)]:  # slices have offsets into the child arrays
        got = dedup_texts(column.slice(start, length), has_image[start : start + length])
        assert got.type == pa.large_string()
        expected = [
            dedup_text(c or [], bool(h))
            for c, h in zip(rows[start : start + length], has_image[start : start + length])
        ]
        assert got.to_pylist() == expected
