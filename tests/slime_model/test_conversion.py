"""Conversion of a synthetic released-layout checkpoint (tiny sizes, vision width 128 so that the
released head rule width // 128 applies) and the `slime-model convert` command.

The "released" checkpoint is built from `released_checkpoint_keys.yaml`, a key list written from the
released code's module tree, never from the converter's own map: a key the converter does not know,
or one our model expects that a release does not hold, fails these tests.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch
import yaml
from safetensors.torch import save_file
from transformers import CLIPVisionConfig, CLIPVisionModel
from typer.testing import CliRunner

from slime_model.cli import app
from slime_model.configuration import SliMEConfig
from slime_model.conversion import ConversionError, convert_official, map_clip_key, map_official_key
from slime_model.modeling import SliMEForConditionalGeneration
from slime_model.processing import SliMEProcessor
from slime_model.reference import reference_forward
from slime_model.tiny import tiny_tokenizer
from tests.slime_model.slime_model_helpers import chat, noise_image

RELEASED_KEYS = yaml.safe_load((Path(__file__).parent / "released_checkpoint_keys.yaml").read_text(encoding="utf-8"))
GATE_CONSTANTS = ["model.mm_projector.mean", "model.mm_projector.std"]
NORM_WEIGHTS = (
    "norm.weight",
    "norm1.weight",
    "norm2.weight",
    "layrnorm.weight",
    "ln_q.weight",
    "ln_kv.weight",
    "ln_post.weight",
)


def _source_config() -> SliMEConfig:
    vision = CLIPVisionConfig(
        hidden_size=128, intermediate_size=256, num_hidden_layers=2, num_attention_heads=2, image_size=56, patch_size=14
    )
    return SliMEConfig.from_name("tiny", vision_config=vision, resampler_num_heads=None, local_num_queries=4)


def _size(expression: str | int, sizes: dict[str, int]) -> int:
    """A shape entry of the key list: an int, a size name, or sums of products ("3*mm_hidden", "patches+1")."""
    terms = str(expression).split("+")
    return sum(math.prod(int(f) if f.isdigit() else sizes[f] for f in term.split("*")) for term in terms)


def released_shapes(config: SliMEConfig, with_vision: bool = True) -> dict[str, tuple[int, ...]]:
    """Every tensor name of a released checkpoint of this config's sizes, with its shape."""
    text, vision = config.text_config, config.vision_config
    sizes = {
        "hidden": text.hidden_size,
        "kv_width": text.num_key_value_heads * (text.hidden_size // text.num_attention_heads),
        "intermediate": text.intermediate_size,
        "vocab": text.vocab_size,
        "mm_hidden": vision.hidden_size,
        "vision_intermediate": vision.intermediate_size,
        "patch": vision.patch_size,
        "patches": config.num_global_tokens,
        "local_queries": config.local_num_queries,
    }
    groups = ["llm", "mm_projector", "sampler"] + (["vision_tower"] if with_vision else [])
    shapes = {}
    for group in groups:
        for template, shape in RELEASED_KEYS[group].items():
            for layer in range(text.num_hidden_layers if "{layer}" in template else 1):
                for vision_layer in range(vision.num_hidden_layers if "{vision_layer}" in template else 1):
                    key = template.format(layer=layer, vision_layer=vision_layer)
                    shapes[key] = tuple(_size(entry, sizes) for entry in shape)
    return shapes


def released_state(config: SliMEConfig, with_vision: bool = True, seed: int = 0) -> dict[str, torch.Tensor]:
    """Random weights under the released names (every tensor distinct, so where each lands is traceable)."""
    generator = torch.Generator().manual_seed(seed)
    shapes = released_shapes(config, with_vision)
    state = {key: torch.randn(shape, generator=generator) * 0.05 for key, shape in shapes.items()}
    state["model.mm_projector.mean"], state["model.mm_projector.std"] = torch.zeros(1), torch.ones(1)
    for key in state:
        if key.endswith(NORM_WEIGHTS):
            state[key] += 1.0  # norms near 1 keep activations in range
    return state


def _official_config(config: SliMEConfig) -> dict:
    text = config.text_config.to_dict()
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
        "mm_hidden_size": config.vision_config.hidden_size,
        "mm_resampler_dim": config.local_num_queries,
        "mm_resampler_topp": 0.95,
        "mm_resampler_temp": 1.0,
        "mm_learnable_gated": -1,
        "seperator": config.separator_token_id,
        "use_global_only": False,
        "use_local_only": False,
    }


def write_official(
    root: Path, *, with_vision: bool = True, fmt: str = "safetensors"
) -> tuple[Path, Path, dict[str, torch.Tensor]]:
    """A released-layout folder (two weight files, gate constants, tokenizer), a separate CLIP folder
    (written by transformers) and the released tensors by name."""
    config = _source_config()
    source, clip = root / "official", root / "clip"
    source.mkdir()
    state = released_state(config, with_vision)
    keys = sorted(state)
    halves = [{k: state[k] for k in keys[: len(keys) // 2]}, {k: state[k] for k in keys[len(keys) // 2 :]}]
    for i, part in enumerate(halves):
        if fmt == "safetensors":
            save_file(part, source / f"model-0000{i + 1}-of-00002.safetensors")
        else:
            torch.save(part, source / f"pytorch_model-0000{i + 1}-of-00002.bin")
    (source / "config.json").write_text(json.dumps(_official_config(config)))
    tiny_tokenizer().save_pretrained(source)
    torch.manual_seed(1)
    CLIPVisionModel(config.vision_config).save_pretrained(clip)
    return source, clip, state


def _prompt(processor):
    conversation = chat("What is in the picture?")[:1]
    return processor([conversation], [noise_image(150, 90)], add_generation_prompt=True, padding_side="right")


def test_key_mapping_table():
    assert map_official_key("model.mm_projector.projection.0.weight") == "model.projector.linear_1.weight"
    assert (
        map_official_key("model.mm_projector.attn.attn.in_proj_weight") == "model.global_resampler.attn.in_proj_weight"
    )
    assert map_official_key("model.mm_projector.w_noise") == "model.gate.w_noise"
    assert map_official_key("model.sampler.post_qformer.pos_embed") == "model.local_resampler.pos_embed"
    assert (
        map_official_key("model.vision_tower.vision_tower.vision_model.post_layernorm.bias")
        == "model.vision_tower.post_layernorm.bias"
    )
    assert map_official_key("model.layers.3.mlp.up_proj.weight") == "model.language_model.layers.3.mlp.up_proj.weight"
    assert map_official_key("model.mm_projector.mean") is None
    with pytest.raises(KeyError):
        map_official_key("model.image_newline")
    assert (
        map_clip_key("vision_model.encoder.layers.0.mlp.fc1.weight")
        == "model.vision_tower.encoder.layers.0.mlp.fc1.weight"
    )
    assert map_clip_key("embeddings.class_embedding") == "model.vision_tower.embeddings.class_embedding"
    assert map_clip_key("text_model.embeddings.token_embedding.weight") is None
    assert map_clip_key("vision_model.embeddings.position_ids") is None


# Where DESIGN §2's released names must land (written here, not read from the converter).
EXPECTED_TARGETS = {
    "model.mm_projector.projection.0.weight": "model.projector.linear_1.weight",
    "model.mm_projector.projection.2.bias": "model.projector.linear_2.bias",
    "model.mm_projector.attn.ln_kv.weight": "model.global_resampler.ln_kv.weight",
    "model.mm_projector.attn.attn.in_proj_weight": "model.global_resampler.attn.in_proj_weight",
    "model.mm_projector.w_gate": "model.gate.w_gate",
    "model.mm_projector.w_noise": "model.gate.w_noise",
    "model.sampler.post_qformer.query": "model.local_resampler.query",
    "model.sampler.post_qformer.pos_embed": "model.local_resampler.pos_embed",
    "model.vision_tower.vision_tower.vision_model.encoder.layers.1.mlp.fc2.weight": (
        "model.vision_tower.encoder.layers.1.mlp.fc2.weight"
    ),
    "model.layers.1.self_attn.k_proj.weight": "model.language_model.layers.1.self_attn.k_proj.weight",
    "lm_head.weight": "lm_head.weight",
}


@pytest.mark.parametrize("fmt", ["safetensors", "bin"])
def test_a_released_checkpoint_converts_tensor_for_tensor(tmp_path, fmt):
    source, clip, state = write_official(tmp_path, fmt=fmt)
    out = tmp_path / "converted"
    report = convert_official(source, out, vision_dir=clip, dtype=torch.float32, max_shard_bytes=400_000)
    assert len(report.shards) > 1 and (out / "model.safetensors.index.json").is_file()
    assert report.ignored == GATE_CONSTANTS
    converted = SliMEForConditionalGeneration.from_pretrained(out).eval()
    ours = converted.state_dict()
    weights = {key: tensor for key, tensor in state.items() if key not in GATE_CONSTANTS}
    assert report.tensors == len(weights) == len(ours)
    # Random values: each released tensor lands in exactly one of our tensors, unchanged.
    where = {(tuple(t.shape), t.numpy().tobytes()): name for name, t in ours.items()}
    landed = {key: where[(tuple(t.shape), t.numpy().tobytes())] for key, t in weights.items()}
    assert len(set(landed.values())) == len(ours)
    assert {key: landed[key] for key in EXPECTED_TARGETS} == EXPECTED_TARGETS
    assert converted.config.num_resampler_heads == 1 and converted.config.local_num_queries == 4
    assert converted.config.chat_template == "vicuna_v1" and converted.config.global_expert == "mix"


def test_a_converted_checkpoint_behaves_as_released(tmp_path):
    """Released inference: the selector reads the whole prompt, system prompt included; the gate's
    noise (training only) scales with softplus(x·W_g) + 0.01."""
    source, clip, _ = write_official(tmp_path)
    convert_official(source, tmp_path / "converted", vision_dir=clip, dtype=torch.float32)
    converted = SliMEForConditionalGeneration.from_pretrained(tmp_path / "converted").eval()
    config = converted.config
    released_settings = (config.selector_text, config.gate_noise_source, config.gate_noise_epsilon)
    assert released_settings == ("whole_prompt", "w_gate", 0.01)
    prompt = _prompt(SliMEProcessor.from_pretrained(tmp_path / "converted"))
    whole_prompt = prompt["attention_mask"].bool() & (prompt["input_ids"] != config.image_token_id)
    inputs = [prompt[k] for k in ("input_ids", "attention_mask", "pixel_values", "image_grids")]
    released = reference_forward(converted, *inputs, whole_prompt)
    ours = converted(**prompt)
    assert torch.equal(ours.attention_mask, released["attention_mask"])
    assert torch.allclose(ours.logits, released["logits"], atol=1e-5)


def test_vision_weights_from_a_separate_clip_checkpoint(tmp_path):
    source, clip, _ = write_official(tmp_path, with_vision=False)
    out = tmp_path / "converted"
    convert_official(source, out, vision_dir=clip, dtype=torch.float32)
    converted = SliMEForConditionalGeneration.from_pretrained(out).eval()
    expected = CLIPVisionModel.from_pretrained(clip).state_dict()
    tower = converted.model.vision_tower.state_dict()
    assert tower.keys() == expected.keys()
    assert all(torch.equal(tower[key], expected[key]) for key in expected)


def _corrupt(source: Path, extra: dict[str, torch.Tensor] | None = None, drop: str | None = None) -> None:
    from safetensors.torch import load_file

    path = source / "model-00001-of-00002.safetensors"
    state = load_file(path)
    if drop:
        state = {k: v for k, v in state.items() if k != drop}
    save_file({**state, **(extra or {})}, path)


def test_unknown_missing_and_misshaped_keys_fail_with_the_full_list(tmp_path):
    source, clip, _ = write_official(tmp_path)
    _corrupt(
        source,
        extra={"model.image_newline": torch.zeros(64), "model.mm_projector.w_gate": torch.zeros(3, 2)},
        drop="lm_head.weight",  # the first key in sorted order: it is in the first file
    )
    with pytest.raises(ConversionError) as caught:
        convert_official(source, tmp_path / "out", vision_dir=clip)
    problems = "\n".join(caught.value.problems)
    assert "unknown key model.image_newline" in problems
    assert "shape of model.mm_projector.w_gate: [3, 2], expected [128, 2]" in problems
    assert "missing key lm_head.weight" in problems
    assert not (tmp_path / "out").exists()  # nothing written before every key checks out


def test_unsupported_released_variants_fail(tmp_path):
    source, clip, _ = write_official(tmp_path)
    config = json.loads((source / "config.json").read_text())
    (source / "config.json").write_text(json.dumps({**config, "mm_patch_merge_type": "flat"}))
    with pytest.raises(ValueError, match="mm_patch_merge_type='flat'"):
        convert_official(source, tmp_path / "out", vision_dir=clip)


def test_cli_convert(tmp_path):
    source, clip, _ = write_official(tmp_path)
    runner = CliRunner()
    ok = runner.invoke(
        app,
        [
            "convert",
            "--from-official",
            str(source),
            "--out",
            str(tmp_path / "out"),
            "--vision-tower",
            str(clip),
            "--dtype",
            "float32",
        ],
    )
    assert ok.exit_code == 0, ok.output
    assert (tmp_path / "out" / "model.safetensors").is_file() and (tmp_path / "out" / "slime_processor.json").is_file()
    _corrupt(source, extra={"model.image_newline": torch.zeros(64)})
    failed = runner.invoke(
        app, ["convert", "--from-official", str(source), "--out", str(tmp_path / "out2"), "--vision-tower", str(clip)]
    )
    assert failed.exit_code == 2
    assert "Traceback" not in failed.output
    bad = runner.invoke(app, ["convert", "--from-official", str(tmp_path / "nope"), "--out", str(tmp_path / "o")])
    assert bad.exit_code == 2
