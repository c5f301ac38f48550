"""Raw shard rows -> one micro-batch for the model, never crashing on a bad row.

- Images are decoded here (in the DataLoader workers); a row whose image does not decode, or whose
  sample cannot be encoded (e.g. its image does not fit `max_length`), is dropped and reported with
  its reason. The processor then lays out every crop of the batch back to back (`pixel_values`
  [T, 3, S, S], `image_grids` [I, 2]): samples keep their own crop counts, no crop is padded.
- Every micro-batch holds at least one image. A batch without one (text-only samples, or every
  row dropped) gets a *dummy* sample: a black image and a prompt with no answer, so it carries no
  label and adds nothing to the loss, but the vision tower and adapters run. Under ZeRO-3 every
  rank gathers the same parameters in the same order each step; a rank that skipped the vision
  path would leave the others waiting for it.
"""

from __future__ import annotations

import io
from dataclasses import dataclass, field
from typing import Any

import torch
from PIL import Image

from slime_data.images import to_rgb
from slime_model.merging import IGNORE_INDEX
from slime_model.processing import SliMEProcessor

DUMMY_CONVERSATION = [{"from": "human", "value": "<image>"}]


@dataclass
class MicroBatch:
    index: int  # stage-wide micro-batch counter m
    ids: list[str]  # rows in the batch (the dummy excluded)
    inputs: dict[str, torch.Tensor]  # model keyword arguments
    dropped: list[tuple[str, str]] = field(default_factory=list)  # (row id, reason)
    dummy_image: bool = False  # the last sample is the zero-weight dummy

    @property
    def label_tokens(self) -> int:
        """Tokens the loss counts (labels are shifted by one in the loss)."""
        return int((self.inputs["labels"][:, 1:] != IGNORE_INDEX).sum())

    def to(self, device: torch.device) -> dict[str, torch.Tensor]:
        return {name: tensor.to(device, non_blocking=True) for name, tensor in self.inputs.items()}


def decode_image(data: bytes | None) -> Image.Image:
    """Stored image bytes -> RGB. Raises ValueError with a short reason for anything unusable."""
    if not data:
        raise ValueError("image_missing")
    try:
        with Image.open(io.BytesIO(data)) as image:
            image.load()
            return to_rgb(image)
    except Exception as err:  # PIL reports corrupt data through many exception types
        raise ValueError(f"image_unreadable: {type(err).__name__}") from None


class Collator:
    def __init__(self, processor: SliMEProcessor, max_length: int) -> None:
        self.processor = processor
        self.max_length = max_length
        side = processor.settings.image.crop_size
        self.dummy = Image.new("RGB", (side, side))

    def _encode(self, samples: list[tuple[dict[str, Any], Image.Image | None]]) -> tuple[dict[str, torch.Tensor], bool]:
        """(row, image) pairs -> model inputs, with the dummy sample appended when none has an image."""
        conversations = [row["conversations"] for row, _ in samples]
        images = [image for _, image in samples]
        dummy = all(image is None for image in images)
        if dummy:
            conversations, images = conversations + [DUMMY_CONVERSATION], images + [self.dummy]
        return dict(self.processor(conversations, images, max_length=self.max_length)), dummy

    def __call__(self, index: int, rows: list[dict[str, Any]]) -> MicroBatch:
        kept, dropped = [], []
        for row in rows:
            try:
                image = decode_image((row["image"] or {}).get("bytes")) if row["image"] is not None else None
            except ValueError as err:
                dropped.append((row["id"], str(err)))
                continue
            kept.append((row, image))
        try:
            inputs, dummy = self._encode(kept)
        except ValueError:
            kept = self._drop_unencodable(kept, dropped)
            inputs, dummy = self._encode(kept)
        return MicroBatch(
            index=index, ids=[row["id"] for row, _ in kept], inputs=inputs, dropped=dropped, dummy_image=dummy
        )

    def _drop_unencodable(self, kept: list, dropped: list[tuple[str, str]]) -> list:
        """The samples the processor accepts, tried one by one (only after their batch failed); the rest go to
        `dropped`."""
        good = []
        for row, image in kept:
            try:
                self._encode([(row, image)])
                good.append((row, image))
            except ValueError as err:
                dropped.append((row["id"], f"unencodable: {err}"))
        return good
