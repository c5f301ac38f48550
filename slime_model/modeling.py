"""SliME as a transformers model: `SliMEModel` (vision tower, adapters, LLM) and
`SliMEForConditionalGeneration` (+ LM head, loss, `generate`).

Forward pass for a batch (shapes for the released 336 px / 576-token setting):

1. Every crop of every image goes through CLIP in one call: pixel_values [T, 3, 336, 336] ->
   patch features [T, 576, 1024] from `vision_feature_layer`. Crops a branch does not use are not
   encoded, and no crop is padded: T is exactly the number of crops of the batch.
2. Global views [I, 576, 1024] -> mixture of adapters -> [I, 576, H]: expert 0 = MLP(x), expert 1 =
   MLP(resampler(x)), mixed per token by the noisy gate.
3. Local crops [C, 576, 1024] -> local resampler [C, 144, 1024] -> MLP [C, 144, H], laid out per image
   in raster order over the whole image (the released "spatial" merge) into [I, 7·144, H] + mask.
4. Selector: cosine similarity of each local token with the LLM input embeddings of the user-turn
   tokens of its sample (`selector_text_mask`; `selector_text="whole_prompt"`: every unlabelled text
   token, as released), summed over those tokens, softmax, top-p + 1; no such text: keep all.
5. Each image becomes `[global][separator][kept local]` and replaces its `<image>` placeholder
   (`merging.merge_visual_tokens`); the LLM runs on the merged embeddings.

Why the selector sees user turns only: the released code feeds it the whole conversation, answers
included, while training, which lets the answer choose the visual evidence (a leak that does not
exist at inference). The processor marks user-turn text tokens in `selector_text_mask`; when it is
missing, or with `selector_text="whole_prompt"` (converted checkpoints, to reproduce the released
inference), the model uses every text token without a label (the prompt), never answer tokens.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn
from transformers import AutoModel, AutoModelForImageTextToText, GenerationMixin, PreTrainedModel
from transformers import initialization as init
from transformers.cache_utils import Cache
from transformers.modeling_outputs import BaseModelOutputWithPast, CausalLMOutputWithPast

from slime_model.adapters import (
    MLPProjector,
    NoisyGate,
    Resampler,
    select_top_p,
    sincos_position_embedding_2d,
)
from slime_model.configuration import BRANCHES, GLOBAL_EXPERTS, NUM_GLOBAL_EXPERTS, SliMEConfig
from slime_model.merging import IGNORE_INDEX, MergedSequence, image_placeholder_mask, merge_visual_tokens

# Named parameter groups used by the stage recipes, by parameter-name prefix.
PARAMETER_GROUPS: dict[str, tuple[str, ...]] = {
    "vision": ("model.vision_tower.",),
    "global.mlp": ("model.projector.",),
    "global.resampler": ("model.global_resampler.",),
    "global.gate": ("model.gate.",),
    "local.compressor": ("model.local_resampler.",),
    "llm": ("model.language_model.", "lm_head."),
}


@dataclass
class VisualTokens:
    embeds: torch.Tensor  # [I, V, H] per image: [global][separator][local], padded
    valid: torch.Tensor  # [I, V] bool: the tokens that enter the sequence
    local_keep_ratio: torch.Tensor | None  # [I] share of local tokens the selector kept
    gate_weights: torch.Tensor | None  # [num_experts] mean mixing weight of the global experts


@dataclass
class SliMEModelOutputWithPast(BaseModelOutputWithPast):
    """The LLM output plus the merged sequence's mask and labels and the visual-token statistics."""

    attention_mask: torch.Tensor | None = None
    labels: torch.Tensor | None = None
    image_token_counts: torch.Tensor | None = None
    local_keep_ratio: torch.Tensor | None = None
    gate_weights: torch.Tensor | None = None


@dataclass
class SliMECausalLMOutputWithPast(CausalLMOutputWithPast):
    r"""
    logits: [B, L', V]; with `labelled_logits_only`, [N, V] at the N positions whose next token is
        labelled, in row-major order.
    attention_mask: mask of the merged sequence the logits belong to, [B, L'].
    image_token_counts: visual tokens that replaced each image's placeholder, [num_images].
    local_keep_ratio: share of each image's local tokens kept by the selector, [num_images].
    gate_weights: mean mixing weight per global expert over the batch's global tokens, [2].
    """

    attention_mask: torch.Tensor | None = None
    image_token_counts: torch.Tensor | None = None
    local_keep_ratio: torch.Tensor | None = None
    gate_weights: torch.Tensor | None = None


class SliMEPreTrainedModel(PreTrainedModel):
    config_class = SliMEConfig  # explicit: with postponed annotations, `config: SliMEConfig` would be a string
    base_model_prefix = "model"
    input_modalities = ("image", "text")
    supports_gradient_checkpointing = True
    _supports_flash_attn = True
    _supports_sdpa = True
    _supports_flex_attn = True
    _supports_attention_backend = True

    @torch.no_grad()
    def _init_weights(self, module: nn.Module) -> None:
        if isinstance(module, nn.MultiheadAttention):
            # The base class would call torch's _reset_parameters, which ignores loaded weights.
            init.xavier_uniform_(module.in_proj_weight)
            init.zeros_(module.in_proj_bias)
            return
        super()._init_weights(module)
        if isinstance(module, Resampler):
            init.trunc_normal_(module.query, std=0.02)
            init.copy_(module.pos_embed, sincos_position_embedding_2d(module.query.shape[1], module.grid_side))
        elif isinstance(module, NoisyGate):
            init.zeros_(module.w_gate)
            init.zeros_(module.w_noise)


class SliMEModel(SliMEPreTrainedModel):
    """Vision tower + adapters + LLM body; returns hidden states of the merged sequence."""

    def __init__(self, config: SliMEConfig) -> None:
        super().__init__(config)
        vision_dim, llm_dim = config.vision_config.hidden_size, config.text_config.hidden_size
        heads = config.num_resampler_heads
        global_side = config.vision_config.image_size // config.vision_config.patch_size
        local_side = int(config.local_num_queries**0.5)
        self.vision_tower = AutoModel.from_config(config.vision_config)
        self.projector = MLPProjector(vision_dim, llm_dim, config.projector_hidden_act)
        self.global_resampler = Resampler(global_side, vision_dim, heads, vision_dim)
        self.gate = NoisyGate(vision_dim, NUM_GLOBAL_EXPERTS)
        self.local_resampler = Resampler(local_side, vision_dim, heads, vision_dim)
        self.language_model = AutoModel.from_config(config.text_config)
        self.post_init()

    # ---- branches -----------------------------------------------------------------------------
    def vision_features(self, pixel_values: torch.Tensor) -> torch.Tensor:
        """[T, 3, S, S] -> CLIP patch features [T, P, vision_dim] (CLS dropped)."""
        outputs = self.vision_tower(pixel_values.to(self.vision_tower.dtype), output_hidden_states=True)
        return outputs.hidden_states[self.config.vision_feature_layer][:, 1:]

    def global_tokens(self, features: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Mixture of adapters, [I, P, vision_dim] -> ([I, P, H], mean gate weights [2] or None)."""
        config = self.config
        expert = config.global_expert
        if expert == "mlp":
            return self.projector(features), None
        if expert == "resampler":
            return self.projector(self.global_resampler(features)), None
        # One MLP call for both experts: [I, 2P, vision_dim] -> [I, 2P, H].
        projected = self.projector(torch.cat([features, self.global_resampler(features)], dim=1))
        mlp_out, resampler_out = projected.chunk(2, dim=1)
        weights = self.gate(
            features,
            noisy=self.training and config.gate_noise,
            top_k=config.gate_top_k,
            noise_source=config.gate_noise_source,
            epsilon=config.gate_noise_epsilon,
        )
        mixed = weights[..., :1] * mlp_out + weights[..., 1:] * resampler_out  # [I, P, H], float32
        return mixed.to(projected.dtype), weights.mean(dim=(0, 1))

    def local_tokens(self, features: torch.Tensor, image_grids: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Local crops [C, P, vision_dim] -> per image in raster order [I, max_crops·Q, H] + valid mask.

        Crops are ordered image by image, row by row; token (y, x) of crop (r, c) in an image with
        `cols` crops per row lands at ((r·g + y)·cols + c)·g + x, g = √Q: a raster scan of the image.
        """
        tokens = self.projector(self.local_resampler(features))  # [C, Q, H]
        num_queries, side = tokens.shape[1], self.local_resampler.grid_side
        rows, cols = image_grids[:, 0], image_grids[:, 1]
        crops_per_image = rows * cols  # [I]
        image_of_crop = torch.repeat_interleave(torch.arange(len(image_grids), device=tokens.device), crops_per_image)
        first_crop = (crops_per_image.cumsum(0) - crops_per_image)[image_of_crop]
        crop_index = torch.arange(len(image_of_crop), device=tokens.device) - first_crop
        crop_cols = cols[image_of_crop]
        crop_r, crop_c = (crop_index // crop_cols).unsqueeze(1), (crop_index % crop_cols).unsqueeze(1)
        query = torch.arange(num_queries, device=tokens.device)
        token_y, token_x = query // side, query % side
        dest = ((crop_r * side + token_y) * crop_cols.unsqueeze(1) + crop_c) * side + token_x  # [C, Q]
        width = int(crops_per_image.max()) * num_queries
        batch_index = image_of_crop.unsqueeze(1).expand_as(dest)
        padded = tokens.new_zeros(len(image_grids), width, tokens.shape[-1]).index_put((batch_index, dest), tokens)
        valid = torch.zeros(len(image_grids), width, dtype=torch.bool, device=tokens.device)
        valid[batch_index, dest] = True
        return padded, valid

    @torch.no_grad()
    def select_local(self, local: torch.Tensor, valid: torch.Tensor, guide: torch.Tensor) -> torch.Tensor:
        """Selector keep mask [I, N]: Σ_t cos(local_i, text_t) = normalize(local_i) · Σ_t normalize(text_t).

        An image whose sample has no selector text (guide = 0, a sum over no tokens) keeps all its
        local tokens: every score would be 0, and the stable sort would keep the first tokens in
        raster order, dropping the image's bottom rows.
        """
        scores = (F.normalize(local.float(), dim=-1) @ guide.unsqueeze(-1)).squeeze(-1)  # [I, N]
        if self.training and self.config.selector_noise_std > 0:
            scores = scores + torch.randn_like(scores) * self.config.selector_noise_std
        top_p = self.config.selector_top_p(self.training)
        keep = select_top_p(scores, valid, top_p, self.config.selector_temperature)
        unguided = (guide == 0).all(dim=-1, keepdim=True)  # [I, 1]
        return torch.where(unguided, valid, keep)

    def encode_images(self, pixel_values: torch.Tensor, image_grids: torch.Tensor, guide: torch.Tensor) -> VisualTokens:
        """All images of a batch -> their visual token sequences, [I, V, H] + valid mask.

        pixel_values [T, 3, S, S]: per image its global view then rows·cols crops; image_grids [I, 2]
        (rows, cols); guide [I, H]: the selector's text direction for each image's sample.
        """
        crops_per_image = 1 + image_grids[:, 0] * image_grids[:, 1]
        if int(crops_per_image.sum()) != pixel_values.shape[0]:
            raise ValueError(
                f"pixel_values holds {pixel_values.shape[0]} crops but "
                f"image_grids describe {int(crops_per_image.sum())} "
                "(one global view + rows·cols crops per image)"
            )
        is_global = torch.zeros(pixel_values.shape[0], dtype=torch.bool, device=pixel_values.device)
        is_global[crops_per_image.cumsum(0) - crops_per_image] = True
        branch = self.config.branch
        if branch != "both":  # encode only the crops this branch uses
            wanted = is_global if branch == "global" else ~is_global
            pixel_values, is_global = pixel_values[wanted], is_global[wanted]
        features = self.vision_features(pixel_values)

        parts, valids = [], []
        num_images = len(image_grids)
        gate_weights = keep_ratio = None
        if branch in ("global", "both"):
            global_embeds, gate_weights = self.global_tokens(features[is_global])
            parts.append(global_embeds)
            valids.append(torch.ones(global_embeds.shape[:2], dtype=torch.bool, device=global_embeds.device))
        if branch == "both":
            # Through the embedding module, not `.weight[id]`: under ZeRO-3 the weight is only
            # gathered inside the module's forward.
            separator_id = torch.full((1, 1), self.config.separator_token_id, device=pixel_values.device)
            separator = self.get_input_embeddings()(separator_id)  # [1, 1, H]
            parts.append(separator.expand(num_images, 1, -1))
            valids.append(torch.ones(num_images, 1, dtype=torch.bool, device=separator.device))
        if branch in ("local", "both"):
            local, local_valid = self.local_tokens(features[~is_global], image_grids)
            keep = self.select_local(local, local_valid, guide)
            keep_ratio = keep.sum(dim=1) / local_valid.sum(dim=1)
            parts.append(local)
            valids.append(keep)
        return VisualTokens(torch.cat(parts, dim=1), torch.cat(valids, dim=1), keep_ratio, gate_weights)

    # ---- text side ----------------------------------------------------------------------------
    def embed_text(self, input_ids: torch.Tensor) -> torch.Tensor:
        """Token embeddings; `<image>` placeholders (possibly outside the LLM vocabulary) embed as id 0."""
        return self.get_input_embeddings()(input_ids.masked_fill(input_ids == self.config.image_token_id, 0))

    def selector_guide(self, text_embeds: torch.Tensor, selector_text_mask: torch.Tensor) -> torch.Tensor:
        """[B, L, H], [B, L] -> Σ over the marked tokens of the unit text embeddings, [B, H] float32."""
        with torch.no_grad():
            unit = F.normalize(text_embeds.float(), dim=-1)
            return (unit * selector_text_mask.unsqueeze(-1).to(unit.dtype)).sum(dim=1)

    def embed_multimodal(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor,
        pixel_values: torch.Tensor,
        image_grids: torch.Tensor,
        selector_text_mask: torch.Tensor | None,
        labels: torch.Tensor | None,
        padding_side: Literal["left", "right"],
    ) -> tuple[MergedSequence, VisualTokens]:
        """Text + images -> the merged input embeddings, mask, positions and labels."""
        is_image = image_placeholder_mask(input_ids, self.config.image_token_id, len(image_grids))
        text_embeds = self.embed_text(input_ids)
        if selector_text_mask is None or self.config.selector_text == "whole_prompt":
            # Every text token but the labelled answers: at inference, the whole prompt as the released
            # code gives it to its selector; while training, never the answer being predicted.
            selector_text_mask = attention_mask.bool() & ~is_image
            if labels is not None:
                selector_text_mask &= labels == IGNORE_INDEX
        guide = self.selector_guide(text_embeds, selector_text_mask & ~is_image)
        image_rows = is_image.nonzero(as_tuple=True)[0]  # sample of each image, in image order
        visual = self.encode_images(pixel_values, image_grids, guide[image_rows])
        merged = merge_visual_tokens(
            text_embeds, is_image, attention_mask, labels, visual.embeds, visual.valid, padding_side
        )
        return merged, visual

    def forward(
        self,
        input_ids: torch.LongTensor | None = None,
        attention_mask: torch.Tensor | None = None,
        position_ids: torch.LongTensor | None = None,
        cache: Cache | None = None,
        inputs_embeds: torch.Tensor | None = None,
        labels: torch.LongTensor | None = None,
        pixel_values: torch.Tensor | None = None,
        image_grids: torch.LongTensor | None = None,
        selector_text_mask: torch.Tensor | None = None,
        use_cache: bool | None = None,
        **kwargs,
    ) -> SliMEModelOutputWithPast:
        r"""
        pixel_values: [T, 3, S, S] all crops of the batch (per image: global view, then rows·cols crops).
        image_grids: [I, 2] (rows, cols) of each image, in the order of the `<image>` placeholders.
        selector_text_mask: [B, L] the user-turn text tokens the selector compares local tokens with.
        labels: [B, L]; returned re-aligned to the merged sequence (IGNORE_INDEX on visual tokens).
        """
        if (input_ids is None) == (inputs_embeds is None):
            raise ValueError("pass exactly one of input_ids or inputs_embeds")
        visual = None
        has_images = image_grids is not None and len(image_grids) > 0
        if has_images and inputs_embeds is not None:
            raise ValueError("images need input_ids (their <image> placeholders say where they go), not inputs_embeds")
        if inputs_embeds is None:
            decoding = cache is not None and cache.get_seq_length() > 0
            if has_images:
                if attention_mask is None:  # only here: an invented mask would hide the cache while decoding
                    attention_mask = torch.ones_like(input_ids)
                padding_side = "left" if bool((attention_mask[:, 0] == 0).any()) else "right"
                merged, visual = self.embed_multimodal(
                    input_ids, attention_mask, pixel_values, image_grids, selector_text_mask, labels, padding_side
                )
                inputs_embeds, attention_mask, labels = merged.inputs_embeds, merged.attention_mask, merged.labels
                position_ids = merged.position_ids if position_ids is None else position_ids
            else:
                if not decoding:
                    image_placeholder_mask(input_ids, self.config.image_token_id, 0)
                inputs_embeds = self.embed_text(input_ids)

        outputs = self.language_model(
            attention_mask=attention_mask,
            position_ids=position_ids,
            cache=cache,
            inputs_embeds=inputs_embeds,
            use_cache=use_cache,
            **kwargs,
        )
        return SliMEModelOutputWithPast(
            last_hidden_state=outputs.last_hidden_state,
            cache=outputs.cache,
            hidden_states=outputs.hidden_states,
            attentions=outputs.attentions,
            attention_mask=attention_mask,
            labels=labels,
            image_token_counts=visual.valid.sum(dim=1) if visual is not None else None,
            local_keep_ratio=visual.local_keep_ratio if visual is not None else None,
            gate_weights=visual.gate_weights if visual is not None else None,
        )


class SliMEForConditionalGeneration(SliMEPreTrainedModel, GenerationMixin):
    _tied_weights_keys = {"lm_head.weight": "model.language_model.embed_tokens.weight"}

    def __init__(self, config: SliMEConfig) -> None:
        super().__init__(config)
        self.model = SliMEModel(config)
        self.lm_head = nn.Linear(config.text_config.hidden_size, config.text_config.vocab_size, bias=False)
        self.post_init()

    def get_output_embeddings(self) -> nn.Module:
        return self.lm_head

    def forward(
        self,
        input_ids: torch.LongTensor | None = None,
        attention_mask: torch.Tensor | None = None,
        position_ids: torch.LongTensor | None = None,
        cache: Cache | None = None,
        inputs_embeds: torch.Tensor | None = None,
        labels: torch.LongTensor | None = None,
        pixel_values: torch.Tensor | None = None,
        image_grids: torch.LongTensor | None = None,
        selector_text_mask: torch.Tensor | None = None,
        use_cache: bool | None = None,
        logits_to_keep: int | torch.Tensor = 0,
        labelled_logits_only: bool = False,
        **kwargs,
    ) -> SliMECausalLMOutputWithPast:
        r"""
        labelled_logits_only: with labels, compute logits only where the next token is labelled
            (the answers; never the visual tokens, most of a SliME sequence): the same loss and
            gradients for a fraction of the lm_head's work and memory ([N, V] instead of
            [B, L', V]; ~130 MB of bf16 logits per 2,048-token sample at a 32K vocabulary). Training uses it.
        """
        outputs = self.model(
            input_ids=input_ids,
            attention_mask=attention_mask,
            position_ids=position_ids,
            cache=cache,
            inputs_embeds=inputs_embeds,
            labels=labels,
            pixel_values=pixel_values,
            image_grids=image_grids,
            selector_text_mask=selector_text_mask,
            use_cache=use_cache,
            **kwargs,
        )
        hidden = outputs.last_hidden_state
        vocab_size = self.config.text_config.vocab_size
        loss = None
        if labelled_logits_only and outputs.labels is not None:
            targets = outputs.labels[:, 1:]  # [B, L'-1] position t predicts token t+1
            labelled = targets != IGNORE_INDEX
            logits = self.lm_head(hidden[:, :-1][labelled])  # [N, V]
            loss = self.loss_function(
                logits=logits, labels=None, vocab_size=vocab_size, shift_labels=targets[labelled], **kwargs
            )
        else:
            kept = slice(-logits_to_keep, None) if isinstance(logits_to_keep, int) else logits_to_keep
            logits = self.lm_head(hidden[:, kept, :])
            if outputs.labels is not None:
                loss = self.loss_function(logits=logits, labels=outputs.labels, vocab_size=vocab_size, **kwargs)
        return SliMECausalLMOutputWithPast(
            loss=loss,
            logits=logits,
            cache=outputs.cache,
            hidden_states=outputs.hidden_states,
            attentions=outputs.attentions,
            attention_mask=outputs.attention_mask,
            image_token_counts=outputs.image_token_counts,
            local_keep_ratio=outputs.local_keep_ratio,
            gate_weights=outputs.gate_weights,
        )

    @torch.no_grad()
    def generate(
        self,
        input_ids: torch.LongTensor | None = None,
        attention_mask: torch.Tensor | None = None,
        pixel_values: torch.Tensor | None = None,
        image_grids: torch.LongTensor | None = None,
        selector_text_mask: torch.Tensor | None = None,
        **kwargs,
    ):
        """Merge images into the prompt embeddings once, then decode with the KV cache.

        The merged prompt is longer than `input_ids` by a number of tokens only known after the
        selector runs, so the images cannot be handed to `GenerationMixin` as pixel values; the
        prompt goes in as `inputs_embeds` (left-padded) and the output holds the new tokens only.
        """
        if input_ids is None:
            return super().generate(attention_mask=attention_mask, **kwargs)
        if attention_mask is None:
            attention_mask = torch.ones_like(input_ids)
        if image_grids is not None and len(image_grids) > 0:
            merged, _ = self.model.embed_multimodal(
                input_ids, attention_mask, pixel_values, image_grids, selector_text_mask, None, padding_side="left"
            )
            inputs_embeds, attention_mask = merged.inputs_embeds, merged.attention_mask
        else:
            image_placeholder_mask(input_ids, self.config.image_token_id, 0)
            inputs_embeds = self.model.embed_text(input_ids)
        if self.config.image_token_id < self.config.text_config.vocab_size:
            kwargs.setdefault("suppress_tokens", [self.config.image_token_id])  # never emit a placeholder
        return super().generate(inputs_embeds=inputs_embeds, attention_mask=attention_mask, **kwargs)

    # ---- stage controls -------------------------------------------------------------------------
    def parameter_groups(self) -> dict[str, list[tuple[str, nn.Parameter]]]:
        """Every parameter under exactly one of `PARAMETER_GROUPS`, as (name, parameter) lists."""
        groups: dict[str, list[tuple[str, nn.Parameter]]] = {name: [] for name in PARAMETER_GROUPS}
        for name, param in self.named_parameters():
            group = next((g for g, prefixes in PARAMETER_GROUPS.items() if name.startswith(prefixes)), None)
            if group is None:
                raise ValueError(f"parameter {name} belongs to no parameter group")
            groups[group].append((name, param))
        return groups

    def set_trainable(self, groups: Iterable[str]) -> None:
        """requires_grad = True for the named groups, False for every other parameter.

        W_noise stays frozen when the gate never reads it (no gate noise, or the released noise source
        W_g): a trainable parameter that never gets a gradient would only waste optimizer state.
        """
        wanted = set(groups)
        unknown = wanted - PARAMETER_GROUPS.keys()
        if unknown:
            raise ValueError(f"unknown parameter group(s) {sorted(unknown)}; choose from {list(PARAMETER_GROUPS)}")
        noise_unused = not self.config.gate_noise or self.config.gate_noise_source == "w_gate"
        unused = {"model.gate.w_noise"} if noise_unused else set()
        for group, params in self.parameter_groups().items():
            for name, param in params:
                param.requires_grad_(group in wanted and name not in unused)

    def set_branch(self, branch: str) -> None:
        """Which views enter the sequence: "global", "local" or "both"."""
        if branch not in BRANCHES:
            raise ValueError(f"SliMEConfig.branch: {branch!r} is not one of {BRANCHES}")
        self.config.branch = branch

    def set_global_expert(self, expert: str) -> None:
        """ "mix" (gated), or one expert alone: "mlp" (stage 1a) or "resampler" (stage 1b)."""
        if expert not in GLOBAL_EXPERTS:
            raise ValueError(f"SliMEConfig.global_expert: {expert!r} is not one of {GLOBAL_EXPERTS}")
        self.config.global_expert = expert

    def set_selector_top_p(self, train: float | None = None, eval: float | None = None) -> None:
        for field, value in (("selector_top_p_train", train), ("selector_top_p_eval", eval)):
            if value is None:
                continue
            if not 0.0 < value <= 1.0:
                raise ValueError(f"SliMEConfig.{field}: {value} must be in (0, 1]")
            setattr(self.config, field, value)


AutoModel.register(SliMEConfig, SliMEModel)
AutoModelForImageTextToText.register(SliMEConfig, SliMEForConditionalGeneration)
