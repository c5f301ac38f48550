"""Rule-based answer extraction for the math benchmarks (MathVista, MathVerse, MathVision) and MMMU's
open questions.

MathVista's and MathVerse's official pipelines ask GPT-4 to extract the answer from the reply; this
module keeps their rule-based steps (MathVista's quick extraction, its answer normalisation by
type and precision, its closest-choice match) and replaces the GPT step by "the last number" /
"the named choice", so scores are reproducible offline. Results record which extraction ran.
"""

from __future__ import annotations

import difflib
import re

from slime_data.decontam.items import LETTERS
from slime_model.evaluation.metrics.choice import extract_choice

NUMBER = re.compile(r"-?\d[\d,]*\.?\d*(?:e-?\d+)?|-?\.\d+")
QUOTED_ANSWER = re.compile(r'The answer is "(.*)"\.')


def last_number(text: str) -> str | None:
    numbers = [n.replace(",", "").rstrip(".") for n in NUMBER.findall(text)]
    return numbers[-1] if numbers else None


def mathvista_extract(response: str, question_type: str, answer_type: str, choices: list[str] | None) -> str:
    """MathVista's ``extract_answer`` with the GPT step replaced: the reply itself when it already
    is an option or a number of the right type, the quoted "The answer is" form, else rules."""
    text = response.strip()
    if question_type == "multi_choice" and choices:
        if text in choices:
            return text
        letter = extract_choice(text, choices)
        return choices[LETTERS.index(letter)] if letter else text
    for cast in (int,) if answer_type == "integer" else (float,) if answer_type == "float" else ():
        try:
            return str(cast(text))
        except ValueError:
            pass
    quoted = QUOTED_ANSWER.search(text)
    if quoted:
        return quoted.group(1).strip()
    if answer_type in ("integer", "float"):
        return last_number(text) or text
    return text


def mathvista_normalize(
    extraction: str, question_type: str, answer_type: str, precision: int | None, choices: list[str] | None
) -> str | None:
    """MathVista's ``normalize_extracted_answer``: a letter or text -> the closest option; numbers
    cast to int or rounded to the stated precision; None when it cannot be cast."""
    if question_type == "multi_choice" and choices:
        extraction = extraction.strip()
        if len(extraction) == 1 and extraction.upper() in LETTERS[: len(choices)]:
            return choices[LETTERS.index(extraction.upper())]
        return max(choices, key=lambda c: difflib.SequenceMatcher(None, c, extraction).ratio())
    try:
        if answer_type == "integer":
            return str(int(float(extraction)))
        if answer_type == "float":
            return str(round(float(extraction), int(precision or 0)))
    except ValueError:
        return None
    return extraction.strip()


def mathvista_correct(response: str, gold: str, meta: dict, choices: list[str] | None) -> bool:
    question_type = meta.get("question_type", "free_form")
    answer_type = meta.get("answer_type", "text")
    extraction = mathvista_extract(response, question_type, answer_type, choices)
    prediction = mathvista_normalize(extraction, question_type, answer_type, meta.get("precision"), choices)
    return prediction is not None and prediction.strip() == str(gold).strip()


def _same_number(a: str, b: str) -> bool:
    try:
        return abs(float(a) - float(b)) <= 1e-6 * max(1.0, abs(float(b)))
    except ValueError:
        return False


def _strip_latex(text: str) -> str:
    text = re.sub(r"\\text\{(.*?)\}|\\mathrm\{(.*?)\}", lambda m: m.group(1) or m.group(2) or "", text)
    text = text.replace("$", "").replace("\\circ", "").replace("^\\circ", "").replace("°", "")
    text = text.replace("\\left", "").replace("\\right", "").replace("\\!", "").replace(" ", "")
    return text.strip().rstrip(".").lower()


def free_form_correct(response: str, gold: str) -> bool:
    """A free-form math answer: the last number equals a numeric gold (1e-6 relative), else the
    reply's final token equals the gold after LaTeX markup is stripped (MathVision's rules, shortened)."""
    gold_text = _strip_latex(str(gold))
    number = last_number(response)
    if number is not None and _same_number(number, gold_text):
        return True
    tail = re.split(r"answer is:?|=", response)[-1]
    return _strip_latex(tail) == gold_text


def choice_or_free_form_correct(response: str, gold: str, choices: list[str] | None) -> bool:
    """MathVision / MathVerse: a letter answer when the question has options, else free form."""
    gold = str(gold).strip()
    if choices or (len(gold) == 1 and gold in LETTERS[:5]):
        options = choices or list(LETTERS[:5])
        return extract_choice(response, options) == gold.upper()
    return free_form_correct(response, gold)


INDICATORS = ("could be ", "so ", "is ", "thus ", "therefore ", "final ", "answer ", "result ")
TRIVIAL_KEYS = {":", ",", ".", "!", "?", ";", "'"}
# MMMU's three number forms: thousands separators, scientific notation, plain decimals.
NUMBER_WITH_COMMAS = re.compile(r"-?\b\d{1,3}(?:,\d{3})+\b")
NUMBER_SCIENTIFIC = re.compile(r"-?\d+(?:\.\d+)?[eE][+-]?\d+")
NUMBER_SIMPLE = re.compile(r"-?(?:\d+\.\d+|\.\d+|\d+\b)(?![eE][+-]?\d+)(?![,\d])")


def _mmmu_numbers(text: str) -> list[str]:
    return NUMBER_WITH_COMMAS.findall(text) + NUMBER_SCIENTIFIC.findall(text) + NUMBER_SIMPLE.findall(text)


def _mmmu_normalize(text: str) -> list[object]:
    """A number -> [its float rounded to 2 places]; a one-character string -> [" x", "x "] (so "1"
    does not match inside "10"); else [the lower-cased string]."""
    text = text.strip()
    try:
        return [round(float(text.replace(",", "")), 2)]
    except ValueError:
        text = text.lower()
        return [" " + text, text + " "] if len(text) == 1 else [text]


def mmmu_open_predictions(response: str) -> set[object]:
    """MMMU's ``parse_open_response``: per sentence (the reply is lower-cased first, so only line
    breaks split it), the shortest tail after an indicator ("so ", "is ", "answer "..., and "=" in
    the last sentence); those tails and the numbers in them, normalised."""
    text = response.strip().strip(".").lower()
    pieces = re.split(r"\.\s(?=[A-Z])|\n", text)
    keys = []
    for index, piece in enumerate(pieces):
        indicators = (*INDICATORS, "=") if index == len(pieces) - 1 else INDICATORS
        shortest = ""
        for indicator in (i for i in indicators if i in piece):
            tail = piece.split(indicator)[-1].strip()
            if not shortest or len(tail) < len(shortest):  # an empty tail gives way to the next one
                shortest = tail
        if shortest and shortest.strip() not in TRIVIAL_KEYS:
            keys.append(shortest)
    keys = keys or [text]
    candidates = keys + [number for key in keys for number in _mmmu_numbers(key)]
    return {normalized for candidate in candidates for normalized in _mmmu_normalize(candidate)}


def mmmu_open_correct(response: str, gold: str | list[str]) -> bool:
    """MMMU's ``eval_open``: a predicted number equals a gold number, or a gold string occurs in a
    predicted string."""
    golds = [g for answer in (gold if isinstance(gold, list) else [gold]) for g in _mmmu_normalize(str(answer))]
    for prediction in mmmu_open_predictions(response):
        if isinstance(prediction, str):
            if any(isinstance(g, str) and g in prediction for g in golds):
                return True
        elif prediction in golds:
            return True
    return False
