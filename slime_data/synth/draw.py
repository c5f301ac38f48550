"""Drawing helpers shared by the figure kinds: fonts, named colours, text placement, choices.

Text uses Pillow's bundled scalable font (``ImageFont.load_default(size=...)``, Pillow >= 10.1),
so nothing is downloaded (and one Pillow build renders the same pixels anywhere). It covers Latin-1
only: image text keeps to ASCII and the degree sign; questions and rationales may use any
Unicode because they are not drawn.
"""

from __future__ import annotations

import functools
import random

from PIL import Image, ImageDraw, ImageFont

WHITE = (255, 255, 255)
INK = (20, 20, 20)
GRID = (215, 215, 215)
MUTED = (110, 110, 110)

# Colours with names a reader agrees on: legends, captions and colour questions use the names.
COLOURS: dict[str, tuple[int, int, int]] = {
    "red": (214, 39, 40),
    "blue": (31, 119, 180),
    "green": (44, 160, 44),
    "orange": (255, 127, 14),
    "purple": (148, 103, 189),
    "brown": (140, 86, 75),
    "pink": (227, 119, 194),
    "gray": (127, 127, 127),
    "olive": (188, 189, 34),
    "cyan": (23, 190, 207),
    "black": (0, 0, 0),
    "navy": (0, 0, 128),
}


@functools.lru_cache(maxsize=64)
def font(size: int) -> ImageFont.FreeTypeFont:
    return ImageFont.load_default(size=size)  # type: ignore[return-value]


def text_width(text: str, size: int) -> float:
    return font(size).getlength(text)


def draw_text(
    draw: ImageDraw.ImageDraw,
    xy: tuple[float, float],
    text: str,
    size: int,
    fill: tuple[int, int, int] = INK,
    anchor: str = "la",
    bold: bool = False,
) -> None:
    """Text at ``xy`` with a Pillow anchor ("la" left-ascender, "mm" centre, "rm" right-middle...).

    The bundled font has no bold face; drawing twice one pixel apart stands in for it (a stroke
    fills in the counters of small letters).
    """
    draw.text(xy, text, font=font(size), fill=fill, anchor=anchor)
    if bold:
        draw.text((xy[0] + 1, xy[1]), text, font=font(size), fill=fill, anchor=anchor)


def draw_vertical_text(
    image: Image.Image, centre: tuple[float, float], text: str, size: int, fill: tuple[int, int, int] = INK
) -> None:
    """Text rotated 90 degrees counter-clockwise (a y-axis title), centred on ``centre``."""
    left, top, right, bottom = font(size).getbbox(text)
    mask = Image.new("L", (int(right - left) + 4, int(bottom - top) + 4), 0)
    ImageDraw.Draw(mask).text((2 - left, 2 - top), text, font=font(size), fill=255)
    mask = mask.rotate(90, expand=True)
    x, y = int(centre[0] - mask.width / 2), int(centre[1] - mask.height / 2)
    image.paste(Image.new("RGB", mask.size, fill), (x, y), mask)


@functools.lru_cache(maxsize=65536)
def _word_width(word: str, size: int) -> float:
    return font(size).getlength(word)


@functools.lru_cache(maxsize=65536)
def _word_mask(word: str, size: int) -> tuple[Image.Image, int, int]:
    """The word's anti-aliased coverage mask and its offset from the pen on the baseline."""
    left, top, right, bottom = font(size).getbbox(word, anchor="ls")
    mask = Image.new("L", (max(1, right - left), max(1, bottom - top)), 0)
    ImageDraw.Draw(mask).text((-left, -top), word, font=font(size), fill=255, anchor="ls")
    return mask, left, top


def draw_words(
    image: Image.Image, xy: tuple[float, float], text: str, size: int, fill: tuple[int, int, int] = INK
) -> None:
    """A line of body text with its left end at ``xy`` on the baseline, word by word.

    FreeType rasterises every glyph on every call (about 10 us each); body text repeats its
    words, so pasting cached word masks draws a dense page several times faster. Words sit
    on whole pixels and are spaced like ``wrap`` measures them.
    """
    x, y = xy
    space = _word_width(" ", size)
    for word in text.split(" "):
        mask, left, top = _word_mask(word, size)
        image.paste(fill, (round(x + left), round(y + top)), mask)
        x += _word_width(word, size) + space


def wrap(text: str, size: int, width: float) -> list[str]:
    """Greedy word wrap of ``text`` into lines about ``width`` pixels wide at ``size``.

    Line width is the sum of cached word and space widths (kerning across a space is ignored,
    a pixel at most), which keeps a dense page to a few thousand cache lookups.
    """
    space = _word_width(" ", size)
    lines: list[str] = []
    line: list[str] = []
    used = 0.0
    for word in text.split():
        w = _word_width(word, size)
        if line and used + space + w > width:
            lines.append(" ".join(line))
            line, used = [word], w
        else:
            used += (space if line else 0.0) + w
            line.append(word)
    if line:
        lines.append(" ".join(line))
    return lines


def nice_step(top: float, ticks: int) -> int:
    """An axis step from {1, 2, 5} x 10^k giving about ``ticks`` intervals up to ``top``."""
    raw = max(top / ticks, 1.0)
    magnitude = 10 ** (len(str(int(raw))) - 1)
    for factor in (1, 2, 5, 10):
        if factor * magnitude >= raw:
            return factor * magnitude
    return 10 * magnitude


def numeric_choices(rng: random.Random, answer: int, count: int = 4, spread: int | None = None) -> list[int]:
    """``answer`` and ``count - 1`` distinct positive distractors near it, shuffled."""
    spread = spread or max(3, abs(answer) // 4)
    options = {answer}
    while len(options) < count:
        candidate = answer + rng.choice((-1, 1)) * rng.randint(1, spread)
        if candidate > 0:
            options.add(candidate)
    ordered = sorted(options)
    rng.shuffle(ordered)
    return ordered


def text_choices(rng: random.Random, answer: str, pool: list[str], count: int = 4) -> list[str]:
    """``answer`` and up to ``count - 1`` other entries of ``pool``, shuffled."""
    others = [p for p in pool if p != answer]
    options = [answer, *rng.sample(others, min(count - 1, len(others)))]
    rng.shuffle(options)
    return options
