"""Match training rows against benchmark items: by image, by question text, by option set.

A training row matches a benchmark item when any of these holds (checked in this order):

1. **image**: the row's perceptual hash is within ``max_hamming`` bits of one of the item's
   images (multi-index hashing, so millions of rows against thousands of images stay cheap).
   Only when the benchmark's images are on disk (or embedded, as in MMMU's parquet files).
2. **question**, by length of the benchmark question (tokens after ``normalize_text``):
   - long (>= ``ngram`` tokens): the row shares an ``ngram``-token passage (13 by default, as
     in GPT-3's decontamination) with the question or its context (ScienceQA's hint) that no
     other item of the same benchmark has. A passage several items share is a template
     ("Move the ruler to measure the length of the nail to the nearest inch. The nail is about
     (_) inches long.") and identifies none of them.
   - short (< ``ngram`` tokens), and long questions without a passage of their own: some run
     of 1-3 consecutive lines of the row's human turns normalises to exactly the question,
     and the answers agree when both sides have one. Such questions alone are often generic
     ("How many bars are there?"); the answer check stops one chart's question from removing
     every chart that asks the same thing.
3. **options**, for items published without a question stem (the MMMU answer key sample):
   the row's option set equals the item's, when that set is informative (at least
   ``min_option_chars`` characters in total, no image placeholders) and unique within its
   benchmark. Without stems this is the only text signal; it cannot catch a row that asks the
   same question with other options, and a generic option set ("Yes", "No") is never used.

``stats`` says, per benchmark, how many items each rule can catch, so a report can show what a
benchmark without images or stems leaves uncovered.

``match_batch`` applies these rules exactly, vectorised: the text comes from Arrow
(``decontam.rows``), and only for the rows whose bytes leave a passage or question possible
(``decontam.sketch``), which is next to none of them.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import xxhash

from slime_data.decontam.benchmarks import Benchmark, BenchmarkItem, answer_forms
from slime_data.decontam.rows import HumanLines
from slime_data.decontam.sketch import Sketch, skeleton_keys
from slime_data.dedup.hamming import MultiIndexHash
from slime_data.dedup.shingles import ngram_keys
from slime_data.dedup.text import normalize_text, tokens
from slime_data.images import ImageRejected, prepare_image

IMAGE, QUESTION, OPTIONS = "image", "question", "options"
MATCH_COLUMNS = ["id", "phash", "conversations", "answer", "choices"]
MAX_LINES_PER_QUESTION = 3


@dataclass(frozen=True)
class Match:
    benchmark: str
    item_id: str
    kind: str  # IMAGE | QUESTION | OPTIONS
    detail: str

    @property
    def reason(self) -> str:
        return f"benchmark_{self.kind}:{self.benchmark}"


def _key(text: str) -> int:
    return xxhash.xxh3_64_intdigest(text.encode())


def _as_binary(texts: Iterable[str]) -> pa.Array:
    """``texts`` as Arrow binary, in order. A lone surrogate (a Python str may hold one, from a JSON
    escape) stays, as bytes that no row's text (valid UTF-8) equals."""
    return pa.array([text.encode("utf-8", "surrogatepass") for text in texts], pa.binary())


def _token_prefixes(questions: Iterable[str]) -> set[str]:
    """Every normalised question's prefixes that end at a token: "a b c" -> "a", "a b", "a b c"."""
    return {" ".join(words[:end]) for words in (q.split(" ") for q in questions) for end in range(1, len(words) + 1)}


def _short(text: str, limit: int = 80) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


class BenchmarkIndex:
    def __init__(self, benchmarks: list[Benchmark], max_hamming: int = 4, ngram: int = 13, min_option_chars: int = 20):
        self.ngram = ngram
        self.items: list[tuple[str, BenchmarkItem]] = [(b.name, item) for b in benchmarks for item in b.items]
        self.stats: dict[str, dict[str, int]] = {
            b.name: dict.fromkeys(
                (
                    "items",
                    "images",
                    "images_unreadable",
                    "exact_questions",
                    "passages",
                    "templated",
                    "option_sets",
                    "unmatchable",
                ),
                0,
            )
            for b in benchmarks
        }
        covered: set[int] = set()
        self._index_images(max_hamming, covered)
        # Matching needs no images: without them the index pickles small, for worker processes.
        self.items = [(name, replace(item, images=[])) for name, item in self.items]
        self._index_questions(covered)
        self._index_options(min_option_chars, covered)
        for index, (name, _) in enumerate(self.items):
            self.stats[name]["items"] += 1
            self.stats[name]["unmatchable"] += index not in covered

    # -- building ------------------------------------------------------------------------
    def _index_images(self, max_hamming: int, covered: set[int]) -> None:
        hashes, owners = [], []
        for index, (name, item) in enumerate(self.items):
            for image in item.images:
                if isinstance(image, Path) and not image.is_file():
                    continue
                try:
                    data = image if isinstance(image, bytes) else image.read_bytes()
                    hashes.append(prepare_image(data).phash)
                except (ImageRejected, OSError):
                    self.stats[name]["images_unreadable"] += 1
                    continue
                owners.append(index)
                self.stats[name]["images"] += 1
                covered.add(index)
        self._image_owner = np.array(owners, dtype=np.int64)
        self._images = MultiIndexHash(np.array(hashes, dtype=np.uint64), max_hamming)

    def _index_questions(self, covered: set[int]) -> None:
        self._exact: dict[str, list[int]] = defaultdict(list)  # normalised question -> items
        self._vocab: dict[str, int] = {}
        passages: list[tuple[int, list[int]]] = []  # (item, token ids) of every long text
        for index, (_, item) in enumerate(self.items):
            question_tokens = tokens(item.question) if item.question else []
            if 0 < len(question_tokens) < self.ngram:
                self._exact[" ".join(question_tokens)].append(index)
            elif question_tokens:
                passages.append((index, [self._vocab.setdefault(t, len(self._vocab)) for t in question_tokens]))
            context_tokens = tokens(item.context) if item.context else []
            if len(context_tokens) >= self.ngram:
                passages.append((index, [self._vocab.setdefault(t, len(self._vocab)) for t in context_tokens]))
        owners = np.array([index for index, _ in passages], dtype=np.int64)
        keys, rows = ngram_keys(
            np.array([t for _, ids in passages for t in ids], dtype=np.int64),
            np.array([len(ids) for _, ids in passages], dtype=np.int64),
            self.ngram,
        )
        # A passage identifies an item only if no other item of the same benchmark has it.
        owners_of: dict[tuple[int, str], set[int]] = defaultdict(set)
        for key, index in zip(keys.tolist(), owners[rows].tolist()):
            owners_of[key, self.items[index][0]].add(index)
        distinctive = sorted((key, min(found)) for (key, _), found in owners_of.items() if len(found) == 1)
        self._passage_keys = np.array([key for key, _ in distinctive], dtype=np.uint64)
        self._passage_items = np.array([index for _, index in distinctive], dtype=np.int64)
        # A long question without a passage of its own is a template: match it like a short one.
        distinctive_items = set(self._passage_items.tolist())
        for index in set(owners.tolist()) - distinctive_items:
            question = self.items[index][1].question
            if question:
                self._exact[normalize_text(question)].append(index)
                self.stats[self.items[index][0]]["templated"] += 1
        for index in distinctive_items:
            self.stats[self.items[index][0]]["passages"] += 1
        for items in self._exact.values():
            for index in items:
                self.stats[self.items[index][0]]["exact_questions"] += 1
        covered.update(distinctive_items, (i for items in self._exact.values() for i in items))
        self._vocab_tokens = _as_binary(self._vocab)  # position = token id
        prefixes = sorted(_token_prefixes(self._exact))
        self._question_prefixes = _as_binary(prefixes)
        self._prefix_skeletons = skeleton_keys([p for p in prefixes if p.isascii()])  # an ASCII line can only be those

    def _index_options(self, min_chars: int, covered: set[int]) -> None:
        keyed: list[tuple[int, int]] = []
        for index, (_, item) in enumerate(self.items):
            key = self._option_key(item.choices, min_chars) if item.question is None else None
            if key is not None:
                keyed.append((key, index))
        per_benchmark = Counter((key, self.items[index][0]) for key, index in keyed)
        self._options: dict[int, int] = {}
        for key, index in keyed:
            name = self.items[index][0]
            if per_benchmark[key, name] == 1:
                self._options.setdefault(key, index)
                self.stats[name]["option_sets"] += 1
                covered.add(index)
        self._min_option_chars = min_chars

    @staticmethod
    def _option_key(choices: list[str] | None, min_chars: int) -> int | None:
        """Key of an informative option set (order-free); None for generic or image-only options."""
        if not choices or len(choices) < 2:
            return None
        normalized = sorted(normalize_text(c) for c in choices)
        if any(not c for c in normalized) or sum(len(c) for c in normalized) < min_chars:
            return None
        return _key("\x1f".join(normalized))

    # -- matching ------------------------------------------------------------------------
    def match_batch(self, batch: pa.RecordBatch) -> list[Match | None]:
        """The first match of every row of ``batch`` (needs ``MATCH_COLUMNS``), or None.

        Rules apply in order (image, passage, exact question, options), each only to rows no
        earlier rule matched. Text is read from Arrow, and only for rows whose bytes leave a
        passage or question possible (``Sketch``); the question check runs in Python only for
        rows with a line that starts some benchmark question.
        """
        found: list[Match | None] = [None] * batch.num_rows
        self._match_images(batch, found)
        conversations = batch.column("conversations")
        rows = self._rows_to_read(conversations)
        if len(rows):
            lines = HumanLines.of(conversations, rows)
            self._match_passages(lines, found)
            self._match_exact(lines, batch.column("answer"), batch.column("choices"), found)
        self._match_options(batch.column("choices"), found)
        return found

    def _rows_to_read(self, conversations: pa.Array) -> np.ndarray:
        """Rows ((R,) int64, increasing) whose human text may share a passage with or equal a question."""
        if not len(self._passage_keys) and not self._exact:
            return np.zeros(0, dtype=np.int64)
        sketch = Sketch.of(conversations)
        read = ~sketch.ascii
        if len(self._passage_keys):
            read |= sketch.max_tokens >= self.ngram
        if self._exact:
            read |= sketch.rows_with_line_key_in(self._prefix_skeletons)
        return np.flatnonzero(read)

    def _match_images(self, batch: pa.RecordBatch, found: list[Match | None]) -> None:
        phash = batch.column("phash")
        rows = np.flatnonzero(phash.is_valid().to_numpy(zero_copy_only=False))
        if not len(self._images) or not len(rows):
            return
        hashes = phash.filter(phash.is_valid()).to_numpy().astype(np.uint64)
        best: dict[int, tuple[int, int]] = {}
        for q, t, distance in self._images.query(hashes):
            for qi, ti, d in zip(q.tolist(), t.tolist(), distance.tolist()):
                candidate = (d, int(self._image_owner[ti]))
                if qi not in best or candidate < best[qi]:
                    best[qi] = candidate
        for qi, (distance, index) in best.items():
            name, item = self.items[index]
            found[int(rows[qi])] = Match(
                name, item.item_id, IMAGE, f"image within {distance} bits of {name} item {item.item_id}"
            )

    def _match_passages(self, lines: HumanLines, found: list[Match | None]) -> None:
        if not len(self._passage_keys):
            return
        rows, row_tokens, lengths = lines.tokens_of_rows_with(self.ngram)
        ids = pc.index_in(row_tokens.cast(pa.binary()), value_set=self._vocab_tokens).fill_null(-1).to_numpy()
        keys, windows = ngram_keys(ids, lengths, self.ngram)  # windows: positions in ``rows``
        at = np.minimum(np.searchsorted(self._passage_keys, keys), len(self._passage_keys) - 1)
        hit = self._passage_keys[at] == keys
        # A row's windows are in text order: its first hit is the one reported.
        for row, position in zip(rows[windows[hit]].tolist(), at[hit].tolist()):
            if found[row] is None:
                name, item = self.items[int(self._passage_items[position])]
                found[row] = Match(
                    name,
                    item.item_id,
                    QUESTION,
                    f"shares a {self.ngram}-token passage with {name} item "
                    f"{item.item_id}: {_short(item.question or item.context or '')!r}",
                )

    def _match_exact(self, lines: HumanLines, answers: pa.Array, choices: pa.Array, found: list[Match | None]) -> None:
        if not self._exact:
            return
        ranges = lines.line_ranges()
        # A run of lines equals a question only if its first line is a prefix of one: other rows cannot match.
        for row in lines.rows_with_line_in(self._question_prefixes).tolist():
            if found[row] is None:
                row_lines = lines.texts[ranges[row] : ranges[row + 1]].to_pylist()
                found[row] = self._exact_question(row_lines, answers[row].as_py(), choices[row].as_py())

    def _exact_question(self, lines: list[str], answer: str | None, choices: list[str] | None) -> Match | None:
        """The first run of 1..MAX_LINES_PER_QUESTION of ``lines`` (normalised, non-empty) that is a
        question whose answers agree with the row's (when both have one)."""
        row_answers = {normalize_text(a) for a in answer_forms(answer, choices)} - {""}
        for start in range(len(lines)):
            for stop in range(start + 1, min(start + MAX_LINES_PER_QUESTION, len(lines)) + 1):
                for index in self._exact.get(" ".join(lines[start:stop]), ()):
                    name, item = self.items[index]
                    item_answers = {normalize_text(a) for a in item.answers} - {""}
                    if row_answers and item_answers and not row_answers & item_answers:
                        continue
                    return Match(
                        name,
                        item.item_id,
                        QUESTION,
                        f"question equals {name} item {item.item_id}: {_short(item.question or '')!r}",
                    )
        return None

    def _match_options(self, choices: pa.Array, found: list[Match | None]) -> None:
        if not self._options:
            return
        # An option set of fewer than two options has no key (``_option_key``).
        with_options = pc.fill_null(pc.greater_equal(pc.list_value_length(choices), 2), False)
        for row in np.flatnonzero(with_options.to_numpy(zero_copy_only=False)).tolist():
            if found[row] is None:
                found[row] = self._same_options(choices[row].as_py())

    def _same_options(self, choices: list[str]) -> Match | None:
        key = self._option_key(choices, self._min_option_chars)
        index = self._options.get(key) if key is not None else None
        if index is None:
            return None
        name, item = self.items[index]
        return Match(
            name,
            item.item_id,
            OPTIONS,
            f"same options as {name} item {item.item_id}: {_short(' | '.join(item.choices or []))!r}",
        )
