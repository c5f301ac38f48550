"""Images for chat requests: downscaled on demand, sent as base64 data URLs, keyed by content.

The cache key names an image by the xxh3-128 of its original bytes and the side it is
downscaled to (the recipe, not the re-encoded bytes), so a cached answer stays valid across
Pillow versions and is found without decoding the image at all.
"""

from __future__ import annotations

import base64
import io
from dataclasses import dataclass
from functools import cached_property

import xxhash
from PIL import Image

# Formats every OpenAI-compatible vision server accepts as-is.
_PASSTHROUGH = {"JPEG": "image/jpeg", "PNG": "image/png", "WEBP": "image/webp", "GIF": "image/gif"}


@dataclass(frozen=True)
class ImagePart:
    data: bytes  # the record's encoded image
    max_side: int  # the longer side is downscaled to at most this

    @cached_property
    def content_hash(self) -> str:
        return xxhash.xxh3_128_hexdigest(self.data)

    def key(self) -> dict[str, object]:
        return {"image_xxh3_128": self.content_hash, "max_side": self.max_side}

    def encoded(self) -> tuple[bytes, str]:
        """(bytes, MIME type) to send: the original when small enough, else a downscaled JPEG/PNG."""
        with Image.open(io.BytesIO(self.data)) as image:
            if max(image.size) <= self.max_side and image.format in _PASSTHROUGH:
                return self.data, _PASSTHROUGH[image.format]
            scale = min(1.0, self.max_side / max(image.size))
            size = (max(1, round(image.width * scale)), max(1, round(image.height * scale)))
            # Alpha and palette images become PNG (lossless, keeps thin chart lines); photos JPEG.
            lossless = image.mode in ("RGBA", "LA", "P", "1") or image.format == "PNG"
            image = image.convert("RGBA" if lossless and "A" in image.getbands() else "RGB")
            image = image.resize(size, Image.Resampling.LANCZOS)
            out = io.BytesIO()
            if lossless:
                image.save(out, format="PNG", optimize=False)
                return out.getvalue(), "image/png"
            image.save(out, format="JPEG", quality=90)
            return out.getvalue(), "image/jpeg"

    def data_url(self) -> str:
        data, mime = self.encoded()
        return f"data:{mime};base64,{base64.b64encode(data).decode('ascii')}"
