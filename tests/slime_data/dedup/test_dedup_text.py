"""Question normalisation and the text a record is deduplicated on."""

from __future__ import annotations

import pytest

from slime_data.dedup.text import dedup_text, human_text, normalize_text, tokens


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
