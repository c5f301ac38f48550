"""bench_model's split training step computes what the trainer's single backward does, so its
"visual path" and "LLM" phases are parts of one real step (they add up to it by construction)."""

from __future__ import annotations

import torch

from benchmarks.bench_model import SFT_GROUPS, bench_config, make_batch, timed_step
from slime_model.modeling import SliMEForConditionalGeneration
from slime_model.processing import SliMEProcessor
from slime_model.tiny import tiny_tokenizer


def test_split_step_gives_the_trainers_gradients():
    config = bench_config("tiny", llm="config", llm_layers=2)
    config.gate_noise, config.selector_noise_std = False, 0.0  # both passes must draw nothing random
    torch.manual_seed(0)
    model = SliMEForConditionalGeneration(config).train()
    model.set_trainable(SFT_GROUPS)
    batch = make_batch(SliMEProcessor.from_config(config, tiny_tokenizer()), batch_size=3)
    names = ("input_ids", "attention_mask", "pixel_values", "image_grids", "selector_text_mask")

    def merge() -> dict:
        merged = model.model.embed_multimodal(*[batch[k] for k in names], batch["labels"], "right")[0]
        return {
            "inputs_embeds": merged.inputs_embeds,
            "attention_mask": merged.attention_mask,
            "position_ids": merged.position_ids,
            "labels": merged.labels,
        }

    times = timed_step(model, merge, labelled_only=True, device=torch.device("cpu"))
    split = {name: p.grad.clone() for name, p in model.named_parameters() if p.grad is not None}
    model.zero_grad(set_to_none=True)
    model(**batch, labelled_logits_only=True).loss.backward()
    whole = {name: p.grad for name, p in model.named_parameters() if p.grad is not None}
    assert split.keys() == whole.keys() and any(name.startswith("model.local_resampler.") for name in whole)
    for name, grad in whole.items():
        assert torch.allclose(split[name], grad, atol=1e-6, rtol=1e-4), name
    assert times.total == times.visual + times.llm and min(times.visual_forward, times.llm, times.visual_backward) > 0
