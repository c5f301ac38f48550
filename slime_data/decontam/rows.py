"""What decontamination reads of a batch of training rows, taken from Arrow without a Python object per row.

Matching needs, per row, the lines of its human turns (``human_text(...).splitlines()``) in their
``normalize_text`` form, and the tokens of the whole human text (``tokens(human_text(...))``).
``HumanLines`` gets both from the ``conversations`` column for the rows asked for: turns are
flattened, human turns kept, values split at the line boundaries ``str.splitlines`` knows, and
every *distinct* line is normalised once (templated prompts repeat across rows).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from slime_data.dedup.text import human_text, normalize_text, tokens
from slime_data.record import HUMAN

# str.splitlines' line boundaries, in RE2 syntax; \r\n first, so that it is one boundary, not two.
LINE_BREAKS = r"\r\n|[\n\r\x0b\x0c\x1c\x1d\x1e\x{85}\x{2028}\x{2029}]"
# A normalised line ending in the tokens "< image": the raw line ended in "<image" and spaces, so a
# placeholder may continue on the next line ("<image\n1>"). In the joined text the placeholder is
# removed whole, on separate lines its pieces are tokens: such rows are tokenised from their text.
OPEN_PLACEHOLDER = r"(^| )< image$"


def human_turns(conversations: pa.Array) -> tuple[pa.Array, np.ndarray]:
    """The value of every human turn (string, in order) and its row ((V,) int64)."""
    turns = pc.list_flatten(conversations)
    human = pc.fill_null(pc.equal(pc.struct_field(turns, "from"), HUMAN), False)
    rows = pc.list_parent_indices(conversations).filter(human).to_numpy()
    return pc.struct_field(turns, "value").filter(human), rows


@dataclass
class HumanLines:
    """The non-empty normalised lines of the human turns of some rows of a batch, in order."""

    conversations: pa.Array  # (n,) list<struct<from, value>>: the batch's column
    rows: np.ndarray  # (L,) int64: the row of each line, nondecreasing
    texts: pa.Array  # (L,) string: each line's normalize_text form, never ""

    @classmethod
    def of(cls, conversations: pa.Array, rows: np.ndarray) -> HumanLines:
        """The lines of ``rows`` ((R,) int64, increasing) of ``conversations``."""
        values, value_rows = human_turns(conversations.take(pa.array(rows, pa.int64())))
        pieces = pc.split_pattern_regex(values, LINE_BREAKS)
        raw = pc.list_flatten(pieces).dictionary_encode()
        normalized = pa.array([normalize_text(line) for line in raw.dictionary.to_pylist()], pa.string()).take(
            raw.indices
        )
        line_rows = rows[value_rows[pc.list_parent_indices(pieces).to_numpy()]]
        keep = pc.greater(pc.binary_length(normalized), 0)
        return cls(conversations, line_rows[keep.to_numpy(zero_copy_only=False)], normalized.filter(keep))

    def __len__(self) -> int:
        return len(self.conversations)

    def line_ranges(self) -> np.ndarray:
        """(n + 1,) int64: row r's lines are ``texts[ranges[r]:ranges[r + 1]]``."""
        return np.searchsorted(self.rows, np.arange(len(self) + 1))

    def rows_with_line_in(self, values: pa.Array) -> np.ndarray:
        """Sorted rows (int64) that have a line equal to one of ``values`` (string or binary)."""
        hit = pc.is_in(self.texts.cast(values.type), value_set=values).to_numpy(zero_copy_only=False)
        return np.unique(self.rows[hit])

    def tokens_of_rows_with(self, min_tokens: int) -> tuple[np.ndarray, pa.Array, np.ndarray]:
        """``tokens(human_text(row))`` of every row that has at least ``min_tokens`` of them.

        Returns ``(rows (R,) int64, tokens (T,) string, lengths (R,) int64)``: each row's tokens
        laid end to end, rows in no particular order. The tokens of the joined text are those of
        its lines one after another, except where a placeholder spans a line break (see
        ``OPEN_PLACEHOLDER``); those rows (next to none) are tokenised from their text instead.
        """
        per_line = pc.add(pc.count_substring(self.texts, " "), 1).to_numpy()
        # A split placeholder only removes tokens, so the line count bounds the text's count from above.
        enough = np.bincount(self.rows, weights=per_line, minlength=len(self)) >= min_tokens
        joined = np.zeros(len(self), dtype=bool)
        joined[self.rows[pc.match_substring_regex(self.texts, OPEN_PLACEHOLDER).to_numpy(zero_copy_only=False)]] = True
        by_line = enough & ~joined
        line_mask = by_line[self.rows]
        line_rows = self.rows[line_mask]
        split_rows = np.flatnonzero(by_line)
        split_lengths = np.bincount(line_rows, weights=per_line[line_mask], minlength=len(self))[split_rows].astype(
            np.int64
        )
        split_tokens = pc.list_flatten(pc.split_pattern(self.texts.filter(pa.array(line_mask)), " "))

        text_rows = np.flatnonzero(enough & joined)
        text_tokens = [tokens(human_text(self.conversations[int(row)].as_py() or [])) for row in text_rows]
        rows = np.concatenate([split_rows, text_rows]).astype(np.int64)
        lengths = np.concatenate([split_lengths, np.array([len(t) for t in text_tokens], dtype=np.int64)])
        flat = pa.concat_arrays([split_tokens, pa.array([t for row in text_tokens for t in row], pa.string())])
        return rows, flat, lengths
