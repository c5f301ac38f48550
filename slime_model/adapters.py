"""SliME's adapters between CLIP and the LLM (DESIGN §2).

- `MLPProjector`: LLaVA's 2-layer GELU MLP (vision width -> LLM width), shared by both branches.
- `Resampler`: one cross-attention layer from learnable queries (with fixed 2D sin-cos position
  embeddings) to a crop's patch tokens; the global expert uses as many queries as patches (576),
  the local compressor 144 per crop.
- `NoisyGate`: the global mixture-of-adapters gate G(x) = softmax(x·W_g + ε·softplus(x·W_noise)); the
  released code takes the noise scale from W_g (`noise_source`).
- `select_top_p`: the text-guided selector's top-p rule over local tokens.

All functions work on batches: leading dimensions are crops or images, never Python loops.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn
from transformers.activations import ACT2FN


class MLPProjector(nn.Module):
    """[..., vision_dim] -> [..., llm_dim]: Linear, GELU, Linear."""

    def __init__(self, vision_dim: int, llm_dim: int, act: str = "gelu") -> None:
        super().__init__()
        self.linear_1 = nn.Linear(vision_dim, llm_dim)
        self.act = ACT2FN[act]
        self.linear_2 = nn.Linear(llm_dim, llm_dim)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return self.linear_2(self.act(self.linear_1(features)))


def sincos_position_embedding_2d(embed_dim: int, side: int) -> torch.Tensor:
    """MAE-style fixed 2D sin-cos embedding, [side², embed_dim]; half the channels encode rows, half columns."""
    if embed_dim % 4:
        raise ValueError(f"2D sin-cos position embeddings need embed_dim divisible by 4, got {embed_dim}")
    omega = 1.0 / 10000 ** (torch.arange(embed_dim // 4, dtype=torch.float64) / (embed_dim / 4))
    coords = torch.arange(side, dtype=torch.float64)
    rows, cols = torch.meshgrid(coords, coords, indexing="ij")  # [side, side] each, row-major tokens

    def encode(positions: torch.Tensor) -> torch.Tensor:  # [side²] -> [side², embed_dim / 2]
        angles = positions.reshape(-1, 1) * omega
        return torch.cat([angles.sin(), angles.cos()], dim=1)

    # The released code stacks meshgrid(w, h) and encodes grid[0] (= column index) first.
    return torch.cat([encode(cols), encode(rows)], dim=1).float()


def resize_position_embedding(pos_embed: torch.Tensor, side: int) -> torch.Tensor:
    """[g², D] -> [side², D] by bicubic interpolation on the g × g grid (the released `get_abs_pos`)."""
    grid = math.isqrt(pos_embed.shape[0])
    if grid == side:
        return pos_embed
    resized = F.interpolate(
        pos_embed.float().reshape(1, grid, grid, -1).permute(0, 3, 1, 2),
        size=(side, side),
        mode="bicubic",
        align_corners=False,
    )
    return resized.permute(0, 2, 3, 1).reshape(side * side, -1).to(pos_embed.dtype)


class Resampler(nn.Module):
    """Perceiver-style resampler, [N, K, kv_dim] -> [N, Q, embed_dim], Q = grid_side².

    Queries: LayerNorm(query) + pos_embed. Keys: LayerNorm(kv_proj(x)) + pos_embed resized to the
    √K × √K key grid. Values: LayerNorm(kv_proj(x)). Output: LayerNorm(attention).
    """

    def __init__(self, grid_side: int, embed_dim: int, num_heads: int, kv_dim: int) -> None:
        super().__init__()
        self.grid_side = grid_side
        self.query = nn.Parameter(torch.zeros(grid_side * grid_side, embed_dim))
        # A buffer, not a parameter: fixed, never trained, but saved so released checkpoints load as is.
        self.register_buffer("pos_embed", sincos_position_embedding_2d(embed_dim, grid_side), persistent=True)
        self.kv_proj = nn.Linear(kv_dim, embed_dim, bias=False) if kv_dim != embed_dim else nn.Identity()
        self.attn = nn.MultiheadAttention(embed_dim, num_heads, batch_first=True)
        self.ln_q = nn.LayerNorm(embed_dim, eps=1e-6)
        self.ln_kv = nn.LayerNorm(embed_dim, eps=1e-6)
        self.ln_post = nn.LayerNorm(embed_dim, eps=1e-6)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        num_crops, num_keys, _ = features.shape
        key_side = math.isqrt(num_keys)
        if key_side * key_side != num_keys:
            raise ValueError(f"the resampler expects a square grid of keys, got {num_keys}")
        pos_embed = self.pos_embed.to(features.dtype)
        keys_pos = resize_position_embedding(pos_embed, key_side)  # [K, D]
        values = self.ln_kv(self.kv_proj(features))  # [N, K, D]
        queries = (self.ln_q(self.query) + pos_embed).unsqueeze(0).expand(num_crops, -1, -1)  # [N, Q, D]
        out, _ = self.attn(queries, values + keys_pos, values, need_weights=False)
        return self.ln_post(out)


class NoisyGate(nn.Module):
    """Per-token mixing weights of the global experts, [..., in_dim] -> [..., num_experts].

    G(x) = softmax(x·W_g + ε·(softplus(x·W) + epsilon)), ε ~ N(0, 1) only when `noisy`; then the top-k
    weights are kept and renormalised (k = 2 of 2 is a dense soft mix). W_g and W_noise start at 0.
    W is W_noise in the paper (`noise_source="w_noise"`) and W_g in the released code at its HEAD
    (`"w_gate"`, with epsilon 0.01): its commit "wnoise" reverted the switch to W_noise, so the
    released checkpoints' W_noise never trained, and the paper's formula on them gives a constant
    noise scale softplus(0) = ln 2.
    """

    def __init__(self, in_dim: int, num_experts: int) -> None:
        super().__init__()
        self.w_gate = nn.Parameter(torch.zeros(in_dim, num_experts))
        self.w_noise = nn.Parameter(torch.zeros(in_dim, num_experts))

    def forward(
        self, features: torch.Tensor, *, noisy: bool, top_k: int, noise_source: str = "w_noise", epsilon: float = 0.0
    ) -> torch.Tensor:
        logits = (features @ self.w_gate.to(features.dtype)).float()
        if noisy:
            noise_weight = self.w_gate if noise_source == "w_gate" else self.w_noise
            noise_scale = F.softplus((features @ noise_weight.to(features.dtype)).float()) + epsilon
            logits = logits + torch.randn_like(logits) * noise_scale
        weights = logits.softmax(dim=-1)
        if top_k < weights.shape[-1]:
            top_values, top_indices = weights.topk(top_k, dim=-1)
            weights = torch.zeros_like(weights).scatter(-1, top_indices, top_values)
        return weights / weights.sum(dim=-1, keepdim=True)


def select_top_p(scores: torch.Tensor, valid: torch.Tensor, top_p: float, temperature: float) -> torch.Tensor:
    """The selector's keep mask, [I, N] -> bool [I, N].

    Per row: softmax(scores / temperature) over the valid tokens, sort descending, keep the tokens
    whose cumulative mass is ≤ top_p plus one more, and return the mask in the original token order.
    Padding (valid = False) is never kept.

    top_p ≥ 1 keeps every valid token (the pre-training stages rely on it). The released rule run in
    float32 does not: a peaked softmax's cumulative sum rounds to 1.0 after a few tokens, and
    `count(cumsum <= 1.0) + 1` then kept as few as 19 of 1008 tokens. Below 1 the mass is summed in
    float64: in float32, tokens lighter than half its rounding step near 1 (3e-8) add nothing.
    """
    if top_p >= 1.0:
        return valid.clone()
    logits = (scores.double() / temperature).masked_fill(~valid, float("-inf"))
    probs = logits.softmax(dim=-1).nan_to_num(0.0)  # rows with no valid token give all-zero rows
    sorted_probs, order = probs.sort(dim=-1, descending=True, stable=True)
    within_mass = (sorted_probs.cumsum(dim=-1) <= top_p).sum(dim=-1)  # [I]
    keep_count = torch.minimum(within_mass + 1, valid.sum(dim=-1))  # [I]
    ranks = torch.arange(scores.shape[-1], device=scores.device)
    keep_sorted = ranks.unsqueeze(0) < keep_count.unsqueeze(1)  # [I, N] in sorted order
    return torch.zeros_like(valid).scatter(-1, order, keep_sorted) & valid
