"""Convert a released SliME checkpoint (LLaVA layout) into this package's Hugging Face format.

Key names (DESIGN §2) map by prefix; a few constants the released code stores as buffers are
dropped; any other key, any missing key and any shape mismatch fails the conversion with the full
list. Weights stream shard by shard (safetensors or `weights_only` torch files), so converting an
8B model needs one output shard of memory, not the model.
"""

from __future__ import annotations

import dataclasses
import json
import re
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from safetensors import safe_open
from safetensors.torch import save_file
from transformers import AutoConfig, AutoTokenizer, CLIPVisionConfig

from slime_model.configuration import CLIP_L_336, SliMEConfig
from slime_model.modeling import SliMEForConditionalGeneration
from slime_model.permissions import follow_umask
from slime_model.processing import SliMEProcessor

# Official prefix -> ours, checked in order (the first match wins).
# The released CLIPVisionTower wraps a transformers-4 CLIPVisionModel (`vision_model.` level), which
# transformers 5 no longer has.
KEY_PREFIXES: tuple[tuple[str, str], ...] = (
    ("model.vision_tower.vision_tower.vision_model.", "model.vision_tower."),
    ("model.mm_projector.projection.0.", "model.projector.linear_1."),
    ("model.mm_projector.projection.2.", "model.projector.linear_2."),
    ("model.mm_projector.attn.", "model.global_resampler."),
    ("model.mm_projector.w_gate", "model.gate.w_gate"),
    ("model.mm_projector.w_noise", "model.gate.w_noise"),
    ("model.sampler.post_qformer.", "model.local_resampler."),
    ("model.embed_tokens.", "model.language_model.embed_tokens."),
    ("model.layers.", "model.language_model.layers."),
    ("model.norm.", "model.language_model.norm."),
    ("lm_head.", "lm_head."),
)
# Stored by the released code but not weights: the gate's N(0, 1) constants, old position-id and
# rotary buffers.
IGNORED_KEYS = re.compile(r"^model\.mm_projector\.(mean|std)$|\.position_ids$|\.rotary_emb\.inv_freq$")
# Top-level modules of a transformers-5 CLIPVisionModel.
CLIP_VISION_MODULES = ("embeddings.", "pre_layrnorm.", "encoder.", "post_layernorm.")
GLOBAL_EXPERT_OF_LEARNABLE_GATED = {-1: "mix", 0: "mlp", 1: "resampler"}
RELEASED_SEPARATOR_DEFAULT = 1919  # `getattr(model_args, 'seperator', 1919)` in the released code
RELEASED_GATE_NOISE_EPSILON = 0.01  # `noisy_top_k_gating(x, noise_epsilon=1e-2)` in the released code


def map_clip_key(key: str) -> str | None:
    """A separate CLIP checkpoint's key -> ours: `vision_model.*` (CLIPModel, transformers-4
    CLIPVisionModel) or bare module names (transformers 5); None for the text tower and projections."""
    if IGNORED_KEYS.search(key):
        return None
    key = key.removeprefix("vision_model.")
    return "model.vision_tower." + key if key.startswith(CLIP_VISION_MODULES) else None


def map_official_key(key: str) -> str | None:
    """Our name for an official key; None for ignored keys. Raises KeyError for unknown keys."""
    if IGNORED_KEYS.search(key):
        return None
    for official, ours in KEY_PREFIXES:
        if key.startswith(official):
            return ours + key[len(official) :]
    raise KeyError(key)


@dataclass
class TensorSource:
    """Where one tensor lives: a file and the key inside it."""

    path: Path
    key: str
    shape: tuple[int, ...]


@dataclass
class ConversionReport:
    out_dir: Path
    tensors: int = 0
    parameters: int = 0
    bytes_written: int = 0
    shards: list[str] = field(default_factory=list)
    ignored: list[str] = field(default_factory=list)
    config: dict[str, Any] = field(default_factory=dict)


class ConversionError(ValueError):
    """Unknown, missing or mis-shaped keys; `problems` lists them all."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__(
            f"{len(problems)} key problem(s), conversion stopped: "
            + "; ".join(problems[:5])
            + (" …" if len(problems) > 5 else "")
        )
        self.problems = problems


# ---- reading ----------------------------------------------------------------------------------------
def weight_files(directory: Path) -> list[Path]:
    files = sorted(directory.glob("*.safetensors")) or sorted(directory.glob("pytorch_model*.bin"))
    if not files:
        raise FileNotFoundError(f"no *.safetensors or pytorch_model*.bin weights in {directory}")
    return files


def list_tensors(files: list[Path]) -> dict[str, TensorSource]:
    """Every tensor key of a checkpoint with its file and shape, without loading the data."""
    sources: dict[str, TensorSource] = {}
    for path in files:
        if path.suffix == ".safetensors":
            with safe_open(path, framework="pt") as handle:
                for key in handle.keys():
                    sources[key] = TensorSource(path, key, tuple(handle.get_slice(key).get_shape()))
        else:
            state = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
            sources.update({key: TensorSource(path, key, tuple(t.shape)) for key, t in state.items()})
    return sources


class TensorReader:
    """Loads tensors on demand, keeping each file open (safetensors) or memory-mapped (torch)."""

    def __init__(self) -> None:
        self._stack = ExitStack()
        self._handles: dict[Path, Any] = {}

    def __enter__(self) -> TensorReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self._stack.close()

    def get(self, source: TensorSource) -> torch.Tensor:
        handle = self._handles.get(source.path)
        if handle is None:
            if source.path.suffix == ".safetensors":
                handle = self._stack.enter_context(safe_open(source.path, framework="pt"))
            else:
                handle = torch.load(source.path, map_location="cpu", weights_only=True, mmap=True)
            self._handles[source.path] = handle
        return handle.get_tensor(source.key) if source.path.suffix == ".safetensors" else handle[source.key]


# ---- config ---------------------------------------------------------------------------------------
def _require(condition: bool, message: str) -> None:
    if not condition:
        raise ValueError(message)


def official_to_config(
    official: dict[str, Any], vision_config: CLIPVisionConfig, chat_template: str | None
) -> SliMEConfig:
    """The released config.json (LlavaLlama + mm_* fields) -> SliMEConfig; unsupported variants fail."""
    _require(
        official.get("mm_projector_type") == "gated",
        f"mm_projector_type={official.get('mm_projector_type')!r}: only SliME's 'gated' projector converts",
    )
    _require(
        official.get("mm_resampler_type") == "cosine",
        f"mm_resampler_type={official.get('mm_resampler_type')!r}: only the 'cosine' selector converts",
    )
    _require(
        official.get("mm_patch_merge_type") == "spatial",
        f"mm_patch_merge_type={official.get('mm_patch_merge_type')!r}: "
        "only 'spatial' (raster-ordered local tokens) converts",
    )
    _require(
        official.get("image_aspect_ratio") == "anyres",
        f"image_aspect_ratio={official.get('image_aspect_ratio')!r}: only 'anyres' (the uhd slicing rule) converts",
    )
    _require(
        official.get("mm_vision_select_feature", "patch") == "patch",
        "mm_vision_select_feature must be 'patch' (CLS dropped)",
    )
    gated = official.get("mm_learnable_gated", -1)
    _require(gated in GLOBAL_EXPERT_OF_LEARNABLE_GATED, f"mm_learnable_gated={gated!r} is not one of -1, 0, 1")

    text_type = official.get("model_type", "llava_llama").removeprefix("llava_")
    text_class = type(AutoConfig.for_model(text_type))
    text_fields = {f.name for f in dataclasses.fields(text_class)} | {"rope_theta", "rope_scaling"}
    text_config = text_class(
        **{k: v for k, v in official.items() if k in text_fields and k not in ("architectures", "transformers_version")}
    )
    branch = "local" if official.get("use_local_only") else "global" if official.get("use_global_only") else "both"
    top_p = float(official.get("mm_resampler_topp", 0.95))
    return SliMEConfig(
        vision_config=vision_config,
        text_config=text_config,
        vision_feature_layer=official.get("mm_vision_select_layer", -2),
        global_expert=GLOBAL_EXPERT_OF_LEARNABLE_GATED[gated],
        local_num_queries=official.get("mm_resampler_dim", 144),
        selector_top_p_train=top_p,
        selector_top_p_eval=top_p,
        selector_temperature=float(official.get("mm_resampler_temp", 1.0)),
        # The released behaviour, so that its numbers reproduce: the selector reads the whole prompt
        # (system prompt included) and the gate's noise scale comes from W_g (+0.01); DESIGN §2.
        selector_text="whole_prompt",
        gate_noise_source="w_gate",
        gate_noise_epsilon=RELEASED_GATE_NOISE_EPSILON,
        slicing_strategy="uhd",
        branch=branch,
        separator_token_id=official.get("seperator", RELEASED_SEPARATOR_DEFAULT),
        image_token_id=text_config.vocab_size,  # replaced by the tokenizer's id once it is loaded
        chat_template=chat_template or ("llama3" if text_config.vocab_size >= 128000 else "vicuna_v1"),
    )


def vision_config_for(official: dict[str, Any], vision_dir: Path | None) -> CLIPVisionConfig:
    if vision_dir is not None:
        raw = json.loads((vision_dir / "config.json").read_text(encoding="utf-8"))
        return CLIPVisionConfig(**raw.get("vision_config", raw))
    tower = str(official.get("mm_vision_tower", ""))
    _require(
        tower.rstrip("/").endswith("clip-vit-large-patch14-336"),
        f"mm_vision_tower={tower!r}: pass --vision-tower DIR with its config.json",
    )
    return CLIPVisionConfig(**CLIP_L_336)


# ---- conversion -------------------------------------------------------------------------------------
def plan_keys(
    official: dict[str, TensorSource], clip: dict[str, TensorSource], expected: dict[str, tuple[int, ...]]
) -> tuple[dict[str, TensorSource], list[str]]:
    """Target key -> source tensor, plus the ignored official keys; raises ConversionError listing every problem."""
    plan: dict[str, TensorSource] = {}
    ignored, problems = [], []
    for key, source in sorted(official.items()):
        try:
            target = map_official_key(key)
        except KeyError:
            problems.append(f"unknown key {key}")
            continue
        if target is None:
            ignored.append(key)
        else:
            plan[target] = source
    for key, source in sorted(clip.items()):  # fills in the vision tower only where the checkpoint has none
        target = map_clip_key(key)
        if target is not None and target not in plan:
            plan[target] = source
    for target, source in plan.items():
        if target not in expected:
            problems.append(f"unknown key {source.key} (-> {target})")
        elif tuple(expected[target]) != source.shape:
            problems.append(f"shape of {source.key}: {list(source.shape)}, expected {list(expected[target])}")
    problems += [f"missing key {key}" for key in sorted(expected.keys() - plan.keys())]
    if problems:
        raise ConversionError(problems)
    return plan, ignored


def shard_plan(plan: dict[str, TensorSource], itemsize: int, max_shard_bytes: int) -> list[list[str]]:
    shards: list[list[str]] = [[]]
    size = 0
    for key in sorted(plan):
        nbytes = itemsize * int(torch.Size(plan[key].shape).numel())
        if shards[-1] and size + nbytes > max_shard_bytes:
            shards.append([])
            size = 0
        shards[-1].append(key)
        size += nbytes
    return shards


def convert_official(
    source_dir: Path,
    out_dir: Path,
    *,
    vision_dir: Path | None = None,
    tokenizer_dir: Path | None = None,
    chat_template: str | None = None,
    dtype: torch.dtype = torch.bfloat16,
    max_shard_bytes: int = 5 * 1024**3,
    on_tensor: Callable[[int, int], None] | None = None,
) -> ConversionReport:
    """Convert `source_dir` (released SliME checkpoint) into `out_dir` (safetensors + config + processor)."""
    config_path = source_dir / "config.json"
    if not config_path.is_file():
        raise FileNotFoundError(f"{config_path} not found: not a released SliME checkpoint directory")
    official = json.loads(config_path.read_text(encoding="utf-8"))
    config = official_to_config(official, vision_config_for(official, vision_dir), chat_template)
    tokenizer = AutoTokenizer.from_pretrained(tokenizer_dir or source_dir)
    if config.image_token not in tokenizer.get_vocab():
        tokenizer.add_tokens([config.image_token], special_tokens=True)
    config.image_token_id = tokenizer.convert_tokens_to_ids(config.image_token)
    processor = SliMEProcessor.from_config(config, tokenizer)

    with torch.device("meta"):
        expected = {k: tuple(v.shape) for k, v in SliMEForConditionalGeneration(config).state_dict().items()}
    clip = list_tensors(weight_files(vision_dir)) if vision_dir is not None else {}
    plan, ignored = plan_keys(list_tensors(weight_files(source_dir)), clip, expected)

    out_dir.mkdir(parents=True, exist_ok=True)
    report = ConversionReport(out_dir=out_dir, ignored=ignored)
    shards = shard_plan(plan, torch.empty(0, dtype=dtype).element_size(), max_shard_bytes)
    names = (
        ["model.safetensors"]
        if len(shards) == 1
        else [f"model-{i + 1:05d}-of-{len(shards):05d}.safetensors" for i in range(len(shards))]
    )
    weight_map: dict[str, str] = {}
    with TensorReader() as reader:
        for name, keys in zip(names, shards):
            tensors = {key: _cast(reader.get(plan[key]), dtype) for key in keys}
            save_file(tensors, out_dir / name, metadata={"format": "pt"})
            for key, tensor in tensors.items():
                weight_map[key] = name
                report.tensors += 1
                report.parameters += tensor.numel()
                report.bytes_written += tensor.numel() * tensor.element_size()
                if on_tensor:
                    on_tensor(report.tensors, len(plan))
            report.shards.append(name)
    if len(names) > 1:
        index = {"metadata": {"total_size": report.bytes_written}, "weight_map": dict(sorted(weight_map.items()))}
        (out_dir / "model.safetensors.index.json").write_text(json.dumps(index, indent=2) + "\n", encoding="utf-8")
    config.architectures = ["SliMEForConditionalGeneration"]
    config.dtype = dtype
    follow_umask(out_dir)
    config.save_pretrained(out_dir)
    processor.save_pretrained(out_dir)
    report.config = {
        "text model": config.text_config.model_type,
        "chat template": config.chat_template,
        "branch": config.branch,
        "global expert": config.global_expert,
        "local queries": config.local_num_queries,
        "selector top-p": config.selector_top_p_eval,
        "selector text": config.selector_text,
        "gate noise source": config.gate_noise_source,
        "separator token id": config.separator_token_id,
        "image token id": config.image_token_id,
    }
    return report


def _cast(tensor: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    return tensor.to(dtype).contiguous() if tensor.is_floating_point() else tensor.contiguous()
