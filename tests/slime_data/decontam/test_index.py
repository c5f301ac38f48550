"""BenchmarkIndex.match_batch (vectorised, issue 6) gives exactly the matches of the per-row matcher it replaced.

The reference below is that matcher: every row's conversation to Python, the human text
normalised per row for passages and per line for questions. Rows are built to hit every rule
and its edge cases, then fuzzed from benchmark question fragments.
"""

from __future__ import annotations

import json
import random

import numpy as np
import pyarrow as pa
import pytest

from slime_data.decontam.benchmarks import read_benchmark
from slime_data.decontam.index import (
    MATCH_COLUMNS,
    QUESTION,
    BenchmarkIndex,
    Match,
    _short,
)
from slime_data.dedup.shingles import ngram_keys
from slime_data.dedup.text import human_text, normalize_text, tokens
from slime_data.images import prepare_image
from slime_data.paths import PACKAGE_DIR
from slime_data.record import ARROW_SCHEMA
from tests.slime_data.dedup.planted import chart, encode

CORPUS = PACKAGE_DIR / "corpus" / "benchmarks"
MATCH_SCHEMA = pa.schema([ARROW_SCHEMA.field(name) for name in MATCH_COLUMNS])

SHORT = "How many bars are there in the chart?"
SYMBOL_FIRST = "$x + 1 = 3$, what is x?"
PASSAGE = (
    "A farmer plants seven rows of corn and each row holds twelve plants while a neighbour "
    "plants nine rows of beans with fifteen plants per row; who planted more?"
)
TEMPLATE = "Move the ruler to measure the length of the nail to the nearest inch. The nail is about (_) inches long."
IMAGE_QUESTION = "Describe the figure with the blue bars."


# -- the reference: the per-row matcher as it was --------------------------------------------
def reference_match_batch(index: BenchmarkIndex, batch: pa.RecordBatch) -> list[Match | None]:
    n = batch.num_rows
    found: list[Match | None] = [None] * n
    index._match_images(batch, found)
    conversations = batch.column("conversations").to_pylist()
    answers, choices = batch.column("answer").to_pylist(), batch.column("choices").to_pylist()
    texts = [human_text(c or []) for c in conversations]
    _reference_passages(index, texts, found)
    for row in range(n):
        if found[row] is None:
            found[row] = _reference_exact(index, texts[row], answers[row], choices[row])
        if found[row] is None and choices[row]:
            found[row] = index._same_options(choices[row])
    return found


def _reference_passages(index: BenchmarkIndex, texts: list[str], found: list[Match | None]) -> None:
    if not len(index._passage_keys):
        return
    ids = [[index._vocab.get(t, -1) for t in tokens(text)] for text in texts]
    keys, rows = ngram_keys(
        np.array([t for row in ids for t in row], dtype=np.int64),
        np.array([len(r) for r in ids], dtype=np.int64),
        index.ngram,
    )
    at = np.minimum(np.searchsorted(index._passage_keys, keys), len(index._passage_keys) - 1)
    hit = index._passage_keys[at] == keys
    for row, position in zip(rows[hit].tolist(), at[hit].tolist()):
        if found[row] is None:
            name, item = index.items[int(index._passage_items[position])]
            found[row] = Match(
                name,
                item.item_id,
                QUESTION,
                f"shares a {index.ngram}-token passage with {name} item "
                f"{item.item_id}: {_short(item.question or item.context or '')!r}",
            )


def _reference_exact(index: BenchmarkIndex, text: str, answer: str | None, choices: list[str] | None) -> Match | None:
    """Every row normalised line by line, as before the byte-level bounds; the run matching is the index's own."""
    lines = [line for line in (normalize_text(raw) for raw in text.splitlines()) if line]
    return index._exact_question(lines, answer, choices)


# -- fixtures --------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def index(tmp_path_factory: pytest.TempPathFactory) -> BenchmarkIndex:
    folder = tmp_path_factory.mktemp("bench")
    (folder / "blue.png").write_bytes(encode(chart(21)))
    items = [
        {"id": "short", "question": SHORT, "answer": "5"},
        {"id": "symbol-first", "question": SYMBOL_FIRST, "answer": "2"},
        {"id": "passage", "question": PASSAGE, "answer": "the farmer"},
        {"id": "nail-2", "question": TEMPLATE, "answer": "2"},
        {"id": "nail-3", "question": TEMPLATE, "answer": "3"},
        {"id": "image", "question": IMAGE_QUESTION, "image": "blue.png"},
    ]
    (folder / "held.jsonl").write_text("".join(json.dumps(item) + "\n" for item in items))
    benchmarks = [
        read_benchmark("jsonl", folder / "held.jsonl"),
        read_benchmark("mathvista", CORPUS / "mathvista" / "data" / "testmini.json"),
        read_benchmark("mmmu", CORPUS / "mmmu" / "mmmu" / "answer_dict_val.json"),
    ]
    return BenchmarkIndex(benchmarks)


def turns(*human: str, gpt: str = "ok") -> list[dict[str, str]]:
    """A conversation: the human turns given, each answered by ``gpt``."""
    return [turn for value in human for turn in ({"from": "human", "value": value}, {"from": "gpt", "value": gpt})]


def batch_of(rows: list[dict]) -> pa.RecordBatch:
    defaults = {"phash": None, "conversations": None, "answer": None, "choices": None}
    return pa.RecordBatch.from_pylist(
        [{**defaults, **row, "id": f"r{i}"} for i, row in enumerate(rows)], schema=MATCH_SCHEMA
    )


def matched(found: list[Match | None]) -> list[tuple[str, str] | None]:
    return [None if m is None else (m.reason, m.item_id) for m in found]


# -- tests -----------------------------------------------------------------------------------
EDGE_ROWS: dict[str, tuple[dict, tuple[str, str] | None]] = {
    # name: (row, expected (reason, item id) or None)
    "exact": ({"conversations": turns(SHORT), "answer": "5"}, ("benchmark_question:held", "short")),
    "exact-no-answer": ({"conversations": turns(SHORT)}, ("benchmark_question:held", "short")),
    "exact-other-answer": ({"conversations": turns(SHORT), "answer": "6"}, None),
    "exact-letter-answer": (
        {"conversations": turns(SHORT), "answer": "B", "choices": ["4", "5"]},
        ("benchmark_question:held", "short"),
    ),
    "placeholder-lines": ({"conversations": turns("<image>\n" + SHORT.upper())}, ("benchmark_question:held", "short")),
    "placeholder-inline": (
        {"conversations": turns("<IMAGE 1> " + SHORT + " <image\t2>")},
        ("benchmark_question:held", "short"),
    ),
    "fullwidth": (
        {"conversations": turns("Ｈｏｗ ｍａｎｙ ｂａｒｓ are there in the chart？")},
        ("benchmark_question:held", "short"),
    ),
    "two-lines": (
        {"conversations": turns("Look.\nHow many bars\nare there in the chart?")},
        ("benchmark_question:held", "short"),
    ),
    "three-lines-crlf": (
        {"conversations": turns("How many\r\nbars are there\u2028in the chart?")},
        ("benchmark_question:held", "short"),
    ),
    "late-line": ({"conversations": turns("Look.\nAt the\nchart.\n" + SHORT)}, ("benchmark_question:held", "short")),
    **{
        f"break-{ord(brk):x}": (
            {"conversations": turns("Look." + brk + SHORT + brk)},
            ("benchmark_question:held", "short"),
        )
        for brk in "\x0b\x0c\x1c\x1d\x1e\x85\u2029"
    },
    "four-lines": ({"conversations": turns("How many\nbars\nare there\nin the chart?")}, None),
    "across-turns": (
        {"conversations": turns("How many bars", "are there in the chart?")},
        ("benchmark_question:held", "short"),
    ),
    "in-gpt-turn": ({"conversations": turns("Tell me something.", gpt=SHORT)}, None),
    "prefix-only": ({"conversations": turns("How many bars", "Answer briefly.")}, None),
    "symbol-first": (
        {"conversations": turns(SYMBOL_FIRST), "answer": "2"},
        ("benchmark_question:held", "symbol-first"),
    ),
    "symbol-first-split": (
        {"conversations": turns("$x +\n1 = 3$,\nwhat is x?")},
        ("benchmark_question:held", "symbol-first"),
    ),
    "symbol-lines": ({"conversations": turns("$\n---\n+ = +")}, None),
    "passage": (
        {"conversations": turns("Please solve: " + PASSAGE.replace("?", " quickly?"))},
        ("benchmark_question:held", "passage"),
    ),
    # 14 passage tokens broken by a placeholder across the line break: every 13-token window spans
    # it, so only the joined text (placeholder removed) holds the passage.
    "passage-split-placeholder": (
        {"conversations": turns(" ".join(PASSAGE.split()[:7]) + " <image\n1> " + " ".join(PASSAGE.split()[7:14]))},
        ("benchmark_question:held", "passage"),
    ),
    "passage-one-word-short": ({"conversations": turns(" ".join(PASSAGE.split()[:12]))}, None),
    "template-answer": ({"conversations": turns(TEMPLATE), "answer": "3"}, ("benchmark_question:held", "nail-3")),
    "template-other-answer": ({"conversations": turns(TEMPLATE), "answer": "9"}, None),
    "template-in-longer-text": ({"conversations": turns("Read: " + TEMPLATE)}, None),
    "mathvista-exact": ({"conversations": turns("Find $m\\angle H$")}, ("benchmark_question:mathvista_testmini", "5")),
    "mmmu-options": (
        {
            "conversations": turns("How many attendants?"),
            "choices": ["1 attendant", "2 attendants", "3 attendants", "4 attendants"],
        },
        ("benchmark_options:mmmu_validation", "validation_Math_2"),
    ),
    "generic-options": ({"conversations": turns("Is it?"), "choices": ["Yes", "No"]}, None),
    "question-before-options": (
        {"conversations": turns(SHORT), "choices": ["1 attendant", "2 attendants", "3 attendants", "4 attendants"]},
        ("benchmark_question:held", "short"),
    ),
    "empty-choices": ({"conversations": turns("What is this?"), "choices": []}, None),
    "null-conversations": ({"conversations": None}, None),
    "empty-conversations": ({"conversations": []}, None),
    "empty-human": ({"conversations": turns("", "\n\n", "<image>")}, None),
    "non-ascii-fresh": ({"conversations": turns("这是什么？\nWhat is shown?")}, None),
    "fresh": ({"conversations": turns("<image>\nWhat is the value of item 3?"), "answer": "17"}, None),
}


def test_every_rule_and_edge_case_matches_as_the_reference(index: BenchmarkIndex) -> None:
    image_hash = prepare_image(encode(chart(21))).phash
    rows = [row for row, _ in EDGE_ROWS.values()]
    expected = [want for _, want in EDGE_ROWS.values()]
    # An image match beats a question match on the same row; an unrelated hash changes nothing.
    rows += [
        {"conversations": turns(SHORT), "phash": image_hash},
        {"conversations": turns(SHORT), "phash": image_hash ^ 0xFFFF_0000_FFFF},
    ]
    expected += [("benchmark_image:held", "image"), ("benchmark_question:held", "short")]
    batch = batch_of(rows)

    found = index.match_batch(batch)
    assert found == reference_match_batch(index, batch)  # reasons, item ids and details
    assert dict(zip([*EDGE_ROWS, "image", "image-far"], matched(found))) == dict(
        zip([*EDGE_ROWS, "image", "image-far"], expected)
    )
    assert "13-token passage" in found[list(EDGE_ROWS).index("passage-split-placeholder")].detail


def test_a_batch_slice_matches_like_a_fresh_batch(index: BenchmarkIndex) -> None:
    batch = batch_of([row for row, _ in EDGE_ROWS.values()])
    part = batch.slice(3, 12)  # Arrow offsets into the list and string buffers
    assert index.match_batch(part) == reference_match_batch(index, part)


def test_fuzzed_rows_from_benchmark_fragments_match_as_the_reference(index: BenchmarkIndex) -> None:
    rng = random.Random(6)
    questions = [item.question for _, item in index.items if item.question][:1200]
    pieces = ["<image>", "<image 2>", "\n", "\r\n", "\n\n", " ", "Answer:", "?", "$", "(_)", "5", "B", "这是"]

    def mangle(question: str) -> str:
        words = question.split(" ")
        start = rng.randrange(len(words)) if rng.random() < 0.3 else 0
        stop = len(words) if rng.random() < 0.7 else rng.randint(start, len(words))
        text = " ".join(words[start:stop])
        for _ in range(rng.randint(0, 2)):
            at = rng.randint(0, len(text))
            text = text[:at] + rng.choice(pieces) + text[at:]
        return text.upper() if rng.random() < 0.1 else text

    rows = []
    for _ in range(600):
        human = [
            mangle(rng.choice(questions)) if rng.random() < 0.8 else rng.choice(pieces)
            for _ in range(rng.randint(1, 3))
        ]
        answer = rng.choice([None, "2", "5", "A", "1.2"])
        rows.append({"conversations": turns(*human), "answer": answer, "choices": rng.choice([None, ["2", "5"]])})
    batch = batch_of(rows)
    found = index.match_batch(batch)
    assert found == reference_match_batch(index, batch)
    assert 100 < sum(m is not None for m in found) < 600  # both outcomes well exercised


def test_only_rows_that_may_match_are_normalised(index: BenchmarkIndex) -> None:
    rows = [
        {
            "conversations": turns("<image>\ncbahy lrceaqcfw oblvojzrd oeveibbe jubyoqyj fgbvx hdrxmdsyj iygwrqm?")
        },  # bench_mix's rows
        {"conversations": turns("<image>\nHow many bars")},  # a line that is a question's prefix
        {"conversations": turns(" ".join(["word"] * 13))},  # tokens enough for a passage
        {"conversations": turns("Ｗｈａｔ？")},  # not ASCII: not bounded
        {"conversations": None},
    ]
    assert index._rows_to_read(batch_of(rows).column("conversations")).tolist() == [1, 2, 3]
