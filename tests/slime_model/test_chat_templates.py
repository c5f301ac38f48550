"""Chat templates render the released prompts exactly and tag every segment."""

from __future__ import annotations

import pytest

from slime_model.templates import CHAT_TEMPLATE_NAMES, SegmentKind, get_chat_template, render_conversation

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
    assert _text(segments, SegmentKind.ANSWER) == "A chart.</s>12</s>"
    assert _text(segments, SegmentKind.USER) == "<image>\nWhat is shown?Its maximum?"


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
