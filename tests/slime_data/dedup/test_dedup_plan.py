"""Exact and near dedup plans on planted duplicates: altered copies go, other questions stay."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest
import xxhash

from slime_data.dedup.minhash import estimated_jaccard
from slime_data.dedup.plan import EXACT_REASON, NEAR_REASON, ExactDedup, NearDedup, NearDedupParams
from slime_data.dedup.shingles import shingle_jaccard
from slime_data.dedup.signatures import (
    SIGNATURE_COLUMNS,
    Signatures,
    signatures_from_batches,
    signatures_from_records,
    signatures_of_files,
)
from slime_data.dedup.text import normalize_text
from slime_data.shards import ShardSet, ShardWriter
from tests.slime_data.dedup.planted import chart, encode, image_record, text_record, variants

QUESTION = "What is the value of item 3?"


@pytest.fixture(scope="module")
def records() -> list:
    base, other = chart(1), chart(2)
    rows = [image_record("a-original", encode(base), QUESTION)]
    rows += [image_record(f"b-{name}", data, QUESTION) for name, data in variants(base).items()]
    rows += [
        image_record("c-same-image-other-question", encode(base), "How many bars are there?"),
        image_record("d-same-bytes-same-question", encode(base), "  what is the VALUE of item 3 "),
        image_record("e-other-image-same-question", encode(other), QUESTION),
        image_record("f-other-image-reencoded", encode(other, "JPEG", quality=60), QUESTION),
        text_record("g-poem", "Write a poem about the sea.", "The sea is wide and deep."),
        text_record("h-poem-punctuated", "Write a poem about the sea!", "The sea is wide and deep"),
        text_record("i-poem-other-answer", "Write a poem about the sea.", "Waves crash on the shore at night."),
        text_record("j-unrelated", "Name three prime numbers.", "2, 3 and 5."),
    ]
    return rows


def test_exact_dedup_keeps_one_per_image_and_question(records) -> None:
    plan = ExactDedup().plan(signatures_from_records(records))
    # Same bytes + same normalised question: the lowest id stays. Text rows: same conversation.
    assert plan.drops == {
        "t/d-same-bytes-same-question": (EXACT_REASON, "same image and question as t/a-original (kept; 2 copies)"),
        "t/h-poem-punctuated": (EXACT_REASON, "same conversation as t/g-poem (kept; 2 copies)"),
    }
    assert plan.stats == {"rows": len(records), "pairs": 2, "clusters": 2, "dropped": 2}


def test_near_dedup_removes_altered_copies_and_keeps_other_questions(records) -> None:
    near = NearDedup()
    plan = near.plan(signatures_from_records(records, near.hasher))
    dropped = set(plan.drops)
    # One cluster per picture: the full-size original (most pixels, then lowest id) stays.
    assert dropped == {
        "t/b-reencoded",
        "t/b-resized",
        "t/b-cropped",
        "t/d-same-bytes-same-question",
        "t/f-other-image-reencoded",
        "t/h-poem-punctuated",
    }
    assert all(reason == NEAR_REASON for reason, _ in plan.drops.values())
    assert "t/a-original (kept; cluster of 5)" in plan.drops["t/b-resized"][1]
    kept = {r.id for r in records} - dropped
    assert {"t/c-same-image-other-question", "t/e-other-image-same-question", "t/i-poem-other-answer"} <= kept
    assert len(kept) + len(dropped) == len(records)


def test_highest_resolution_wins_over_lower_id(records) -> None:
    base = chart(1)
    small = image_record("a-small", variants(base)["resized"], QUESTION)
    large = image_record("z-large", encode(base.resize((1920, 1280))), QUESTION)
    near = NearDedup()
    plan = near.plan(signatures_from_records([small, large], near.hasher))
    assert set(plan.drops) == {"t/a-small"} and "t/z-large" in plan.drops["t/a-small"][1]


def test_thresholds_are_respected(records) -> None:
    strict = NearDedup(NearDedupParams(max_hamming=0, min_jaccard=1.0))
    plan = strict.plan(signatures_from_records(records, strict.hasher))
    # Only identical perceptual hashes and identical normalised questions remain duplicates.
    assert "t/b-cropped" not in plan.drops and "t/d-same-bytes-same-question" in plan.drops


def per_row(sigs: Signatures) -> dict[str, list]:
    """What signatures say about each row, whichever text table they point into."""
    fields = {name: getattr(sigs, name).tolist() for name in ("has_image", "image_key", "phash", "pixels", "text_key")}
    return {
        "ids": sigs.ids.to_pylist(),
        **fields,
        "text": sigs.texts.take(pa.array(sigs.text_index)).to_pylist(),
        "minhash": sigs.minhash[sigs.text_index].tolist(),
    }


def test_signatures_from_shard_files_equal_those_from_records(records, tmp_path: Path) -> None:
    with ShardWriter(tmp_path / "set", command="test", max_shard_rows=4) as writer:
        for record in records:
            writer.add(record)
    shard_set = ShardSet(tmp_path / "set")
    assert len(shard_set.shard_paths) > 1
    hasher = NearDedup().hasher
    from_records = signatures_from_records(records, hasher)
    from_batches = signatures_from_batches(shard_set.iter_batches(columns=SIGNATURE_COLUMNS), hasher)
    from_files = signatures_of_files(shard_set.shard_paths, len(shard_set), hasher)
    assert per_row(from_batches) == per_row(from_records) == per_row(from_files)
    # One entry per distinct normalised text: "d-same-bytes-same-question" shares "a-original"'s.
    assert len(from_records.texts) == len(set(per_row(from_records)["text"])) < len(records)
    assert from_records.texts.to_pylist()[from_records.text_index[0]] == normalize_text(QUESTION)
    assert from_files.nbytes < 250 * len(records)  # compact: no images, no records
    with pytest.raises(ValueError, match="hold 12 rows, expected 13"):
        signatures_of_files(shard_set.shard_paths, 13, hasher)
    with pytest.raises(ValueError, match="more than the 11 rows expected"):
        signatures_of_files(shard_set.shard_paths, 11, hasher)


def test_without_leaves_out_ids_and_keeps_the_rest_as_they_were(records) -> None:
    sigs = signatures_from_records(records, NearDedup().hasher)
    assert sigs.without(set()) is sigs and sigs.without({"t/no-such-id"}) is sigs
    rest = sigs.without({"t/a-original", "t/h-poem-punctuated"})
    expected = {name: [v for i, v in enumerate(values) if i not in (0, 9)] for name, values in per_row(sigs).items()}
    assert per_row(rest) == expected
    assert rest.texts is sigs.texts and rest.minhash is sigs.minhash  # the text table is shared, not copied


def test_missing_columns_and_empty_input() -> None:
    with pytest.raises(ValueError, match="missing"):
        signatures_from_batches([pa.record_batch({"id": ["t/1"]})])
    empty = signatures_from_batches([])
    assert len(empty) == 0
    assert (
        ExactDedup().plan(empty).drops == {}
        and NearDedup().plan(signatures_from_batches([], NearDedup().hasher)).drops == {}
    )


def test_params_are_validated() -> None:
    with pytest.raises(ValueError, match="max_hamming"):
        NearDedupParams(max_hamming=-1)
    with pytest.raises(ValueError, match="bands"):
        NearDedupParams(bands=20, rows=4)
    with pytest.raises(ValueError, match="extra"):
        NearDedupParams(max_haming=3)


def synthetic_signatures(phash: np.ndarray, texts: list[str], near: NearDedup, pixels: int = 100) -> Signatures:
    """Image rows with the given perceptual hashes and questions (one text entry per row)."""
    n = len(phash)
    normalized = pa.array([normalize_text(t) for t in texts], pa.large_string())
    return Signatures(
        ids=pa.array([f"s/{i:06d}" for i in range(n)]),
        has_image=np.ones(n, bool),
        image_key=np.arange(n, dtype=np.uint64),
        phash=phash.astype(np.uint64),
        pixels=np.full(n, pixels, np.int64),
        text_key=np.array([xxhash.xxh3_64_intdigest(t.encode()) for t in normalized.to_pylist()], dtype=np.uint64),
        text_index=np.arange(n),
        texts=normalized,
        minhash=near.hasher.signatures(normalized),
    )


def test_one_template_asked_of_many_images_stays_cheap() -> None:
    # 20K different images, all asked the same question (LLaVA-558K's caption prompts, DVQA's
    # templates): only images within max_hamming are candidates, not all 2e8 same-question pairs.
    near = NearDedup()
    rng = np.random.default_rng(0)
    phash = rng.integers(0, 2**64, size=20_000, dtype=np.uint64)
    phash[-1] = phash[0] ^ np.uint64(0b101)  # one planted near copy
    phash[100:400] = phash[99]  # 301 identical images: one cluster, found without 45K pairs
    plan = near.plan(synthetic_signatures(phash, ["Render a clear and concise summary of the photo."] * 20_000, near))
    assert set(plan.drops) == {"s/019999"} | {f"s/{i:06d}" for i in range(100, 400)}
    assert plan.stats["pairs"] < 1000


def test_question_similarity_is_checked_per_pair_not_per_cluster() -> None:
    # a ~ b and b ~ c as questions, so all three share a question cluster, but a and c are not
    # similar. Only a and c have close images: no pair qualifies, nothing is dropped.
    near = NearDedup(NearDedupParams(min_jaccard=0.6))
    a = "what is the value of the largest bar in the chart shown above"
    b = "what is the value of the largest bar in the graph shown here"
    c = "what is the value of the tallest bar in the graph shown here"
    phash = np.array([7, 2**63 + 12345, 7 ^ (1 << 20)], dtype=np.uint64)
    sigs = synthetic_signatures(phash, [a, b, c], near)
    assert near.similar(sigs, np.array([0, 1, 0]), np.array([1, 2, 2])).tolist() == [True, True, False]
    assert near.plan(sigs).drops == {}
    # Move b's image next to a's and c's far away: a-b is now a pair, the only one.
    sigs.phash[1], sigs.phash[2] = 7 ^ (1 << 40), 2**62 + 999
    assert set(near.plan(sigs).drops) == {"s/000001"}


def test_the_exact_jaccard_decides_not_the_minhash_estimate() -> None:
    # Pairs of questions one word apart whose MinHash estimate falls on the other side of
    # min_jaccard from their exact shingle Jaccard: the exact value decides.
    near = NearDedup(NearDedupParams(min_jaccard=0.75))
    rng = np.random.default_rng(3)
    words = np.array(
        "what which how many value largest smallest bar line chart graph shown above here in the of is are".split()
    )
    left = [" ".join(rng.choice(words, 12)) for _ in range(3000)]
    right = [" ".join(np.where(np.arange(12) == rng.integers(12), "x", q.split())) for q in left]
    texts = pa.array([normalize_text(t) for t in left + right], pa.large_string())
    exact = shingle_jaccard(texts.slice(0, 3000), texts.slice(3000), 5)
    signatures = near.hasher.signatures(texts)
    estimate = estimated_jaccard(signatures, np.arange(3000), np.arange(3000, 6000))
    above, below = (
        np.flatnonzero((exact >= 0.75) & (estimate < 0.75)),
        np.flatnonzero((exact < 0.75) & (estimate >= 0.75)),
    )
    assert above.size and below.size
    pairs = np.r_[above[:1], below[:1]]
    texts = [left[pairs[0]], right[pairs[0]], left[pairs[1]], right[pairs[1]]]
    # Same images in each pair: only the questions decide.
    sigs = synthetic_signatures(np.array([1, 1, 2**40, 2**40], dtype=np.uint64), texts, near)
    assert set(near.plan(sigs).drops) == {"s/000001"}


def test_exact_dedup_finds_the_same_pairs_as_sorting_everything() -> None:
    rng = np.random.default_rng(4)
    n = 20_000
    sigs = synthetic_signatures(rng.integers(0, 2**64, n, dtype=np.uint64), [f"q{i}" for i in range(n)], NearDedup())
    sigs.image_key = rng.integers(0, 2**64, n, dtype=np.uint64)
    copies = rng.choice(n, size=(300, 2), replace=False)  # 300 planted copies, some sharing only the image or the text
    sigs.image_key[copies[:, 1]] = sigs.image_key[copies[:, 0]]
    sigs.text_key[copies[:200, 1]] = sigs.text_key[copies[:200, 0]]
    sigs.has_image[copies[150:200, 1]] = False  # the same image key and text, but one row has no image
    groups: dict[tuple, list[int]] = {}
    for row, key in enumerate(zip(sigs.has_image.tolist(), sigs.image_key.tolist(), sigs.text_key.tolist())):
        groups.setdefault(key, []).append(row)
    expected = {f"s/{row:06d}" for rows in groups.values() for row in sorted(rows)[1:]}
    assert set(ExactDedup().plan(sigs).drops) == expected and len(expected) == 150
