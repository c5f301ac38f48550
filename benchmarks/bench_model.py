"""SliME model benchmark: batched forward+backward vs the released code's per-sample loop, and
visual tokens per image for common sizes (SliME vs LLaVA-1.5 vs LLaVA-NeXT).

All implementations run in the same process on the same weights and batch (SFT stage: both
branches, top-p 0.95, LLM + adapters trainable); read the ratios, not the absolute samples/s.
The baseline is `slime_model.reference.reference_forward`: CLIP once per image, selector and
splicing per sample, every image padded to 10 crops that go through CLIP and the local branch
(as the released data pipeline does); the same loop without that padding is shown too. The LLM's
forward + backward on the merged sequence is timed on its own (the same module and sequence in both;
ours computes logits only where the next token is labelled, as the trainer does): it caps the
full-step speed-up at (loop step) / (our LLM step) on a device where compute, not launch overhead,
dominates (the CPU).

    python benchmarks/bench_model.py                          # CPU, batch 8, one thread, tiny + small
    python benchmarks/bench_model.py --device cuda --dtype bfloat16 --configs small clip-l
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch
from PIL import Image
from rich.console import Console
from rich.table import Table
from transformers import CLIPVisionConfig, LlamaConfig

from slime_model.configuration import CLIP_L_336, LLAVA_NEXT_PINPOINTS, SliMEConfig
from slime_model.modeling import SliMEForConditionalGeneration
from slime_model.processing import SliMEProcessor
from slime_model.reference import reference_forward, reference_merge
from slime_model.slicing import choose_grid
from slime_model.tiny import TINY_VOCAB_SIZE, tiny_settings, tiny_tokenizer

COMMON_SIZES = [(336, 336), (672, 672), (1008, 672), (1344, 336), (2000, 1500)]
SFT_GROUPS = ["llm", "global.mlp", "global.resampler", "global.gate", "local.compressor"]


def bench_config(name: str) -> SliMEConfig:
    """"tiny": the preset (CLIP 32-wide, Llama 64-wide, 112 px). "small": CLIP 64-wide, Llama 128-wide,
    112 px. "clip-l": the released CLIP-L/336 tower and adapters (576 + 144/crop) with a 2-layer
    1024-wide Llama; meant for a GPU."""
    if name == "tiny":
        return SliMEConfig.from_name("tiny")
    if name == "small":
        vision = CLIPVisionConfig(hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=2, image_size=112, patch_size=14)
        text = LlamaConfig(vocab_size=TINY_VOCAB_SIZE, hidden_size=128, intermediate_size=256, num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2)
        return SliMEConfig(**{**tiny_settings(), "vision_config": vision, "text_config": text})
    text = LlamaConfig(vocab_size=TINY_VOCAB_SIZE, hidden_size=1024, intermediate_size=2816, num_hidden_layers=2, num_attention_heads=8, num_key_value_heads=8)
    return SliMEConfig(**{**tiny_settings(), "vision_config": CLIPVisionConfig(**CLIP_L_336), "text_config": text, "resampler_num_heads": None, "local_num_queries": 144})


def make_batch(processor: SliMEProcessor, batch_size: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    scale = processor.settings.image.crop_size / 336  # the common sizes, at this config's crop side
    conversations, images = [], []
    for i in range(batch_size):
        width, height = COMMON_SIZES[i % len(COMMON_SIZES)]
        size = (max(1, round(width * scale)), max(1, round(height * scale)))
        images.append(Image.fromarray(rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)))
        question = "What is the value of the longest bar in the chart, and which year is it?"
        conversations.append([{"from": "human", "value": f"<image>\n{question} ({i})"}, {"from": "gpt", "value": "The longest bar is 2019 with 42."}])
    return processor(conversations, images)


def time_steps(step, steps: int, device: torch.device) -> float:
    step()  # warm-up
    if device.type == "cuda":
        torch.cuda.synchronize()
    start = time.perf_counter()
    for _ in range(steps):
        step()
    if device.type == "cuda":
        torch.cuda.synchronize()
    return (time.perf_counter() - start) / steps


def throughput(name: str, args: argparse.Namespace, console: Console) -> None:
    device, dtype = torch.device(args.device), getattr(torch, args.dtype)
    config = bench_config(name)
    config.selector_top_p_train = 0.95
    torch.manual_seed(0)
    model = SliMEForConditionalGeneration(config).to(device=device, dtype=dtype).train()
    model.set_trainable(SFT_GROUPS)
    processor = SliMEProcessor.from_config(config, tiny_tokenizer())
    batch = make_batch(processor, args.batch).to(device)
    batch["pixel_values"] = batch["pixel_values"].to(dtype)
    inputs = [batch[k] for k in ("input_ids", "attention_mask", "pixel_values", "image_grids", "selector_text_mask", "labels")]

    def full_step(forward):
        def step() -> None:
            model.zero_grad(set_to_none=True)
            forward().backward()

        return step

    def visual_path(merge):  # CLIP -> adapters -> selector -> splice, with a backward through it
        return full_step(lambda: merge().float().square().mean())

    # The LLM part both implementations share: the same module on the same merged sequence (the
    # embeddings a leaf that needs a gradient, so the backward is the one a training step does).
    merged = {k: v.detach() for k, v in reference_merge(model, *inputs).items()}
    merged["inputs_embeds"].requires_grad_(True)

    def llm_loss(labelled_only: bool) -> torch.Tensor:
        """The LLM and its loss: logits everywhere (the released code) or only where the next token is labelled (ours)."""
        hidden = model.model.language_model(
            inputs_embeds=merged["inputs_embeds"], attention_mask=merged["attention_mask"], position_ids=merged["position_ids"]
        ).last_hidden_state
        vocab = config.text_config.vocab_size
        if not labelled_only:
            return model.loss_function(logits=model.lm_head(hidden), labels=merged["labels"], vocab_size=vocab)
        targets = merged["labels"][:, 1:]
        labelled = targets != -100
        return model.loss_function(logits=model.lm_head(hidden[:, :-1][labelled]), labels=None, vocab_size=vocab, shift_labels=targets[labelled])

    def clip_forward() -> None:
        with torch.no_grad():
            model.model.vision_features(batch["pixel_values"])

    loop_label = f"per-sample loop, crops padded to {args.pad_crops} (released)"
    scopes = {
        "training step (forward + backward)": {
            "batched (slime_model)": full_step(lambda: model(**batch, labelled_logits_only=True).loss),  # as the trainer calls it
            loop_label: full_step(lambda: reference_forward(model, *inputs, pad_crops_to=args.pad_crops)["loss"]),
            "per-sample loop, no crop padding": full_step(lambda: reference_forward(model, *inputs)["loss"]),
        },
        "visual path only (everything but the LLM)": {
            "batched (slime_model)": visual_path(lambda: model.model.embed_multimodal(*inputs[:5], inputs[5], "right")[0].inputs_embeds),
            loop_label: visual_path(lambda: reference_merge(model, *inputs, pad_crops_to=args.pad_crops)["inputs_embeds"]),
            "per-sample loop, no crop padding": visual_path(lambda: reference_merge(model, *inputs)["inputs_embeds"]),
        },
        "LLM only (the same module and sequence in both)": {
            "logits everywhere (released)": full_step(lambda: llm_loss(False)),
            "logits where labelled (ours)": full_step(lambda: llm_loss(True)),
        },
        "frozen vision tower, forward on the real crops": {"CLIP (both run it at least on these)": clip_forward},
    }
    crops = int(batch["pixel_values"].shape[0])
    threads = f", {torch.get_num_threads()} thread(s)" if device.type == "cpu" else ""
    table = Table(title=f"{name} config, batch {args.batch} ({crops} crops), {device.type} {args.dtype}{threads}")
    for column in ("scope", "implementation", "s / step", "samples / s", "batched speed-up"):
        table.add_column(column, justify="right" if column in ("s / step", "samples / s", "batched speed-up") else "left")
    measured: dict[str, dict[str, float]] = {}
    for scope, steps in scopes.items():
        timings: dict[str, list[float]] = {label: [] for label in steps}
        for _ in range(args.rounds):  # interleaved so that machine noise hits all alike
            for label, step in steps.items():
                timings[label].append(time_steps(step, args.steps, device))
        best = {label: min(values) for label, values in timings.items()}
        measured[scope] = best
        for label, seconds in best.items():
            batched = best.get("batched (slime_model)")
            speed_up = f"{seconds / batched:.2f}x" if batched else "-"
            table.add_row(scope if label == next(iter(best)) else "", label, f"{seconds:.3f}", f"{args.batch / seconds:.1f}", speed_up)
    console.print(table)
    # Amdahl: the LLM's forward + backward runs the same module on the same sequence in both, so no
    # visual path, however fast, makes the batched step more than (loop step) / (our LLM step) faster.
    loop_step = measured["training step (forward + backward)"][loop_label]
    llm = measured["LLM only (the same module and sequence in both)"]
    ours = llm["logits where labelled (ours)"]
    clip = measured["frozen vision tower, forward on the real crops"]["CLIP (both run it at least on these)"]
    console.print(
        f"ceilings on the full-step speed-up: with a free visual path {loop_step:.3f} / {ours:.3f} s (our LLM step) = {loop_step / ours:.2f}x; "
        f"with free adapters and selector (CLIP on the real crops still runs) {loop_step:.3f} / {ours + clip:.3f} s = {loop_step / (ours + clip):.2f}x. "
        f"The released LLM step is {llm['logits everywhere (released)'] / loop_step:.0%} of the released loop's step"
    )


def visual_tokens(console: Console) -> None:
    config = SliMEConfig.from_name("slime-vicuna-7b")
    crop, per_crop, global_tokens = config.crop_size, config.local_num_queries, config.num_global_tokens
    table = Table(title="visual tokens per image (336 px crops)")
    for column in ("image (W x H)", "SliME grid", "SliME tokens (all kept)", "LLaVA-1.5", "LLaVA-NeXT grid", "LLaVA-NeXT tokens"):
        table.add_column(column, justify="right")
    for width, height in COMMON_SIZES:
        grid = choose_grid("uhd", width, height, crop)
        next_grid = choose_grid("anyres", width, height, crop, pinpoints=LLAVA_NEXT_PINPOINTS)
        table.add_row(
            f"{width} x {height}",
            f"{grid.cols} x {grid.rows}",
            f"{global_tokens + 1 + per_crop * grid.num_crops}",
            f"{global_tokens}",
            f"{next_grid.cols} x {next_grid.rows}",
            f"{global_tokens * (1 + next_grid.num_crops)}",
        )
    console.print(table)
    console.print(
        "SliME = 576 global + 1 separator + 144 per local crop before selection; at top-p 0.95 the selector keeps a "
        "share of the local tokens (logged by the model as local_keep_ratio). LLaVA-NeXT = 576 x (1 + crops), before unpadding."
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--configs", nargs="+", default=["tiny", "small"], choices=["tiny", "small", "clip-l"])
    parser.add_argument("--pad-crops", type=int, default=10, help="crops per image in the released pipeline")
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1, help="torch intra-op threads on CPU")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--dtype", default="float32", choices=["float32", "bfloat16"])
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    console = Console()
    for name in args.configs:
        throughput(name, args, console)
    visual_tokens(console)


if __name__ == "__main__":
    main()
