"""Readers for evaluation benchmarks in their native release formats -> ``BenchmarkItem``s.

A recipe names each benchmark by ``format`` and ``path``:

=============  ==============================================================================
format         path
=============  ==============================================================================
mathvista      ``data/testmini.json`` (pid -> record); images ``images/<pid>.jpg`` beside it
mmmu           ``answer_dict_val.json`` (ids + answers; option texts from any ``output.json``
               below the same folder: no question stems, no images), or the Hugging Face
               layout: a ``.parquet`` / ``.jsonl`` file or a folder of them with ``id``,
               ``question``, ``options`` (a stringified list), ``answer``, ``image_1``..``image_7``
mathvision     ``data/testmini.jsonl``; images ``images/<id>.jpg`` (found beside or one folder up)
scienceqa      ``problems.json`` (+ ``pid_splits.json`` beside it; ``split``, default ``test``);
               images ``images/<split>/<pid>/image.png``
chartqa        ``<split>/test_human.json`` / ``test_augmented.json`` or the split folder (both);
               images ``<split>/png/<imgname>``
ai2d           ``ai2d_test_ids.csv`` (one image id per line) beside ``questions/`` and ``images/``
jsonl          any JSON Lines file with a ``question`` field (optional ``id``, ``choices`` or
               ``options``, ``answer``, ``image``)
=============  ==============================================================================

The evaluation-only releases (MMBench, MME, POPE, TextVQA, GQA, VQAv2, AMBER, MM-Vet, LLaVA-Bench,
MathVerse) are read by ``releases.py``; their formats are registered here too. Every reader returns
full samples: besides the text that decontamination matches, ``gold`` and ``meta`` for scoring.

Image paths are looked up relative to the benchmark file's folder, then its parent (releases
differ), or under ``images`` when the recipe gives that folder. Missing image files are fine:
the item is then matched by text only.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pyarrow.parquet as pq

from slime_data.decontam.items import (
    LETTERS,
    Benchmark,
    BenchmarkItem,
    answer_forms,
    image_path,
    iter_jsonl,
    parse_options,
    read_json,
)
from slime_data.decontam.releases import RELEASE_FORMATS

MMMU_IMAGE_FIELDS = tuple(f"image_{i}" for i in range(1, 8))
MATHVISTA_META = ("question_type", "answer_type", "precision", "unit", "query")  # "query": the HF release's prompt

# --------------------------------------------------------------------------------------
# One reader per format
# --------------------------------------------------------------------------------------


def read_mathvista(path: Path, images_dir: Path | None = None) -> list[BenchmarkItem]:
    data = read_json(path)
    if not isinstance(data, dict):
        raise ValueError(f"{path}: expected an object pid -> problem (MathVista testmini.json)")
    items = []
    for pid, problem in data.items():
        choices = problem.get("choices") or None
        items.append(
            BenchmarkItem(
                item_id=str(problem.get("pid", pid)),
                question=problem.get("question"),
                choices=choices,
                answers=answer_forms(problem.get("answer"), choices),
                images=image_path(path.parent, problem.get("image"), images_dir),
                gold=problem.get("answer"),
                meta={key: problem.get(key) for key in MATHVISTA_META if problem.get(key) is not None},
            )
        )
    return items


def read_mmmu(path: Path, images_dir: Path | None = None) -> list[BenchmarkItem]:
    if path.is_dir():
        files = sorted(path.rglob("*.parquet")) or sorted(path.rglob("*.jsonl"))
        if not files:
            answer_dicts = sorted(path.rglob("answer_dict_val.json"))
            if not answer_dicts:
                raise FileNotFoundError(f"{path}: no MMMU parquet/jsonl files or answer_dict_val.json below it")
            return _read_mmmu_answer_dict(answer_dicts[0])
        return [item for file in files for item in read_mmmu(file, images_dir)]
    if path.suffix == ".json":
        return _read_mmmu_answer_dict(path)
    if path.suffix == ".parquet":
        rows = pq.read_table(path).to_pylist()
    elif path.suffix == ".jsonl":
        rows = [row for _, row in iter_jsonl(path)]
    else:
        raise ValueError(f"{path}: an MMMU benchmark is answer_dict_val.json, .parquet or .jsonl")
    items = []
    for row in rows:
        choices = parse_options(row.get("options"))
        images: list[Path | bytes] = []
        for name in MMMU_IMAGE_FIELDS:
            image = row.get(name)
            if isinstance(image, dict) and image.get("bytes"):
                images.append(image["bytes"])
            elif isinstance(image, dict) and image.get("path"):
                images += image_path(path.parent, image["path"], images_dir)
            elif isinstance(image, str):
                images += image_path(path.parent, image, images_dir)
        items.append(
            BenchmarkItem(
                item_id=str(row["id"]),
                question=row.get("question"),
                choices=choices,
                answers=answer_forms(row.get("answer"), choices),
                images=images,
                gold=row.get("answer"),
                meta={"question_type": row.get("question_type") or ("multiple-choice" if choices else "open")},
            )
        )
    return items


def _read_mmmu_answer_dict(path: Path) -> list[BenchmarkItem]:
    """The official answer key; option texts come from the per-subject ``output.json`` files."""
    answers = read_json(path)
    options: dict[str, list[str]] = {}
    for output in sorted(path.parent.rglob("output.json")):
        records = read_json(output)
        for record in records if isinstance(records, list) else []:
            index2ans = record.get("index2ans") if isinstance(record, dict) else None
            if isinstance(index2ans, dict) and index2ans:
                options.setdefault(str(record.get("id")), [str(index2ans[k]) for k in sorted(index2ans)])
    items = []
    for item_id, entry in answers.items():
        choices = options.get(item_id)
        gold = entry.get("ground_truth")
        question_type = entry.get("question_type") or ("multiple-choice" if choices else "open")
        items.append(
            BenchmarkItem(
                item_id,
                None,
                choices=choices,
                answers=answer_forms(gold, choices),
                gold=gold,
                meta={"question_type": question_type},
            )
        )
    return items


def read_mathvision(path: Path, images_dir: Path | None = None) -> list[BenchmarkItem]:
    items = []
    for number, row in iter_jsonl(path):
        choices = [str(o) for o in row.get("options") or []] or None
        items.append(
            BenchmarkItem(
                item_id=str(row.get("id", number)),
                question=row.get("question"),
                choices=choices,
                answers=answer_forms(row.get("answer"), choices),
                images=image_path(path.parent, row.get("image"), images_dir),
                gold=row.get("answer"),
                meta={key: row[key] for key in ("subject", "level") if row.get(key) is not None},
            )
        )
    return items


def read_scienceqa(path: Path, images_dir: Path | None = None, split: str = "test") -> list[BenchmarkItem]:
    problems_file = path / "problems.json" if path.is_dir() else path
    splits_file = problems_file.parent / "pid_splits.json"
    for needed in (problems_file, splits_file):
        if not needed.is_file():
            raise FileNotFoundError(f"ScienceQA benchmark: {needed} not found")
    problems, splits = read_json(problems_file), read_json(splits_file)
    if split not in splits:
        raise ValueError(f"{splits_file} has no split {split!r} (it has {', '.join(sorted(splits))})")
    items = []
    for pid in splits[split]:
        problem = problems.get(str(pid))
        if problem is None:
            continue
        image = problem.get("image")
        items.append(
            BenchmarkItem(
                item_id=str(pid),
                question=problem.get("question"),
                context=problem.get("hint") or None,
                choices=problem.get("choices"),
                answers=answer_forms(problem.get("answer"), problem.get("choices")),
                gold=LETTERS[problem["answer"]] if isinstance(problem.get("answer"), int) else problem.get("answer"),
                meta={"has_image": bool(image), "subject": problem.get("subject")},
                images=image_path(problems_file.parent, f"images/{split}/{pid}/{image}" if image else None, images_dir),
            )
        )
    return items


def read_chartqa(path: Path, images_dir: Path | None = None) -> list[BenchmarkItem]:
    files = sorted(path.glob("*_human.json")) + sorted(path.glob("*_augmented.json")) if path.is_dir() else [path]
    if not files:
        raise FileNotFoundError(f"{path}: no ChartQA *_human.json or *_augmented.json files")
    items = []
    for file in files:
        records = read_json(file)
        if not isinstance(records, list):
            raise ValueError(f"{file}: expected a list of {{imgname, query, label}}")
        for index, record in enumerate(records):
            image = record.get("imgname")
            items.append(
                BenchmarkItem(
                    item_id=f"{file.stem}/{index}",
                    question=record.get("query"),
                    answers=answer_forms(record.get("label"), None),
                    gold=record.get("label"),
                    meta={"part": file.stem.rsplit("_", 1)[-1]},  # human or augmented
                    images=image_path(file.parent, f"png/{image}" if image else None, images_dir),
                )
            )
    return items


def read_ai2d(path: Path, images_dir: Path | None = None) -> list[BenchmarkItem]:
    ids_file = path / "ai2d_test_ids.csv" if path.is_dir() else path
    if not ids_file.is_file():
        raise FileNotFoundError(f"AI2D benchmark: {ids_file} not found")
    root = ids_file.parent if (ids_file.parent / "questions").is_dir() else ids_file.parent / "ai2d"
    if not (root / "questions").is_dir():
        raise FileNotFoundError(f"AI2D benchmark: no questions/ folder beside {ids_file} (or in ai2d/)")
    items = []
    for line in ids_file.read_text(encoding="utf-8").splitlines():
        image_id = line.strip().split(",")[0].removesuffix(".png")
        questions_file = root / "questions" / f"{image_id}.png.json"
        if not image_id or not questions_file.is_file():
            continue  # a header line, or an id without questions
        questions = read_json(questions_file).get("questions") or {}
        image = image_path(root, f"images/{image_id}.png", images_dir)
        for text, question in questions.items():
            choices = question.get("answerTexts")
            items.append(
                BenchmarkItem(
                    item_id=str(question.get("questionId", f"{image_id}.png-{len(items)}")),
                    question=text,
                    choices=choices,
                    answers=answer_forms(question.get("correctAnswer"), choices),
                    images=image,
                    gold=LETTERS[question["correctAnswer"]] if isinstance(question.get("correctAnswer"), int) else None,
                    meta={"abc_label": bool(question.get("abcLabel"))},
                )
            )
    return items


def read_jsonl(path: Path, images_dir: Path | None = None) -> list[BenchmarkItem]:
    items = []
    for number, row in iter_jsonl(path):
        if not isinstance(row.get("question"), str):
            raise ValueError(f"{path} line {number}: no string 'question' field")
        choices = parse_options(row.get("choices", row.get("options")))
        item_id = row.get("id", row.get("question_id", row.get("pid", number)))
        items.append(
            BenchmarkItem(
                item_id=str(item_id),
                question=row["question"],
                choices=choices,
                answers=answer_forms(row.get("answer"), choices),
                images=image_path(path.parent, row.get("image"), images_dir),
                gold=row.get("answer"),
                meta={key: value for key, value in row.items() if key not in GENERIC_FIELDS},
            )
        )
    return items


GENERIC_FIELDS = {"id", "question_id", "pid", "question", "choices", "options", "answer", "image"}
Reader = Callable[..., list[BenchmarkItem]]
# format -> (reader, default benchmark name)
FORMATS: dict[str, tuple[Reader, str]] = {
    "mathvista": (read_mathvista, "mathvista_testmini"),
    "mmmu": (read_mmmu, "mmmu_validation"),
    "mathvision": (read_mathvision, "mathvision_testmini"),
    "scienceqa": (read_scienceqa, "scienceqa_test"),
    "chartqa": (read_chartqa, "chartqa_test"),
    "ai2d": (read_ai2d, "ai2d_test"),
    "jsonl": (read_jsonl, ""),
    **RELEASE_FORMATS,
}


def read_benchmark(
    format: str, path: str | Path, name: str | None = None, images: str | Path | None = None, split: str | None = None
) -> Benchmark:
    """Read one benchmark; ``name`` defaults per format (``jsonl``: the file's stem)."""
    if format not in FORMATS:
        raise ValueError(f"unknown benchmark format {format!r}; known formats: {', '.join(FORMATS)}")
    path = Path(path).expanduser()
    if not path.exists():
        raise FileNotFoundError(f"benchmark {name or format}: {path} not found")
    reader, default_name = FORMATS[format]
    images_dir = Path(images).expanduser() if images is not None else None
    if split is not None and format != "scienceqa":
        raise ValueError(f"benchmark {name or format}: 'split' applies to the scienceqa format only")
    items = reader(path, images_dir, split) if split is not None else reader(path, images_dir)
    if format == "scienceqa" and split is not None and name is None:
        default_name = f"scienceqa_{split}"
    return Benchmark(name or default_name or path.stem, items)
