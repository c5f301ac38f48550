"""Readers for the evaluation-only benchmark releases (general VQA, hallucination, judged chat, MathVerse).

=============  ==============================================================================
format         path
=============  ==============================================================================
mmbench        a TSV as distributed (``mmbench_dev_20230712.tsv``, ``mmbench_dev_cn_20231003.tsv``):
               ``index, question, hint, A..D(E), answer, category, l2-category, image`` (base64);
               rows with ``index >= 1e6`` are the circular copies of ``index % 1e6``
mme            ``MME_Benchmark_release_version/``: one folder per category, each ``<id>.txt``
               (two lines ``question<TAB>Yes|No``) beside ``<id>.jpg|png``, or in
               ``questions_answers_YN/`` with the images in ``images/``
pope           ``coco/coco_pope_{random,popular,adversarial}.json`` (JSON Lines ``question_id,
               image, text, label``) or one of them; images (COCO val2014) under ``images``
textvqa        ``TextVQA_0.5.1_val.json`` (``{"data": [...]}``, ten answers each); images
               ``train_images/<image_id>.jpg`` (val images live in the train folder)
gqa            ``testdev_balanced_questions.json`` (question id -> record); images ``images/<imageId>.jpg``
vqav2          ``v2_OpenEnded_mscoco_val2014_questions.json`` beside
               ``v2_mscoco_val2014_annotations.json``; images ``val2014/COCO_val2014_<12 digits>.jpg``
amber          ``data/query/query_discriminative.json`` + ``data/annotations.json``; images ``image/``
mmvet          ``mm-vet.json`` (id -> ``imagename, question, answer, capability``); images ``images/``
llava_bench    ``questions.jsonl`` + ``answers_gpt4.jsonl`` (+ ``context.jsonl``); images ``images/``
mathverse      ``testmini.json`` (a list with ``sample_index, question, image, answer, question_type,
               problem_version, query_wo``); images ``images/``
=============  ==============================================================================
"""

from __future__ import annotations

import base64
import csv
import sys
from collections.abc import Callable
from pathlib import Path

from slime_data.decontam.items import LETTERS, BenchmarkItem, answer_forms, image_path, iter_jsonl, read_json

MMBENCH_CIRCULAR_OFFSET = 1_000_000  # MMBench's circular copies: index + k * 1e6
MME_IMAGE_SUFFIXES = (".jpg", ".png", ".jpeg", ".JPG", ".PNG")


def _missing(value: str | None) -> bool:
    return value is None or value.strip() == "" or value.strip().lower() == "nan"  # pandas wrote NaN as "nan"


def read_mmbench(path: Path, images_dir: Path | None = None) -> list[BenchmarkItem]:
    csv.field_size_limit(sys.maxsize)  # base64 images are far past csv's 128 KiB default
    with open(path, encoding="utf-8", newline="") as f:
        rows = list(csv.DictReader(f, delimiter="\t"))
    items = []
    for row in rows:
        if "index" not in row or "question" not in row:
            raise ValueError(f"{path}: not an MMBench TSV (needs index and question columns)")
        choices = [row[letter] for letter in LETTERS[:5] if not _missing(row.get(letter))]
        image = row.get("image")
        index = int(row["index"])
        items.append(
            BenchmarkItem(
                item_id=str(index),
                question=row["question"],
                context=None if _missing(row.get("hint")) else row["hint"],
                choices=choices,
                answers=answer_forms(row.get("answer"), choices),
                images=[] if _missing(image) else [base64.b64decode(image)],
                gold=row.get("answer"),
                meta={
                    "category": row.get("category"),
                    "l2_category": row.get("l2-category"),
                    "circular_group": str(index % MMBENCH_CIRCULAR_OFFSET),
                },
            )
        )
    return items


def _mme_image(folder: Path, stem: str) -> Path:
    candidates = [folder / f"{stem}{suffix}" for suffix in MME_IMAGE_SUFFIXES]
    return next((c for c in candidates if c.is_file()), candidates[0])


def read_mme(path: Path, images_dir: Path | None = None) -> list[BenchmarkItem]:
    items = []
    for category in sorted(p for p in path.iterdir() if p.is_dir()):
        answers_dir = category / "questions_answers_YN"
        text_dir, image_dir = (answers_dir, category / "images") if answers_dir.is_dir() else (category, category)
        for text_file in sorted(text_dir.glob("*.txt")):
            image = _mme_image(image_dir, text_file.stem)
            for number, line in enumerate(text_file.read_text(encoding="utf-8").splitlines(), 1):
                if not line.strip():
                    continue
                question, _, answer = line.rpartition("\t")
                if not question:
                    raise ValueError(f"{text_file} line {number}: expected 'question<TAB>Yes|No'")
                items.append(
                    BenchmarkItem(
                        item_id=f"{category.name}/{text_file.stem}/{number}",
                        question=question.strip(),
                        answers=[answer.strip()],
                        images=[image],
                        gold=answer.strip(),
                        meta={"category": category.name, "image_id": f"{category.name}/{text_file.stem}"},
                    )
                )
    if not items:
        raise FileNotFoundError(f"{path}: no MME category folders with question files")
    return items


def read_pope(path: Path, images_dir: Path | None = None) -> list[BenchmarkItem]:
    files = sorted(path.glob("*pope_*.json")) if path.is_dir() else [path]
    if not files:
        raise FileNotFoundError(f"{path}: no coco_pope_*.json files")
    items = []
    for file in files:
        split = file.stem.rsplit("_", 1)[-1]
        for number, row in iter_jsonl(file):
            items.append(
                BenchmarkItem(
                    item_id=f"{split}/{row.get('question_id', number)}",
                    question=row["text"],
                    answers=[row["label"]],
                    images=image_path(file.parent, row.get("image"), images_dir),
                    gold=row["label"],
                    meta={"split": split},
                )
            )
    return items


def read_textvqa(path: Path, images_dir: Path | None = None) -> list[BenchmarkItem]:
    data = read_json(path)
    if not isinstance(data, dict) or not isinstance(data.get("data"), list):
        raise ValueError(f"{path}: expected {{'data': [...]}} (TextVQA_0.5.1_val.json)")
    return [
        BenchmarkItem(
            item_id=str(row["question_id"]),
            question=row["question"],
            answers=list(dict.fromkeys(row.get("answers") or [])),
            images=image_path(path.parent, f"train_images/{row['image_id']}.jpg", images_dir),
            gold=list(row.get("answers") or []),  # all ten, duplicates kept: VQA accuracy counts them
            meta={"ocr_tokens": row["ocr_tokens"]} if row.get("ocr_tokens") else {},
        )
        for row in data["data"]
    ]


def read_gqa(path: Path, images_dir: Path | None = None) -> list[BenchmarkItem]:
    data = read_json(path)
    if not isinstance(data, dict):
        raise ValueError(f"{path}: expected question id -> record (testdev_balanced_questions.json)")
    return [
        BenchmarkItem(
            item_id=str(qid),
            question=row["question"],
            answers=[row["answer"]],
            images=image_path(path.parent, f"images/{row['imageId']}.jpg", images_dir),
            gold=row["answer"],
            meta={"full_answer": row.get("fullAnswer")},
        )
        for qid, row in data.items()
    ]


def read_vqav2(path: Path, images_dir: Path | None = None) -> list[BenchmarkItem]:
    questions_file = path / "v2_OpenEnded_mscoco_val2014_questions.json" if path.is_dir() else path
    annotations_name = questions_file.name.replace("OpenEnded_", "").replace("_questions", "_annotations")
    annotations_file = questions_file.parent / annotations_name
    for needed in (questions_file, annotations_file):
        if not needed.is_file():
            raise FileNotFoundError(f"VQAv2 benchmark: {needed} not found")
    annotations = {a["question_id"]: a for a in read_json(annotations_file)["annotations"]}
    split = questions_file.name.split("_")[-2]  # val2014
    items = []
    for question in sorted(read_json(questions_file)["questions"], key=lambda q: q["question_id"]):
        annotation = annotations.get(question["question_id"])
        if annotation is None:
            continue
        gold = [a["answer"] for a in annotation["answers"]]
        image = f"{split}/COCO_{split}_{question['image_id']:012d}.jpg"
        items.append(
            BenchmarkItem(
                item_id=str(question["question_id"]),
                question=question["question"],
                answers=list(dict.fromkeys(gold)),
                images=image_path(questions_file.parent, image, images_dir),
                gold=gold,
                meta={"answer_type": annotation.get("answer_type")},
            )
        )
    return items


def read_amber(path: Path, images_dir: Path | None = None) -> list[BenchmarkItem]:
    queries_file = path / "data" / "query" / "query_discriminative.json" if path.is_dir() else path
    candidates = (queries_file.parent.parent / "annotations.json", queries_file.parent / "annotations.json")
    annotations_file = next((p for p in candidates if p.is_file()), None)
    if not queries_file.is_file() or annotations_file is None:
        raise FileNotFoundError(f"AMBER benchmark: needs {queries_file} and data/annotations.json")
    truth = {int(a["id"]): a for a in read_json(annotations_file)}
    root = queries_file.parent.parent.parent  # images live in <release>/image/
    items = []
    for query in read_json(queries_file):
        annotation = truth.get(int(query["id"]))
        if annotation is None or not isinstance(annotation.get("truth"), str):
            continue  # generative queries carry object lists, scored by CHAIR (not here)
        items.append(
            BenchmarkItem(
                item_id=str(query["id"]),
                question=query["query"],
                answers=[annotation["truth"]],
                images=image_path(root, f"image/{query['image']}", images_dir),
                gold=annotation["truth"],
                meta={"type": annotation.get("type")},
            )
        )
    return items


def read_mmvet(path: Path, images_dir: Path | None = None) -> list[BenchmarkItem]:
    data = read_json(path)
    if not isinstance(data, dict):
        raise ValueError(f"{path}: expected id -> record (mm-vet.json)")
    return [
        BenchmarkItem(
            item_id=str(key),
            question=row["question"],
            answers=[row["answer"]],
            images=image_path(path.parent, f"images/{row['imagename']}", images_dir),
            gold=row["answer"],
            meta={"capability": row.get("capability") or []},
        )
        for key, row in data.items()
    ]


def read_llava_bench(path: Path, images_dir: Path | None = None) -> list[BenchmarkItem]:
    questions_file = path / "questions.jsonl" if path.is_dir() else path
    answers_file = questions_file.parent / "answers_gpt4.jsonl"
    context_file = questions_file.parent / "context.jsonl"
    if not answers_file.is_file():
        raise FileNotFoundError(f"LLaVA-Bench benchmark: {answers_file} not found")
    references = {row["question_id"]: row["text"] for _, row in iter_jsonl(answers_file)}
    contexts = iter_jsonl(context_file) if context_file.is_file() else []
    captions = {row["image"]: row.get("caption", "") for _, row in contexts}
    items = []
    for _, row in iter_jsonl(questions_file):
        reference = references.get(row["question_id"])
        items.append(
            BenchmarkItem(
                item_id=str(row["question_id"]),
                question=row["text"],
                answers=[reference] if reference else [],
                images=image_path(questions_file.parent, f"images/{row['image']}", images_dir),
                gold=reference,
                meta={"category": row.get("category"), "caption": captions.get(row["image"], "")},
            )
        )
    return items


def read_mathverse(path: Path, images_dir: Path | None = None) -> list[BenchmarkItem]:
    path = path / "testmini.json" if path.is_dir() else path
    data = read_json(path)
    if not isinstance(data, list):
        raise ValueError(f"{path}: expected a list of problems (MathVerse testmini.json)")
    items = []
    for row in data:
        items.append(
            BenchmarkItem(
                item_id=str(row["sample_index"]),
                question=row.get("question"),
                answers=answer_forms(row.get("answer"), None),
                images=image_path(path.parent, f"images/{row['image']}" if row.get("image") else None, images_dir),
                gold=row.get("answer"),
                meta={
                    key: row[key]
                    for key in ("question_type", "problem_version", "query_wo", "question_for_eval")
                    if row.get(key) is not None
                },
            )
        )
    return items


# format -> (reader, default benchmark name); merged into ``benchmarks.FORMATS``
RELEASE_FORMATS: dict[str, tuple[Callable[..., list[BenchmarkItem]], str]] = {
    "mmbench": (read_mmbench, "mmbench_dev"),
    "mme": (read_mme, "mme"),
    "pope": (read_pope, "pope"),
    "textvqa": (read_textvqa, "textvqa_val"),
    "gqa": (read_gqa, "gqa_testdev_balanced"),
    "vqav2": (read_vqav2, "vqav2_val"),
    "amber": (read_amber, "amber_discriminative"),
    "mmvet": (read_mmvet, "mmvet"),
    "llava_bench": (read_llava_bench, "llava_bench_in_the_wild"),
    "mathverse": (read_mathverse, "mathverse_testmini"),
}
