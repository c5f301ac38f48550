"""Union-find over row indices, vectorised: unions arrive as arrays of pairs, not one at a time.

Each round hooks the larger root of every pair under the smaller one (``np.minimum.at``) and
then compresses paths by pointer jumping until every row points at its root. Rounds repeat
until every pair shares a root. The root of a cluster is its smallest row index, so the
result does not depend on the order pairs arrive in.
"""

from __future__ import annotations

import numpy as np


class UnionFind:
    def __init__(self, n: int) -> None:
        self.parent = np.arange(n, dtype=np.int64)

    def __len__(self) -> int:
        return len(self.parent)

    def union(self, left: np.ndarray, right: np.ndarray) -> None:
        """Merge the clusters of left[k] and right[k] for every k."""
        left = np.asarray(left, dtype=np.int64)
        right = np.asarray(right, dtype=np.int64)
        while left.size:
            root_l, root_r = self.parent[left], self.parent[right]
            differ = root_l != root_r
            if not differ.any():
                return
            root_l, root_r = root_l[differ], root_r[differ]
            left, right = left[differ], right[differ]
            low, high = np.minimum(root_l, root_r), np.maximum(root_l, root_r)
            np.minimum.at(self.parent, high, low)
            self._compress()

    def _compress(self) -> None:
        while True:
            grand = self.parent[self.parent]
            if np.array_equal(grand, self.parent):
                return
            self.parent = grand

    def roots(self) -> np.ndarray:
        """(n,) the root (smallest member) of every row's cluster."""
        return self.parent.copy()
