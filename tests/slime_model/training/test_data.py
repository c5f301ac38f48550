"""The stage stream and the collator: seeded order, rank/worker split, resume position, length
grouping, crops per sample, bad images, text-only batches."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from slime_data.mix.manifest import load_mix_manifest
from slime_data.shards import ShardSet
from slime_model.merging import IGNORE_INDEX
from slime_model.training.collate import Collator
from slime_model.training.data import EpochOrder, RankSlice, StageStream, make_loader
from slime_model.training.recipe import DataSpec
from tests.slime_model.training.training_helpers import color_png, synthetic_records

SPEC = DataSpec(shuffle=True, shuffle_buffer=8, num_workers=0)


def test_epoch_order_is_seeded_per_epoch_and_shuffles_shard_order_then_a_buffer():
    positions = np.arange(32)
    order = EpochOrder([8, 8, 8, 8], (0, 1), epoch=0, spec=SPEC, global_micro_batch=4).rows(positions)
    assert sorted(order.tolist()) == list(range(32))
    assert order.tolist() == EpochOrder([8, 8, 8, 8], (0, 1), 0, SPEC, 4).rows(positions).tolist()
    assert order.tolist() != EpochOrder([8, 8, 8, 8], (0, 1), 1, SPEC, 4).rows(positions).tolist()
    assert order.tolist() != EpochOrder([8, 8, 8, 8], (0, 2), 0, SPEC, 4).rows(positions).tolist()
    # A buffer of one shard's size: each buffer holds the rows of exactly one shard, shuffled;
    # the shards come in an order that depends on the seed.
    windows = order.reshape(4, 8)
    assert all(len(set(window // 8)) == 1 for window in windows)
    assert any(window.tolist() != sorted(window.tolist()) for window in windows)
    shard_orders = {tuple(EpochOrder([8, 8, 8, 8], (s,), 0, SPEC, 4).rows(positions)[::8] // 8) for s in range(5)}
    assert len(shard_orders) > 1
    plain = EpochOrder([8, 8, 8, 8], (0, 1), 0, DataSpec(shuffle=False), 4).rows(positions)
    assert plain.tolist() == list(range(32))


def test_ranks_read_disjoint_slices_and_drop_only_the_last_partial_global_batch():
    spec = DataSpec(shuffle=True, shuffle_buffer=10)
    rows_seen = []
    for rank in range(3):
        layout = RankSlice((9, 9, 8), micro_batch=2, world_size=3, rank=rank)
        stream = StageStream(None, layout, spec, (0, 1), start=0, stop=layout.micro_batches_per_epoch, collate=None)
        order = stream.order(0)
        rows_seen += [
            row for m in range(layout.micro_batches_per_epoch) for row in stream.micro_batch_rows(m, order).tolist()
        ]
    assert layout.micro_batches_per_epoch == 4  # 26 rows // (2 × 3)
    assert len(rows_seen) == len(set(rows_seen)) == 24


def _ids(m, rows):
    return m, [row["id"] for row in rows]


def _stream(tiny_mix, start, stop, spec=SPEC, micro_batch=2):
    stage = load_mix_manifest(tiny_mix).stage_dir("sft")
    rows = tuple(s["rows"] for s in ShardSet(stage).manifest["shards"])
    return StageStream(stage, RankSlice(rows, micro_batch, 1, 0), spec, (0, 1), start=start, stop=stop, collate=_ids)


def test_read_returns_the_rows_asked_for_across_shards(tiny_mix):
    stream = _stream(tiny_mix, 0, 1)
    rows = np.array([23, 0, 9, 8, 15])  # three shards of 8 rows
    expected = [ShardSet(stream.stage_dir).row(i)["id"] for i in rows.tolist()]
    read = stream.read(rows)
    assert [r["id"] for r in read] == expected
    assert set(read[0]) == {"id", "conversations", "image"} and read[1]["conversations"][0]["from"] == "human"


def test_workers_keep_the_order_and_a_resumed_stream_repeats_the_tail(tiny_mix):
    full = list(make_loader(_stream(tiny_mix, 0, 30), num_workers=0))  # 12 micro-batches per epoch: crosses two epochs
    assert [m for m, _ in full] == list(range(30))
    assert list(make_loader(_stream(tiny_mix, 0, 30), num_workers=2)) == full
    assert list(make_loader(_stream(tiny_mix, 17, 30), num_workers=2)) == full[17:]
    first, second = [i for _, ids in full[:12] for i in ids], [i for _, ids in full[12:24] for i in ids]
    assert sorted(first) == sorted(second) and first != second  # every row once per epoch, in a new order


def test_group_by_length_makes_global_micro_batches_of_similar_length():
    lengths = np.random.default_rng(0).integers(10, 1000, 512)
    spreads = {}
    for grouped in (False, True):
        spec = DataSpec(shuffle=True, shuffle_buffer=512, group_by_length=grouped)
        order = EpochOrder([512], (0, 1), 0, spec, global_micro_batch=4, lengths=lambda rows: lengths[rows]).rows(
            np.arange(512)
        )
        assert sorted(order.tolist()) == list(range(512))
        spreads[grouped] = np.mean([np.ptp(lengths[block]) for block in order.reshape(-1, 4)])
    assert spreads[True] < spreads[False] / 4


def _row(record):
    row = record.to_row()
    return {"id": row["id"], "conversations": row["conversations"], "image": row["image"]}


def test_collator_keeps_each_samples_crops_without_padding_and_drops_bad_images(processor):
    records = synthetic_records("vqa", 6, seed=3, corrupt=(2,))
    batch = Collator(processor, max_length=1024)(5, [_row(r) for r in records])
    assert batch.index == 5
    assert batch.dropped == [("vqa/2", "image_unreadable: OSError")]
    assert batch.ids == [r.id for i, r in enumerate(records) if i != 2]
    grids = batch.inputs["image_grids"]
    assert len(grids) == 5 and len(set(map(tuple, grids.tolist()))) > 1  # different crop counts per sample
    assert batch.inputs["pixel_values"].shape[0] == int((1 + grids[:, 0] * grids[:, 1]).sum())
    assert not batch.dummy_image and batch.label_tokens > 0


def test_a_batch_without_images_gets_a_dummy_image_that_carries_no_label(processor):
    text_only = [r for r in synthetic_records("vqa", 4, text_only_every=1)]
    batch = Collator(processor, max_length=1024)(0, [_row(r) for r in text_only])
    assert batch.dummy_image and batch.ids == [r.id for r in text_only]
    assert batch.inputs["input_ids"].shape[0] == 5 and len(batch.inputs["image_grids"]) == 1
    assert (batch.inputs["labels"][-1] == IGNORE_INDEX).all() and batch.label_tokens > 0

    broken = Collator(processor, max_length=1024)(0, [_row(r) for r in synthetic_records("vqa", 2, corrupt=(0, 1))])
    assert broken.ids == [] and broken.dummy_image and broken.label_tokens == 0 and len(broken.dropped) == 2


def test_a_sample_that_cannot_fit_max_length_is_dropped_not_fatal(processor):
    # 64 global + 1 + 16 per crop visual tokens: a 336² image (7 crops, 177 tokens) leaves too few
    # text positions in 200 for the system prompt before its placeholder; 60² images (2 crops) fit.
    sizes = [(60, 60), (336, 336), (60, 60)]
    rows = [
        {
            "id": f"vqa/{i}",
            "conversations": [{"from": "human", "value": "<image>\nColour?"}, {"from": "gpt", "value": "red"}],
            "image": {"bytes": color_png("red", w, h), "path": None},
        }
        for i, (w, h) in enumerate(sizes)
    ]
    batch = Collator(processor, max_length=200)(0, rows)
    assert [i for i, _ in batch.dropped] == ["vqa/1"] and batch.dropped[0][1].startswith("unencodable")
    assert batch.ids == ["vqa/0", "vqa/2"]


def test_micro_batch_moves_to_a_device(processor):
    batch = Collator(processor, max_length=1024)(0, [_row(r) for r in synthetic_records("vqa", 2)])
    moved = batch.to(torch.device("cpu"))
    assert set(moved) == {"input_ids", "attention_mask", "selector_text_mask", "pixel_values", "image_grids", "labels"}
    with pytest.raises(ValueError, match="fewer than one global micro-batch"):
        StageStream(None, RankSlice((3,), 2, 2, 0), SPEC, (0,), 0, 1, collate=None)
