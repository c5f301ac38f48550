"""Builders shared by the slime_model tests (a unique module name: tests run in pytest's prepend mode)."""

from __future__ import annotations

import numpy as np
from PIL import Image


def noise_image(width: int, height: int, seed: int = 0, mode: str = "RGB") -> Image.Image:
    pixels = np.random.default_rng(seed).integers(0, 256, (height, width, 3), dtype=np.uint8)
    return Image.fromarray(pixels).convert(mode)


def chat(text: str, answer: str = "It is red.", image: bool = True) -> list[dict[str, str]]:
    """A one-round conversation in the Record layout, with the image placeholder first when `image`."""
    return [{"from": "human", "value": ("<image>\n" if image else "") + text}, {"from": "gpt", "value": answer}]
