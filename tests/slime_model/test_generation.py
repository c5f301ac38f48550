"""generate_batch: batched = alone, the same tokens as transformers' generate, sampling, stop strings,
streaming deltas, budgets and cancellation (tiny model, float32)."""

from __future__ import annotations

import pytest
import torch

from slime_model.generation import GenerationRequest, generate_batch, prompt_length_bound, score_continuation
from tests.slime_model.slime_model_helpers import noise_image


def ask(text: str, images=(), **kwargs) -> GenerationRequest:
    value = "<image>\n" * len(images) + text
    return GenerationRequest([{"from": "human", "value": value}], list(images), **kwargs)


@pytest.fixture
def requests_of_mixed_shapes() -> list[GenerationRequest]:
    return [
        ask("What is it?", [noise_image(336, 224, seed=1)], max_new_tokens=12),
        ask("Count the bars in the chart on the left, then name the longest one and its value.", max_new_tokens=9),
        ask("Colour?", [noise_image(60, 900, seed=2), noise_image(112, 112, seed=3)], max_new_tokens=12),
        ask("Hi", max_new_tokens=12),
    ]


def test_greedy_answers_are_byte_identical_alone_and_batched(model, processor, requests_of_mixed_shapes):
    batched = generate_batch(model, processor, requests_of_mixed_shapes)
    for request, together in zip(requests_of_mixed_shapes, batched, strict=True):
        (alone,) = generate_batch(model, processor, [request])
        assert together == alone
    assert [r.visual_tokens > 0 for r in batched] == [True, False, True, False]
    assert batched[1].visual_tokens == 0 and batched[2].visual_tokens > batched[0].visual_tokens
    assert all(r.completion_tokens >= 1 and r.text for r in batched)
    # The order of a batch does not matter either.
    reversed_results = generate_batch(model, processor, requests_of_mixed_shapes[::-1])
    assert reversed_results[::-1] == batched


def test_greedy_tokens_match_transformers_generate(model, processor):
    request = ask("What is shown in the image?", [noise_image(336, 224, seed=4)], max_new_tokens=10)
    prompt = processor([request.conversation], [request.images], add_generation_prompt=True)
    tokens = model.generate(**prompt, max_new_tokens=10, do_sample=False, eos_token_id=processor.tokenizer.eos_token_id)
    (result,) = generate_batch(model, processor, [request])
    assert result.text == processor.tokenizer.decode(tokens[0], skip_special_tokens=True).strip()
    merged = model.model(**prompt).attention_mask
    assert result.prompt_tokens == int(merged.sum())
    assert result.prompt_tokens <= prompt_length_bound(processor, request)
    assert result.prompt_tokens == int(prompt["attention_mask"].sum()) - 1 + result.visual_tokens


def test_seeded_sampling_does_not_depend_on_the_batch(model, processor):
    sampled = [ask("Describe it.", [noise_image(112, 112, seed=5)], temperature=1.0, top_p=0.9, seed=s) for s in (1, 2)]
    greedy = ask("Say something long about numbers.")
    together = generate_batch(model, processor, [*sampled, greedy])
    for request, result in zip(sampled, together[:2], strict=True):
        assert generate_batch(model, processor, [request]) == [result]
    assert together[0].text != together[1].text  # the seed decides the draw
    (again,) = generate_batch(model, processor, [sampled[0]])
    assert again == together[0]


def test_stop_strings_cut_the_answer_and_streamed_deltas_add_up(model, processor):
    request = ask("What is the area of the triangle?", max_new_tokens=24)
    (full,) = generate_batch(model, processor, [request])
    stop = full.text[len(full.text) // 2 : len(full.text) // 2 + 2]
    assert len(stop) == 2 and full.finish_reason == "length"
    request.stop = (stop,)
    deltas: list[str] = []
    (cut,) = generate_batch(model, processor, [request], on_text=lambda index, text: deltas.append(text))
    assert cut.finish_reason == "stop"
    assert cut.text == full.text[: full.text.index(stop)].rstrip()
    assert "".join(deltas) == cut.text and len(deltas) > 1
    assert cut.completion_tokens < full.completion_tokens


def test_budgets_streams_per_request_and_cancellation(model, processor):
    requests = [ask("One", max_new_tokens=3), ask("Two", max_new_tokens=7), ask("Three", max_new_tokens=7)]
    streamed = {0: "", 1: "", 2: ""}

    def collect(index: int, text: str) -> None:
        streamed[index] += text

    steps = {"n": 0}

    def cancel_third(index: int) -> bool:
        steps["n"] += index == 2
        return index == 2 and steps["n"] > 2

    results = generate_batch(model, processor, requests, on_text=collect, is_cancelled=cancel_third)
    assert [r.finish_reason for r in results] == ["length", "length", "cancelled"]
    assert [r.completion_tokens for r in results] == [3, 7, 2]
    assert [streamed[i] for i in range(3)] == [r.text for r in results]
    alone = generate_batch(model, processor, [requests[1]])
    assert alone == [results[1]]


def test_a_malformed_conversation_is_a_value_error(model, processor):
    with pytest.raises(ValueError, match="placeholder"):
        generate_batch(
            model,
            processor,
            [ask("no placeholder for this image", [])]
            + [GenerationRequest([{"from": "human", "value": "x"}], [noise_image(112, 112)])],
        )
    assert torch.is_grad_enabled()


def test_score_continuation_is_the_sum_of_the_full_forwards_log_probabilities(model, processor):
    """Against a plain forward over prompt + continuation (every position's logits, the selector reading the
    prompt only): the continuation's log-probability, and whether greedy decoding would produce it."""
    image = noise_image(200, 120, seed=5)
    conversation = [{"from": "human", "value": "<image>\nWhat is it?"}]
    prompt = processor([conversation], [image], add_generation_prompt=True)
    for continuation in ("a red square", "What"):
        answer = processor.tokenizer(continuation, add_special_tokens=False)["input_ids"]
        tail = torch.tensor([answer])
        reads = torch.cat([prompt["selector_text_mask"], torch.zeros_like(tail, dtype=torch.bool)], dim=1)
        with torch.no_grad():
            out = model(
                input_ids=torch.cat([prompt["input_ids"], tail], dim=1),
                attention_mask=torch.cat([prompt["attention_mask"], torch.ones_like(tail)], dim=1),
                selector_text_mask=reads,
                pixel_values=prompt["pixel_values"],
                image_grids=prompt["image_grids"],
            )
        predictions = out.logits[0, -len(answer) - 1 : -1].float()  # [n, V]: the positions before each answer token
        expected = torch.log_softmax(predictions, -1).gather(-1, tail[0][:, None]).sum()
        logprob, is_greedy = score_continuation(model, processor, conversation, [image], continuation)
        assert logprob == pytest.approx(float(expected), abs=1e-4)
        assert is_greedy == bool((predictions.argmax(-1) == tail[0]).all())
    with pytest.raises(ValueError, match="no tokens"):
        score_continuation(model, processor, conversation, [image], "")


def test_score_continuation_says_greedy_for_what_greedy_decoding_writes(model, processor):
    """A model whose head always prefers one token: that token is the greedy continuation, with the
    log-probability its logits give; any other continuation is not greedy."""
    (word,) = processor.tokenizer("What", add_special_tokens=False)["input_ids"]
    model.model.language_model.norm.weight.data.zero_()  # hidden states 0: logits are the head's bias alone
    head = torch.nn.Linear(model.lm_head.in_features, model.lm_head.out_features, bias=True)
    head.weight.data.zero_()
    head.bias.data.zero_()
    head.bias.data[word] = 5.0
    model.lm_head = head
    conversation = [{"from": "human", "value": "<image>\nWhat is it?"}]
    image = noise_image(200, 120, seed=5)
    (greedy,) = generate_batch(model, processor, [GenerationRequest(conversation, [image], max_new_tokens=1)])
    assert greedy.text == "What"
    logprob, is_greedy = score_continuation(model, processor, conversation, [image], "What")
    assert is_greedy and logprob == pytest.approx(float(torch.log_softmax(head.bias.data, -1)[word]), abs=1e-5)
    assert not score_continuation(model, processor, conversation, [image], "a")[1]
