"""A per-sample forward pass with the released code's structure, kept as an executable specification.

It mirrors `LlavaMetaForCausalLM.encode_images` + `prepare_inputs_labels_for_multimodal` of the
released SliME code: padding removed per sample, CLIP called once per image, the local tokens laid
out with `view(rows, cols, g, g, -1).permute(0, 2, 1, 3, 4)`, the cosine selector computed as a
full [local × text] similarity matrix with `torch.nonzero` for top-p, the sequence rebuilt by list
concatenation and re-padded on the right. It reuses the model's modules, so with the same weights
it must give the same logits as `SliMEForConditionalGeneration.forward` (the tests check it), and
it is the baseline of `benchmarks/bench_model.py`. Do not use it for training.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from slime_model.merging import IGNORE_INDEX
from slime_model.modeling import SliMEForConditionalGeneration


def released_top_p(
    local: torch.Tensor, user_embeds: torch.Tensor, top_p: float, temperature: float, noise_std: float
) -> torch.Tensor:
    """Indices of the kept local tokens, [N, H] x [T, H] -> [k], the released TextGuidedSampler.

    Its rule as released, cumulative sum in float32: at top-p 1.0 a peaked softmax can drop tokens
    here, which `adapters.select_top_p` does not (it keeps all at top-p >= 1)."""
    similarity = F.cosine_similarity(local.float().unsqueeze(1), user_embeds.float().unsqueeze(0), dim=-1).sum(dim=-1)
    if noise_std > 0:
        similarity = similarity + torch.randn_like(similarity) * noise_std
    probs = (similarity / temperature).softmax(dim=-1)
    sorted_probs, sorted_indices = probs.sort(descending=True, stable=True)
    selected = (sorted_probs.cumsum(dim=0) <= top_p).nonzero(as_tuple=True)[0]
    if selected.numel() < sorted_indices.numel():
        selected = sorted_indices[: selected.numel() + 1]
    return selected.sort().values


def reference_merge(
    model: SliMEForConditionalGeneration,
    input_ids: torch.Tensor,
    attention_mask: torch.Tensor,
    pixel_values: torch.Tensor,
    image_grids: torch.Tensor,
    selector_text_mask: torch.Tensor,
    labels: torch.Tensor | None = None,
    pad_crops_to: int | None = None,
) -> dict[str, torch.Tensor]:
    """Loop over samples and images; returns the merged, right-padded inputs_embeds, attention_mask,
    labels and position_ids.

    pad_crops_to: pad every image to this many crops with black ones that go through CLIP, the
    local resampler and the MLP and are dropped afterwards (the released data pipeline pads to 10
    and masks them out with `images_mask`).
    """
    inner, config = model.model, model.config
    branch = config.branch
    side = inner.local_resampler.grid_side
    separator = inner.get_input_embeddings()(
        torch.tensor([config.separator_token_id], device=input_ids.device)
    )  # [1, H]
    noise_std = config.selector_noise_std if model.training else 0.0
    crops = torch.split(pixel_values, (1 + image_grids[:, 0] * image_grids[:, 1]).tolist())
    labels = labels if labels is not None else torch.full_like(input_ids, IGNORE_INDEX)

    sequences, sequence_labels, image_index = [], [], 0
    for row in range(input_ids.shape[0]):
        keep = attention_mask[row].bool()
        ids, row_labels, user = input_ids[row][keep], labels[row][keep], selector_text_mask[row][keep]
        text_embeds = inner.embed_text(ids)
        user_embeds = text_embeds[user & (ids != config.image_token_id)]
        placeholders = torch.where(ids == config.image_token_id)[0].tolist()
        bounds = [-1, *placeholders, len(ids)]
        pieces, piece_labels = [], []
        for k in range(len(bounds) - 1):
            span = slice(bounds[k] + 1, bounds[k + 1])
            pieces.append(text_embeds[span])
            piece_labels.append(row_labels[span])
            if k == len(placeholders):
                break
            image_crops = crops[image_index]
            if pad_crops_to is not None:
                image_crops = torch.cat(
                    [image_crops, image_crops.new_zeros(pad_crops_to - len(image_crops), *image_crops.shape[1:])]
                )
            features = inner.vision_features(image_crops)  # one CLIP call per image
            rows, cols = image_grids[image_index].tolist()
            tokens = []
            if branch in ("global", "both"):
                tokens.append(inner.global_tokens(features[:1])[0][0])
            if branch == "both":
                tokens.append(separator)
            if branch in ("local", "both"):
                local = inner.projector(inner.local_resampler(features[1:]))[: rows * cols]  # [rows·cols, g², H]
                local = (
                    local.view(rows, cols, side, side, -1).permute(0, 2, 1, 3, 4).reshape(rows * cols * side * side, -1)
                )
                top_p = config.selector_top_p(model.training)
                tokens.append(local[released_top_p(local, user_embeds, top_p, config.selector_temperature, noise_std)])
            visual = torch.cat(tokens)
            pieces.append(visual)
            piece_labels.append(torch.full((visual.shape[0],), IGNORE_INDEX, dtype=labels.dtype, device=labels.device))
            image_index += 1
        sequences.append(torch.cat(pieces))
        sequence_labels.append(torch.cat(piece_labels))

    length = max(seq.shape[0] for seq in sequences)
    hidden = sequences[0].shape[-1]
    return {
        "inputs_embeds": torch.stack(
            [torch.cat([seq, seq.new_zeros(length - seq.shape[0], hidden)]) for seq in sequences]
        ),
        "labels": torch.stack([F.pad(lab, (0, length - lab.shape[0]), value=IGNORE_INDEX) for lab in sequence_labels]),
        "attention_mask": torch.stack(
            [F.pad(torch.ones_like(lab), (0, length - lab.shape[0])) for lab in sequence_labels]
        ),
        "position_ids": torch.arange(length, device=input_ids.device).unsqueeze(0).expand(len(sequences), -1),
    }


def reference_forward(
    model: SliMEForConditionalGeneration, *inputs: torch.Tensor, pad_crops_to: int | None = None
) -> dict[str, torch.Tensor]:
    """`reference_merge` then the LLM; inputs as for `reference_merge`. Returns logits, the merged
    attention_mask and labels, and the loss."""
    merged = reference_merge(model, *inputs, pad_crops_to=pad_crops_to)
    hidden_states = model.model.language_model(
        inputs_embeds=merged["inputs_embeds"],
        attention_mask=merged["attention_mask"],
        position_ids=merged["position_ids"],
    ).last_hidden_state
    logits = model.lm_head(hidden_states)
    loss = model.loss_function(logits=logits, labels=merged["labels"], vocab_size=model.config.text_config.vocab_size)
    return {"logits": logits, "attention_mask": merged["attention_mask"], "labels": merged["labels"], "loss": loss}
