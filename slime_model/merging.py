"""Splice a variable number of visual tokens per image into the text sequence, batched.

The number of visual tokens of an image is only known in the forward pass (the selector's top-p
decides how many local tokens stay), so the processor writes one `<image>` placeholder and the
model replaces it here. This is LLaVA's `prepare_inputs_labels_for_multimodal` without its loops:
every token gets a width (1 for text, 0 for padding, the image's token count for a placeholder),
an exclusive cumulative sum of widths gives each token's position in the new sequence, and one
`index_put` writes text and visual embeddings at once. Padding is rebuilt on the requested side.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch

IGNORE_INDEX = -100


@dataclass
class MergedSequence:
    inputs_embeds: torch.Tensor  # [B, L', H]
    attention_mask: torch.Tensor  # [B, L'] long, 1 for real tokens
    position_ids: torch.Tensor  # [B, L'] 0… per sample over its real tokens
    labels: torch.Tensor | None  # [B, L'], IGNORE_INDEX on visual tokens and padding
    visual_mask: torch.Tensor  # [B, L'] bool, True on visual tokens


def image_placeholder_mask(input_ids: torch.Tensor, image_token_id: int, num_images: int) -> torch.Tensor:
    """Bool [B, L] of `<image>` placeholders; a loud error when their count differs from the images given."""
    is_image = input_ids == image_token_id
    num_placeholders = int(is_image.sum())
    if num_placeholders != num_images:
        raise ValueError(
            f"the batch has {num_placeholders} image placeholder token(s) (id {image_token_id}) "
            f"but {num_images} image(s) of features; each image needs exactly one placeholder"
        )
    return is_image


def merge_visual_tokens(
    text_embeds: torch.Tensor,
    is_image: torch.Tensor,
    attention_mask: torch.Tensor,
    labels: torch.Tensor | None,
    visual_embeds: torch.Tensor,
    visual_valid: torch.Tensor,
    padding_side: Literal["left", "right"],
) -> MergedSequence:
    """Replace each placeholder by its image's valid visual tokens, in order.

    text_embeds [B, L, H]; is_image / attention_mask / labels [B, L]; visual_embeds [I, V, H] with
    visual_valid [I, V] marking the tokens of each image (kept in their order, gaps closed). Images
    are matched to placeholders in row-major order of `is_image`.
    """
    batch, _, hidden = text_embeds.shape
    device = text_embeds.device
    real = attention_mask.bool() | is_image
    tokens_per_image = visual_valid.sum(dim=1)  # [I]

    # New position of every token: exclusive cumulative sum of widths along the row.
    widths = real.long().masked_scatter(is_image, tokens_per_image)  # [B, L]
    ends = widths.cumsum(dim=1)
    lengths = ends[:, -1]  # [B] tokens of each merged sample
    new_length = int(lengths.max()) if batch else 0
    # Left padding shifts each row right by its missing length.
    offsets = (new_length - lengths) if padding_side == "left" else torch.zeros_like(lengths)  # [B]
    starts = ends - widths + offsets.unsqueeze(1)

    text_rows, text_cols = (real & ~is_image).nonzero(as_tuple=True)
    text_dest = starts[text_rows, text_cols]

    image_rows, image_cols = is_image.nonzero(as_tuple=True)  # [I], row-major = image order
    image_starts = starts[image_rows, image_cols]  # [I]
    within_image = visual_valid.long().cumsum(dim=1) - 1  # [I, V] rank among the image's kept tokens
    image_idx, token_idx = visual_valid.nonzero(as_tuple=True)
    visual_rows = image_rows[image_idx]
    visual_dest = image_starts[image_idx] + within_image[image_idx, token_idx]

    rows = torch.cat([text_rows, visual_rows])
    dest = torch.cat([text_dest, visual_dest])
    values = torch.cat([text_embeds[text_rows, text_cols], visual_embeds[image_idx, token_idx].to(text_embeds.dtype)])
    inputs_embeds = text_embeds.new_zeros(batch, new_length, hidden).index_put((rows, dest), values)

    positions = torch.arange(new_length, device=device).unsqueeze(0)  # [1, L']
    new_mask = (positions >= offsets.unsqueeze(1)) & (positions < (offsets + lengths).unsqueeze(1))
    visual_mask = torch.zeros(batch, new_length, dtype=torch.bool, device=device)
    visual_mask[visual_rows, visual_dest] = True

    new_labels = None
    if labels is not None:
        new_labels = torch.full((batch, new_length), IGNORE_INDEX, dtype=labels.dtype, device=device)
        new_labels[text_rows, text_dest] = labels[text_rows, text_cols]

    return MergedSequence(
        inputs_embeds=inputs_embeds,
        attention_mask=new_mask.long(),
        position_ids=(new_mask.long().cumsum(dim=1) - 1).clamp(min=0),
        labels=new_labels,
        visual_mask=visual_mask,
    )
