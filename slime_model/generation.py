"""Batched generation: the one decode path of `slime-model generate`, `slime-model serve` and evaluation.

`generate_batch` renders each request's conversation, runs the prompts as one left-padded batch
(images merged by the model's selector), then decodes token by token with the KV cache. Each request
keeps its own sampling settings, seed, stop strings and token budget; rows that finish leave the
batch (their cache rows are dropped), so a long answer never makes a short one wait for compute.

Why a decode loop and not `GenerationMixin.generate`: per-request temperature, top-p, seed and stop
strings, text streamed per request, and requests cancelled mid-batch (a client that went away) are
not expressible as one `generate` call.

Batch independence: padding is masked out of attention, positions restart at 0 for every row, the
selector reads only its own sample's text, and each sampled request draws from its own generator,
so a request's answer does not depend on what it was batched with (greedy: byte-identical in
float32, tested).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
from PIL import Image
from transformers.cache_utils import DynamicCache

FINISH_STOP, FINISH_LENGTH, FINISH_CANCELLED = "stop", "length", "cancelled"


@dataclass
class GenerationRequest:
    conversation: list[dict]  # LLaVA turns [{"from": "human"|"gpt", "value": str}], ending with a human turn
    images: list[Image.Image]  # one processor.settings.image_token placeholder per image; may be empty
    max_new_tokens: int = 128
    temperature: float = 0.0  # 0 = greedy
    top_p: float = 1.0
    seed: int | None = None
    stop: tuple[str, ...] = ()


@dataclass
class GenerationResult:
    text: str
    prompt_tokens: int  # merged prompt: text tokens + visual tokens
    completion_tokens: int  # tokens sampled, the end-of-turn token included
    visual_tokens: int  # visual tokens that replaced the request's image placeholders
    finish_reason: str  # "stop" | "length" (| "cancelled" when is_cancelled said so)


def load_checkpoint(directory: str | Path):
    """(model in eval mode, on the GPU when there is one, in the checkpoint's dtype; processor)."""
    from slime_model.modeling import SliMEForConditionalGeneration
    from slime_model.processing import SliMEProcessor

    model = SliMEForConditionalGeneration.from_pretrained(directory, dtype="auto").eval()
    return model.to("cuda" if torch.cuda.is_available() else "cpu"), SliMEProcessor.from_pretrained(directory)


def context_length(model) -> int:
    """Most positions the LLM takes: merged prompt + new tokens."""
    return int(model.config.text_config.max_position_embeddings)


def prompt_length_bound(processor, request: GenerationRequest) -> int:
    """Upper bound on the merged prompt length: text tokens + every image's worst-case visual tokens.

    Known before the model runs (the selector decides the real count), so a server can refuse a
    prompt that cannot fit before it takes a batch slot.
    """
    from slime_model.templates import render_conversation

    segments = render_conversation(processor.template, request.conversation, processor.settings.image_token, True)
    ids, _ = processor.encode_segments(segments)
    visual = sum(processor.visual_budget(processor.image_grid(image)) for image in request.images)
    return len(ids) - len(request.images) + visual


def end_of_turn_ids(processor) -> set[int]:
    """Tokens that end an answer: EOS, and the template's assistant suffix when it is one token (<|eot_id|>)."""
    tokenizer = processor.tokenizer
    ids = {tokenizer.eos_token_id} if tokenizer.eos_token_id is not None else set()
    suffix = processor.template.assistant.suffix.strip()
    if suffix:
        suffix_ids = tokenizer.encode(suffix, add_special_tokens=False)
        if len(suffix_ids) == 1:
            ids.add(suffix_ids[0])
    return ids


class _TextStream:
    """One request's detokenized answer: what may be shown so far, and whether a stop string ended it.

    Held back until settled: a partial UTF-8 character ("\\ufffd"), trailing whitespace (the final
    text is stripped, and tokenizer clean-up may still remove it) and a suffix that may begin a stop
    string. So the deltas handed out always concatenate to the final text.
    """

    def __init__(self, tokenizer, stop: Sequence[str]) -> None:
        self.tokenizer = tokenizer
        self.stop = [s for s in stop if s]
        self.ids: list[int] = []
        self.shown = ""
        self.stopped = False

    def _visible(self, final: bool) -> str:
        text = self.tokenizer.decode(self.ids, skip_special_tokens=True).lstrip()
        cuts = [text.find(s) for s in self.stop if s in text]
        if cuts:
            self.stopped = True
            return text[: min(cuts)].rstrip()
        if final:
            return text.rstrip()
        text = text.rstrip("\ufffd")
        held = max((n for s in self.stop for n in range(1, len(s)) if text.endswith(s[:n])), default=0)
        return text[: len(text) - held].rstrip()

    def push(self, token: int | None, final: bool = False) -> str:
        """Add a token (None: none) and return the newly settled text."""
        if token is not None:
            self.ids.append(token)
        visible = self._visible(final)
        if not visible.startswith(self.shown):  # tokenizer clean-up rewrote settled text: show nothing new
            return ""
        delta, self.shown = visible[len(self.shown) :], visible
        return delta


def _generator(request: GenerationRequest, device: torch.device) -> torch.Generator | None:
    if request.temperature <= 0:
        return None
    generator = torch.Generator(device=device)
    if request.seed is None:
        generator.seed()
    else:
        generator.manual_seed(request.seed)
    return generator


def _sample(logits: torch.Tensor, request: GenerationRequest, generator: torch.Generator) -> int:
    """logits [V] float32 -> a draw at the request's temperature, from its top-p nucleus."""
    probs = torch.softmax(logits / request.temperature, dim=-1)
    if request.top_p < 1.0:
        sorted_probs, order = probs.sort(descending=True)
        before = sorted_probs.cumsum(0) - sorted_probs  # mass of the tokens ranked above each token
        sorted_probs = sorted_probs.masked_fill(before >= request.top_p, 0.0)  # the first token always stays
        probs = torch.zeros_like(probs).scatter(0, order, sorted_probs)
    return int(torch.multinomial(probs, 1, generator=generator))


def _prefill(model, processor, requests: Sequence[GenerationRequest], cache: DynamicCache):
    """Render, pad left and run the prompts once, filling `cache`; logits of each row's last position only."""
    batch = processor([r.conversation for r in requests], [r.images for r in requests], add_generation_prompt=True).to(
        model.device
    )
    inputs = {"attention_mask": batch["attention_mask"], "selector_text_mask": batch["selector_text_mask"]}
    if any(r.images for r in requests):  # the model merges visual tokens and derives the merged positions itself
        inputs |= {"pixel_values": batch["pixel_values"], "image_grids": batch["image_grids"]}
    else:  # left padding: positions count real tokens only, as they would alone
        inputs["position_ids"] = (batch["attention_mask"].cumsum(1) - 1).clamp(min=0)
    return model(input_ids=batch["input_ids"], cache=cache, use_cache=True, logits_to_keep=1, **inputs)


@torch.inference_mode()
def generate_batch(
    model,
    processor,
    requests: Sequence[GenerationRequest],
    on_text: Callable[[int, str], None] | None = None,
    is_cancelled: Callable[[int], bool] | None = None,
) -> list[GenerationResult]:
    """One padded batch (left padding), KV cache; on_text(index, new_text_delta) streams per request.

    Greedy results are byte-identical whether a request runs alone or batched with others.
    is_cancelled(index), checked every step, drops a request from the batch (finish "cancelled").
    Raises ValueError for a malformed conversation or a placeholder/image count mismatch.
    """
    if not requests:
        return []
    device = model.device
    cache = DynamicCache(config=model.config.text_config)
    out = _prefill(model, processor, requests, cache)
    mask = out.attention_mask  # [B, L'] the merged prompts, left-padded
    prompt_tokens = mask.sum(1).tolist()
    visual = [0] * len(requests)
    if out.image_token_counts is not None:  # images are in request order, each request's in placeholder order
        counts = iter(out.image_token_counts.tolist())
        visual = [sum(next(counts) for _ in r.images) for r in requests]

    eot = end_of_turn_ids(processor)
    suppressed = processor.image_token_id if processor.image_token_id < out.logits.shape[-1] else None
    streams = [_TextStream(processor.tokenizer, r.stop) for r in requests]
    generators = [_generator(r, device) for r in requests]
    budgets = [min(r.max_new_tokens, context_length(model) - n) for r, n in zip(requests, prompt_tokens, strict=True)]
    finish: list[str | None] = [None] * len(requests)
    completion = [0] * len(requests)
    active = list(range(len(requests)))  # request index of each row still in the batch
    positions = mask.sum(1, keepdim=True) - 1  # [B, 1] position of each row's last token
    logits = out.logits[:, -1].float()  # [B, V]

    while active:
        if suppressed is not None:
            logits[:, suppressed] = float("-inf")  # never emit an image placeholder
        greedy = logits.argmax(-1).tolist()  # one call for the batch (one device sync)
        next_ids = []
        for row, index in enumerate(active):
            if is_cancelled is not None and is_cancelled(index):
                finish[index] = FINISH_CANCELLED
                next_ids.append(processor.pad_token_id)
                continue
            if budgets[index] <= 0:
                finish[index] = FINISH_LENGTH
                next_ids.append(processor.pad_token_id)
                continue
            generator = generators[index]
            token = greedy[row] if generator is None else _sample(logits[row], requests[index], generator)
            completion[index] += 1
            delta = streams[index].push(None if token in eot else token)
            if token in eot or streams[index].stopped:
                finish[index] = FINISH_STOP
            elif completion[index] >= budgets[index]:
                finish[index] = FINISH_LENGTH
            if finish[index] is not None:
                delta += streams[index].push(None, final=True)
            if delta and on_text is not None:
                on_text(index, delta)
            next_ids.append(token)
        keep = [row for row, index in enumerate(active) if finish[index] is None]
        if not keep:
            break
        if len(keep) < len(active):  # finished rows leave the batch and the cache
            rows = torch.tensor(keep, device=device)
            cache.batch_select_indices(rows)
            mask, positions = mask[rows], positions[rows]
            next_ids = [next_ids[row] for row in keep]
            active = [active[row] for row in keep]
        mask = torch.cat([mask, mask.new_ones(len(active), 1)], dim=1)
        positions = positions + 1
        step = torch.tensor(next_ids, device=device).unsqueeze(1)  # [B, 1]
        out = model(input_ids=step, attention_mask=mask, position_ids=positions, cache=cache, use_cache=True)
        logits = out.logits[:, -1].float()

    return [
        GenerationResult(stream.shown, prompt_tokens[i], completion[i], visual[i], finish[i])
        for i, stream in enumerate(streams)
    ]


@torch.no_grad()
def score_continuation(model, processor, conversation: list[dict], images: list[Image.Image], continuation: str):
    """(log-probability of `continuation` as the assistant's answer to `conversation`, whether greedy
    decoding would produce exactly it): what likelihood-scored benchmarks ask of a model.

    The prompt is rendered as `generate_batch` renders it (generation prompt included); the
    continuation's tokens follow it, and the selector reads the prompt's text only, as when answering.
    """
    from slime_model.merging import IGNORE_INDEX

    prompt = processor([conversation], [images], add_generation_prompt=True)
    answer = processor.tokenizer(continuation, add_special_tokens=False)["input_ids"]
    if not answer:
        raise ValueError("the continuation to score has no tokens")
    tail = torch.tensor([answer])  # [1, n]
    input_ids = torch.cat([prompt["input_ids"], tail], dim=1)  # [1, L + n]
    labels = torch.full_like(input_ids, IGNORE_INDEX)
    labels[0, -len(answer) :] = tail[0]
    reads = torch.cat([prompt["selector_text_mask"], torch.zeros_like(tail, dtype=torch.bool)], dim=1)
    inputs = {
        "input_ids": input_ids,
        "attention_mask": torch.cat([prompt["attention_mask"], torch.ones_like(tail)], dim=1),
        "selector_text_mask": reads,  # the selector reads the prompt, never the continuation
        "labels": labels,
    }
    if images:
        inputs.update(pixel_values=prompt["pixel_values"], image_grids=prompt["image_grids"])
    out = model(**{k: v.to(model.device) for k, v in inputs.items()}, use_cache=False, labelled_logits_only=True)
    logits = out.logits.float()  # [n, V]: the predictions of the continuation's tokens, in order
    target = tail[0].to(logits.device)
    logprob = torch.log_softmax(logits, dim=-1).gather(-1, target[:, None]).sum()
    return float(logprob), bool((logits.argmax(-1) == target).all())
