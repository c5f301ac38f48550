"""Short-answer metrics: VQA accuracy (VQAv2, TextVQA), exact match (GQA), relaxed accuracy (ChartQA).

The normalisation is the official VQA evaluation's (``vqaEval.py``; the EvalAI answer processor
that LLaVA's TextVQA scorer, m4c_evaluator, also uses): lower case, punctuation stripped or
spaced, number words to digits, articles dropped, common contractions restored.
"""

from __future__ import annotations

import re
from pathlib import Path

import yaml

_TABLES = yaml.safe_load((Path(__file__).parent / "vqa_normalization.yaml").read_text(encoding="utf-8"))
CONTRACTIONS: dict[str, str] = _TABLES["contractions"]
NUMBER_WORDS: dict[str, str] = _TABLES["number_words"]
ARTICLES = set(_TABLES["articles"])
PUNCTUATION: list[str] = _TABLES["punctuation"]
PERIOD_STRIP = re.compile(r"(?!<=\d)(\.)(?!\d)")  # a period not inside a number (the official regex, typo included)
COMMA_STRIP = re.compile(r"(?<=\d)(,)+(?=\d)")


def _punctuation(text: str) -> str:
    out = text
    for mark in PUNCTUATION:
        if (mark + " " in text or " " + mark in text) or COMMA_STRIP.search(text) is not None:
            out = out.replace(mark, "")
        else:
            out = out.replace(mark, " ")
    return PERIOD_STRIP.sub("", out, count=re.UNICODE)  # the official call passes re.UNICODE as the count (32)


def _digits_and_articles(text: str) -> str:
    words = [NUMBER_WORDS.get(word, word) for word in text.lower().split()]
    return " ".join(CONTRACTIONS.get(word, word) for word in words if word not in ARTICLES)


def normalize_vqa_answer(text: str) -> str:
    """The EvalAI processor: lower case without commas, question marks and with "'s" split off,
    then punctuation, number words, articles and contractions."""
    text = text.lower().replace(",", "").replace("?", "").replace("'s", " 's").strip()
    text = text.replace("\n", " ").replace("\t", " ").strip()
    return _digits_and_articles(_punctuation(text))


def vqa_accuracy(prediction: str, annotators: list[str]) -> float:
    """Official VQA accuracy in [0, 1]: min(#other annotators agreeing / 3, 1), averaged over the
    10 ways of leaving one annotator out."""
    if not annotators:
        return 0.0
    answer = normalize_vqa_answer(prediction)
    gold = [normalize_vqa_answer(a) for a in annotators]
    scores = []
    for left_out in range(len(gold)):
        matches = sum(1 for i, g in enumerate(gold) if i != left_out and g == answer)
        scores.append(min(1.0, matches / 3))
    return sum(scores) / len(scores)


def gqa_exact_match(prediction: str, answer: str) -> bool:
    """LLaVA's GQA scorer: the first line, lower case, without a final period, equals the answer."""
    text = prediction.strip().split("\n")[0].strip().rstrip(".").lower()
    return text == answer.strip().lower()


def _to_float(text: str) -> float | None:
    try:
        return float(text.rstrip("%")) / 100.0 if text.endswith("%") else float(text)
    except ValueError:
        return None


def relaxed_correct(prediction: str, target: str, max_relative_change: float = 0.05) -> bool:
    """ChartQA's relaxed accuracy (Methani et al.; pix2struct's ``relaxed_correctness``): numbers
    within 5% of a non-zero target, anything else by case-insensitive string equality."""
    prediction = prediction.strip().rstrip(".").strip()
    target = target.strip()
    predicted, gold = _to_float(prediction), _to_float(target)
    if predicted is not None and gold:
        return abs(predicted - gold) / abs(gold) <= max_relative_change
    return prediction.lower() == target.lower()
