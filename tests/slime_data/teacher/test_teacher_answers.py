"""The answer normaliser: the comparisons the rationale and thumbnail checks rely on."""

from __future__ import annotations

import pytest

from slime_data.teacher.answers import answers_match, choice_index, normalize_answer, parse_list, parse_number


@pytest.mark.parametrize(
    ("predicted", "gold"),
    [
        ("1,234.50 kg", "1234.5"),
        ("2.50", "2.5"),
        ("3.0", "3"),
        ("$12", "12"),
        ("45%", "45"),
        ("30°", "30"),
        ("30 degrees", "30"),
        ("1.5 m/s", "1.5"),
        ("1 234 567", "1234567"),
        ("−3", "-3"),
        ("1/2", "0.5"),
        (r"\frac{1}{2}", "0.5"),
        ("$\\frac{3}{4}$", "0.75"),
        ("[63, 26]", "63, 26"),
        ("(63; 26)", "[63,26]"),
        ("The answer is: Yes.", "yes"),
        ("New York", "new york."),
        ("The Sun", "sun"),
        ("'Blue'", "blue"),
        ("Final answer: 7", "7"),
    ],
)
def test_equivalent_answers_match(predicted: str, gold: str) -> None:
    assert answers_match(predicted, gold)
    assert answers_match(gold, predicted)


@pytest.mark.parametrize(
    ("predicted", "gold"),
    [
        ("-3", "3"),
        ("63, 26", "26, 63"),  # order matters in list-like answers
        ("4", "4.0001"),
        ("12", "1.2"),
        ("[63, 26]", "63"),
        ("red", "blue"),
        ("yes", "no"),
        ("2015", "2016"),
    ],
)
def test_different_answers_do_not_match(predicted: str, gold: str) -> None:
    assert not answers_match(predicted, gold)


CHOICES = ["red", "blue", "green"]


@pytest.mark.parametrize("predicted", ["B", "(b)", "b)", "B. blue", "Option B", "The answer is B", "blue", "Blue."])
def test_letters_and_option_text_are_interchangeable(predicted: str) -> None:
    assert choice_index(predicted, CHOICES) == 1
    assert answers_match(predicted, "B", CHOICES)
    assert answers_match(predicted, "blue", CHOICES)


def test_a_letter_with_the_wrong_option_text_names_no_option() -> None:
    assert choice_index("B. red", CHOICES) is None
    assert not answers_match("B. red", "B", CHOICES)
    assert not answers_match("green", "B", CHOICES)


def test_a_lone_article_letter_survives_normalisation() -> None:
    assert normalize_answer("A") == "a"
    assert normalize_answer("an apple") == "apple"
    assert answers_match("A", "(a)")


def test_parsers() -> None:
    assert parse_number("1,234.50 kg") == 1234.5
    assert parse_number("12 and 3") is None
    assert parse_number("about") is None
    assert parse_number(".5") == 0.5
    assert parse_list("[63, 26]") == ["63", "26"]
    assert parse_list("1,234") is None  # a thousands separator, not a list
    assert parse_list("single") is None
    assert normalize_answer("1,234.50 kg") == "1234.5"
    assert normalize_answer("[63, 26.0]") == "[63, 26]"


def test_missing_answers_never_match() -> None:
    assert not answers_match(None, "1")
    assert not answers_match("1", None)
