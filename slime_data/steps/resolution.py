"""``resolution``: keep images big enough to need high-resolution processing (header sizes only)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from slime_data.record import Record
from slime_data.steps.base import Filter, register_step


class ResolutionParams(BaseModel):
    model_config = ConfigDict(extra="forbid")
    min_short_side: int = Field(0, ge=0, description="drop images whose shorter side is below this (px)")
    min_pixels: int = Field(0, ge=0, description="drop images with fewer pixels than this")
    max_aspect_ratio: float = Field(
        20.0, ge=1.0, description="drop images longer than this many times their width (or vice versa)"
    )


@register_step
class Resolution(Filter):
    name = "resolution"

    def __init__(self, **params: object) -> None:
        self.params = ResolutionParams(**params)

    def decide(self, record: Record) -> tuple[str, str] | None:
        if record.image is None:
            return None  # text-only rows have no resolution to judge
        w, h, p = record.width, record.height, self.params
        if min(w, h) < p.min_short_side:
            return "min_short_side", f"{w}x{h}: short side {min(w, h)} < {p.min_short_side}"
        if w * h < p.min_pixels:
            return "min_pixels", f"{w}x{h} = {w * h} px < {p.min_pixels}"
        if max(w, h) / min(w, h) > p.max_aspect_ratio:
            return "max_aspect_ratio", f"{w}x{h}: aspect {max(w, h) / min(w, h):.1f} > {p.max_aspect_ratio}"
        return None
