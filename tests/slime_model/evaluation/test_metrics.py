"""Every metric on hand-worked cases (the arithmetic is in the comments)."""

from __future__ import annotations

import pytest

from slime_data.decontam.items import BenchmarkItem
from slime_model.evaluation.metrics import SCORERS
from slime_model.evaluation.metrics.choice import circular_accuracy, extract_choice, mmmu_parse_choice
from slime_model.evaluation.metrics.math import (
    choice_or_free_form_correct,
    mathvista_correct,
    mmmu_open_correct,
)
from slime_model.evaluation.metrics.vqa import gqa_exact_match, normalize_vqa_answer, relaxed_correct, vqa_accuracy
from slime_model.evaluation.metrics.yesno import binary_scores, mme_answer, mme_scores, pope_answer
from tests.slime_data.decontam.release_fixtures import TEXTVQA_ANSWERS


def test_vqa_normalisation_and_accuracy() -> None:
    assert normalize_vqa_answer("Two dogs.") == "2 dogs"
    assert normalize_vqa_answer("the  Red-Car") == "red car"
    assert normalize_vqa_answer("dont") == "don't" and normalize_vqa_answer("1,000") == "1000"
    assert vqa_accuracy("two", ["2"] * 7 + ["two"] * 3) == 1.0  # all ten normalise to "2"
    # 2 annotators said red: leaving one of them out -> 1 match (1/3); leaving any of the 8 others out -> 2 (2/3).
    assert vqa_accuracy("red", ["red"] * 2 + ["blue"] * 8) == pytest.approx((2 * (1 / 3) + 8 * (2 / 3)) / 10)
    assert vqa_accuracy("blue", ["red"] * 2 + ["blue"] * 8) == 1.0  # 7 or 8 matches, capped at 1
    assert vqa_accuracy("green", ["red"] * 10) == 0.0


def test_gqa_and_chartqa_relaxed() -> None:
    assert gqa_exact_match("Yes.\nThe man is standing.", "yes") and not gqa_exact_match("a table", "table")
    assert relaxed_correct("10.4", "10")  # 4% off
    assert not relaxed_correct("10.6", "10")  # 6% off
    assert relaxed_correct("52%", "0.5")  # 0.52 vs 0.5: 4%
    assert relaxed_correct("Blue.", "blue") and not relaxed_correct("1", "0")  # a zero target compares as text


def test_choice_extraction_and_circular() -> None:
    choices = ["cat", "dog", "bird"]
    assert extract_choice("B", choices) == "B" and extract_choice("(C) bird", choices) == "C"
    assert extract_choice("The answer is A.", choices) == "A"
    assert extract_choice("It is a dog", choices) == "B"  # one option text named
    assert extract_choice("cat or dog", choices) is None and extract_choice("D", choices) is None
    correct = {"1": True, "1000001": False, "2": True, "1000002": True}
    groups = {"1": "1", "1000001": "1", "2": "2", "1000002": "2"}
    assert circular_accuracy(correct, groups) == 0.5  # question 1 fails in one rotation


def test_mmmu_parsing() -> None:
    choices = ["1 attendant", "2 attendants", "3 attendants", "4 attendants"]
    assert mmmu_parse_choice("(B)", choices, "q") == "B"
    assert mmmu_parse_choice("I think (A) but the answer is (C)", choices, "q") == "C"  # the last mention
    assert mmmu_parse_choice("The scheduler needs 3 attendants for the shift overall", choices, "q") == "C"
    guess = mmmu_parse_choice("no idea", choices, "validation_Math_2")
    assert guess in "ABCD" and guess == mmmu_parse_choice("no idea", choices, "validation_Math_2")  # seeded
    assert mmmu_open_correct("So the final value is 3.43.", ["24/7", "3.429"])  # 3.43 == round(3.429, 2)
    assert not mmmu_open_correct("The result is 5.", "3")
    assert mmmu_open_correct("Thus the answer is Paris.", "paris")


def test_math_rules() -> None:
    meta = {"question_type": "free_form", "answer_type": "float", "precision": 1}
    assert mathvista_correct("The answer is 1.2 N/m.", "1.2", meta, None)
    assert mathvista_correct("1.23", "1.2", meta, None)  # rounded to precision 1
    integer = {"question_type": "free_form", "answer_type": "integer"}
    assert mathvista_correct("There are 14 items in total.", "14", integer, None)
    choice = {"question_type": "multi_choice", "answer_type": "text"}
    assert mathvista_correct("B", "y", choice, ["x", "y"]) and not mathvista_correct("A", "y", choice, ["x", "y"])
    assert choice_or_free_form_correct("The answer is C", "C", ["A", "B", "C", "D", "E"])
    assert choice_or_free_form_correct("so x = 4.0", "4", None)
    assert choice_or_free_form_correct("the angle is $60^\\circ$", "60", None)
    assert not choice_or_free_form_correct("x = 5", "4", None)


def test_pope_and_mme() -> None:
    assert pope_answer("No, there is no dog.") == "no" and pope_answer("Yes. It is not small.") == "yes"
    assert pope_answer("There is a dog") == "yes"
    # tp=2 fp=1 tn=1 fn=0: precision 2/3, recall 1, F1 0.8, accuracy 3/4, yes-ratio 3/4.
    scores = binary_scores(["yes", "yes", "yes", "no"], ["yes", "yes", "no", "no"])
    assert scores["f1"] == pytest.approx(80.0) and scores["accuracy"] == 75.0 and scores["yes_ratio"] == 75.0
    assert mme_answer("Yes, it is.") == "yes" and mme_answer("Nope") == "no" and mme_answer("maybe") == "other"
    rows = [  # count: image a both right, image b one right -> acc 3/4, acc+ 1/2 -> 75 + 50
        ("count", "a", "Yes", "Yes"),
        ("count", "a", "No", "No"),
        ("count", "b", "Yes", "Yes"),
        ("count", "b", "Yes", "No"),
        ("code_reasoning", "c", "No", "Yes"),
        ("code_reasoning", "c", "No", "No"),  # 50 + 0
    ]
    scores = mme_scores(rows)
    assert scores["count"] == 125.0 and scores["perception"] == 125.0 and scores["cognition"] == 50.0


def test_scorers_on_items() -> None:
    def item(i: str, gold, choices=None, **meta) -> BenchmarkItem:
        return BenchmarkItem(i, "q", choices=choices, gold=gold, meta=meta)

    pairs = [
        (item("1", "A", ["x", "y"], circular_group="1"), "A"),
        (item("1000001", "B", ["y", "x"], circular_group="1"), "A"),
    ]
    assert SCORERS["mmbench_circular"](pairs) == {"circular_accuracy": 0.0, "accuracy": 50.0}
    pope = [
        (item("a", "yes", split="random"), "Yes"),
        (item("b", "no", split="random"), "No"),
        (item("c", "yes", split="adversarial"), "No"),
        (item("d", "no", split="adversarial"), "No"),
    ]
    values = SCORERS["yes_no"](pope)
    assert values["accuracy"] == 75.0 and values["random_f1"] == 100.0 and values["adversarial_f1"] == 0.0
    exact = [(item("1", "12"), "12"), (item("2", "12"), "7"), (item("3", "B", ["a", "b"]), "b")]
    values = SCORERS["exact"](exact)
    # chance: 2/3 (commonest gold "12" is 2 of 3), 2/3, 1/2 -> mean 11/18
    assert values["accuracy"] == pytest.approx(200 / 3) and values["chance"] == pytest.approx(100 * 11 / 18)


# Outputs of the official scorers on these inputs, run locally on their published code: the EvalAI
# answer processor and TextVQAAccuracyEvaluator of LLaVA's m4c_evaluator.py, and MMMU's
# eval/eval_utils.py (parse_open_response + eval_open, parse_multi_choice_response).
OFFICIAL_VQA_NORMALISED = {
    "It's the man's hat!": "it 's man 's hat",
    "Dr. Pepper": "dr pepper",
    "a/b test": "b test",
    "(left)": "left",
    "whats up?": "what's up",
    "coca-cola": "coca cola",
    "12:30": "12:30",
    "it is 3 o'clock": "it is 3 o'clock",
    "e.g. this": "eg this",
    "yes, it is": "yes it is",
    "3.5": "3.5",
}
TEXTVQA_GOLD = TEXTVQA_ANSWERS
OFFICIAL_TEXTVQA_SCORES = {
    "Dakota": 1.0,
    "dakota digital": 0.9,
    "nous les gosses": 0.3,
    "Dakota Digital.": 0.9,
    "canon": 0.0,
}
OFFICIAL_MMMU_OPEN = [
    ("x = 1,234", "1234", True),
    ("The speed is 3.0e8 m/s", "300000000", True),
    ("Therefore the answer is 10", "1", False),
    ("The answer is A", "a", True),
    ("It is 0.5. So the probability is 1/2", "0.5", False),  # lower-cased first: one sentence, tail "1/2"
    ("12", "12.0", True),
    ("answer is ", "7", False),
    ("The total cost is $1,500.50 dollars", "1500.5", False),
]
OFFICIAL_MMMU_CHOICE = {
    "A or C? I pick C": "C",
    "The answer is B.": "B",
    "Answer: (D) 4 attendants because 4 > 3 attendants": "D",
}


def test_cases_checked_against_the_official_scorers() -> None:
    for text, normalised in OFFICIAL_VQA_NORMALISED.items():
        assert normalize_vqa_answer(text) == normalised, text
    for prediction, score in OFFICIAL_TEXTVQA_SCORES.items():
        assert vqa_accuracy(prediction, TEXTVQA_GOLD) == pytest.approx(score), prediction
    for response, gold, correct in OFFICIAL_MMMU_OPEN:
        assert mmmu_open_correct(response, gold) is correct, response
    choices = ["1 attendant", "2 attendants", "3 attendants", "4 attendants"]
    for response, letter in OFFICIAL_MMMU_CHOICE.items():
        assert mmmu_parse_choice(response, choices, "q") == letter, response
