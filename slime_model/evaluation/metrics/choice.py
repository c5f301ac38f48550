"""Multiple-choice answer extraction: the letter rule (ScienceQA, AI2D, MMBench), MMMU's parser,
and MMBench's circular evaluation."""

from __future__ import annotations

import random
import re
from collections import defaultdict

from slime_data.decontam.items import LETTERS

LEADING_LETTER = re.compile(r"^\(?([A-Z])\)?(?:[.:)]|\s|$)")
ANSWER_IS = re.compile(r"answer is:?\s*\(?([A-Z])\)?(?![A-Za-z])", re.IGNORECASE)


def extract_choice(prediction: str, choices: list[str]) -> str | None:
    """The chosen letter, or None when the reply names none.

    In order: a reply that starts with a valid letter ("B", "(B)", "B. text"); LLaVA's ScienceQA
    pattern "The answer is B"; else the one option whose text the reply contains (VLMEvalKit's
    ``can_infer`` without its ChatGPT fallback)."""
    valid = LETTERS[: len(choices)]
    text = prediction.strip()
    match = LEADING_LETTER.match(text)
    if match and match.group(1) in valid:
        return match.group(1)
    match = ANSWER_IS.search(text)
    if match and match.group(1).upper() in valid:
        return match.group(1).upper()
    lowered = text.lower().rstrip(".")
    named = [letter for letter, choice in zip(valid, choices, strict=True) if choice and choice.lower() in lowered]
    exact = [letter for letter, choice in zip(valid, choices, strict=True) if choice.lower() == lowered]
    if exact:
        return exact[0]
    return named[0] if len(named) == 1 else None


def circular_accuracy(correct_by_item: dict[str, bool], group_by_item: dict[str, str]) -> float:
    """MMBench's circular evaluation: a question counts only if every circular copy of it is right."""
    groups: dict[str, bool] = defaultdict(lambda: True)
    for item_id, correct in correct_by_item.items():
        group = group_by_item[item_id]
        groups[group] = groups[group] and correct
    return sum(groups.values()) / len(groups) if groups else 0.0


def mmmu_parse_choice(response: str, choices: list[str], seed: str) -> str:
    """MMMU's ``parse_multi_choice_response``: bracketed letters, then bare letters, then (for
    replies over five words) option texts; the last mention wins; no candidate -> a random letter.
    The official code draws from one global ``random.seed(42)`` stream; here the draw is seeded by
    the question id so a resumed run gives the same answer."""
    all_choices = list(LETTERS[: len(choices)])
    index2ans = dict(zip(all_choices, choices, strict=True))
    for char in [",", ".", "!", "?", ";", ":", "'"]:
        response = response.strip(char)
    response = " " + response + " "
    candidates = [c for c in all_choices if f"({c})" in response]
    with_brackets = bool(candidates)
    index_answer = True
    if not candidates:
        candidates = [c for c in all_choices if f" {c} " in response]
    if not candidates and len(response.split()) > 5:
        candidates = [c for c, text in index2ans.items() if text.lower() in response.lower()]
        index_answer = False
    if not candidates:
        return random.Random(seed).choice(all_choices)
    if len(candidates) == 1:
        return candidates[0]
    if index_answer:
        marks = [response.rfind(f"({c})" if with_brackets else f" {c} ") for c in candidates]
    else:
        marks = [response.lower().rfind(index2ans[c].lower()) for c in candidates]
    return candidates[marks.index(max(marks))]
