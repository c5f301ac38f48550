"""Builders shared by the serving tests: a tiny checkpoint on disk, images, messages."""

from __future__ import annotations

import base64
import io
from pathlib import Path

import torch
from PIL import Image

from slime_model.configuration import SliMEConfig
from slime_model.modeling import SliMEForConditionalGeneration
from slime_model.processing import SliMEProcessor
from slime_model.tiny import tiny_tokenizer

MODEL_NAME = "tiny-slime"


def save_tiny_checkpoint(directory: Path) -> Path:
    """A random-weight tiny SliME saved as a trainer stage is (save_pretrained + processor)."""
    config = SliMEConfig.from_name("tiny")
    torch.manual_seed(0)
    SliMEForConditionalGeneration(config).eval().save_pretrained(directory)
    SliMEProcessor.from_config(config, tiny_tokenizer()).save_pretrained(directory)
    return directory


def png_bytes(width: int, height: int, seed: int = 0) -> bytes:
    pixels = torch.Generator().manual_seed(seed)
    array = torch.randint(0, 256, (height, width, 3), generator=pixels, dtype=torch.uint8).numpy()
    out = io.BytesIO()
    Image.fromarray(array).save(out, format="PNG")
    return out.getvalue()


def data_url(data: bytes, mime: str = "image/png") -> str:
    return f"data:{mime};base64,{base64.b64encode(data).decode('ascii')}"


def user_message(text: str, *image_urls: str) -> dict:
    parts = [{"type": "image_url", "image_url": {"url": url}} for url in image_urls]
    return {"role": "user", "content": [*parts, {"type": "text", "text": text}]}
