"""Test data for dedup and decontamination: chart images, their altered copies, and records.

Images go through ``slime_data.images.prepare_image``, the loader the build uses, so records
carry the same bytes, sizes and hashes as real ingested rows.
"""

from __future__ import annotations

import io
import random

from PIL import Image, ImageDraw

from slime_data.images import prepare_image
from slime_data.record import ImageRef, Record


def chart(seed: int, size: tuple[int, int] = (960, 640)) -> Image.Image:
    """A bar chart with labels; different seeds give clearly different pictures."""
    rng = random.Random(seed)
    width, height = size
    image = Image.new("RGB", size, "white")
    draw = ImageDraw.Draw(image)
    bars = rng.randint(4, 9)
    slot = (width - 80) // bars
    for i in range(bars):
        top = rng.randint(height // 10, height - 80)
        x = 40 + i * slot
        draw.rectangle([x, top, x + slot * 2 // 3, height - 60], fill=tuple(rng.randint(0, 200) for _ in range(3)))
        draw.text((x, height - 50), f"item {i}", fill="black")
    draw.line([30, 20, 30, height - 60], fill="black", width=3)
    return image


def encode(image: Image.Image, fmt: str = "PNG", **options: object) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, fmt, **options)
    return buffer.getvalue()


def variants(image: Image.Image) -> dict[str, bytes]:
    """The altered copies a near-dedup must catch: re-encoded, resized, slightly cropped."""
    width, height = image.size
    return {
        "reencoded": encode(image, "JPEG", quality=70),
        "resized": encode(image.resize((width // 2, height // 2), Image.Resampling.LANCZOS)),
        "cropped": encode(image.crop((width // 100, height // 100, width - width // 100, height - height // 100))),
    }


def image_record(record_id: str, data: bytes, question: str, answer: str = "5", source: str = "t") -> Record:
    prepared = prepare_image(data)
    return Record(
        id=f"{source}/{record_id}",
        source=source,
        split="train",
        task="chart",
        conversations=[{"from": "human", "value": f"<image>\n{question}"}, {"from": "gpt", "value": answer}],
        image=ImageRef(bytes=prepared.bytes, path=f"{record_id}.png"),
        width=prepared.width,
        height=prepared.height,
        image_hash=prepared.content_hash,
        phash=prepared.phash,
        answer=answer,
    )


def text_record(record_id: str, question: str, answer: str, source: str = "t") -> Record:
    return Record(
        id=f"{source}/{record_id}",
        source=source,
        split="train",
        conversations=[{"from": "human", "value": question}, {"from": "gpt", "value": answer}],
        answer=answer,
    )
