"""The synthetic caption set, in the LLaVA-558K (``blip_laion_cc_sbu_558k.json``) format.

LLaVA-558K records are ``{"id": 9-digit str, "image": "<first 5 digits>/<id>.jpg",
"conversations": [human "<instruction>\\n<image>", gpt caption]}`` with short "describe
briefly" instructions and lower-case BLIP-style captions; the caption set follows that exactly
so the ``llava_pretrain`` adapter reads it like the real release. Captions come from the
figure's generating data (kind, colours, values), so they describe the image exactly.
"""

from __future__ import annotations

import random
from typing import Any

from slime_data.record import GPT, HUMAN, IMAGE_TOKEN

# Short instructions in the style of LLaVA's pretraining prompts.
BRIEF_PROMPTS = (
    "Describe the image concisely.",
    "Provide a brief description of the given image.",
    "Offer a succinct explanation of the picture presented.",
    "Summarize the visual content of the image.",
    "Give a short and clear explanation of the subsequent image.",
    "Share a concise interpretation of the image provided.",
    "Present a compact description of the photo's key features.",
    "Render a clear and concise summary of the photo.",
    "Write a terse but informative summary of the picture.",
    "Create a compact narrative representing the image presented.",
)


def caption_id(index: int) -> str:
    return f"{index:09d}"


def caption_image_path(index: int) -> str:
    """Relative to the caption set's folder, as in the 558K release: ``images/00000/000000012.jpg``."""
    native = caption_id(index)
    return f"images/{native[:5]}/{native}.jpg"


def caption_entry(index: int, caption: str, rng: random.Random) -> dict[str, Any]:
    """One 558K record. ``image`` is relative to ``images/`` (the release's image root)."""
    native = caption_id(index)
    return {
        "id": native,
        "image": f"{native[:5]}/{native}.jpg",
        "conversations": [
            {"from": HUMAN, "value": f"{rng.choice(BRIEF_PROMPTS)}\n{IMAGE_TOKEN}"},
            {"from": GPT, "value": caption},
        ],
    }
