"""`SliMEConfig`: a CLIP vision config, any causal-LM text config, and the SliME settings (DESIGN §2).

The SliME settings are plain dataclass fields (transformers 5 configs are dataclasses); `__post_init__`
checks every combination and raises a `ValueError` that names the offending field, so a bad recipe
fails at load time rather than deep inside a forward pass.
"""

from __future__ import annotations

import math
from typing import Any, ClassVar

from transformers import AutoConfig, CLIPVisionConfig, LlamaConfig, PreTrainedConfig
from transformers.configuration_utils import SubConfigSpec

from slime_model.templates import CHAT_TEMPLATE_NAMES

BRANCHES = ("global", "local", "both")
GLOBAL_EXPERTS = ("mix", "mlp", "resampler")
SLICING_STRATEGIES = ("uhd", "anyres", "grid")
SELECTOR_SIMILARITIES = ("cosine",)
SELECTOR_TEXTS = ("user_turns", "whole_prompt")
GATE_NOISE_SOURCES = ("w_noise", "w_gate")
NUM_GLOBAL_EXPERTS = 2  # expert 0: the MLP, expert 1: the resampler followed by the same MLP

# openai/clip-vit-large-patch14-336, the vision tower of every released SliME checkpoint.
CLIP_L_336 = {
    "hidden_size": 1024,
    "intermediate_size": 4096,
    "num_hidden_layers": 24,
    "num_attention_heads": 16,
    "image_size": 336,
    "patch_size": 14,
    "projection_dim": 768,
    "hidden_act": "quick_gelu",
    "layer_norm_eps": 1e-5,
}

# LLaVA-NeXT's "anyres" pinpoints as (width, height) in pixels of 336² crops.
LLAVA_NEXT_PINPOINTS = [[672, 672], [336, 672], [672, 336], [336, 1008], [1008, 336], [336, 1344], [1344, 336]]


class SliMEConfig(PreTrainedConfig):
    r"""Configuration of [`SliMEForConditionalGeneration`].

    vision_config: CLIP vision config (`clip_vision_model`); its `image_size` is the crop side.
    text_config: config of any causal LM that `AutoModel.from_config` builds (Llama, Mistral, Qwen2 …).
    vision_feature_layer: CLIP hidden state used as image features (−2 = second to last layer).
    global_expert: "mix" (gated mixture of both experts), "mlp" or "resampler" (one expert only, stages 1a/1b).
    gate_noise: add noise ε·(softplus(x·W) + gate_noise_epsilon) to the gate logits while training.
    gate_noise_source: W of the noise scale: "w_noise" (the paper's formula, default) or "w_gate" (the
        released code at its HEAD, so its W_noise was never trained; converted checkpoints use it).
    gate_noise_epsilon: constant added to the noise scale (0 in the paper, 0.01 in the released code).
    gate_top_k: experts kept per token before renormalising (2 of 2 = dense soft mix).
    resampler_num_heads: heads of both resamplers (None: vision hidden size // 128, as released).
    local_num_queries: queries of the local compression resampler per crop (a square: 144 = 12×12).
    selector_*: text-guided selection of local tokens (cosine similarity, top-p in training and in
        inference, Gaussian noise std before the softmax while training, softmax temperature).
    selector_text: the text the selector compares local tokens with: "user_turns" (the processor's
        `selector_text_mask`, default) or "whole_prompt" (every unlabelled text token: system prompt,
        role markers, user turns; what the released code sees at inference; converted checkpoints use it).
        A sample with no such text (a prompt that is only `<image>`) keeps all its local tokens.
    slicing_strategy: "uhd" (the released code, default), "anyres" (LLaVA-NeXT pinpoints) or "grid"
        (the paper's search over grids up to `grid_max_side`²).
    uhd_max_scale: upper clip of s = ceil(W·H / crop²) in the "uhd" rule (6 in the released code).
    image_grid_pinpoints: "anyres" resolutions as [width, height] multiples of the crop side.
    branch: "global", "local" or "both" views in the visual sequence (stages switch it).
    separator_token_id: LLM token whose input embedding separates global and local tokens (",").
    image_token_id / image_token: the placeholder the processor writes and the model replaces.
    chat_template: default template of the processor ("plain", "vicuna_v1", "llama3").
    """

    model_type = "slime"
    sub_configs_defaults: ClassVar[dict[str, SubConfigSpec]] = {
        "text_config": SubConfigSpec(config_class=AutoConfig, model_type="llama"),
        "vision_config": SubConfigSpec(config_class=AutoConfig, model_type="clip_vision_model", init_kwargs=CLIP_L_336),
    }

    vision_config: dict | PreTrainedConfig | None = None
    text_config: dict | PreTrainedConfig | None = None
    vision_feature_layer: int = -2
    projector_hidden_act: str = "gelu"
    global_expert: str = "mix"
    gate_noise: bool = True
    gate_noise_source: str = "w_noise"
    gate_noise_epsilon: float = 0.0
    gate_top_k: int = 2
    resampler_num_heads: int | None = None
    local_num_queries: int = 144
    selector_similarity: str = "cosine"
    selector_top_p_train: float = 0.95
    selector_top_p_eval: float = 0.95
    selector_noise_std: float = 0.1
    selector_temperature: float = 1.0
    selector_text: str = "user_turns"
    slicing_strategy: str = "uhd"
    uhd_max_scale: int = 6
    grid_max_side: int = 6
    image_grid_pinpoints: list | None = None
    branch: str = "both"
    separator_token_id: int = 29892
    image_token_id: int = 32000
    image_token: str = "<image>"
    chat_template: str = "vicuna_v1"
    tie_word_embeddings: bool = False

    def __post_init__(self, **kwargs: Any) -> None:
        super().__post_init__(**kwargs)
        if self.image_grid_pinpoints is None:
            self.image_grid_pinpoints = [list(p) for p in LLAVA_NEXT_PINPOINTS]
        self._check()

    # ---- derived sizes -------------------------------------------------------------------------
    @property
    def crop_size(self) -> int:
        """Side of every crop and of the global view (the vision tower's input size)."""
        return self.vision_config.image_size

    @property
    def num_global_tokens(self) -> int:
        """Patch tokens per crop = global resampler queries (576 for 336/14)."""
        return (self.vision_config.image_size // self.vision_config.patch_size) ** 2

    @property
    def num_resampler_heads(self) -> int:
        return self.resampler_num_heads or self.vision_config.hidden_size // 128

    def selector_top_p(self, training: bool) -> float:
        return self.selector_top_p_train if training else self.selector_top_p_eval

    # ---- validation ------------------------------------------------------------------------------
    def _check(self) -> None:
        vision, text = self.vision_config, self.text_config
        _require(
            vision.model_type == "clip_vision_model",
            "vision_config",
            f"must be a CLIP vision config, got model_type={vision.model_type!r}",
        )
        _require(
            vision.image_size % vision.patch_size == 0,
            "vision_config.image_size",
            f"{vision.image_size} is not a multiple of patch_size {vision.patch_size}",
        )
        num_states = vision.num_hidden_layers + 1  # embeddings + one per layer
        _require(
            -num_states <= self.vision_feature_layer < num_states,
            "vision_feature_layer",
            f"{self.vision_feature_layer} is outside the {num_states} CLIP hidden states",
        )
        _require(
            self.global_expert in GLOBAL_EXPERTS,
            "global_expert",
            f"{self.global_expert!r} is not one of {GLOBAL_EXPERTS}",
        )
        _require(1 <= self.gate_top_k <= NUM_GLOBAL_EXPERTS, "gate_top_k", f"{self.gate_top_k} must be 1 or 2")
        source = self.gate_noise_source
        _require(source in GATE_NOISE_SOURCES, "gate_noise_source", f"{source!r} is not one of {GATE_NOISE_SOURCES}")
        _require(self.gate_noise_epsilon >= 0.0, "gate_noise_epsilon", f"{self.gate_noise_epsilon} must be >= 0")
        heads = self.num_resampler_heads
        _require(
            heads >= 1 and vision.hidden_size % heads == 0,
            "resampler_num_heads",
            f"{heads} heads do not divide the vision hidden size {vision.hidden_size}",
        )
        side = math.isqrt(self.local_num_queries)
        _require(
            self.local_num_queries >= 1 and side * side == self.local_num_queries,
            "local_num_queries",
            f"{self.local_num_queries} must be a positive square (144 = 12×12)",
        )
        _require(
            self.selector_similarity in SELECTOR_SIMILARITIES,
            "selector_similarity",
            f"{self.selector_similarity!r} is not one of {SELECTOR_SIMILARITIES}",
        )
        for name in ("selector_top_p_train", "selector_top_p_eval"):
            value = getattr(self, name)
            _require(0.0 < value <= 1.0, name, f"{value} must be in (0, 1]")
        _require(self.selector_noise_std >= 0.0, "selector_noise_std", f"{self.selector_noise_std} must be >= 0")
        text_kind = self.selector_text
        _require(text_kind in SELECTOR_TEXTS, "selector_text", f"{text_kind!r} is not one of {SELECTOR_TEXTS}")
        _require(self.selector_temperature > 0.0, "selector_temperature", f"{self.selector_temperature} must be > 0")
        _require(
            self.slicing_strategy in SLICING_STRATEGIES,
            "slicing_strategy",
            f"{self.slicing_strategy!r} is not one of {SLICING_STRATEGIES}",
        )
        _require(self.uhd_max_scale >= 2, "uhd_max_scale", f"{self.uhd_max_scale} must be >= 2")
        _require(self.grid_max_side >= 1, "grid_max_side", f"{self.grid_max_side} must be >= 1")
        for point in self.image_grid_pinpoints:
            ok = len(point) == 2 and all(isinstance(v, int) and v > 0 and v % self.crop_size == 0 for v in point)
            _require(
                ok,
                "image_grid_pinpoints",
                f"{point} is not a [width, height] pair of multiples of the crop side {self.crop_size}",
            )
        _require(self.branch in BRANCHES, "branch", f"{self.branch!r} is not one of {BRANCHES}")
        _require(
            0 <= self.separator_token_id < text.vocab_size,
            "separator_token_id",
            f"{self.separator_token_id} is outside the LLM vocabulary of {text.vocab_size}",
        )
        _require(self.image_token_id >= 0, "image_token_id", f"{self.image_token_id} must be >= 0")
        _require(
            self.chat_template in CHAT_TEMPLATE_NAMES,
            "chat_template",
            f"{self.chat_template!r} is not one of {CHAT_TEMPLATE_NAMES}",
        )

    # ---- presets ---------------------------------------------------------------------------------
    @classmethod
    def from_name(cls, name: str, **overrides: Any) -> SliMEConfig:
        """A preset: "slime-vicuna-7b", "slime-vicuna-13b", "slime-llama3-8b", "slime-llama3-70b" or "tiny" (CPU tests,
        demos)."""
        if name not in PRESETS:
            raise ValueError(f"unknown SliME preset {name!r}; choose one of {sorted(PRESETS)}")
        return cls(**{**PRESETS[name](), **overrides})


def _require(ok: bool, field: str, message: str) -> None:
    if not ok:
        raise ValueError(f"SliMEConfig.{field}: {message}")


def _vicuna(hidden: int, layers: int, intermediate: int) -> dict[str, Any]:
    # lmsys/vicuna-{7,13}b-v1.5: Llama-2 layout, 32000-token SentencePiece vocabulary ("," = 29892).
    text = LlamaConfig(
        vocab_size=32000,
        hidden_size=hidden,
        intermediate_size=intermediate,
        num_hidden_layers=layers,
        num_attention_heads=hidden // 128,
        num_key_value_heads=hidden // 128,
        max_position_embeddings=4096,
        rms_norm_eps=1e-5,
        bos_token_id=1,
        eos_token_id=2,
        pad_token_id=0,
    )
    return {
        "vision_config": CLIPVisionConfig(**CLIP_L_336),
        "text_config": text,
        "separator_token_id": 29892,
        "image_token_id": 32000,
        "chat_template": "vicuna_v1",
    }


def _llama3(hidden: int, layers: int, intermediate: int) -> dict[str, Any]:
    # meta-llama/Meta-Llama-3-{8,70}B-Instruct: GQA with 8 KV heads, 128256-token tiktoken vocabulary ("," = 11).
    text = LlamaConfig(
        vocab_size=128256,
        hidden_size=hidden,
        intermediate_size=intermediate,
        num_hidden_layers=layers,
        num_attention_heads=hidden // 128,
        num_key_value_heads=8,
        max_position_embeddings=8192,
        rms_norm_eps=1e-5,
        rope_theta=500000.0,
        bos_token_id=128000,
        eos_token_id=128009,
    )
    return {
        "vision_config": CLIPVisionConfig(**CLIP_L_336),
        "text_config": text,
        "separator_token_id": 11,
        "image_token_id": 128256,
        "chat_template": "llama3",
    }


def _tiny() -> dict[str, Any]:
    from slime_model.tiny import tiny_settings

    return tiny_settings()


PRESETS = {
    "slime-vicuna-7b": lambda: _vicuna(4096, 32, 11008),
    "slime-vicuna-13b": lambda: _vicuna(5120, 40, 13824),
    "slime-llama3-8b": lambda: _llama3(4096, 32, 14336),
    "slime-llama3-70b": lambda: _llama3(8192, 80, 28672),
    "tiny": _tiny,
}


AutoConfig.register(SliMEConfig.model_type, SliMEConfig)
