"""``quality``: drop blurry and near-blank images.

Both scores come from one small grayscale copy (JPEG draft mode keeps decoding cheap):
blur = variance of the 3x3 Laplacian (low = few edges = blurry), blank = standard deviation of
the pixels (low = a flat image). The scores are kept in ``meta["quality"]`` so the build report
can plot their distributions and users can tune the thresholds.
"""

from __future__ import annotations

import io

import numpy as np
from PIL import Image
from pydantic import BaseModel, ConfigDict, Field

from slime_data.record import Record
from slime_data.steps.base import Filter, register_step


class QualityParams(BaseModel):
    model_config = ConfigDict(extra="forbid")
    min_blur_variance: float = Field(10.0, ge=0, description="Laplacian variance below this = blurry")
    min_pixel_std: float = Field(4.0, ge=0, description="grayscale std below this = near-blank")
    analysis_side: int = Field(512, ge=64, description="long side of the grayscale copy the scores use")


def quality_scores(image_bytes: bytes, side: int) -> tuple[float, float]:
    """(Laplacian variance, pixel std) of a grayscale copy whose long side is about ``side``."""
    with Image.open(io.BytesIO(image_bytes)) as image:
        image.draft("L", (side, side))
        gray = image.convert("L")
        gray.thumbnail((side, side))
        pixels = np.asarray(gray, dtype=np.float32)  # (H, W)
    if min(pixels.shape) < 3:
        return 0.0, float(pixels.std())
    laplacian = (
        pixels[:-2, 1:-1] + pixels[2:, 1:-1] + pixels[1:-1, :-2] + pixels[1:-1, 2:] - 4 * pixels[1:-1, 1:-1]
    )  # (H-2, W-2)
    return float(laplacian.var()), float(pixels.std())


@register_step
class Quality(Filter):
    name = "quality"

    def __init__(self, **params: object) -> None:
        self.params = QualityParams(**params)

    def decide(self, record: Record) -> tuple[str, str] | None:
        if record.image is None or not record.image.bytes:
            return None
        blur, std = quality_scores(record.image.bytes, self.params.analysis_side)
        record.meta["quality"] = {"blur": round(blur, 3), "std": round(std, 3)}
        if std < self.params.min_pixel_std:
            return "near_blank", f"pixel std {std:.2f} < {self.params.min_pixel_std}"
        if blur < self.params.min_blur_variance:
            return "blurry", f"Laplacian variance {blur:.2f} < {self.params.min_blur_variance}"
        return None
