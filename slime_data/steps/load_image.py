"""``load_image``: read each record's image from the dataset root, check, normalise and hash it.

Recipe entry: ``{step: load_image, root: <dataset root>, max_pixels: 67108864}``.
A record whose image cannot be used becomes a reject with the ``ImageRejected`` reason
(``image_missing``, ``image_empty``, ``image_truncated``, ``image_too_large``…).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Iterator
from pathlib import Path

from PIL import Image
from pydantic import BaseModel, ConfigDict, PositiveInt, field_validator

from slime_data.images import (
    DEFAULT_MAX_PIXELS,
    ImageRejected,
    PreparedImage,
    check_image,
    content_hash,
    prepare_image,
    read_image_file,
)
from slime_data.record import ImageRef, Record, Reject
from slime_data.steps.base import Step, register_step


class LoadImagesParams(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    root: Path  # image paths in records are relative to this folder and may not leave it
    max_pixels: PositiveInt = DEFAULT_MAX_PIXELS

    @field_validator("max_pixels")
    @classmethod
    def _within_pil_limit(cls, value: int) -> int:
        # PIL refuses images above its own limit before ours is consulted (see images.py).
        limit = Image.MAX_IMAGE_PIXELS
        if limit is not None and value > limit:
            raise ValueError(
                f"max_pixels={value} is above PIL's Image.MAX_IMAGE_PIXELS ({limit}), which would reject "
                "those images anyway; raise PIL.Image.MAX_IMAGE_PIXELS as well"
            )
        return value


@register_step
class LoadImages(Step):
    """Fill ``image.bytes``, ``width``, ``height``, ``image_hash`` and ``phash``.

    - ``image is None``: passes through.
    - ``image.bytes is None``: the file ``root/image.path`` is read, checked and normalised;
      ``meta["original_path"]`` records the path it came from.
    - bytes already present: if the record is complete (sizes, phash, and an ``image_hash``
      that matches the bytes) the bytes are only checked; otherwise they are prepared like a
      file's bytes.
    """

    name = "load_image"
    context_keys = ("root", "max_pixels")  # the unit's dataset folder, the build recipe's limit

    def __init__(self, **params) -> None:
        self.params = LoadImagesParams(**params)

    def run(self, records: Iterable[Record]) -> Iterator[Record | Reject]:
        for record in records:
            if record.image is None:
                yield record
                continue
            try:
                yield self._load(record)
            except ImageRejected as err:
                yield self.reject(record, err.reason, err.detail)

    def _load(self, record: Record) -> Record:
        image = record.image
        max_pixels = self.params.max_pixels
        if image.bytes is None:
            prepared = read_image_file(self.params.root, image.path, max_pixels=max_pixels)
            return _with_image(record, prepared, meta={**record.meta, "original_path": image.path})
        if _is_complete(record):
            check_image(image.bytes, max_pixels=max_pixels)
            return record
        return _with_image(record, prepare_image(image.bytes, max_pixels=max_pixels), meta=record.meta)


def _is_complete(record: Record) -> bool:
    return (
        record.width is not None
        and record.height is not None
        and record.phash is not None
        and record.image_hash == content_hash(record.image.bytes)
    )


def _with_image(record: Record, prepared: PreparedImage, meta: dict) -> Record:
    return dataclasses.replace(
        record,
        image=ImageRef(bytes=prepared.bytes, path=record.image.path),
        width=prepared.width,
        height=prepared.height,
        image_hash=prepared.content_hash,
        phash=prepared.phash,
        meta=meta,
    )
