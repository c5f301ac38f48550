"""SliMEConfig: presets, derived sizes, validation naming the field, save/load."""

from __future__ import annotations

import pytest
from transformers import AutoConfig, CLIPVisionConfig, LlamaConfig

from slime_model.configuration import SliMEConfig


@pytest.mark.parametrize(
    ("name", "hidden", "vocab", "template"),
    [
        ("slime-vicuna-7b", 4096, 32000, "vicuna_v1"),
        ("slime-vicuna-13b", 5120, 32000, "vicuna_v1"),
        ("slime-llama3-8b", 4096, 128256, "llama3"),
    ],
)
def test_released_presets(name, hidden, vocab, template):
    config = SliMEConfig.from_name(name)
    assert isinstance(config.vision_config, CLIPVisionConfig) and isinstance(config.text_config, LlamaConfig)
    assert config.crop_size == 336 and config.num_global_tokens == 576 and config.num_resampler_heads == 8
    assert config.text_config.hidden_size == hidden and config.text_config.vocab_size == vocab
    assert config.chat_template == template
    assert (config.local_num_queries, config.slicing_strategy, config.branch, config.global_expert) == (
        144,
        "uhd",
        "both",
        "mix",
    )
    assert config.vision_feature_layer == -2 and config.selector_noise_std == 0.1 and config.selector_temperature == 1.0


def test_tiny_preset_sizes():
    config = SliMEConfig.from_name("tiny", branch="global")
    assert config.crop_size == 112 and config.num_global_tokens == 64 and config.local_num_queries == 16
    assert config.branch == "global"
    assert config.selector_top_p(training=True) == config.selector_top_p_train


def test_unknown_preset():
    with pytest.raises(ValueError, match="unknown SliME preset 'slime-70b'"):
        SliMEConfig.from_name("slime-70b")


@pytest.mark.parametrize(
    ("override", "field"),
    [
        ({"local_num_queries": 15}, "local_num_queries"),
        ({"branch": "middle"}, "branch"),
        ({"global_expert": "both"}, "global_expert"),
        ({"gate_top_k": 3}, "gate_top_k"),
        ({"selector_top_p_train": 0.0}, "selector_top_p_train"),
        ({"selector_top_p_eval": 1.5}, "selector_top_p_eval"),
        ({"selector_noise_std": -0.1}, "selector_noise_std"),
        ({"selector_temperature": 0.0}, "selector_temperature"),
        ({"selector_similarity": "dot"}, "selector_similarity"),
        ({"selector_text": "answers"}, "selector_text"),
        ({"gate_noise_source": "w_g"}, "gate_noise_source"),
        ({"gate_noise_epsilon": -0.01}, "gate_noise_epsilon"),
        ({"slicing_strategy": "tiles"}, "slicing_strategy"),
        ({"image_grid_pinpoints": [[100, 112]]}, "image_grid_pinpoints"),
        ({"uhd_max_scale": 1}, "uhd_max_scale"),
        ({"grid_max_side": 0}, "grid_max_side"),
        ({"vision_feature_layer": 3}, "vision_feature_layer"),  # tiny CLIP has 3 hidden states
        ({"resampler_num_heads": 3}, "resampler_num_heads"),
        ({"separator_token_id": 10_000}, "separator_token_id"),
        ({"chat_template": "chatml"}, "chat_template"),
        ({"vision_config": {"model_type": "siglip_vision_model"}}, "vision_config"),
    ],
)
def test_invalid_settings_name_the_field(override, field):
    with pytest.raises(ValueError, match=rf"SliMEConfig\.{field}"):
        SliMEConfig.from_name("tiny", **override)


def test_save_load_round_trip(tmp_path):
    config = SliMEConfig.from_name("tiny", slicing_strategy="grid", grid_max_side=3, selector_top_p_train=1.0)
    config.save_pretrained(tmp_path)
    loaded = AutoConfig.from_pretrained(tmp_path)
    assert isinstance(loaded, SliMEConfig)
    assert {**loaded.to_dict(), "_name_or_path": ""} == config.to_dict()
    assert loaded.vision_config.image_size == 112 and loaded.text_config.hidden_size == 64
