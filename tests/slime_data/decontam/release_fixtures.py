"""Tiny excerpts of each evaluation benchmark in its release layout, written under a root folder
(``root/<benchmark name>/...`` as `slime-model eval --root` expects). Field names, nesting, file
names and quirks follow the public releases (records shortened; images generated)."""

from __future__ import annotations

import base64
import csv
import io
import json
from pathlib import Path

import numpy as np
from PIL import Image


def image_bytes(seed: int, size: tuple[int, int] = (160, 120), fmt: str = "JPEG") -> bytes:
    pixels = np.random.default_rng(seed).integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, fmt)
    return buffer.getvalue()


def _image(path: Path, seed: int, fmt: str = "JPEG") -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(image_bytes(seed, fmt=fmt))


def _json(path: Path, value: object, lines: bool = False) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    text = "".join(json.dumps(v) + "\n" for v in value) if lines else json.dumps(value, indent=2)  # type: ignore[union-attr]
    path.write_text(text, encoding="utf-8")


def write_mmbench(folder: Path, name: str = "mmbench_dev_20230712.tsv") -> None:
    header = [
        "index",
        "question",
        "hint",
        "A",
        "B",
        "C",
        "D",
        "answer",
        "category",
        "image",
        "source",
        "l2-category",
        "comment",
        "split",
    ]
    picture = base64.b64encode(image_bytes(1)).decode()
    rows = [
        [
            0,
            "What is the main color of the object?",
            "nan",
            "red",
            "green",
            "blue",
            "yellow",
            "C",
            "attribute_recognition",
            picture,
            "reasoning",
            "finegrained_perception",
            "nan",
            "dev",
        ],
        [
            1000000,
            "What is the main color of the object?",
            "nan",
            "yellow",
            "red",
            "green",
            "blue",
            "D",
            "attribute_recognition",
            picture,
            "reasoning",
            "finegrained_perception",
            "nan",
            "dev",
        ],
        [
            7,
            "Which mood does this image convey?",
            "The picture was taken at dusk.",
            "happy",
            "sad",
            "calm",
            "nan",
            "C",
            "image_emotion",
            picture,
            "emotion",
            "coarse_perception",
            "nan",
            "dev",
        ],
    ]
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / name, "w", encoding="utf-8", newline="") as f:
        writer = csv.writer(f, delimiter="\t")
        writer.writerow(header)
        writer.writerows(rows)


def write_mme(folder: Path) -> None:
    release = folder / "MME_Benchmark_release_version"
    count = release / "count"
    _image(count / "000000006040.jpg", 2)
    (count / "000000006040.txt").write_text(
        "Are there three giraffes in this picture? Please answer yes or no.\tYes\n"
        "Are there four giraffes in this picture? Please answer yes or no.\tNo\n",
        encoding="utf-8",
    )
    artwork = release / "artwork"
    _image(artwork / "images" / "10002.jpg", 3)
    (artwork / "questions_answers_YN").mkdir(parents=True)
    (artwork / "questions_answers_YN" / "10002.txt").write_text(
        "Does this artwork exist in the form of painting? Please answer yes or no.\tYes\n"
        "Does this artwork exist in the form of glassware? Please answer yes or no.\tNo\n",
        encoding="utf-8",
    )
    code = release / "code_reasoning"
    _image(code / "0020.png", 4, "PNG")
    (code / "0020.txt").write_text(
        "Is a c++ code shown in the picture? Please answer yes or no.\tYes\n"
        "Is a python code shown in the picture? Please answer yes or no.\tNo\n",
        encoding="utf-8",
    )


def write_pope(folder: Path) -> None:
    for split, seed in (("random", 5), ("adversarial", 6)):
        image = f"COCO_val2014_0000003101{seed}.jpg"
        _image(folder / "val2014" / image, seed)
        _json(
            folder / "coco" / f"coco_pope_{split}.json",
            [
                {"question_id": 1, "image": image, "text": "Is there a snowboard in the image?", "label": "yes"},
                {"question_id": 2, "image": image, "text": "Is there a dining table in the image?", "label": "no"},
            ],
            lines=True,
        )


# The ten annotators' answers of a real TextVQA val question (image 003a8ae2ef43b901).
TEXTVQA_ANSWERS = [
    "nous les gosses",
    "dakota",
    "clos culombu",
    "dakota digital",
    "dakota",
    "dakota",
    "dakota digital",
    "dakota digital",
    "dakota",
    "dakota",
]


def write_textvqa(folder: Path) -> None:
    _image(folder / "train_images" / "003a8ae2ef43b901.jpg", 7)
    answers = TEXTVQA_ANSWERS
    _json(
        folder / "TextVQA_0.5.1_val.json",
        {
            "dataset_type": "val",
            "dataset_name": "textvqa",
            "dataset_version": "0.5.1",
            "data": [
                {
                    "question": "what is the brand of this camera?",
                    "image_id": "003a8ae2ef43b901",
                    "image_classes": ["Cassette deck", "Printer"],
                    "flickr_original_url": "https://example.invalid/a.jpg",
                    "flickr_300k_url": "https://example.invalid/b.jpg",
                    "image_width": 1024,
                    "image_height": 664,
                    "answers": answers,
                    "question_tokens": ["what", "is", "the", "brand", "of", "this", "camera"],
                    "question_id": 34602,
                    "set_name": "val",
                }
            ],
        },
    )


def write_gqa(folder: Path) -> None:
    _image(folder / "images" / "n288870.jpg", 8)
    _json(
        folder / "testdev_balanced_questions.json",
        {
            "20968379": {
                "semantic": [{"operation": "select", "dependencies": [], "argument": "dress (1)"}],
                "entailed": [],
                "equivalent": ["20968379"],
                "question": "Who is wearing the dress?",
                "imageId": "n288870",
                "isBalanced": True,
                "groups": {"global": None, "local": "13-dress_person"},
                "answer": "woman",
                "semanticStr": "select: dress (1)->relate: person,wearing,s (2)->query: name [1]",
                "annotations": {"answer": {}, "question": {}, "fullAnswer": {}},
                "types": {"detailed": "relS", "semantic": "rel", "structural": "query"},
                "fullAnswer": "The woman is wearing a dress.",
            }
        },
    )


def write_vqav2(folder: Path) -> None:
    _image(folder / "val2014" / "COCO_val2014_000000262148.jpg", 9)
    _json(
        folder / "v2_OpenEnded_mscoco_val2014_questions.json",
        {
            "info": {},
            "task_type": "Open-Ended",
            "data_type": "mscoco",
            "license": {},
            "data_subtype": "val2014",
            "questions": [
                {"image_id": 262148, "question": "What is he on top of?", "question_id": 262148002},
                {"image_id": 262148, "question": "Where is he looking?", "question_id": 262148000},
            ],
        },
    )
    answers = ["down", "down", "at table", "skateboard", "down", "table", "down", "down", "down", "down"]
    _json(
        folder / "v2_mscoco_val2014_annotations.json",
        {
            "info": {},
            "license": {},
            "data_subtype": "val2014",
            "data_type": "mscoco",
            "annotations": [
                {
                    "question_type": "none of the above",
                    "multiple_choice_answer": "down",
                    "image_id": 262148,
                    "answer_type": "other",
                    "question_id": 262148000,
                    "answers": [
                        {"answer": a, "answer_confidence": "yes", "answer_id": i + 1} for i, a in enumerate(answers)
                    ],
                },
                {
                    "question_type": "what is",
                    "multiple_choice_answer": "picnic table",
                    "image_id": 262148,
                    "answer_type": "other",
                    "question_id": 262148002,
                    "answers": [
                        {"answer": "picnic table", "answer_confidence": "yes", "answer_id": i} for i in range(1, 11)
                    ],
                },
            ],
        },
    )


def write_amber(folder: Path) -> None:
    _image(folder / "image" / "AMBER_1.jpg", 10)
    _json(
        folder / "data" / "query" / "query_discriminative.json",
        [
            {"id": 1005, "image": "AMBER_1.jpg", "query": "Is there a forest in this image?"},
            {"id": 1006, "image": "AMBER_1.jpg", "query": "Is there a car in this image?"},
        ],
    )
    _json(
        folder / "data" / "annotations.json",
        [
            {"id": 1, "type": "generative", "truth": ["tree", "sky"], "hallu": ["car"]},
            {"id": 1005, "type": "discriminative-hallucination", "truth": "yes"},
            {"id": 1006, "type": "discriminative-hallucination", "truth": "no"},
        ],
    )


def write_mmvet(folder: Path) -> None:
    _image(folder / "images" / "v1_0.png", 11, "PNG")
    _json(
        folder / "mm-vet.json",
        {
            "v1_0": {
                "imagename": "v1_0.png",
                "capability": ["ocr", "math"],
                "question": "What is x in the equation?",
                "answer": "-1 <AND> -5",
            },
        },
    )


def write_llava_bench(folder: Path) -> None:
    _image(folder / "images" / "001.jpg", 12)
    _json(
        folder / "questions.jsonl",
        [
            {
                "image": "001.jpg",
                "text": "What is the name of this famous sight in the photo?",
                "category": "conv",
                "question_id": 0,
            },
        ],
        lines=True,
    )
    _json(
        folder / "answers_gpt4.jsonl",
        [
            {
                "question_id": 0,
                "prompt": "What is the name of this famous sight in the photo?",
                "text": "The famous sight in the photo is Diamond Head.",
                "answer_id": "x",
                "model_id": "gpt-4-0314",
                "metadata": {},
            },
        ],
        lines=True,
    )
    _json(
        folder / "context.jsonl",
        [
            {"id": "001", "image": "001.jpg", "caption": "An aerial view of Diamond Head in Hawaii."},
        ],
        lines=True,
    )


def write_mathverse(folder: Path) -> None:
    _image(folder / "images" / "image_1.png", 13, "PNG")
    question = (
        "As shown in the figure, AB is parallel to CD, angle 1 = 50.0, then angle 2 is ()\nChoices:\nA:40°\nB:50°"
    )

    _json(
        folder / "testmini.json",
        [
            {
                "sample_index": "1",
                "problem_index": "1",
                "problem_version": "Text Dominant",
                "question": question,
                "image": "image_1.png",
                "answer": "B",
                "question_type": "multi-choice",
                "metadata": {"split": "testmini", "source": "GeoQA", "subject": "Plane Geometry", "subfield": "Angle"},
                "query_wo": "Please directly answer the question and provide "
                "the correct option letter, e.g., A, B, C, D.\n"
                f"Question: {question}",
                "query_cot": "...",
                "question_for_eval": question,
            },
            {
                "sample_index": "2",
                "problem_index": "2",
                "problem_version": "Vision Only",
                "question": "",
                "image": "image_1.png",
                "answer": "12",
                "question_type": "free-form",
                "metadata": {},
                "query_wo": "According to the question shown in the image, please directly answer the question.",
                "query_cot": "...",
                "question_for_eval": "",
            },
        ],
    )


def write_chartqa(folder: Path) -> None:
    _image(folder / "test" / "png" / "41699051005347.png", 14, "PNG")
    _json(
        folder / "test" / "test_human.json",
        [
            {"imgname": "41699051005347.png", "query": "How many food item is shown in the bar graph?", "label": "14"},
        ],
    )
    _json(
        folder / "test" / "test_augmented.json",
        [
            {"imgname": "41699051005347.png", "query": "What is the value of the largest bar?", "label": "50.3"},
        ],
    )


WRITERS = {
    "mmbench_en": write_mmbench,
    "mme": write_mme,
    "pope": write_pope,
    "textvqa": write_textvqa,
    "gqa": write_gqa,
    "vqav2": write_vqav2,
    "amber": write_amber,
    "mmvet": write_mmvet,
    "llava_bench": write_llava_bench,
    "mathverse": write_mathverse,
    "chartqa": write_chartqa,
}


def write_root(root: Path, names: list[str] | None = None) -> Path:
    for name in names or list(WRITERS):
        WRITERS[name](root / name)
    return root
