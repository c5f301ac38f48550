"""Compare short answers the way a grader would: after normalising both sides.

Used to keep a teacher's rationale only when its final answer is the gold one, and to tell
whether a question is answerable from a thumbnail. Handles what the SMR sources produce:

- case, surrounding punctuation, quotes, articles and "the answer is" prefixes;
- numbers with thousands separators, units, currency, percent signs, trailing zeros and
  simple fractions or LaTeX (``"1,234.50 kg" == "1234.5"``, ``"\\frac{1}{2}" == "0.5"``);
- multiple choice: a letter, ``"(B)"``, ``"Option B"``, ``"B. blue"`` or the option text
  ``"blue"`` all name the same option when ``choices`` are given;
- list-like answers: ``"[63, 26]" == "63, 26" == "(63; 26)"`` (order kept).

Public: ``normalize_answer``, ``parse_number``, ``parse_list``, ``choice_index``, ``answers_match``.
"""

from __future__ import annotations

import math
import re
import string
import unicodedata

__all__ = ["answers_match", "choice_index", "normalize_answer", "parse_list", "parse_number"]

_PREFIX = re.compile(
    r"^(?:so\s*,?\s*)?(?:the\s+)?(?:final\s+|correct\s+)?(?:answer|option|choice)\s*(?:is|:|=)?\s*[:=]?\s*",
    re.IGNORECASE,
)
_ARTICLES = re.compile(r"\b(?:a|an|the)\b\s*")
_EDGE_PUNCT = string.punctuation.replace("%", "").replace("$", "") + "“”‘’«»"
_LATEX_FRAC = re.compile(r"\\[dt]?frac\s*\{([^{}]+)\}\s*\{([^{}]+)\}")
_LATEX_WRAPPERS = re.compile(r"\\(?:text|mathrm|mathbf|textbf|operatorname)\s*\{([^{}]*)\}")
# A number, optionally signed, with ',' / ' ' / thin-space thousands groups and a decimal part.
_NUMBER = re.compile(
    r"""^(?P<sign>[-+−]?)\s*(?P<currency>[$€£¥])?\s*
        (?P<int>\d{1,3}(?:[,\u2009\u202f ]\d{3})+|\d+)?(?P<frac>\.\d+)?
        \s*(?P<rest>.*)$""",
    re.VERBOSE,
)
# What may follow a number and still be "just a unit": letters, degree/percent signs, ^2, /s.
_UNIT = re.compile(r"^(?:%|°\s*[a-z]?|[a-zµμ°²³/^.\-\s\d]*)$", re.IGNORECASE)
_FRACTION = re.compile(r"^([-+−]?\d+(?:\.\d+)?)\s*/\s*(\d+(?:\.\d+)?)$")
_LETTER = re.compile(r"^\(?([a-z])\)?(?:[.):]|\s|$)\s*(.*)$", re.IGNORECASE)
_LIST_SPLIT = re.compile(r"\s*(?:;|,\s|,(?!\d{3}\b)|\band\b)\s*")


def _clean(text: str) -> str:
    """Unicode-normalise, drop LaTeX wrappers and ``$``-math, collapse whitespace."""
    text = unicodedata.normalize("NFKC", str(text)).strip()
    text = text.replace("\\(", "").replace("\\)", "").replace("\\[", "").replace("\\]", "")
    text = _LATEX_FRAC.sub(r"\1/\2", text)
    text = _LATEX_WRAPPERS.sub(r"\1", text)
    text = text.replace("\\%", "%").replace("\\circ", "°").replace("^\\circ", "°").replace("^°", "°")
    if text.count("$") >= 2 and text.startswith("$") and text.endswith("$"):
        text = text.strip("$")
    return re.sub(r"\s+", " ", text).strip()


def _strip_prefix(text: str) -> str:
    stripped = _PREFIX.sub("", text, count=1)
    return stripped if stripped else text


def normalize_answer(text: str) -> str:
    """Lower case, no answer prefix, articles, edge punctuation or repeated spaces.

    Numbers are written canonically (``"1,234.50 kg"`` -> ``"1234.5"``) so that two
    normalised strings compare equal whenever ``answers_match`` would say they match
    without choices.
    """
    number = parse_number(text)
    if number is not None:
        return _format_number(number)
    text = _strip_prefix(_clean(text)).strip(_EDGE_PUNCT + " ")
    items = parse_list(text)
    if items is not None:
        return "[" + ", ".join(normalize_answer(item) for item in items) + "]"
    text = text.lower()
    text = _ARTICLES.sub("", text).strip() or text  # keep "a" when it is the whole answer (a letter)
    text = "".join(ch for ch in text if ch not in _EDGE_PUNCT or ch in "-/.+")
    return re.sub(r"\s+", " ", text).strip(" .")


def _format_number(value: float) -> str:
    if value == int(value) and abs(value) < 1e15:
        return str(int(value))
    return repr(round(value, 10)).rstrip("0").rstrip(".")


def parse_number(text: str) -> float | None:
    """The number an answer states, ignoring separators, currency and a trailing unit; else None.

    ``"1,234.50 kg"`` -> 1234.5, ``"-3.0"`` -> -3.0, ``"45%"`` -> 45.0, ``"3/4"`` -> 0.75,
    ``"12 apples and 3 pears"`` -> None (more than a number and a unit).
    """
    text = _strip_prefix(_clean(text)).strip(_EDGE_PUNCT.replace("-", "").replace(".", "") + " ")
    text = text.rstrip(". ")
    fraction = _FRACTION.match(text)
    if fraction:
        numerator, denominator = float(fraction[1].replace("−", "-")), float(fraction[2])
        return numerator / denominator if denominator else None
    match = _NUMBER.match(text)
    if not match or not (match["int"] or match["frac"]):
        return None
    rest = match["rest"].strip()
    if rest and (not _UNIT.match(rest) or any(ch.isdigit() for ch in rest.split("^")[0].split("/")[0])):
        return None
    digits = re.sub(r"[,\u2009\u202f ]", "", match["int"] or "0") + (match["frac"] or "")
    value = float(digits)
    return -value if match["sign"] in ("-", "−") else value


def parse_list(text: str) -> list[str] | None:
    """Items of a list-like answer (``"[63, 26]"``, ``"63, 26"``, ``"x; y"``); None for one item."""
    text = _clean(text).strip()
    if len(text) >= 2 and text[0] + text[-1] in ("[]", "()", "{}"):
        text = text[1:-1]
    items = [item.strip(_EDGE_PUNCT + " ") for item in _LIST_SPLIT.split(text)]
    items = [item for item in items if item]
    return items if len(items) > 1 else None


def choice_index(text: str, choices: list[str]) -> int | None:
    """Which option ``text`` names: by letter (``"B"``, ``"(b)"``, ``"B. blue"``) or by option text."""
    cleaned = _strip_prefix(_clean(text)).strip()
    normalised_choices = [normalize_answer(choice) for choice in choices]
    letter = _LETTER.match(cleaned)
    if letter:
        index = ord(letter[1].upper()) - ord("A")
        tail = normalize_answer(letter[2]) if letter[2] else ""
        if 0 <= index < len(choices) and (not tail or tail == normalised_choices[index]):
            return index
    target = normalize_answer(cleaned)
    matches = [i for i, choice in enumerate(normalised_choices) if choice == target]
    return matches[0] if len(matches) == 1 else None


def _same(predicted: str, gold: str, rel_tol: float) -> bool:
    a, b = parse_number(predicted), parse_number(gold)
    if a is not None and b is not None:
        return math.isclose(a, b, rel_tol=rel_tol, abs_tol=1e-12)
    list_a, list_b = parse_list(predicted), parse_list(gold)
    if list_a is not None and list_b is not None:
        return len(list_a) == len(list_b) and all(_same(x, y, rel_tol) for x, y in zip(list_a, list_b))
    return normalize_answer(predicted) == normalize_answer(gold)


def answers_match(predicted: str, gold: str, choices: list[str] | None = None, rel_tol: float = 1e-6) -> bool:
    """Whether ``predicted`` states the ``gold`` answer after normalising both.

    With ``choices``, a letter and the option text are interchangeable on either side.
    Numbers compare within ``rel_tol`` (rounding noise, not a grading tolerance).
    """
    if predicted is None or gold is None:
        return False
    if choices:
        gold_index = choice_index(gold, choices)
        predicted_index = choice_index(predicted, choices)
        if gold_index is not None and predicted_index is not None:
            return gold_index == predicted_index
    return _same(predicted, gold, rel_tol)
