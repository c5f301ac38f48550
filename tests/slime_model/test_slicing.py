"""Slicing against DESIGN §2's exact rule (crop side 336 as released; pixel tests use small crops)."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from slime_model.configuration import LLAVA_NEXT_PINPOINTS
from slime_model.slicing import (
    Grid,
    best_fit_grid,
    choose_grid,
    factor_grids,
    fit_size,
    pinpoint_candidates,
    slice_image,
    uhd_candidates,
)

C = 336


def test_factor_grids_enumerate_cols_from_one():
    assert factor_grids(6) == [Grid(1, 6), Grid(2, 3), Grid(3, 2), Grid(6, 1)]
    assert factor_grids(7) == [Grid(1, 7), Grid(7, 1)]


@pytest.mark.parametrize(
    ("size", "sizes_of_candidates"),
    [
        ((336, 336), (2, 3)),  # s = 1 -> 2, then n in {s, s+1}
        ((500, 400), (2, 3)),  # s = 2
        ((700, 500), (3, 4, 5)),  # s = ceil(350000 / 112896) = 4 -> {s-1, s, s+1}
        ((5000, 5000), (5, 6, 7)),  # s clipped to 6
        ((1, 1), (2, 3)),
    ],
)
def test_uhd_candidates_follow_the_released_rule(size, sizes_of_candidates):
    expected = [grid for n in sizes_of_candidates for grid in factor_grids(n)]
    assert uhd_candidates(*size, C) == expected


@pytest.mark.parametrize(
    ("size", "grid"),
    [
        ((336, 336), Grid(1, 2)),  # (1,2) and (2,1) tie on effective and wasted: the first found wins
        ((672, 672), Grid(2, 2)),  # exact fit, nothing wasted
        ((1344, 336), Grid(4, 1)),
        ((1008, 672), Grid(3, 2)),
        ((2000, 1500), Grid(3, 2)),  # 896x672 used, the largest effective among n in {5, 6, 7}
        ((8000, 8000), Grid(2, 3)),  # (2,3) and (3,2) tie: first found
        ((672, 300), Grid(2, 1)),  # (3,1) also covers it fully but wastes more
        ((50, 1000), Grid(1, 3)),  # 1:20
        ((1, 1), Grid(1, 2)),
    ],
)
def test_uhd_grid_for_known_sizes(size, grid):
    assert choose_grid("uhd", *size, C) == grid


def test_uhd_max_scale_limits_the_grids():
    assert choose_grid("uhd", 8000, 8000, C, uhd_max_scale=3).num_crops <= 4


def test_best_fit_prefers_effective_then_less_waste_then_first():
    # 1000x500 in LLaVA-NeXT pinpoints: (2,2), (2,1), (3,1), (4,1) all reach 672x336; (2,1) wastes nothing.
    assert best_fit_grid(1000, 500, C, pinpoint_candidates(LLAVA_NEXT_PINPOINTS, C)) == Grid(2, 1)
    # equal effective and waste: first candidate kept
    assert best_fit_grid(336, 336, C, [Grid(2, 1), Grid(1, 2)]) == Grid(2, 1)


def test_anyres_and_grid_strategies():
    assert choose_grid("anyres", 1000, 500, C, pinpoints=LLAVA_NEXT_PINPOINTS) == Grid(2, 1)
    assert choose_grid("anyres", 300, 2000, C, pinpoints=LLAVA_NEXT_PINPOINTS) == Grid(1, 4)
    # The paper's search: the smallest grid that holds the whole image, capped at 6x6.
    assert choose_grid("grid", 1000, 1000, C) == Grid(3, 3)
    assert choose_grid("grid", 8000, 8000, C) == Grid(6, 6)
    assert choose_grid("grid", 8000, 8000, C, grid_max_side=2) == Grid(2, 2)


def test_choose_grid_rejects_bad_input():
    with pytest.raises(ValueError, match="unknown slicing strategy"):
        choose_grid("tiles", 10, 10, C)
    with pytest.raises(ValueError, match="positive"):
        choose_grid("uhd", 0, 10, C)


@pytest.mark.parametrize(
    ("size", "target", "fitted"),
    [
        ((1000, 500), (672, 672), (672, 336)),
        ((672, 300), (672, 336), (672, 300)),
        ((1, 1), (336, 672), (336, 336)),
        ((50, 1000), (336, 1008), (51, 1008)),  # the free side is ceil'd: 50 * 1.008 = 50.4 -> 51
    ],
)
def test_fit_size_keeps_aspect_fitted_side_exact_other_ceiled(size, target, fitted):
    assert fit_size(*size, *target) == fitted


def test_slice_image_order_global_first_then_rows_left_to_right():
    crop = 8
    colors = {(0, 0): (255, 0, 0), (1, 0): (0, 255, 0), (0, 1): (0, 0, 255), (1, 1): (255, 255, 0)}  # (col, row)
    image = Image.new("RGB", (2 * crop, 2 * crop))
    for (col, row), color in colors.items():
        image.paste(color, (col * crop, row * crop, (col + 1) * crop, (row + 1) * crop))
    crops = slice_image(image, Grid(2, 2), crop)
    assert crops.shape == (5, crop, crop, 3) and crops.dtype == np.uint8
    assert crops[0].shape == (crop, crop, 3)  # global view: a plain resize of the whole image
    for index, key in enumerate([(0, 0), (1, 0), (0, 1), (1, 1)], start=1):
        assert tuple(crops[index][crop // 2, crop // 2]) == colors[key]


def test_slice_image_pads_centred_on_black():
    crop = 12
    image = Image.new("RGB", (2 * crop, 10), (255, 255, 255))  # fits (2,1) with 24x10 -> 24x10 pasted at y=1
    crops = slice_image(image, Grid(2, 1), crop)
    top, bottom = (crop - 10) // 2, (crop - 10) // 2 + 10
    for tile in crops[1:]:
        assert (tile[:top] == 0).all() and (tile[bottom:] == 0).all()
        assert (tile[top:bottom] == 255).all()
    assert (crops[0] == 255).all()  # the global view is stretched, not padded


@pytest.mark.parametrize("mode", ["L", "P", "RGBA", "CMYK", "I;16"])
def test_slice_image_accepts_any_mode(mode):
    image = Image.new("RGB", (30, 20), (10, 20, 30)).convert(mode)
    crops = slice_image(image, Grid(1, 2), 8)
    assert crops.shape == (3, 8, 8, 3)
