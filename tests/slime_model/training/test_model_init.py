"""The weights a run starts from: a preset plus a vision tower and an LLM from local folders."""

from __future__ import annotations

import torch
from transformers import CLIPVisionModel, LlamaForCausalLM

from slime_model.tiny import tiny_settings, tiny_tokenizer
from slime_model.training.model_init import build_initial
from slime_model.training.recipe import ModelSource


def test_vision_tower_and_llm_weights_come_from_their_folders(tmp_path):
    torch.manual_seed(1)
    settings = tiny_settings()  # the tiny preset's own tower and LLM shapes
    vision = CLIPVisionModel(settings["vision_config"])
    llm = LlamaForCausalLM(settings["text_config"])
    vision.save_pretrained(tmp_path / "clip")
    llm.save_pretrained(tmp_path / "llm")
    tiny_tokenizer().save_pretrained(tmp_path / "llm")

    model, processor = build_initial(
        ModelSource(preset="tiny", vision_tower=str(tmp_path / "clip"), llm=str(tmp_path / "llm")), seed=0
    )
    for key, value in vision.state_dict().items():
        assert torch.equal(model.model.vision_tower.state_dict()[key], value), key
    for key, value in llm.model.state_dict().items():
        assert torch.equal(model.model.language_model.state_dict()[key], value), key
    assert torch.equal(model.lm_head.weight, llm.lm_head.weight)
    assert model.config.image_token_id == processor.tokenizer.convert_tokens_to_ids("<image>")
    assert processor.settings.image.crop_size == 112
