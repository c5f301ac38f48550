"""Which rows' human text could hold a benchmark question, decided from its bytes, before any Python.

``normalize_text`` costs about 2 µs a line in Python, and next to no training row matches a
benchmark. For ASCII text normalize_text is: lowercase, image placeholders out, tokens (NFKC
and case folding change nothing else). Placeholders are found here exactly as it finds them;
the tokens are then *bounded* from the bytes with numpy, never computed:

* **token count.** A token begins at the first byte of a run of digits, at the first byte of a
  run of letters, or at a symbol byte (``$``, ``+``: a token of its own), so counting those
  bounds a row's tokens from above. A row with fewer than ``ngram`` shares no ``ngram``-token
  passage.
* **line skeleton.** The letters and digits of a line, lowercased and in order, are exactly
  those of its normalised form: tokens keep every one and add none. So a line that normalises
  to (a prefix of) a benchmark question has the skeleton of that prefix. Skeletons are
  compared by a 64-bit key; equal skeletons give equal keys.

A row is read (normalised and matched for real) when it is not all ASCII, or when a bound says
it may match. The bounds only ever skip rows that cannot match.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from slime_data.decontam.rows import human_turns
from slime_data.dedup.shingles import mix64, string_buffer
from slime_data.dedup.text import normalize_text

SEPARATOR, DIGIT, LETTER, SYMBOL, BREAK, SPACE = range(6)


def _byte_classes() -> np.ndarray:
    """(256,) uint8: the class of each ASCII byte, read off the definitions themselves (``str.splitlines``,
    ``str.isspace`` as in ``re``'s \\s, ``normalize_text``); bytes >= 0x80 never matter (non-ASCII rows are read)."""
    classes = np.full(256, SEPARATOR, dtype=np.uint8)
    for byte in range(128):
        char = chr(byte)
        if len(f"a{char}b".splitlines()) > 1:
            classes[byte] = BREAK
        elif char.isspace():
            classes[byte] = SPACE
        elif char.isdigit():
            classes[byte] = DIGIT
        elif char.isalpha():
            classes[byte] = LETTER
        elif normalize_text(char):
            classes[byte] = SYMBOL
    return classes


CLASSES = _byte_classes()


@dataclass
class Sketch:
    """What the bytes of each row's human turns say about their normalised lines."""

    ascii: np.ndarray  # (n,) bool: every human turn of the row is ASCII (the bounds below hold)
    max_tokens: np.ndarray  # (n,) int64: at least the row's number of tokens
    line_keys: np.ndarray  # (L,) uint64: the skeleton key of every line
    line_rows: np.ndarray  # (L,) int64: the row of every line
    line_begins: np.ndarray  # (L,) int64: where each line begins in the texts laid end to end
    token_starts: np.ndarray  # (B,) bool: the bytes a token may begin at

    @classmethod
    def of(cls, conversations: pa.Array) -> Sketch:
        values, value_rows = human_turns(conversations)
        return cls.of_texts(values, value_rows, len(conversations))

    @classmethod
    def of_texts(cls, texts: pa.Array, text_rows: np.ndarray, rows: int) -> Sketch:
        """The sketch of ``rows`` rows made of ``texts`` (one per human turn; row ``text_rows``)."""
        ascii_rows = np.ones(rows, dtype=bool)
        ascii_rows[text_rows[~pc.string_is_ascii(texts).to_numpy(zero_copy_only=False)]] = False
        data, lengths = string_buffer(texts)
        begins = np.cumsum(lengths) - lengths
        text_begins = begins[lengths > 0]  # distinct: where the texts with bytes begin
        classes = CLASSES.take(data)
        classes[_placeholder_bytes(data, begins, lengths)] = SEPARATOR  # normalize_text replaces them by a space
        starts = _token_starts(classes, text_begins)
        tokens = np.zeros(len(lengths), dtype=np.int64)
        tokens[lengths > 0] = _segment_sums(starts, text_begins)
        max_tokens = np.bincount(text_rows, weights=tokens, minlength=rows).astype(np.int64)
        line_begins = _line_begins(classes, text_begins)
        line_texts = np.searchsorted(begins, line_begins, side="right") - 1  # an empty text owns no line
        keys = _skeleton_keys(data, classes, line_begins)
        return cls(ascii_rows, max_tokens, keys, text_rows[line_texts], line_begins, starts)

    def rows_with_line_key_in(self, keys: np.ndarray) -> np.ndarray:
        """(n,) bool: rows with a line (one with a token) whose skeleton key is one of ``keys`` (sorted)."""
        found = np.zeros(len(self.ascii), dtype=bool)
        if not len(keys):
            return found
        hits = np.flatnonzero(keys[np.minimum(np.searchsorted(keys, self.line_keys), len(keys) - 1)] == self.line_keys)
        if len(hits):
            with_token = _segment_sums(self.token_starts, self.line_begins)[hits] > 0
            found[self.line_rows[hits[with_token]]] = True
        return found


def skeleton_keys(texts: list[str]) -> np.ndarray:
    """The distinct skeleton keys ((K,) uint64, sorted) of single-line ASCII texts: normalised questions' prefixes."""
    return np.unique(Sketch.of_texts(pa.array(texts, pa.string()), np.arange(len(texts)), len(texts)).line_keys)


def _segment_sums(mask: np.ndarray, begins: np.ndarray) -> np.ndarray:
    """(S,) int64: the set bytes of ``mask`` in each segment ``begins[i]:begins[i + 1]`` (the last to the
    end); ``begins`` increasing, below ``len(mask)``, so that ``reduceat`` sums every segment."""
    if not len(begins):
        return np.zeros(0, dtype=np.int64)
    return np.add.reduceat(mask.view(np.uint8), begins, dtype=np.int64)


def _placeholder_bytes(data: np.ndarray, begins: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """Offsets of the bytes inside image placeholders, as normalize_text removes them: ``<image\\s*\\d*>``
    after case folding, within one text (and line: \\s here never breaks one). Space and digit runs are
    disjoint, so the regex's backtracking never finds what the greedy scan below misses; a match
    holds one ``<``, so matches never overlap."""
    at = np.flatnonzero(data == ord("<"))
    at = at[at + len("<image>") <= len(data)]
    for offset, letter in enumerate(b"image", start=1):
        at = at[(data[at + offset] | 0x20) == letter]  # ASCII case folding: only 'I' and 'i' fold to 'i'
    end = at + len("<image")
    for run in (SPACE, DIGIT):
        moving = np.arange(len(end))
        while len(moving):
            moving = moving[end[moving] < len(data)]
            moving = moving[CLASSES[data[end[moving]]] == run]
            end[moving] += 1
    text = np.searchsorted(begins, at, side="right") - 1
    closed = end < (begins + lengths)[text]
    closed[closed] = data[end[closed]] == ord(">")
    at, size = at[closed], end[closed] + 1 - at[closed]
    return np.repeat(at - (np.cumsum(size) - size), size) + np.arange(int(size.sum()))


def _token_starts(classes: np.ndarray, text_begins: np.ndarray) -> np.ndarray:
    """(B,) bool: the bytes a token may begin at; a text begins as after a separator (turns are lines apart)."""
    before = np.empty_like(classes)
    before[1:] = classes[:-1]
    before[text_begins] = SEPARATOR
    alphanumeric = (classes == DIGIT) | (classes == LETTER)
    return (classes == SYMBOL) | (alphanumeric & (classes != before))


def _line_begins(classes: np.ndarray, text_begins: np.ndarray) -> np.ndarray:
    """Sorted offsets where a line begins: at every text's start and after every line break (an
    empty line between \\r and \\n is harmless: it has no token)."""
    begins = np.zeros(len(classes) + 1, dtype=bool)
    begins[text_begins] = True
    begins[1:][classes == BREAK] = True
    return np.flatnonzero(begins[:-1])


def _skeleton_keys(data: np.ndarray, classes: np.ndarray, line_begins: np.ndarray) -> np.ndarray:
    """(L,) uint64: a key of the skeleton of each line (the line's letters and digits, lowercased):
    its first 8 and last 8 bytes and its length, mixed. Equal skeletons get equal keys."""
    kept = (classes == DIGIT) | (classes == LETTER)
    count = _segment_sums(kept, line_begins)
    first = np.cumsum(count) - count
    skeletons = data.take(np.flatnonzero(kept)) | np.uint8(0x20)  # lowercases letters, keeps digits (0x30-0x39)
    head = _pack8(skeletons, first, count)
    tail = _pack8(skeletons, np.maximum(first + count - 8, first), count)
    return mix64(mix64(head ^ mix64(tail)) ^ count.astype(np.uint64))


def _pack8(values: np.ndarray, at: np.ndarray, count: np.ndarray) -> np.ndarray:
    """(L,) uint64: ``values[at[i]:at[i] + min(count[i], 8)]`` (uint8) packed little-endian."""
    padded = np.concatenate([values, np.zeros(8, np.uint8)])
    # Every 8 consecutive bytes as one (unaligned) uint64: eight_at[i] holds values[i:i + 8].
    eight_at = np.ndarray((len(values) + 1,), dtype="<u8", buffer=padded, strides=(1,))
    packed = eight_at[at]
    short = np.flatnonzero(count < 8)
    packed[short] &= (np.uint64(1) << (count[short].astype(np.uint64) * np.uint64(8))) - np.uint64(1)
    return packed
