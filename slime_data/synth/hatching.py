"""Hatching panels: a detail that only the full-resolution view can read.

A framed panel on a white page is filled with one of five fills, each drawn with a 1-pixel period
and the same mean grey over every 2 x 2 block (191):

    horizontal   every other row is mid grey (128 of ink)   vertical   every other column
    checkered    every other pixel, alternating by row         dotted     one black pixel in four
    plain        flat grey 191

A 2x downsample averages each 2 x 2 block, so every fill becomes the same flat grey: the panel and
its frame stay visible but not what fills it. The page is `SIDE` = 224 px, twice the tiny preset's
112 px crop: SliME's global view (the page resized to one crop) halves it, while its local view
(a 2 x 2 grid of 112 px crops) keeps every pixel. The ablation of the paper's claims
(`slime-model ablate`) trains on this kind; the demo mix and the held-out split carry it too.
"""

from __future__ import annotations

import random
from typing import Any

import numpy as np
from PIL import Image

from slime_data.synth.figure import QA

MODE = "L"  # grey fills on white: a grayscale PNG
SIDE = 224  # two tiny crops (112 px) a side
FRAME = 2  # px of black frame around the panel: visible in the global view
MEAN_GREY = 191  # every fill's mean over any 2 x 2 block
FILLS = ("horizontal", "vertical", "checkered", "dotted", "plain")

QUESTIONS = (
    "Which hatching fills the framed panel? Answer with one word: horizontal, vertical, checkered, dotted or plain.",
    "What fill pattern is inside the frame? Answer with one word: horizontal, vertical, checkered, dotted or plain.",
    "Look closely at the framed panel. Is its fill horizontal, vertical, checkered, dotted or plain? One word.",
)


def fill(name: str, height: int, width: int, phase: int) -> np.ndarray:
    """[height, width] uint8 grey levels of a fill; `phase` (0 or 1) shifts its 1-pixel period."""
    y, x = np.mgrid[0:height, 0:width]
    y, x = y + phase, x + phase
    if name == "horizontal":
        ink = (y % 2 == 0) * 128
    elif name == "vertical":
        ink = (x % 2 == 0) * 128
    elif name == "checkered":
        ink = ((x + y) % 2 == 0) * 128
    elif name == "dotted":
        ink = ((x % 2 == 0) & (y % 2 == 0)) * 255
    elif name == "plain":
        ink = np.full((height, width), 255 - MEAN_GREY)
    else:
        raise ValueError(f"unknown fill {name!r}; fills: {', '.join(FILLS)}")
    return (255 - ink).astype(np.uint8)


def sample(rng: random.Random) -> dict[str, Any]:
    width, height = rng.randint(96, 176), rng.randint(96, 176)
    left, top = rng.randint(8, SIDE - 8 - width), rng.randint(8, SIDE - 8 - height)
    return {
        "fill": rng.choice(FILLS),
        "box": [left, top, left + width, top + height],  # the fill's pixels, frame outside them
        "phase": rng.randint(0, 1),
        "question": rng.randrange(len(QUESTIONS)),
    }


def render(data: dict[str, Any]) -> Image.Image:
    page = np.full((SIDE, SIDE), 255, np.uint8)
    left, top, right, bottom = data["box"]
    page[top - FRAME : bottom + FRAME, left - FRAME : right + FRAME] = 0
    page[top:bottom, left:right] = fill(data["fill"], bottom - top, right - left, data["phase"])
    return Image.fromarray(page, mode="L").convert("RGB")


SEEN = {
    "horizontal": "rows of 1-pixel grey lines running left to right",
    "vertical": "columns of 1-pixel grey lines running top to bottom",
    "checkered": "grey pixels alternating with white ones in both directions",
    "dotted": "single black pixels, one in every 2 x 2 block",
    "plain": "one flat grey with no lines or dots",
}
LINES = ("horizontal", "vertical")


def ask(data: dict[str, Any], rng: random.Random) -> list[QA]:
    """Three questions, all answered by reading the fill: its name, whether it is lines, and a choice."""
    name = data["fill"]
    seen = f"At full resolution the framed panel shows {SEEN[name]}."
    lines = "yes" if name in LINES else "no"
    choices = [name, *rng.sample([f for f in FILLS if f != name], 3)]
    rng.shuffle(choices)
    return [
        QA(
            template="hatching_fill",
            question=QUESTIONS[data["question"]],
            answer=name,
            rationale=f"{seen} So the answer is {name}.",
            args={"fill": name},
        ),
        QA(
            template="hatching_lines",
            question="Is the framed panel filled with parallel lines? Answer yes or no.",
            answer=lines,
            rationale=f"{seen} Only horizontal and vertical hatching are lines. So the answer is {lines}.",
            args={"fill": name},
        ),
        QA(
            template="hatching_choice",
            question="Which word describes the fill of the framed panel?",
            answer=name,
            rationale=f"{seen} So the answer is {name}.",
            args={"fill": name},
            choices=choices,
        ),
    ]


def describe(data: dict[str, Any]) -> str:
    name = data["fill"]
    fills = {"plain": "a plain grey fill", "dotted": "a dotted fill", "checkered": "a checkered fill"}
    return f"a framed panel with {fills.get(name, f'{name} hatching')} on a white page"
