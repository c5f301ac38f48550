"""Grouping equal uint64 keys by sorting only the keys that repeat."""

from __future__ import annotations

import numpy as np

from slime_data.dedup.pairs import groups, repeated


def test_repeated_marks_every_row_of_a_repeated_key() -> None:
    keys = np.array([5, 3, 5, 7, 3, 3, 2**64 - 1, 9], dtype=np.uint64)
    assert repeated(keys).tolist() == [True, True, True, False, True, True, False, False]
    assert repeated(np.arange(4, dtype=np.uint64)).tolist() == [False] * 4
    assert repeated(np.zeros(0, np.uint64)).tolist() == []


def test_groups_partition_like_numpy_unique() -> None:
    rng = np.random.default_rng(0)
    keys = rng.integers(0, 2**64, 5000, dtype=np.uint64)
    keys[rng.integers(0, 5000, 1500)] = keys[rng.integers(0, 5000, 1500)]  # many repeats, some chained
    group, first = groups(keys)
    _, unique_first, inverse = np.unique(keys, return_index=True, return_inverse=True)
    assert (
        sorted(first.tolist()) == first.tolist() == sorted(unique_first.tolist())
    )  # each group's first row, in row order
    assert np.array_equal(keys[first[group]], keys)  # every row maps to a row with its key
    # The same partition: each group is one of numpy's and each of numpy's one group.
    assert len(set(zip(group.tolist(), inverse.ravel().tolist()))) == len(first) == len(unique_first)
    assert groups(np.zeros(0, np.uint64))[0].size == 0
