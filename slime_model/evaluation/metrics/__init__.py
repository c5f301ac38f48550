"""Scorers by name, as ``benchmarks.yaml`` names them: each takes (item, prediction) pairs and
returns metric values in percent (MME: its score points). Sources are in each function's module."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from statistics import mean

from slime_data.decontam.items import BenchmarkItem
from slime_data.teacher.answers import answers_match
from slime_model.evaluation.metrics.choice import circular_accuracy, extract_choice, mmmu_parse_choice
from slime_model.evaluation.metrics.math import choice_or_free_form_correct, mathvista_correct, mmmu_open_correct
from slime_model.evaluation.metrics.vqa import gqa_exact_match, relaxed_correct, vqa_accuracy
from slime_model.evaluation.metrics.yesno import binary_scores, mme_scores, pope_answer

Pairs = list[tuple[BenchmarkItem, str]]


def _percent(values: list[float] | list[bool]) -> float:
    return 100 * sum(values) / len(values) if values else 0.0


def choice_accuracy(pairs: Pairs) -> dict[str, float]:
    return {"accuracy": _percent([extract_choice(p, i.choices or []) == i.gold for i, p in pairs])}


def mmbench(pairs: Pairs) -> dict[str, float]:
    correct = {i.item_id: extract_choice(p, i.choices or []) == i.gold for i, p in pairs}
    groups = {i.item_id: i.meta.get("circular_group", i.item_id) for i, _ in pairs}
    return {"circular_accuracy": 100 * circular_accuracy(correct, groups), "accuracy": _percent(list(correct.values()))}


def vqa(pairs: Pairs) -> dict[str, float]:
    return {"accuracy": _percent([vqa_accuracy(p, list(i.gold)) for i, p in pairs])}


def gqa(pairs: Pairs) -> dict[str, float]:
    return {"accuracy": _percent([gqa_exact_match(p, str(i.gold)) for i, p in pairs])}


def relaxed(pairs: Pairs) -> dict[str, float]:
    return {"relaxed_accuracy": _percent([relaxed_correct(p, str(i.gold)) for i, p in pairs])}


def yes_no(pairs: Pairs) -> dict[str, float]:
    """POPE / AMBER-discriminative: scores per split (POPE's random/popular/adversarial), averaged."""
    by_split: dict[str, list[tuple[str, str]]] = defaultdict(list)
    for item, prediction in pairs:
        by_split[item.meta.get("split", "all")].append((pope_answer(prediction), str(item.gold).lower()))
    per_split = {s: binary_scores([p for p, _ in rows], [g for _, g in rows]) for s, rows in sorted(by_split.items())}
    values = {name: mean(scores[name] for scores in per_split.values()) for name in next(iter(per_split.values()))}
    if len(per_split) > 1:
        values.update({f"{split}_f1": scores["f1"] for split, scores in per_split.items()})
    return values


def mme(pairs: Pairs) -> dict[str, float]:
    return mme_scores([(i.meta["category"], i.meta["image_id"], p, str(i.gold)) for i, p in pairs])


def mathvista(pairs: Pairs) -> dict[str, float]:
    return {"accuracy": _percent([mathvista_correct(p, str(i.gold), i.meta, i.choices) for i, p in pairs])}


def math_choice_or_free(pairs: Pairs) -> dict[str, float]:
    return {"accuracy": _percent([choice_or_free_form_correct(p, str(i.gold), i.choices) for i, p in pairs])}


def mmmu(pairs: Pairs) -> dict[str, float]:
    correct = []
    for item, prediction in pairs:
        if item.choices and item.meta.get("question_type") != "open":
            golds = item.gold if isinstance(item.gold, list) else [item.gold]
            correct.append(mmmu_parse_choice(prediction, item.choices, item.item_id) in golds)
        else:
            correct.append(mmmu_open_correct(prediction, item.gold))
    return {"accuracy": _percent(correct)}


def exact(pairs: Pairs) -> dict[str, float]:
    """Held-out synthetic questions with exact answers: the teacher's answer comparison (numbers,
    units, letters or option texts), beside chance: 1/k for options, else the share of the
    commonest gold answer (what always giving one answer would score)."""
    correct = [answers_match(p, str(i.gold), i.choices) for i, p in pairs]
    golds = [str(i.gold) for i, _ in pairs]
    chance = [1 / len(i.choices) if i.choices else golds.count(str(i.gold)) / len(golds) for i, _ in pairs]
    return {"accuracy": _percent(correct), "chance": 100 * mean(chance) if chance else 0.0}


SCORERS: dict[str, Callable[[Pairs], dict[str, float]]] = {
    "choice_accuracy": choice_accuracy,
    "mmbench_circular": mmbench,
    "vqa_accuracy": vqa,
    "gqa_exact_match": gqa,
    "relaxed_accuracy": relaxed,
    "yes_no": yes_no,
    "mme": mme,
    "mathvista": mathvista,
    "math_choice_or_free_form": math_choice_or_free,
    "mmmu": mmmu,
    "exact": exact,
}
