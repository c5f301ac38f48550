"""Image slicing: choose a grid of crops, fit the image into it, cut it (DESIGN §2).

Three strategies pick the grid (cols × rows of `crop`-pixel crops); all share LLaVA's best-fit rule:
for a grid of size (cols·c, rows·c), scale = min(cols·c / W, rows·c / H), effective =
min(int(W·scale)·int(H·scale), W·H), wasted = cols·c·rows·c − effective; the largest effective
wins, ties go to the smaller wasted, and the first candidate found wins remaining ties.

- "uhd" (the released SliME code, default): s = ceil(W·H / c²) clipped to [2, max_scale]; the
  candidates are the factor pairs (cols = 1…n) of n ∈ {s, s+1} when s ≤ 2, else n ∈ {s−1, s, s+1}.
- "anyres" (LLaVA-NeXT): the candidates are fixed pinpoints in pixels.
- "grid" (the paper's text): every cols × rows grid up to max_side × max_side.

Everything here is a pure function of sizes, except `slice_image`, which does the pixels.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from typing import NamedTuple

import numpy as np
from PIL import Image


class Grid(NamedTuple):
    cols: int
    rows: int

    @property
    def num_crops(self) -> int:
        return self.cols * self.rows


def best_fit_grid(width: int, height: int, crop: int, candidates: Iterable[Grid]) -> Grid:
    """LLaVA's `select_best_resolution` over grids of `crop`-pixel cells (see the module docstring)."""
    best, best_effective, best_wasted = None, 0, math.inf
    for grid in candidates:
        grid_w, grid_h = grid.cols * crop, grid.rows * crop
        scale = min(grid_w / width, grid_h / height)
        effective = min(int(width * scale) * int(height * scale), width * height)
        wasted = grid_w * grid_h - effective
        if effective > best_effective or (effective == best_effective and wasted < best_wasted):
            best, best_effective, best_wasted = grid, effective, wasted
    if best is None:
        raise ValueError(f"no candidate grid for a {width}x{height} image")
    return best


def factor_grids(n: int) -> list[Grid]:
    """All grids with n crops, enumerated cols = 1…n as the released `factorize` does."""
    return [Grid(cols, n // cols) for cols in range(1, n + 1) if n % cols == 0]


def uhd_candidates(width: int, height: int, crop: int, max_scale: int = 6) -> list[Grid]:
    scale = math.ceil(width * height / (crop * crop))
    scale = min(max(scale, 2), max_scale)
    sizes = (scale, scale + 1) if scale <= 2 else (scale - 1, scale, scale + 1)
    return [grid for n in sizes for grid in factor_grids(n)]


def pinpoint_candidates(pinpoints: Sequence[Sequence[int]], crop: int) -> list[Grid]:
    """LLaVA-NeXT pinpoints as (width, height) pixels -> grids of crops."""
    return [Grid(width // crop, height // crop) for width, height in pinpoints]


def search_candidates(max_side: int) -> list[Grid]:
    return [Grid(cols, rows) for rows in range(1, max_side + 1) for cols in range(1, max_side + 1)]


def choose_grid(
    strategy: str,
    width: int,
    height: int,
    crop: int,
    *,
    uhd_max_scale: int = 6,
    grid_max_side: int = 6,
    pinpoints: Sequence[Sequence[int]] = (),
) -> Grid:
    if width < 1 or height < 1:
        raise ValueError(f"image size must be positive, got {width}x{height}")
    if strategy == "uhd":
        candidates = uhd_candidates(width, height, crop, uhd_max_scale)
    elif strategy == "anyres":
        candidates = pinpoint_candidates(pinpoints, crop)
    elif strategy == "grid":
        candidates = search_candidates(grid_max_side)
    else:
        raise ValueError(f"unknown slicing strategy {strategy!r}; choose uhd, anyres or grid")
    return best_fit_grid(width, height, crop, candidates)


def fit_size(width: int, height: int, target_width: int, target_height: int) -> tuple[int, int]:
    """Size of the image resized into the target keeping its aspect: the fitted side exact, the
    other ceil'd and capped (the released `resize_and_pad_image`)."""
    scale_w, scale_h = target_width / width, target_height / height
    if scale_w < scale_h:
        return target_width, min(math.ceil(height * scale_w), target_height)
    return min(math.ceil(width * scale_h), target_width), target_height


def slice_image(image: Image.Image, grid: Grid, crop: int) -> np.ndarray:
    """The global view (a plain resize to crop × crop) then the grid's crops, row by row, left to right.

    The image is resized into the grid keeping its aspect and pasted centred on black.
    Returns uint8 [1 + rows·cols, crop, crop, 3].
    """
    image = image.convert("RGB")
    global_view = np.asarray(image.resize((crop, crop), Image.Resampling.BICUBIC))
    canvas_w, canvas_h = grid.cols * crop, grid.rows * crop
    new_w, new_h = fit_size(image.width, image.height, canvas_w, canvas_h)
    canvas = Image.new("RGB", (canvas_w, canvas_h), (0, 0, 0))
    canvas.paste(
        image.resize((new_w, new_h), Image.Resampling.BICUBIC), ((canvas_w - new_w) // 2, (canvas_h - new_h) // 2)
    )
    # [rows·c, cols·c, 3] -> [rows, c, cols, c, 3] -> [rows, cols, c, c, 3] -> [rows·cols, c, c, 3]
    crops = np.asarray(canvas).reshape(grid.rows, crop, grid.cols, crop, 3).transpose(0, 2, 1, 3, 4)
    return np.concatenate([global_view[None], crops.reshape(grid.num_crops, crop, crop, 3)])
