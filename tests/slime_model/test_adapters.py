"""The adapters: position embeddings, resampler, noisy gate and the selector's top-p rule."""

from __future__ import annotations

import math

import pytest
import torch

from slime_model.adapters import (
    NoisyGate,
    Resampler,
    resize_position_embedding,
    select_top_p,
    sincos_position_embedding_2d,
)


def test_sincos_first_half_encodes_columns_second_half_rows():
    side, dim = 4, 16
    pos = sincos_position_embedding_2d(dim, side).reshape(side, side, dim)  # [row, col, dim]
    assert torch.allclose(pos[0, :, : dim // 2], pos[3, :, : dim // 2])  # same column, any row
    assert torch.allclose(pos[:, 0, dim // 2 :], pos[:, 3, dim // 2 :])  # same row, any column
    # position 0 encodes sin(0) = 0 and cos(0) = 1 in each quarter
    assert torch.equal(pos[0, 0], torch.tensor(([0.0] * (dim // 4) + [1.0] * (dim // 4)) * 2))


def test_resize_position_embedding_is_identity_at_same_size_and_bicubic_otherwise():
    pos = sincos_position_embedding_2d(8, 3)
    assert resize_position_embedding(pos, 3) is pos
    resized = resize_position_embedding(pos, 6)
    assert resized.shape == (36, 8)


def test_resampler_shapes_and_key_grid():
    torch.manual_seed(0)
    resampler = Resampler(grid_side=2, embed_dim=16, num_heads=2, kv_dim=16)
    out = resampler(torch.randn(5, 9, 16))  # 5 crops of a 3x3 key grid -> 4 queries each
    assert out.shape == (5, 4, 16)
    assert torch.equal(resampler.pos_embed, sincos_position_embedding_2d(16, 2))
    assert "pos_embed" in resampler.state_dict()  # saved, so released checkpoints load their values
    with pytest.raises(ValueError, match="square grid"):
        resampler(torch.randn(1, 8, 16))


def test_resampler_crops_are_independent():
    torch.manual_seed(0)
    resampler = Resampler(grid_side=2, embed_dim=16, num_heads=2, kv_dim=8).eval()
    crops = torch.randn(3, 4, 8)
    together = resampler(crops)
    alone = torch.cat([resampler(crops[i : i + 1]) for i in range(3)])
    assert torch.allclose(together, alone, atol=1e-6)


def test_gate_weights_sum_to_one_and_start_uniform():
    gate = NoisyGate(in_dim=8, num_experts=2)
    features = torch.randn(3, 5, 8)
    weights = gate(features, noisy=False, top_k=2)
    assert weights.shape == (3, 5, 2)
    assert torch.allclose(weights, torch.full_like(weights, 0.5))  # W_g = 0 at start
    with torch.no_grad():
        gate.w_gate.normal_()
    weights = gate(features, noisy=False, top_k=2)
    assert torch.allclose(weights.sum(-1), torch.ones(3, 5))
    assert not torch.allclose(weights, torch.full_like(weights, 0.5))


def test_gate_noise_only_when_noisy():
    torch.manual_seed(0)
    gate = NoisyGate(in_dim=8, num_experts=2)
    features = torch.randn(4, 8)
    assert torch.equal(gate(features, noisy=False, top_k=2), gate(features, noisy=False, top_k=2))
    noisy_a, noisy_b = gate(features, noisy=True, top_k=2), gate(features, noisy=True, top_k=2)
    assert not torch.equal(noisy_a, noisy_b)  # softplus(0) = ln 2 > 0: noise from the first step
    assert torch.allclose(noisy_a.sum(-1), torch.ones(4))


def test_gate_noise_scale_comes_from_the_configured_weight():
    """Released HEAD: softplus(x·W_g) + 0.01 (its W_noise never trains); the paper: softplus(x·W_noise).
    With W_g = 0 on these features and W_noise large, the released scale is ln 2 + 0.01, the paper's ~100."""
    torch.manual_seed(0)
    gate = NoisyGate(in_dim=4, num_experts=2)
    with torch.no_grad():
        gate.w_noise.fill_(25.0)  # x·W_noise = 100 on ones(4): scale ~100, a near one-hot mix
    features = torch.ones(2000, 4)

    def spread(**kwargs) -> float:  # how far the noisy mix strays from the clean 0.5 / 0.5
        return (gate(features, noisy=True, top_k=2, **kwargs)[:, 0] - 0.5).abs().mean().item()

    paper, released = spread(noise_source="w_noise"), spread(noise_source="w_gate", epsilon=0.01)
    assert paper > 0.45  # logit gaps of ~140 on average: one expert takes almost all
    # a logit gap of (ln 2 + 0.01)·N(0, 2): E|sigmoid(gap) - 0.5| = 0.174 (over 10^6 samples)
    assert 0.16 < released < 0.19
    with torch.no_grad():
        gate.w_gate.fill_(-10.0)  # softplus(-40) ≈ 0: only epsilon is left; the clean gate stays 0.5 / 0.5
    assert 0 < spread(noise_source="w_gate", epsilon=0.01) < 0.005  # 0.0028 expected


def test_gate_top_one_picks_a_single_expert():
    gate = NoisyGate(in_dim=4, num_experts=2)
    with torch.no_grad():
        gate.w_gate.copy_(torch.tensor([[1.0, -1.0]] * 4))
    weights = gate(torch.ones(3, 4), noisy=False, top_k=1)
    assert torch.equal(weights, torch.tensor([[1.0, 0.0]] * 3))


def _scores(probs: list[float]) -> torch.Tensor:
    return torch.tensor([[math.log(p) for p in probs]])


def test_top_p_one_keeps_every_valid_token():
    scores = torch.randn(3, 10)
    valid = torch.ones(3, 10, dtype=torch.bool)
    valid[1, 7:] = False
    assert torch.equal(select_top_p(scores, valid, top_p=1.0, temperature=1.0), valid)


def test_top_p_one_keeps_all_of_1008_tokens_under_a_peaked_softmax():
    """Stage 2 runs top-p 1.0 over up to 7·144 local tokens; a peaked softmax must not lose any."""
    generator = torch.Generator().manual_seed(0)
    scores = torch.randn(40, 1008, generator=generator) * 10  # 40 seeds' worth of rows
    valid = torch.ones(40, 1008, dtype=torch.bool)
    valid[20:, 720:] = False  # images with fewer crops: padding stays out
    assert torch.equal(select_top_p(scores, valid, top_p=1.0, temperature=1.0), valid)
    assert torch.equal(select_top_p(scores.bfloat16(), valid, top_p=1.0, temperature=0.1), valid)


def test_top_p_counts_mass_below_float32_rounding():
    """One token of mass 1 - 1e-5 and 1000 of 1e-8: in float32 adding 1e-8 to ~1 changes nothing, so
    every light token looked "within" 0.999995505; exactly, 550 fit (0.99999 + 550e-8), plus one more."""
    probs = torch.tensor([1 - 1e-5] + [1e-8] * 1000, dtype=torch.float64)
    keep = select_top_p(probs.log().unsqueeze(0), torch.ones(1, 1001, dtype=torch.bool), 0.999995505, 1.0)
    assert keep.sum() == 1 + 550 + 1
    assert keep[0, : 1 + 551].all()  # the stable sort keeps the earliest of the equal tokens


def test_top_p_keeps_the_sorted_prefix_plus_one_in_original_order():
    valid = torch.ones(1, 5, dtype=torch.bool)
    scores = _scores([0.05, 0.4, 0.1, 0.3, 0.15])  # sorted: 1 (.4), 3 (.3), 4 (.15), 2 (.1), 0 (.05)
    # cumulative .4, .7, .85, .95, 1.0
    assert select_top_p(scores, valid, 0.6, 1.0).tolist() == [[False, True, False, True, False]]  # 1 within + 1
    assert select_top_p(scores, valid, 0.75, 1.0).tolist() == [[False, True, False, True, True]]  # 2 within + 1
    assert select_top_p(scores, valid, 0.3, 1.0).tolist() == [[False, True, False, False, False]]  # 0 within + 1


def test_top_p_ties_keep_the_earlier_token_and_padding_never_counts():
    scores = torch.tensor([[0.0, 0.0, 0.0, 0.0, 9.0]])
    valid = torch.tensor([[True, True, True, True, False]])  # four equal valid tokens, one padded
    keep = select_top_p(scores, valid, 0.3, 1.0)  # .25 within + 1 = 2 tokens
    assert keep.tolist() == [[True, True, False, False, False]]


def test_top_p_temperature_sharpens():
    scores = torch.tensor([[1.0, 2.0, 3.0, 4.0]])
    valid = torch.ones(1, 4, dtype=torch.bool)
    assert select_top_p(scores, valid, 0.6, 0.1).sum() == 1  # nearly one-hot: the top token alone
    assert select_top_p(scores, valid, 0.6, 10.0).sum() == 3  # nearly uniform: .28 + .25 within, + 1
