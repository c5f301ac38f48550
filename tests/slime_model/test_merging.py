"""Splicing variable-length visual tokens into padded text, both padding sides."""

from __future__ import annotations

import pytest
import torch

from slime_model.merging import IGNORE_INDEX, image_placeholder_mask, merge_visual_tokens

IMG = 99


def _batch():
    # sample 0: [t1 IMG t2 pad]; sample 1: [t3 t4 t5 IMG] (right padded)
    input_ids = torch.tensor([[1, IMG, 2, 0], [3, 4, 5, IMG]])
    attention_mask = torch.tensor([[1, 1, 1, 0], [1, 1, 1, 1]])
    text = input_ids.float().unsqueeze(-1).repeat(1, 1, 2)  # embedding = token id, [B, L, 2]
    # image 0 keeps tokens 100, 102 (101 dropped); image 1 keeps 200 only
    visual = torch.tensor([[100.0, 101.0, 102.0], [200.0, 201.0, 202.0]]).unsqueeze(-1).repeat(1, 1, 2)
    valid = torch.tensor([[True, False, True], [True, False, False]])
    labels = torch.tensor([[IGNORE_INDEX, IGNORE_INDEX, 2, IGNORE_INDEX], [IGNORE_INDEX, 4, 5, IGNORE_INDEX]])
    return input_ids, attention_mask, text, visual, valid, labels


def test_right_padding_layout():
    input_ids, attention_mask, text, visual, valid, labels = _batch()
    is_image = image_placeholder_mask(input_ids, IMG, 2)
    merged = merge_visual_tokens(text, is_image, attention_mask, labels, visual, valid, "right")
    assert merged.inputs_embeds[..., 0].tolist() == [[1, 100, 102, 2], [3, 4, 5, 200]]
    assert merged.attention_mask.tolist() == [[1, 1, 1, 1], [1, 1, 1, 1]]
    assert merged.labels.tolist() == [[IGNORE_INDEX, IGNORE_INDEX, IGNORE_INDEX, 2], [IGNORE_INDEX, 4, 5, IGNORE_INDEX]]
    assert merged.position_ids.tolist() == [[0, 1, 2, 3], [0, 1, 2, 3]]
    assert merged.visual_mask.tolist() == [[False, True, True, False], [False, False, False, True]]


def test_left_padding_and_uneven_lengths():
    input_ids, attention_mask, text, visual, valid, labels = _batch()
    valid[0] = True  # image 0 now contributes 3 tokens: sample 0 has 5, sample 1 has 4
    is_image = image_placeholder_mask(input_ids, IMG, 2)
    merged = merge_visual_tokens(text, is_image, attention_mask, None, visual, valid, "left")
    assert merged.inputs_embeds[..., 0].tolist() == [[1, 100, 101, 102, 2], [0, 3, 4, 5, 200]]
    assert merged.attention_mask.tolist() == [[1, 1, 1, 1, 1], [0, 1, 1, 1, 1]]
    assert merged.position_ids.tolist() == [[0, 1, 2, 3, 4], [0, 0, 1, 2, 3]]
    assert merged.labels is None


def test_text_only_rows_and_left_padded_input():
    input_ids = torch.tensor([[0, 0, 7, 8], [0, IMG, 9, 10]])
    attention_mask = torch.tensor([[0, 0, 1, 1], [0, 1, 1, 1]])
    text = input_ids.float().unsqueeze(-1)
    visual = torch.tensor([[[50.0], [51.0]]])
    valid = torch.ones(1, 2, dtype=torch.bool)
    merged = merge_visual_tokens(text, input_ids == IMG, attention_mask, None, visual, valid, "left")
    assert merged.inputs_embeds[..., 0].tolist() == [[0, 0, 7, 8], [50, 51, 9, 10]]
    assert merged.attention_mask.tolist() == [[0, 0, 1, 1], [1, 1, 1, 1]]


def test_gradients_flow_to_visual_and_text_embeddings():
    input_ids, attention_mask, text, visual, valid, labels = _batch()
    text.requires_grad_(True)
    visual.requires_grad_(True)
    merged = merge_visual_tokens(text, input_ids == IMG, attention_mask, labels, visual, valid, "right")
    merged.inputs_embeds.sum().backward()
    assert visual.grad[valid].eq(1).all() and visual.grad[~valid].eq(0).all()
    assert text.grad[0, 3].eq(0).all() and text.grad[0, 0].eq(1).all()  # padding does not enter


def test_placeholder_count_mismatch_names_both_counts():
    with pytest.raises(ValueError, match=r"2 image placeholder token\(s\).*but 1 image"):
        image_placeholder_mask(torch.tensor([[IMG, 1, IMG]]), IMG, 1)
