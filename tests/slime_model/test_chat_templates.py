"""Chat templates render the released prompts exactly and tag every segment."""

from __future__ import annotations

import pytest

from slime_model.templates import CHAT_TEMPLATE_NAMES, ChatTemplate, SegmentKind, get_chat_template, render_conversation

CONVERSATION = [
    {"from": "human", "value": "What is shown?\n<image>"},
    {"from": "gpt", "value": "A chart."},
    {"from": "human", "value": "Its maximum?"},
    {"from": "gpt", "value": "12"},
]


def _text(segments, kind=None):
    return "".join(text for text, k in segments if kind is None or k == kind)


def test_names():
    assert set(CHAT_TEMPLATE_NAMES) == {"plain", "vicuna_v1", "llama3"}
    with pytest.raises(ValueError, match="unknown chat template 'chatml'"):
        get_chat_template("chatml")


def test_vicuna_v1_matches_llava_conv_vicuna_v1():
    segments = render_conversation(get_chat_template("vicuna_v1"), CONVERSATION, "<image>")
    system = (
        "A chat between a curious user and an artificial intelligence assistant. "
        "The assistant gives helpful, detailed, and polite answers to the user's questions."
    )
    # LLaVA moves the image placeholder to the front of its turn: "<image>\n" + text.strip()
    assert (
        _text(segments)
        == f"{system} USER: <image>\nWhat is shown? ASSISTANT: A chart.</s>USER: Its maximum? ASSISTANT: 12</s>"
    )
    # The space after "ASSISTANT:" is the answer's: generation prompts end at the colon.
    assert _text(segments, SegmentKind.ANSWER) == " A chart.</s> 12</s>"
    assert _text(segments, SegmentKind.USER) == "<image>\nWhat is shown?Its maximum?"


def test_a_space_token_after_the_colon_is_labelled_so_generation_starts_where_training_did(processor):
    """The tiny BPE keeps " d" apart ("Ġ", "d"): the lone space must be a label, since a generation prompt
    ends at "ASSISTANT:" and the model's first token there is that space."""
    conversation = [{"from": "human", "value": "Which pattern?"}, {"from": "gpt", "value": "dots"}]
    trained = processor([conversation], [None], padding_side="right")
    prompt = processor([conversation[:1]], [None], add_generation_prompt=True)
    tokens = processor.tokenizer.convert_ids_to_tokens(trained["input_ids"][0])
    labelled = [t for t, label in zip(tokens, trained["labels"][0].tolist(), strict=True) if label != -100]
    assert labelled[0] == "Ġ" and "".join(labelled[1:]) == "dots</s>"
    assert trained["input_ids"][0, : prompt["input_ids"].shape[1]].tolist() == prompt["input_ids"][0].tolist()


def test_a_generation_prefix_that_does_not_begin_the_assistant_prefix_is_refused():
    with pytest.raises(ValueError, match="must begin assistant.prefix"):
        ChatTemplate.model_validate(
            {
                "system_prefix": "",
                "user": {"prefix": "U: ", "suffix": " "},
                "assistant": {"prefix": "A: ", "suffix": "</s>"},
                "generation_prefix": "ASSISTANT:",
                "keep_user_text": True,
            }
        )


def test_vicuna_generation_prompt():
    segments = render_conversation(
        get_chat_template("vicuna_v1"), CONVERSATION[:1], "<image>", add_generation_prompt=True
    )
    assert _text(segments).endswith("USER: <image>\nWhat is shown? ASSISTANT:")
    with pytest.raises(ValueError, match="ends with a human turn"):
        render_conversation(get_chat_template("vicuna_v1"), CONVERSATION[:2], "<image>", add_generation_prompt=True)


def test_llama3():
    segments = render_conversation(get_chat_template("llama3"), CONVERSATION[:2], "<image>")
    assert _text(segments) == (
        "<|start_header_id|>user<|end_header_id|>\n\n<image>\nWhat is shown?<|eot_id|>"
        "<|start_header_id|>assistant<|end_header_id|>\n\nA chart.<|eot_id|>"
    )
    assert _text(segments, SegmentKind.ANSWER) == "A chart.<|eot_id|>"


def test_plain_keeps_only_the_image_and_the_caption():
    segments = render_conversation(get_chat_template("plain"), CONVERSATION[:2], "<image>")
    assert _text(segments) == "<image>A chart.\n"
    assert _text(segments, SegmentKind.ANSWER) == "A chart.\n"


def test_leading_assistant_turn_is_dropped_and_bad_turns_fail():
    template = get_chat_template("vicuna_v1")
    assert render_conversation(
        template, [{"from": "gpt", "value": "hi"}, *CONVERSATION[:2]], "<image>"
    ) == render_conversation(template, CONVERSATION[:2], "<image>")
    with pytest.raises(ValueError, match="turn 1 must be"):
        render_conversation(template, [CONVERSATION[0], CONVERSATION[0]], "<image>")
    with pytest.raises(ValueError, match="turn 0 must be"):
        render_conversation(template, [{"from": "human", "value": 3}], "<image>")
