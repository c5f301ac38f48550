"""Text normalisation shared by dedup and decontamination, and the text each record is judged by.

``normalize_text`` maps surface variants of one question to one string: Unicode NFKC, case
folded, image placeholders (``<image>``, ``<image 1>``, ``<image1>``) removed, sentence
punctuation and whitespace collapsed to single spaces. Numbers keep their decimal point
("3.5" stays "3.5", not "3 5" or "35") and mathematical symbols (+ - * / = < > ^ % $ \\) stay
as their own tokens, so "2+3" and "2-3" never normalise to the same question.

Scripts written without spaces (Chinese, Japanese) become one token per run of letters; the
character shingles of MinHash still see inside them, word n-grams do not.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from slime_data.record import GPT, HUMAN

_PLACEHOLDER = re.compile(r"<image\s*\d*>")
# A number with its decimal/thousands separators, a run of letters/digits, or one symbol that
# is not sentence punctuation. Everything else (spaces, . , ; : ! ? quotes, brackets) separates.
_TOKEN = re.compile(r"\d+(?:[.,]\d+)*|[^\W_]+|[^\w\s.,;:!?'\"`()\[\]{}“”‘’«»…·、。，；：！？（）【】]")


def normalize_text(text: str) -> str:
    """The canonical form of ``text``: tokens joined by single spaces ("" when nothing is left)."""
    text = unicodedata.normalize("NFKC", text).casefold()
    if "<image" in text:  # every placeholder starts so; skipping the regex saves a scan
        text = _PLACEHOLDER.sub(" ", text)
    # No token spans whitespace, so tokenising word by word finds the same tokens as one scan
    # of the whole text; and a word of letters only is one token (``[^\W_]+`` takes it all,
    # a letter is never a digit). Words of letters are most words, and skip the regex.
    found: list[str] = []
    for word in text.split():
        if word.isalpha():
            found.append(word)
        else:
            found += _TOKEN.findall(word)
    return " ".join(found)


def tokens(text: str) -> list[str]:
    """``normalize_text`` split into tokens."""
    normalized = normalize_text(text)
    return normalized.split(" ") if normalized else []


def human_text(conversations: Sequence[dict[str, str]]) -> str:
    """Every human turn, one per line: what a record asks."""
    return "\n".join(turn["value"] for turn in conversations if turn["from"] == HUMAN)


def dedup_text(conversations: Sequence[dict[str, str]], has_image: bool) -> str:
    """The text a record is deduplicated on.

    With an image: the human turns (the questions). Two rows with the same image and the same
    questions are duplicates even if their answers were worded differently (a teacher rewrite).
    Without an image the question alone is too weak ("Write a poem."), so the whole
    conversation counts: human and gpt turns, in order.
    """
    if has_image:
        return human_text(conversations)
    return "\n".join(turn["value"] for turn in conversations if turn["from"] in (HUMAN, GPT))


def dedup_texts(conversations: pa.Array, has_image: np.ndarray) -> pa.Array:
    """``dedup_text`` of every row of a ``list<struct<from, value>>`` column, computed in Arrow.

    The same strings as ``dedup_text`` row by row (a null conversation gives ""), without
    building a Python dict per turn: the turns are flattened, the ones the text is made of are
    kept, and each row's are joined with "\\n". Returns a large_string array.
    """
    turns = pc.list_flatten(conversations)
    row = pc.list_parent_indices(conversations).to_numpy(zero_copy_only=False)
    speaker = pc.struct_field(turns, "from")
    is_human = pc.equal(speaker, HUMAN).to_numpy(zero_copy_only=False)
    is_gpt = pc.equal(speaker, GPT).to_numpy(zero_copy_only=False)
    kept = is_human | (is_gpt & ~np.asarray(has_image, dtype=bool)[row])
    counts = np.bincount(row[kept], minlength=len(conversations))
    offsets = pa.array(np.r_[0, np.cumsum(counts)], type=pa.int64())
    kept_turns = pa.LargeListArray.from_arrays(offsets, pc.struct_field(turns, "value").filter(pa.array(kept)))
    return pc.binary_join(kept_turns, "\n").cast(pa.large_string())
