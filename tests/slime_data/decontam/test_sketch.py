"""The byte sketch only ever skips rows that cannot match: its bounds hold for any ASCII text."""

from __future__ import annotations

import random
import re

import numpy as np
import pyarrow as pa

from slime_data.decontam.sketch import (
    BREAK,
    CLASSES,
    LETTER,
    SEPARATOR,
    SPACE,
    SYMBOL,
    Sketch,
    _placeholder_bytes,
    skeleton_keys,
)
from slime_data.dedup.shingles import string_buffer
from slime_data.dedup.text import normalize_text, tokens

# Pieces of text that stress normalize_text: placeholders whole, broken and in every spacing,
# line breaks of every kind, numbers, symbols, sentence punctuation, control bytes.
FRAGMENTS = [
    "<image>",
    "<IMAGE 12>",
    "<image\t3>",
    "<image\x1f>",
    "<Image  7>",
    "<image 1 >",
    "<image",
    "<im",
    "age>",
    ">",
    "<",
    "1",
    "23",
    "3.5",
    "1,000",
    "a",
    "Bc",
    "what",
    "x_y",
    " ",
    "\t",
    "\x1f",
    "\n",
    "\r\n",
    "\r",
    "\x0b",
    "\x0c",
    "\x1c",
    "\x1e",
    "$",
    "+",
    "_",
    "?",
    ".",
    ",",
    "'",
    "(",
    "\x00",
    "\x7f",
]


def random_rows(rng: random.Random, count: int) -> list[list[str]]:
    """Rows of 0-3 human turns, each 0-12 fragments."""
    return [
        ["".join(rng.choice(FRAGMENTS) for _ in range(rng.randint(0, 12))) for _ in range(rng.randint(0, 3))]
        for _ in range(count)
    ]


def sketch_of(rows: list[list[str]]) -> Sketch:
    texts = [text for row in rows for text in row]
    text_rows = np.array([i for i, row in enumerate(rows) for _ in row], dtype=np.int64)
    return Sketch.of_texts(pa.array(texts, pa.string()), text_rows, len(rows))


def test_byte_classes_follow_the_definitions() -> None:
    assert CLASSES[ord("a")] == CLASSES[ord("Z")] == LETTER
    assert CLASSES[ord("$")] == CLASSES[ord("+")] == CLASSES[0] == SYMBOL  # tokens of their own
    assert CLASSES[ord("_")] == CLASSES[ord("?")] == CLASSES[ord("(")] == SEPARATOR  # never in a token
    assert CLASSES[ord("\t")] == CLASSES[0x1F] == SPACE and CLASSES[0x1C] == CLASSES[ord("\r")] == BREAK


def test_placeholder_bytes_are_the_ones_normalize_text_removes() -> None:
    rng = random.Random(1)
    texts = ["".join(rng.choice(FRAGMENTS) for _ in range(rng.randint(0, 12))) for _ in range(3000)]
    data, lengths = string_buffer(pa.array(texts, pa.string()))
    begins = np.cumsum(lengths) - lengths
    expected = set()
    for text, begin in zip(texts, begins.tolist()):
        offset = 0
        for line in text.splitlines(keepends=True):
            for match in re.finditer(r"<image\s*\d*>", line.casefold().rstrip("\r\n\x0b\x0c\x1c\x1d\x1e")):
                expected.update(range(begin + offset + match.start(), begin + offset + match.end()))
            offset += len(line)
    assert set(_placeholder_bytes(data, begins, lengths).tolist()) == expected
    assert len(expected) > 1000


def test_bounds_hold_for_fuzzed_ascii_rows() -> None:
    rows = random_rows(random.Random(2), 3000)
    sketch = sketch_of(rows)
    for row, turns in enumerate(rows):
        text = "\n".join(turns)  # human_text
        lines = [line for line in map(normalize_text, text.splitlines()) if line]
        assert sketch.ascii[row]
        assert sketch.max_tokens[row] >= sum(len(line.split(" ")) for line in lines) >= len(tokens(text))
        # Every line with a token is found by the key of its normalised form.
        if lines:
            assert sketch.rows_with_line_key_in(skeleton_keys(lines))[row]


def test_keys_tell_skeletons_apart_and_find_only_their_rows() -> None:
    rows = [["What is x?\n<image>"], ["What is y?"], ["what  IS x"], ["$ + $"], ["\n\n<image 1>"], ["Whatisx"]]
    sketch = sketch_of(rows)
    assert sketch.rows_with_line_key_in(skeleton_keys(["what is x"])).tolist() == [
        True,
        False,
        True,
        False,
        False,
        True,
    ]
    # An all-symbol prefix (MathVista's "$ ...") has an empty skeleton: lines with only symbols
    # carry it, lines without any token do not.
    assert sketch.rows_with_line_key_in(skeleton_keys(["$"])).tolist() == [False, False, False, True, False, False]
    assert not sketch.rows_with_line_key_in(np.zeros(0, np.uint64)).any()


def test_non_ascii_rows_are_never_bounded() -> None:
    sketch = sketch_of([["Ｗｈａｔ is x?"], ["What is x?"], []])
    assert sketch.ascii.tolist() == [False, True, True]
    assert sketch.max_tokens[2] == 0
