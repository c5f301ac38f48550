"""Conversion of a synthetic released-layout checkpoint (tiny sizes, vision width 128 so that the
released head rule width // 128 applies) and the `slime-model convert` command."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file
from tests.slime_model.slime_model_helpers import chat, noise_image
from transformers import CLIPVisionConfig
from typer.testing import CliRunner

from slime_model.cli import app
from slime_model.configuration import SliMEConfig
from slime_model.conversion import KEY_PREFIXES, ConversionError, convert_official, map_clip_key, map_official_key
from slime_model.modeling import SliMEForConditionalGeneration
from slime_model.processing import SliMEProcessor
from slime_model.tiny import tiny_tokenizer


def to_official_key(key: str) -> str:
    for official, ours in KEY_PREFIXES:
        if key.startswith(ours):
            return official + key[len(ours) :]
    raise KeyError(key)


def _source_model() -> SliMEForConditionalGeneration:
    vision = CLIPVisionConfig(hidden_size=128, intermediate_size=256, num_hidden_layers=2, num_attention_heads=2, image_size=56, patch_size=14)
    config = SliMEConfig.from_name("tiny", vision_config=vision, resampler_num_heads=None, local_num_queries=4)
    torch.manual_seed(0)
    model = SliMEForConditionalGeneration(config).eval()
    with torch.no_grad():  # released checkpoints have trained, non-zero gates
        model.model.gate.w_gate.normal_(0, 0.1)
        model.model.gate.w_noise.normal_(0, 0.1)
    return model


def _official_config(model: SliMEForConditionalGeneration) -> dict:
    text = model.config.text_config.to_dict()
    return {
        **{k: v for k, v in text.items() if k not in ("model_type", "architectures")},
        "model_type": "llava_llama",
        "architectures": ["LlavaLlamaForCausalLM"],
        "mm_projector_type": "gated",
        "mm_resampler_type": "cosine",
        "mm_patch_merge_type": "spatial",
        "image_aspect_ratio": "anyres",
        "mm_vision_tower": "openai/clip-vit-large-patch14-336",
        "mm_vision_select_layer": -2,
        "mm_vision_select_feature": "patch",
        "mm_hidden_size": 128,
        "mm_resampler_dim": 4,
        "mm_resampler_topp": 0.95,
        "mm_resampler_temp": 1.0,
        "mm_learnable_gated": -1,
        "seperator": model.config.separator_token_id,
        "use_global_only": False,
        "use_local_only": False,
    }


def write_official(model: SliMEForConditionalGeneration, root: Path, *, with_vision: bool = True, fmt: str = "safetensors") -> tuple[Path, Path]:
    """A released-layout folder (two weight files, gate constants, tokenizer) and a CLIP folder."""
    source, clip = root / "official", root / "clip"
    source.mkdir()
    state = {to_official_key(k): v.clone() for k, v in model.state_dict().items()}
    state["model.mm_projector.mean"] = torch.zeros(1, dtype=torch.bfloat16)
    state["model.mm_projector.std"] = torch.ones(1, dtype=torch.bfloat16)
    if not with_vision:
        state = {k: v for k, v in state.items() if not k.startswith("model.vision_tower.")}
    keys = sorted(state)
    halves = [dict((k, state[k]) for k in keys[: len(keys) // 2]), dict((k, state[k]) for k in keys[len(keys) // 2 :])]
    for i, part in enumerate(halves):
        if fmt == "safetensors":
            save_file(part, source / f"model-0000{i + 1}-of-00002.safetensors")
        else:
            torch.save(part, source / f"pytorch_model-0000{i + 1}-of-00002.bin")
    (source / "config.json").write_text(json.dumps(_official_config(model)))
    tiny_tokenizer().save_pretrained(source)
    model.model.vision_tower.save_pretrained(clip)
    return source, clip


def _logits(model, processor):
    batch = processor([chat("What is in the picture?")], [noise_image(150, 90)])
    return model(**batch).logits


def test_key_mapping_table():
    assert map_official_key("model.mm_projector.projection.0.weight") == "model.projector.linear_1.weight"
    assert map_official_key("model.mm_projector.attn.attn.in_proj_weight") == "model.global_resampler.attn.in_proj_weight"
    assert map_official_key("model.mm_projector.w_noise") == "model.gate.w_noise"
    assert map_official_key("model.sampler.post_qformer.pos_embed") == "model.local_resampler.pos_embed"
    assert map_official_key("model.vision_tower.vision_tower.vision_model.post_layernorm.bias") == "model.vision_tower.post_layernorm.bias"
    assert map_official_key("model.layers.3.mlp.up_proj.weight") == "model.language_model.layers.3.mlp.up_proj.weight"
    assert map_official_key("model.mm_projector.mean") is None
    with pytest.raises(KeyError):
        map_official_key("model.image_newline")
    assert map_clip_key("vision_model.encoder.layers.0.mlp.fc1.weight") == "model.vision_tower.encoder.layers.0.mlp.fc1.weight"
    assert map_clip_key("embeddings.class_embedding") == "model.vision_tower.embeddings.class_embedding"
    assert map_clip_key("text_model.embeddings.token_embedding.weight") is None
    assert map_clip_key("vision_model.embeddings.position_ids") is None


@pytest.mark.parametrize("fmt", ["safetensors", "bin"])
def test_round_trip_gives_equal_outputs(tmp_path, fmt):
    model = _source_model()
    source, clip = write_official(model, tmp_path, fmt=fmt)
    out = tmp_path / "converted"
    report = convert_official(source, out, vision_dir=clip, dtype=torch.float32, max_shard_bytes=400_000)
    assert len(report.shards) > 1 and (out / "model.safetensors.index.json").is_file()
    assert report.ignored == ["model.mm_projector.mean", "model.mm_projector.std"]
    assert report.tensors == len(model.state_dict())
    converted = SliMEForConditionalGeneration.from_pretrained(out).eval()
    assert converted.config.num_resampler_heads == 1 and converted.config.local_num_queries == 4
    assert converted.config.chat_template == "vicuna_v1" and converted.config.global_expert == "mix"
    processor = SliMEProcessor.from_pretrained(out)
    assert torch.equal(_logits(converted, processor), _logits(model, processor))


def test_vision_weights_from_a_separate_clip_checkpoint(tmp_path):
    model = _source_model()
    source, clip = write_official(model, tmp_path, with_vision=False)
    out = tmp_path / "converted"
    convert_official(source, out, vision_dir=clip, dtype=torch.float32)
    converted = SliMEForConditionalGeneration.from_pretrained(out).eval()
    processor = SliMEProcessor.from_pretrained(out)
    assert torch.equal(_logits(converted, processor), _logits(model, processor))


def _corrupt(source: Path, extra: dict[str, torch.Tensor] | None = None, drop: str | None = None) -> None:
    from safetensors.torch import load_file

    path = source / "model-00001-of-00002.safetensors"
    state = load_file(path)
    if drop:
        state = {k: v for k, v in state.items() if k != drop}
    save_file({**state, **(extra or {})}, path)


def test_unknown_missing_and_misshaped_keys_fail_with_the_full_list(tmp_path):
    model = _source_model()
    source, clip = write_official(model, tmp_path)
    first_file_key = sorted(to_official_key(k) for k in model.state_dict())[0]
    _corrupt(
        source,
        extra={"model.image_newline": torch.zeros(64), "model.mm_projector.w_gate": torch.zeros(3, 2)},
        drop=first_file_key,
    )
    with pytest.raises(ConversionError) as caught:
        convert_official(source, tmp_path / "out", vision_dir=clip)
    problems = "\n".join(caught.value.problems)
    assert "unknown key model.image_newline" in problems
    assert "shape of model.mm_projector.w_gate: [3, 2], expected [128, 2]" in problems
    assert f"missing key {map_official_key(first_file_key)}" in problems
    assert not (tmp_path / "out").exists()  # nothing written before every key checks out


def test_unsupported_released_variants_fail(tmp_path):
    model = _source_model()
    source, clip = write_official(model, tmp_path)
    config = json.loads((source / "config.json").read_text())
    (source / "config.json").write_text(json.dumps({**config, "mm_patch_merge_type": "flat"}))
    with pytest.raises(ValueError, match="mm_patch_merge_type='flat'"):
        convert_official(source, tmp_path / "out", vision_dir=clip)


def test_cli_convert(tmp_path):
    model = _source_model()
    source, clip = write_official(model, tmp_path)
    runner = CliRunner()
    ok = runner.invoke(app, ["convert", "--from-official", str(source), "--out", str(tmp_path / "out"), "--vision-tower", str(clip), "--dtype", "float32"])
    assert ok.exit_code == 0, ok.output
    assert (tmp_path / "out" / "model.safetensors").is_file() and (tmp_path / "out" / "slime_processor.json").is_file()
    _corrupt(source, extra={"model.image_newline": torch.zeros(64)})
    failed = runner.invoke(app, ["convert", "--from-official", str(source), "--out", str(tmp_path / "out2"), "--vision-tower", str(clip)])
    assert failed.exit_code == 2
    assert "Traceback" not in failed.output
    bad = runner.invoke(app, ["convert", "--from-official", str(tmp_path / "nope"), "--out", str(tmp_path / "o")])
    assert bad.exit_code == 2
