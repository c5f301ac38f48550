"""SliMEForConditionalGeneration on the tiny preset: token counts, branches, selector, gradients,
batching, the per-sample reference, save/load, generate, dtypes."""

from __future__ import annotations

import pytest
import torch

from slime_model.modeling import PARAMETER_GROUPS, SliMEForConditionalGeneration
from slime_model.processing import SliMEProcessor
from slime_model.reference import reference_forward
from slime_model.slicing import choose_grid
from tests.slime_model.slime_model_helpers import chat, noise_image

SIZES = [(112, 112), (224, 224), (336, 224), (448, 112), (60, 900)]


def _batch(processor, sizes=SIZES, **kwargs):
    conversations = [chat(f"What is in picture {i}?") for i in range(len(sizes))]
    images = [noise_image(w, h, seed=i) for i, (w, h) in enumerate(sizes)]
    return processor(conversations, images, **kwargs)


@pytest.mark.parametrize("strategy", ["uhd", "anyres", "grid"])
def test_visual_token_counts_per_image_size_and_strategy(config, strategy):
    config.slicing_strategy = strategy
    config.image_grid_pinpoints = [[224, 224], [112, 224], [224, 112], [112, 336], [336, 112]]
    config.grid_max_side = 3
    config.selector_top_p_eval = 1.0
    torch.manual_seed(0)
    model = SliMEForConditionalGeneration(config).eval()
    processor = SliMEProcessor.from_config(config, _tokenizer())
    batch = _batch(processor)
    grids = [choose_grid(strategy, w, h, 112, grid_max_side=3, pinpoints=config.image_grid_pinpoints) for w, h in SIZES]
    assert batch["image_grids"].tolist() == [[g.rows, g.cols] for g in grids]
    assert batch["pixel_values"].shape == (sum(1 + g.num_crops for g in grids), 3, 112, 112)
    out = model(**batch)
    assert out.image_token_counts.tolist() == [64 + 1 + 16 * g.num_crops for g in grids]
    assert out.local_keep_ratio.tolist() == [1.0] * len(SIZES)
    assert out.logits.shape[:2] == out.attention_mask.shape
    assert out.attention_mask.sum(1).tolist() == (batch["attention_mask"].sum(1) - 1 + out.image_token_counts).tolist()


def _tokenizer():
    from slime_model.tiny import tiny_tokenizer

    return tiny_tokenizer()


@pytest.mark.parametrize(
    ("branch", "expected"), [("global", lambda n: 64), ("local", lambda n: 16 * n), ("both", lambda n: 65 + 16 * n)]
)
def test_branches_match_the_per_sample_reference(model, processor, branch, expected):
    """The batched forward equals the released code's loop structure, token for token."""
    model.set_branch(branch)
    model.set_selector_top_p(eval=0.7)
    batch = _batch(processor, sizes=[(336, 224), (60, 900), (112, 112)])
    out = model(**batch)
    ref = reference_forward(
        model,
        batch["input_ids"],
        batch["attention_mask"],
        batch["pixel_values"],
        batch["image_grids"],
        batch["selector_text_mask"],
        batch["labels"],
        pad_crops_to=10,
    )
    assert torch.equal(out.attention_mask, ref["attention_mask"])
    real = ref["attention_mask"].bool()
    assert torch.allclose(out.logits[real], ref["logits"][real], atol=1e-5)
    assert torch.allclose(out.loss, ref["loss"], atol=1e-6)
    crops = (batch["image_grids"][:, 0] * batch["image_grids"][:, 1]).tolist()
    if branch == "global":
        assert out.image_token_counts.tolist() == [expected(n) for n in crops]
        assert out.local_keep_ratio is None
    else:  # top-p 0.7 drops local tokens
        assert all(count < expected(n) for count, n in zip(out.image_token_counts.tolist(), crops))


def test_selector_ignores_answers_and_follows_the_question(model, processor):
    model.set_selector_top_p(eval=0.5)
    image = noise_image(336, 224, seed=3)

    def visual_embeds(conversation):
        batch = processor([conversation], [image])
        merged, _ = model.model.embed_multimodal(
            batch["input_ids"],
            batch["attention_mask"],
            batch["pixel_values"],
            batch["image_grids"],
            batch["selector_text_mask"],
            batch["labels"],
            "right",
        )
        return merged.inputs_embeds[merged.visual_mask]

    base = visual_embeds(chat("What color is the square?", answer="Red."))
    other_answer = visual_embeds(chat("What color is the square?", answer="Blue, with 3 circles and a long answer."))
    other_question = visual_embeds(chat("How many bars are in the chart on the left?", answer="Red."))
    assert torch.equal(base, other_answer)
    assert base.shape != other_question.shape or not torch.equal(base, other_question)


def _visual_embeds(model, batch, selector_text_mask):
    """The visual tokens each sample's sequence receives, concatenated in order, [V, H]."""
    merged, _ = model.model.embed_multimodal(
        batch["input_ids"],
        batch["attention_mask"],
        batch["pixel_values"],
        batch["image_grids"],
        selector_text_mask,
        batch.get("labels"),
        "right",
    )
    return merged.inputs_embeds[merged.visual_mask]


def _prompt_mask(model, batch):
    """Every text token without a label: what the released code's selector reads at inference."""
    mask = batch["attention_mask"].bool() & (batch["input_ids"] != model.config.image_token_id)
    return mask & (batch["labels"] == -100) if "labels" in batch else mask


def test_selector_text_mask_defaults_to_unlabelled_prompt_tokens(model, processor):
    model.set_selector_top_p(eval=0.5)
    batch = _batch(processor, sizes=[(336, 224), (60, 900)])
    without = _visual_embeds(model, batch, None)
    assert torch.equal(without, _visual_embeds(model, batch, _prompt_mask(model, batch)))
    user_turns = _visual_embeds(model, batch, batch["selector_text_mask"])
    assert without.shape != user_turns.shape or not torch.equal(without, user_turns)  # the system prompt counts


def test_whole_prompt_selector_reproduces_the_released_selection(model, processor):
    """selector_text="whole_prompt" (converted checkpoints) selects as the released code does at
    inference, whatever selector_text_mask the processor sent; it never reads the answers."""
    model.set_selector_top_p(eval=0.6)
    conversations = [chat("What is in the picture?")[:1], chat("Count the bars.")[:1]]
    images = [noise_image(336, 224, seed=1), noise_image(60, 900, seed=2)]
    prompts = processor(conversations, images, add_generation_prompt=True, padding_side="right")
    inputs = [prompts[k] for k in ("input_ids", "attention_mask", "pixel_values", "image_grids")]
    released = reference_forward(model, *inputs, _prompt_mask(model, prompts))
    user_turns = model(**prompts)
    model.config.selector_text = "whole_prompt"
    whole = model(**prompts)
    assert torch.equal(whole.attention_mask, released["attention_mask"])
    real = released["attention_mask"].bool()
    assert torch.allclose(whole.logits[real], released["logits"][real], atol=1e-5)
    assert not torch.equal(whole.image_token_counts, user_turns.image_token_counts)
    image = noise_image(336, 224, seed=3)
    answers = [processor([chat("What color is it?", answer=a)], [image]) for a in ("Red.", "Blue, with 3 circles.")]
    assert torch.equal(*[_visual_embeds(model, b, b["selector_text_mask"]) for b in answers])


def test_a_prompt_without_user_text_keeps_every_local_token(model, processor):
    """`<image>` alone: no selector text, so no selection (a zero guide would keep the first tokens in
    raster order and drop the image's bottom rows); a question in the same batch still selects."""
    model.set_selector_top_p(eval=0.5)
    image_only = [{"from": "human", "value": "<image>"}, {"from": "gpt", "value": "A chart."}]
    conversations = [image_only, chat("Which bar is red?")]
    batch = processor(conversations, [noise_image(336, 224, seed=0), noise_image(336, 224, seed=0)])
    assert batch["selector_text_mask"].sum(dim=1).tolist()[0] == 0  # the "\n" after <image> is no text
    out = model(**batch)
    assert out.local_keep_ratio[0] == 1.0 and out.local_keep_ratio[1] < 0.9
    model.train()  # selector noise and top-p for training do not change it
    model.set_selector_top_p(train=0.3)
    assert model(**batch).local_keep_ratio[0] == 1.0


@pytest.mark.parametrize(
    ("branch", "expert", "trainable"),
    [
        ("global", "mlp", ["global.mlp"]),  # stage 1a
        ("global", "resampler", ["global.resampler"]),  # stage 1b
        ("local", "mix", ["local.compressor"]),  # stage 2
        ("both", "mix", ["llm", "global.mlp", "global.resampler", "global.gate", "local.compressor"]),  # stage 3
    ],
)
def test_backward_reaches_exactly_the_trainable_groups(model, processor, branch, expert, trainable):
    model.train()
    model.set_branch(branch)
    model.set_global_expert(expert)
    model.set_trainable(trainable)
    model(**_batch(processor, sizes=[(336, 224), (112, 112)])).loss.backward()
    for group, params in model.parameter_groups().items():
        for name, param in params:
            if group in trainable:
                assert param.grad is not None and torch.isfinite(param.grad).all(), name
            else:
                assert param.grad is None, name


@pytest.mark.parametrize(
    ("noise", "source", "w_noise_trains"), [(True, "w_noise", True), (True, "w_gate", False), (False, "w_noise", False)]
)
def test_w_noise_trains_only_where_the_gate_reads_it(model, processor, noise, source, w_noise_trains):
    model.train()
    model.config.gate_noise, model.config.gate_noise_source = noise, source
    model.set_branch("global")
    model.set_trainable(["global.gate"])
    model(**_batch(processor, sizes=[(112, 112)])).loss.backward()
    gate = model.model.gate
    assert gate.w_noise.requires_grad == w_noise_trains == (gate.w_noise.grad is not None)
    assert gate.w_gate.requires_grad and gate.w_gate.grad is not None and gate.w_gate.grad.abs().sum() > 0


def test_parameter_groups_partition_the_model(model):
    groups = model.parameter_groups()
    assert list(groups) == list(PARAMETER_GROUPS)
    names = [name for params in groups.values() for name, _ in params]
    assert sorted(names) == sorted(name for name, _ in model.named_parameters())
    assert {name for name, _ in groups["global.gate"]} == {"model.gate.w_gate", "model.gate.w_noise"}
    with pytest.raises(ValueError, match="unknown parameter group"):
        model.set_trainable(["vision", "projector"])


def test_runtime_setters_validate(model):
    with pytest.raises(ValueError, match="branch"):
        model.set_branch("left")
    with pytest.raises(ValueError, match="global_expert"):
        model.set_global_expert("gate")
    with pytest.raises(ValueError, match="selector_top_p_train"):
        model.set_selector_top_p(train=0.0)


def test_gate_noise_only_in_training(model, processor):
    batch = _batch(processor, sizes=[(112, 112)])
    model.set_branch("global")
    features = model.model.vision_features(batch["pixel_values"][:1])
    assert torch.equal(model.model.global_tokens(features)[0], model.model.global_tokens(features)[0])
    model.train()
    first, weights = model.model.global_tokens(features)
    assert not torch.equal(first, model.model.global_tokens(features)[0])
    assert torch.allclose(weights.sum(), torch.tensor(1.0))
    model.config.gate_noise = False
    assert torch.equal(model.model.global_tokens(features)[0], model.model.global_tokens(features)[0])


@pytest.mark.parametrize("padding_side", ["right", "left"])
def test_sample_logits_same_alone_or_in_a_padded_batch(model, processor, padding_side):
    sizes = [(336, 224), (60, 900), (112, 112)]
    conversations = [
        chat("Describe it."),
        chat("What is the longest bar and what is its value?"),
        chat("Hi", image=False),
    ]
    images = [noise_image(w, h, seed=i) for i, (w, h) in enumerate(sizes)]
    images[2] = None  # a text-only sample in the batch
    batch = model(**processor(conversations, images, padding_side=padding_side))
    for i in range(3):
        alone = model(**processor(conversations[i : i + 1], images[i : i + 1]))
        mine = batch.logits[i][batch.attention_mask[i].bool()]
        assert torch.allclose(mine, alone.logits[0], atol=1e-5), i


def test_text_only_batch(model, processor):
    out = model(**processor([chat("Hello there", image=False)], [None]))
    assert out.image_token_counts is None and torch.isfinite(out.loss)


def test_placeholder_and_crop_mismatches_are_loud(model, processor):
    batch = _batch(processor, sizes=[(112, 112), (224, 224)])
    with pytest.raises(ValueError, match=r"2 image placeholder token\(s\).*but 1 image"):
        model(**{**batch, "image_grids": batch["image_grids"][:1]})
    with pytest.raises(ValueError, match=r"holds 7 crops but image_grids describe 8"):
        model(**{**batch, "pixel_values": batch["pixel_values"][:7]})
    with pytest.raises(ValueError, match=r"1 image placeholder token\(s\).*but 0 image"):
        model(input_ids=batch["input_ids"][:1], attention_mask=batch["attention_mask"][:1])
    with pytest.raises(ValueError, match="images need input_ids"):
        model(inputs_embeds=torch.zeros(2, 5, 64), pixel_values=batch["pixel_values"], image_grids=batch["image_grids"])


def test_save_load_round_trip(model, processor, tmp_path):
    batch = _batch(processor, sizes=[(336, 224)])
    model.save_pretrained(tmp_path)
    processor.save_pretrained(tmp_path)
    assert (tmp_path / "model.safetensors").is_file()
    loaded = SliMEForConditionalGeneration.from_pretrained(tmp_path).eval()
    reloaded_batch = SliMEProcessor.from_pretrained(tmp_path)(
        [chat("What is in picture 0?")], [noise_image(336, 224, seed=0)]
    )
    assert torch.equal(reloaded_batch["input_ids"], batch["input_ids"])
    assert torch.equal(loaded(**batch).logits, model(**batch).logits)


def test_generate_batch_of_different_image_sizes(model, processor):
    conversations = [chat("What is it?")[:1], chat("Count the bars, then name the longest.")[:1]]
    images = [noise_image(336, 224, seed=1), noise_image(60, 900, seed=2)]
    prompts = processor(conversations, images, add_generation_prompt=True)
    assert "labels" not in prompts and prompts["attention_mask"][:, 0].tolist() != [1, 1]  # left padded
    cached = model.generate(**prompts, max_new_tokens=6, do_sample=False)
    assert cached.shape == (2, 6)
    # Greedy decoding by re-running the whole merged sequence (no KV cache) gives the same tokens.
    merged, _ = model.model.embed_multimodal(
        prompts["input_ids"],
        prompts["attention_mask"],
        prompts["pixel_values"],
        prompts["image_grids"],
        prompts["selector_text_mask"],
        None,
        "left",
    )
    embeds, mask = merged.inputs_embeds, merged.attention_mask
    for step in range(6):
        logits = model(
            inputs_embeds=embeds, attention_mask=mask, position_ids=(mask.cumsum(1) - 1).clamp(min=0)
        ).logits[:, -1]
        logits[:, processor.image_token_id] = float("-inf")
        assert torch.equal(logits.argmax(-1), cached[:, step])
        embeds = torch.cat([embeds, model.model.embed_text(cached[:, step : step + 1])], dim=1)
        mask = torch.cat([mask, torch.ones_like(mask[:, :1])], dim=1)
    for i in range(2):
        alone = processor(conversations[i : i + 1], images[i : i + 1], add_generation_prompt=True)
        assert torch.equal(model.generate(**alone, max_new_tokens=6, do_sample=False)[0], cached[i])
    assert (cached != processor.image_token_id).all()


def test_bfloat16_forward_and_backward(model, processor):
    model = model.to(torch.bfloat16).train()
    out = model(**_batch(processor, sizes=[(336, 224), (112, 112)]))
    assert out.logits.dtype == torch.bfloat16 and torch.isfinite(out.logits).all()
    out.loss.backward()
    assert model.model.global_resampler.query.grad.dtype == torch.bfloat16


@pytest.mark.parametrize("num_items_in_batch", [None, 7])
def test_labelled_logits_only_gives_the_same_loss_and_gradients(model, processor, num_items_in_batch):
    model.train()
    model.config.gate_noise = False  # both passes must draw nothing random
    model.config.selector_noise_std = 0.0
    model.set_trainable(["llm", "global.mlp", "local.compressor"])
    batch = _batch(processor, sizes=[(336, 224), (112, 112), (60, 900)])
    extra = {} if num_items_in_batch is None else {"num_items_in_batch": num_items_in_batch}

    def loss_and_grads(**kwargs):
        model.zero_grad(set_to_none=True)
        out = model(**batch, **extra, **kwargs)
        out.loss.backward()
        return out, {name: p.grad.clone() for name, p in model.named_parameters() if p.grad is not None}

    full, full_grads = loss_and_grads()
    short, short_grads = loss_and_grads(labelled_logits_only=True)
    merged_labels = model.model(**batch).labels  # [B, L'] on the merged sequence
    labelled = torch.zeros_like(merged_labels, dtype=torch.bool)
    labelled[:, :-1] = merged_labels[:, 1:] != -100  # positions whose next token is labelled
    assert 0 < labelled.sum() < labelled.numel() // 4  # answers only: a small share of the sequence
    assert short.logits.shape == (int(labelled.sum()), full.logits.shape[-1])
    assert torch.allclose(short.logits, full.logits[labelled], atol=1e-5)
    assert torch.allclose(short.loss, full.loss, atol=1e-6)
    assert full_grads.keys() == short_grads.keys() and full_grads
    for name, grad in full_grads.items():
        assert torch.allclose(short_grads[name], grad, atol=1e-6, rtol=1e-4), name
