"""Pass 2 of dedup: from signatures to the set of ids to drop.

Both dedups find pairs of duplicate rows, merge them into clusters with union-find, and keep
one row per cluster: the highest resolution (width x height), then the lowest id (code-point
order). Everything else in the cluster is dropped with a reason and the id that was kept.

- ``ExactDedup``: same image content hash and same normalised question; rows without an image:
  same normalised conversation (question and answer).
- ``NearDedup``: perceptual hashes within ``max_hamming`` bits *and* Jaccard similarity of the
  normalised questions' character shingles at least ``min_jaccard``. The same image with a
  different question is kept (VQA sets ask many questions per chart). Rows without an image:
  Jaccard of the whole conversation alone. MinHash LSH finds the candidate texts; the decision
  is the exact Jaccard of their shingle sets, not the MinHash estimate (``NearDedup.similar``).

Two presentations of one record (``<id>`` and ``<id>#<row>``, the ``present`` step's two-row
templates: the same image and question, answered short and with the reasoning) are never
copies of each other; either can still be a copy of a third row.

The build pipeline calls them through the steps in ``slime_data.steps.dedup``; the mix and
``slime-data merge`` can call them directly on signatures of several shard sets::

    near = NearDedup(NearDedupParams(max_hamming=6))
    plan = near.plan(signatures_from_batches(batches, near.hasher))
    plan.drops  # {id: (reason, detail)}
"""

from __future__ import annotations

import re
from abc import ABC, abstractmethod
from collections.abc import Iterator
from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from pydantic import BaseModel, ConfigDict, Field, model_validator

from slime_data.dedup.hamming import MultiIndexHash, hamming
from slime_data.dedup.minhash import MinHasher, band_keys, estimated_jaccard, lsh_pairs
from slime_data.dedup.pairs import SortedKeys, groups, repeated
from slime_data.dedup.shingles import GOLDEN, mix64, shingle_jaccard
from slime_data.dedup.signatures import Signatures
from slime_data.dedup.unionfind import UnionFind
from slime_data.record import PRESENTATION_MARK

# Question clusters up to this many image rows compare all their pairs (at most n x 64 checks
# in all); larger ones use multi-index hashing.
SMALL_CLUSTER = 128
# Text pairs whose MinHash estimate is this many standard deviations below min_jaccard are not
# compared exactly (see NearDedup.similar).
ESTIMATE_MARGIN_SD = 5
EXACT_REASON = "exact_duplicate"
NEAR_REASON = "near_duplicate"


@dataclass
class DropPlan:
    """Ids to drop -> (reason, detail), and counts that explain the decision."""

    drops: dict[str, tuple[str, str]] = field(default_factory=dict)
    stats: dict[str, int] = field(default_factory=dict)


def record_families(ids: pa.Array) -> np.ndarray | None:
    """(n,) per row, a number shared by the presentations of one record (``<id>`` and ``<id>#<row>``);
    None when no id holds the mark (then every row is its own record)."""
    if not pc.any(pc.match_substring(ids, PRESENTATION_MARK)).as_py():
        return None
    records = pc.replace_substring_regex(ids, f"{re.escape(PRESENTATION_MARK)}.*$", "")
    return pc.index_in(records, value_set=pc.unique(records)).to_numpy(zero_copy_only=False)


def keepers(roots: np.ndarray, pixels: np.ndarray, id_rank: np.ndarray) -> np.ndarray:
    """(n,) for every row, the row kept for its cluster (the rows with its root): most pixels, then lowest id rank."""
    order = np.lexsort((id_rank, -pixels, roots))  # by cluster, then best first
    sorted_roots = roots[order]
    first = np.ones(len(roots), dtype=bool)
    first[1:] = sorted_roots[1:] != sorted_roots[:-1]
    kept = np.empty(len(roots), dtype=np.int64)
    kept[order] = order[first][np.cumsum(first) - 1]
    return kept


class _ClusterDedup(ABC):
    """Pairs -> union-find clusters -> one kept row per cluster."""

    reason: str

    @abstractmethod
    def pairs(self, sigs: Signatures) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """Chunks of (left rows, right rows) that are duplicates of each other."""

    @abstractmethod
    def describe(self, sigs: Signatures, row: int, kept_id: str, cluster_size: int) -> str:
        """The one-line detail of a dropped row."""

    def plan(self, sigs: Signatures) -> DropPlan:
        n = len(sigs)
        union = UnionFind(n)
        n_pairs = 0
        families = record_families(sigs.ids)
        for left, right in self.pairs(sigs):
            if families is not None:  # two presentations of one record are not copies
                apart = families[left] != families[right]
                left, right = left[apart], right[apart]
            union.union(left, right)
            n_pairs += len(left)
        roots = union.roots()
        sizes = np.bincount(roots, minlength=n)
        # Only rows that share their cluster need a keeper: usually a small fraction.
        members = np.flatnonzero(sizes[roots] > 1)
        id_rank = pc.rank(sigs.ids.take(members), tiebreaker="first").to_numpy() if members.size else members
        kept = members[keepers(roots[members], sigs.pixels[members], id_rank)]
        dropped, kept = members[kept != members], kept[kept != members]
        dropped_ids = sigs.ids.take(dropped).to_pylist()
        kept_ids = sigs.ids.take(kept).to_pylist()
        drops = {
            record_id: (self.reason, self.describe(sigs, int(row), kept_id, int(sizes[roots[row]])))
            for record_id, kept_id, row in zip(dropped_ids, kept_ids, dropped)
        }
        clusters = int(np.count_nonzero(sizes > 1))
        return DropPlan(drops, {"rows": n, "pairs": n_pairs, "clusters": clusters, "dropped": len(drops)})


class ExactDedup(_ClusterDedup):
    reason = EXACT_REASON

    def pairs(self, sigs: Signatures) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        # Only rows whose (has_image, image key, text key) hash repeats can have a copy; sort
        # those by the three fields: equal neighbours are duplicates.
        with np.errstate(over="ignore"):
            combined = mix64(mix64(sigs.image_key * GOLDEN + sigs.has_image) * GOLDEN + sigs.text_key)
        rows = np.flatnonzero(repeated(combined))
        order = rows[np.lexsort((sigs.text_key[rows], sigs.image_key[rows], sigs.has_image[rows]))]
        same = (
            (sigs.has_image[order][1:] == sigs.has_image[order][:-1])
            & (sigs.image_key[order][1:] == sigs.image_key[order][:-1])
            & (sigs.text_key[order][1:] == sigs.text_key[order][:-1])
        )
        at = np.flatnonzero(same)
        yield order[at], order[at + 1]

    def describe(self, sigs: Signatures, row: int, kept_id: str, cluster_size: int) -> str:
        what = "image and question" if sigs.has_image[row] else "conversation"
        return f"same {what} as {kept_id} (kept; {cluster_size} copies)"


class NearDedupParams(BaseModel):
    model_config = ConfigDict(extra="forbid")
    max_hamming: int = Field(6, ge=0, le=32, description="perceptual-hash bits that may differ (of 64)")
    min_jaccard: float = Field(0.8, gt=0.0, le=1.0, description="Jaccard of the questions' character shingles")
    num_perm: int = Field(64, ge=8, le=1024, description="MinHash slots per signature (2 bytes each)")
    bands: int = Field(16, ge=1, description="LSH bands; a pair is a candidate when one band agrees")
    rows: int = Field(4, ge=1, description="slots per band")
    shingle: int = Field(5, ge=1, le=8, description="bytes per character shingle")
    seed: int = 0

    @model_validator(mode="after")
    def _fits(self) -> NearDedupParams:
        if self.bands * self.rows > self.num_perm:
            raise ValueError(f"bands x rows = {self.bands * self.rows} exceeds num_perm = {self.num_perm}")
        return self


class NearDedup(_ClusterDedup):
    """Near duplicates by sorting, in bounded memory (signatures + a few arrays of n):

    1. distinct normalised texts; LSH over their MinHash bands gives candidate text pairs,
       kept when their Jaccard reaches ``min_jaccard`` (``similar``);
    2. rows without an image: same text, or similar texts, are duplicates;
    3. rows with an image: union-find over similar texts gives question clusters, and a row
       alone in its cluster has no possible partner. Among the others, rows with the same
       perceptual hash and text collapse to one; images are compared only *inside one question
       cluster* (all pairs of a small cluster, multi-index hashing in a large one), and each
       pair's own question similarity is checked again.

    A question asked of 50K different images is one distinct text and one cluster, so its
    rows cost an image search, never 50K x 50K text comparisons.
    """

    reason = NEAR_REASON

    def __init__(self, params: NearDedupParams | None = None, threads: int = 1) -> None:
        self.params = params or NearDedupParams()
        self.threads = threads  # for the LSH band searches
        p = self.params
        self.hasher = MinHasher(num_perm=p.num_perm, shingle=p.shingle, seed=p.seed)

    def pairs(self, sigs: Signatures) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        if sigs.minhash.shape[1] != self.params.num_perm:
            raise ValueError(
                f"signatures have {sigs.minhash.shape[1]} MinHash slots, the plan expects {self.params.num_perm}"
            )
        yield from self._text_pairs(sigs, np.flatnonzero(~sigs.has_image))
        yield from self._image_pairs(sigs, np.flatnonzero(sigs.has_image))

    def similar(self, sigs: Signatures, left: np.ndarray, right: np.ndarray) -> np.ndarray:
        """(pairs,) bool: the texts of rows left[i] and right[i] have shingle Jaccard >= ``min_jaccard``.

        The decision is the exact Jaccard of the two shingle sets (``shingle_jaccard``), so
        MinHash noise does not blur the threshold. The MinHash estimate only spares that work
        for pairs far below it: more than ``ESTIMATE_MARGIN_SD`` standard deviations (the
        estimate's is at most 0.5 / sqrt(num_perm), 0.0625 at 64 slots), which a pair at the
        threshold falls below with probability < 1e-6.
        """
        p = self.params
        a, b = sigs.text_index[left], sigs.text_index[right]
        margin = ESTIMATE_MARGIN_SD * 0.5 / np.sqrt(p.num_perm)
        plausible = np.flatnonzero(estimated_jaccard(sigs.minhash, a, b) >= p.min_jaccard - margin)
        close = np.zeros(len(left), dtype=bool)
        exact = shingle_jaccard(sigs.texts.take(a[plausible]), sigs.texts.take(b[plausible]), p.shingle)
        close[plausible] = exact >= p.min_jaccard
        return close

    def _similar_texts(self, sigs: Signatures, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray, Iterator]:
        """Distinct texts among ``rows`` and which of them are similar.

        Returns ``(text_of_row, representatives, similar)``: each row's index into the distinct
        texts, one row per distinct text, and chunks of (u, v) distinct-text pairs that are
        ``similar`` (LSH candidates, verified). Working on distinct texts keeps a template asked
        of 50K images one text, not 50K identical candidates.
        """
        text_of_row, first = groups(sigs.text_key[rows])
        representatives = rows[first]
        p = self.params

        def similar() -> Iterator[tuple[np.ndarray, np.ndarray]]:
            bands = band_keys(sigs.minhash, p.bands, p.rows)  # (entries, bands), a view at 4 rows per band
            for u, v in lsh_pairs(bands, sigs.text_index[representatives], self.threads):
                close = self.similar(sigs, representatives[u], representatives[v])
                yield u[close], v[close]

        return text_of_row, representatives, similar()

    def _text_pairs(self, sigs: Signatures, rows: np.ndarray) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """Rows without an image: the same text, or similar texts (through their representatives)."""
        if len(rows) < 2:
            return
        text_of_row, representatives, similar = self._similar_texts(sigs, rows)
        yield _not_self(rows, representatives[text_of_row])  # every row joins its text's representative
        for u, v in similar:
            yield representatives[u], representatives[v]

    def _image_pairs(self, sigs: Signatures, rows: np.ndarray) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """Rows with an image: perceptual hashes within ``max_hamming`` *and* similar questions.

        Questions are first clustered (union-find over similar distinct texts); images are only
        compared inside a question cluster, and every pair found is checked again for question
        similarity (a cluster can chain texts that are not similar themselves). A row alone in
        its cluster has no possible partner; small clusters compare all their pairs; large ones
        (a template asked of many images) use multi-index hashing.
        """
        if len(rows) < 2:
            return
        text_of_row, _, similar = self._similar_texts(sigs, rows)
        clusters = UnionFind(int(text_of_row.max()) + 1)
        for u, v in similar:
            clusters.union(u, v)
        cluster_of_row = clusters.roots()[text_of_row]
        shared = np.bincount(cluster_of_row)[cluster_of_row] > 1
        rows, cluster_of_row = rows[shared], cluster_of_row[shared]
        # Rows with the same hash and the same text are duplicates outright: search one of them.
        phash, text_key = sigs.phash[rows], sigs.text_key[rows]
        order = np.lexsort((text_key, phash))
        starts = np.ones(len(order), dtype=bool)
        starts[1:] = (phash[order][1:] != phash[order][:-1]) | (text_key[order][1:] != text_key[order][:-1])
        first = order[starts]  # one row per (hash, text)
        yield _not_self(rows[order], rows[first[np.cumsum(starts) - 1]])
        searched = rows[first]
        cluster = cluster_of_row[first]
        _, members, size = np.unique(cluster, return_inverse=True, return_counts=True)
        size_of_row = size[members]
        # Small clusters: every pair inside one, by a self-join on the cluster label.
        small = np.flatnonzero((size_of_row > 1) & (size_of_row <= SMALL_CLUSTER))
        for i, j in SortedKeys(cluster[small].astype(np.uint64)).self_join():
            yield from self._close(sigs, searched[small[i]], searched[small[j]])
        # Large clusters: multi-index hashing within each.
        large = np.flatnonzero(size_of_row > SMALL_CLUSTER)
        large = large[np.argsort(cluster[large], kind="stable")]
        for group in np.split(large, np.flatnonzero(np.diff(cluster[large])) + 1) if len(large) else []:
            index = MultiIndexHash(sigs.phash[searched[group]], self.params.max_hamming)
            for i, j, _ in index.self_pairs():
                yield from self._close(sigs, searched[group[i]], searched[group[j]])

    def _close(self, sigs: Signatures, left: np.ndarray, right: np.ndarray) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """The pairs within ``max_hamming`` whose questions are the same or similar enough."""
        keep = hamming(sigs.phash[left], sigs.phash[right]) <= self.params.max_hamming
        left, right = left[keep], right[keep]
        keep = sigs.text_key[left] == sigs.text_key[right]
        other = np.flatnonzero(~keep)
        keep[other] = self.similar(sigs, left[other], right[other])
        if keep.any():
            yield left[keep], right[keep]

    def describe(self, sigs: Signatures, row: int, kept_id: str, cluster_size: int) -> str:
        what = "image and question" if sigs.has_image[row] else "conversation"
        return f"{what} close to {kept_id} (kept; cluster of {cluster_size})"


def _not_self(left: np.ndarray, right: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The pairs that are not a row paired with itself."""
    keep = left != right
    return left[keep], right[keep]
