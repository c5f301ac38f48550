"""SliMEProcessor: crops, labels, selector mask, padding, truncation, odd images, save/load."""

from __future__ import annotations

import pytest
import torch
from PIL import Image
from transformers.utils.constants import OPENAI_CLIP_MEAN, OPENAI_CLIP_STD

from slime_model.configuration import SliMEConfig
from slime_model.merging import IGNORE_INDEX
from slime_model.processing import SliMEProcessor
from slime_model.tiny import tiny_tokenizer
from tests.slime_model.slime_model_helpers import chat, noise_image


def _decode(processor, ids):
    return processor.tokenizer.decode(ids)


def test_batch_layout_labels_and_selector_mask(processor):
    conversations = [chat("What is shown?", answer="A red square."), chat("Hello", answer="Hi!", image=False)]
    batch = processor(conversations, [noise_image(300, 200), None])
    assert set(batch) == {"input_ids", "attention_mask", "labels", "selector_text_mask", "pixel_values", "image_grids"}
    rows, cols = batch["image_grids"][0].tolist()
    assert batch["pixel_values"].shape == (1 + rows * cols, 3, 112, 112)  # the text-only sample adds no crop
    ids, labels, user = batch["input_ids"], batch["labels"], batch["selector_text_mask"]
    # A token belongs to the segment of its last character: " A" (space from the template) is an
    # answer token, and so is a lone " " before "Hi": the generation prompt ends before that space.
    assert _decode(processor, ids[0][labels[0] != IGNORE_INDEX]) == " A red square.</s>"
    assert _decode(processor, ids[1][labels[1] != IGNORE_INDEX]) == " Hi!</s>"
    # no image token, system or role text, and no whitespace-only token (the "\n" after <image>)
    assert _decode(processor, ids[0][user[0]]) == "What is shown?"
    assert _decode(processor, ids[1][user[1]]) == "Hello"
    assert (ids == processor.image_token_id).sum() == 1
    assert batch["attention_mask"][1, -1] == 0 and labels[1, -1] == IGNORE_INDEX  # right padding for training


def test_generation_batch_is_left_padded_without_labels(processor):
    batch = processor(
        [chat("Q?")[:1], chat("A much longer question here?")[:1]],
        [noise_image(50, 50), noise_image(90, 40)],
        add_generation_prompt=True,
    )
    assert "labels" not in batch
    assert batch["attention_mask"][0, 0] == 0 and batch["attention_mask"][:, -1].tolist() == [1, 1]
    assert _decode(processor, batch["input_ids"][0][batch["attention_mask"][0].bool()]).endswith("ASSISTANT:")


def test_text_prompts_are_used_as_is(processor):
    batch = processor(text=["<image>\nDescribe."], images=[noise_image(64, 64)])
    assert _decode(processor, batch["input_ids"][0]) == "<s><image>\nDescribe."
    assert "labels" in batch and (batch["labels"] == IGNORE_INDEX).all()


def test_clip_normalisation(processor):
    batch = processor(text=["<image>"], images=[Image.new("RGB", (112, 112), (255, 0, 0))])
    global_view = batch["pixel_values"][0]
    expected = [
        (1.0 - OPENAI_CLIP_MEAN[0]) / OPENAI_CLIP_STD[0],
        -OPENAI_CLIP_MEAN[1] / OPENAI_CLIP_STD[1],
        -OPENAI_CLIP_MEAN[2] / OPENAI_CLIP_STD[2],
    ]
    assert torch.allclose(global_view[:, 50, 50], torch.tensor(expected), atol=1e-5)


@pytest.mark.parametrize(
    "image",
    [
        Image.new("RGB", (1, 1), (9, 9, 9)),  # tiny
        Image.new("RGB", (3, 2)),
        noise_image(40, 800),  # 1:20
        noise_image(800, 40, mode="L"),  # grayscale, 20:1
        noise_image(100, 60, mode="P"),  # palette
        noise_image(100, 60, mode="RGBA"),
        noise_image(100, 60, mode="CMYK"),
        Image.new("I;16", (70, 50), 4000),  # 16-bit
    ],
    ids=["1x1", "3x2", "1to20", "gray", "palette", "rgba", "cmyk", "16bit"],
)
def test_odd_images(processor, image):
    batch = processor([chat("What?")], [image])
    rows, cols = batch["image_grids"][0].tolist()
    assert batch["pixel_values"].shape == (1 + rows * cols, 3, 112, 112)
    assert torch.isfinite(batch["pixel_values"]).all()


def test_huge_image_is_sliced_not_decoded_whole(config):
    config.vision_config.image_size = 336  # the released crop side, on a huge 8000x8000 image
    config.vision_config.patch_size = 14
    processor = SliMEProcessor.from_config(config, tiny_tokenizer())
    batch = processor([chat("What?")], [Image.new("L", (8000, 8000), 200)])
    assert batch["image_grids"].tolist() == [[3, 2]]  # uhd: s clipped to 6, (2 cols, 3 rows) first found
    assert batch["pixel_values"].shape == (7, 3, 336, 336)


def test_placeholder_image_mismatch_names_both_counts(processor):
    with pytest.raises(ValueError, match=r"sample 0 has 1 <image> placeholder\(s\) but 0 image\(s\)"):
        processor([chat("What?")], [None])
    with pytest.raises(ValueError, match=r"sample 0 has 0 <image> placeholder\(s\) but 1 image\(s\)"):
        processor([chat("What?", image=False)], [noise_image(10, 10)])
    with pytest.raises(ValueError, match="2 samples but 1 image entries"):
        processor([chat("a"), chat("b")], [None])


def test_truncation_cuts_text_after_the_image_but_never_the_image(processor):
    image = noise_image(112, 112)  # grid 1x2: budget 64 + 1 + 2*16 = 97 visual tokens
    conversation = chat("Question?", answer="A very long answer " * 20)
    full = processor([conversation], [image])
    text_len = full["input_ids"].shape[1]
    cut = processor([conversation], [image], max_length=text_len + 97 - 1 - 10)
    assert cut["input_ids"].shape[1] == text_len - 10
    assert torch.equal(cut["input_ids"][0], full["input_ids"][0, : text_len - 10])
    with pytest.raises(ValueError, match=r"max_length=60 would cut an image"):
        processor([conversation], [image], max_length=60)


def test_from_config_adds_the_placeholder_and_checks_its_id():
    config = SliMEConfig.from_name("tiny")
    tokenizer = tiny_tokenizer()
    config.image_token = "<img>"
    config.image_token_id = len(tokenizer)  # the id the added token receives
    processor = SliMEProcessor.from_config(config, tokenizer)
    assert processor.image_token_id == config.image_token_id
    config.image_token_id = 3
    with pytest.raises(ValueError, match="image_token_id is 3 but the tokenizer maps"):
        SliMEProcessor.from_config(config, tiny_tokenizer())


def test_save_load_round_trip(processor, tmp_path):
    processor.save_pretrained(tmp_path)
    loaded = SliMEProcessor.from_pretrained(tmp_path)
    conversations, images = [chat("What is shown?")], [noise_image(200, 90)]
    a, b = processor(conversations, images), loaded(conversations, images)
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    with pytest.raises(FileNotFoundError, match="slime_processor.json"):
        SliMEProcessor.from_pretrained(tmp_path / "missing")
