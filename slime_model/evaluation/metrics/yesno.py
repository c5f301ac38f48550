"""Yes/no benchmarks: POPE (and AMBER's discriminative part) and MME."""

from __future__ import annotations

from collections import defaultdict

MME_PERCEPTION = (
    "existence",
    "count",
    "position",
    "color",
    "posters",
    "celebrity",
    "scene",
    "landmark",
    "artwork",
    "OCR",
)
MME_COGNITION = ("commonsense_reasoning", "numerical_calculation", "text_translation", "code_reasoning")


def pope_answer(prediction: str) -> str:
    """LLaVA's ``eval_pope.py``: the first sentence, commas dropped; "no"/"No"/"not" as a word -> no."""
    text = prediction.split(".")[0] if "." in prediction else prediction
    words = text.replace(",", "").split(" ")
    return "no" if {"No", "not", "no"} & set(words) else "yes"


def binary_scores(predicted: list[str], labels: list[str]) -> dict[str, float]:
    """POPE's accuracy, precision, recall, F1 ("yes" is the positive class) and yes-ratio, in percent."""
    pairs = list(zip(predicted, labels, strict=True))
    tp = sum(1 for p, g in pairs if p == "yes" and g == "yes")
    fp = sum(1 for p, g in pairs if p == "yes" and g == "no")
    tn = sum(1 for p, g in pairs if p == "no" and g == "no")
    fn = sum(1 for p, g in pairs if p == "no" and g == "yes")
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    n = len(pairs) or 1
    return {
        "accuracy": 100 * (tp + tn) / n,
        "precision": 100 * precision,
        "recall": 100 * recall,
        "f1": 100 * f1,
        "yes_ratio": 100 * (tp + fp) / n,
    }


def mme_answer(prediction: str) -> str:
    """MME's ``calculation.py``: "yes"/"no" exactly, else the first four characters decide, else "other"."""
    text = prediction.lower().strip().replace(".", "")
    if text in ("yes", "no"):
        return text
    head = text[:4]
    return "yes" if "yes" in head else "no" if "no" in head else "other"


def mme_scores(rows: list[tuple[str, str, str, str]]) -> dict[str, float]:
    """rows: (category, image id, prediction, gold "Yes"/"No"). Per category acc + acc+ (both
    questions of an image right), each in percent; perception and cognition are the category sums."""
    by_category: dict[str, list[bool]] = defaultdict(list)
    by_image: dict[tuple[str, str], list[bool]] = defaultdict(list)
    for category, image, prediction, gold in rows:
        correct = mme_answer(prediction) == gold.strip().lower()
        by_category[category].append(correct)
        by_image[category, image].append(correct)
    scores: dict[str, float] = {}
    for category, results in by_category.items():
        images = [all(r) for (c, _), r in by_image.items() if c == category]
        scores[category] = 100 * sum(results) / len(results) + 100 * sum(images) / len(images)
    scores["perception"] = sum(scores.get(c, 0.0) for c in MME_PERCEPTION)
    scores["cognition"] = sum(scores.get(c, 0.0) for c in MME_COGNITION)
    return scores
