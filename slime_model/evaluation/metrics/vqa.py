"""Short-answer metrics: VQA accuracy (VQAv2, TextVQA), exact match (GQA), relaxed accuracy (ChartQA).

The normalisation is the official VQA evaluation's (``vqaEval.py``; the EvalAI answer processor
that LLaVA's TextVQA scorer, m4c_evaluator, also uses): lower case, punctuation stripped or
spaced, number words to digits, articles dropped, common contractions restored.
"""

from __future__ import annotations

import re

# Official table, abridged to the contractions a short answer can hold.
CONTRACTIONS = {
    "aint": "ain't", "arent": "aren't", "cant": "can't", "couldve": "could've", "couldnt": "couldn't",
    "didnt": "didn't", "doesnt": "doesn't", "dont": "don't", "hadnt": "hadn't", "hasnt": "hasn't",
    "havent": "haven't", "hed": "he'd", "hes": "he's", "howd": "how'd", "howll": "how'll", "hows": "how's",
    "Im": "I'm", "Ive": "I've", "isnt": "isn't", "itd": "it'd", "itll": "it'll", "let's": "let's",
    "maam": "ma'am", "mightnt": "mightn't", "mightve": "might've", "mustnt": "mustn't", "mustve": "must've",
    "neednt": "needn't", "notve": "not've", "oclock": "o'clock", "shant": "shan't", "shed": "she'd",
    "shes": "she's", "shouldve": "should've", "shouldnt": "shouldn't", "somebodys": "somebody's",
    "someones": "someone's", "thats": "that's", "thered": "there'd", "theres": "there's", "theyd": "they'd",
    "theyll": "they'll", "theyre": "they're", "theyve": "they've", "wasnt": "wasn't", "werent": "weren't",
    "weve": "we've", "whats": "what's", "whens": "when's", "wheres": "where's", "whos": "who's",
    "whys": "why's", "wont": "won't", "wouldve": "would've", "wouldnt": "wouldn't", "yall": "y'all",
    "youd": "you'd", "youll": "you'll", "youre": "you're", "youve": "you've",
}
NUMBER_WORDS = {
    "none": "0", "zero": "0", "one": "1", "two": "2", "three": "3", "four": "4", "five": "5",
    "six": "6", "seven": "7", "eight": "8", "nine": "9", "ten": "10",
}
ARTICLES = {"a", "an", "the"}
PUNCTUATION = [";", "/", "[", "]", '"', "{", "}", "(", ")", "=", "+", "\\", "_", "-", ">", "<", "@", "`", ",", "?", "!"]
PERIOD_STRIP = re.compile(r"(?!<=\d)(\.)(?!\d)")  # a period not inside a number (the official regex, typo included)
COMMA_STRIP = re.compile(r"(\d)(,)(\d)")


def _punctuation(text: str) -> str:
    out = text
    for mark in PUNCTUATION:
        if (mark + " " in text or " " + mark in text) or COMMA_STRIP.search(text) is not None:
            out = out.replace(mark, "")
        else:
            out = out.replace(mark, " ")
    return PERIOD_STRIP.sub("", out)


def _digits_and_articles(text: str) -> str:
    words = [NUMBER_WORDS.get(word, word) for word in text.lower().split()]
    return " ".join(CONTRACTIONS.get(word, word) for word in words if word not in ARTICLES)


def normalize_vqa_answer(text: str) -> str:
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
