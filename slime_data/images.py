"""Image loading for ingest: cheap checks first, truthful sizes, deterministic bytes, hashes.

Every image a source points at goes through ``prepare_image`` (via ``read_image_file`` for
files under a dataset root). The order keeps the common case cheap:

1. ``probe``: PIL's lazy open reads the header only (format, size, mode; no pixel decode).
2. pixel limit: ``width * height > max_pixels`` is rejected before anything is decoded.
3. decode check: a *plain* JPEG (8-bit RGB or grayscale, no EXIF rotation) is decoded in
   JPEG draft mode at 1/2..1/8 scale, which still reads every entropy-coded byte, so a
   truncated file fails while the IDCT work drops by up to 64x. The same small decode feeds
   the perceptual hash. Every other image is decoded in full (we need its pixels anyway).
   ``ImageFile.LOAD_TRUNCATED_IMAGES`` is never turned on: a short file is a reject.
4. normalise: plain 8-bit RGB or grayscale (``L``) JPEG/PNG without transparency or EXIF
   rotation is stored as the *original bytes, untouched*. Everything else (CMYK, 16-bit,
   palette, alpha, EXIF-rotated, 1-bit, float, GIF/BMP/TIFF/WebP…) is decoded, rotated
   upright, converted to 8-bit RGB (alpha flattened on white, 16-bit scaled rather than
   clipped) and re-encoded deterministically: JPEG quality 95 (4:4:4) for JPEG sources, PNG
   for all others. So stored images are RGB, or ``L`` when a grayscale original was kept;
   consumers call ``.convert("RGB")`` (CLIP processors do). Width and height are always
   those of the stored, upright image.
5. hashes: ``content_hash`` (xxh3-128 of the stored bytes) and ``phash64`` (imagehash's
   64-bit DCT hash, same bit order).

Failures raise ``ImageRejected`` with a short countable ``reason`` and a one-line ``detail``.
"""

from __future__ import annotations

import io
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import imagehash
import numpy as np
import xxhash
from PIL import ExifTags, Image, ImageOps, UnidentifiedImageError

from slime_data.sources.base import safe_relative_path

# 8192² admits the paper's 8000×8000 images and stays under PIL's own warning limit
# (Image.MAX_IMAGE_PIXELS, ~89.5 MP), which also applies and is reported the same way.
DEFAULT_MAX_PIXELS = 8192 * 8192

# Formats we open. Restricting PIL's plugins keeps exotic decoders (EPS runs Ghostscript)
# away from untrusted files.
ALLOWED_FORMATS = ("JPEG", "PNG", "GIF", "BMP", "WEBP", "TIFF")
# PIL's JPEG opener returns "MPO" for phones' multi-picture JPEGs: same codec, same handling.
JPEG_FORMATS = frozenset({"JPEG", "MPO"})
PLAIN_MODES = frozenset({"RGB", "L"})
JPEG_QUALITY = 95
# Draft decoding keeps both sides at least this large: enough for phash's 32×32 resize.
PREVIEW_SIDE = 64
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


class ImageRejected(Exception):
    """An image that cannot be used. ``reason`` is short and stable (it is counted)."""

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason
        self.detail = detail


@dataclass(frozen=True)
class ImageProbe:
    """What the header says; ``width``/``height`` are as stored, before EXIF rotation."""

    format: str
    width: int
    height: int
    mode: str


@dataclass(frozen=True)
class PreparedImage:
    bytes: bytes  # what to store: the original bytes, or a deterministic re-encoding
    width: int  # of the stored, upright image
    height: int
    format: str  # "JPEG" or "PNG" (or the original format when kept)
    content_hash: str  # xxh3-128 hex of ``bytes``
    phash: int  # 64-bit, imagehash.phash bit order


# --------------------------------------------------------------------------------------
# PIL errors -> ImageRejected
# --------------------------------------------------------------------------------------


@contextmanager
def _pil_errors() -> Iterator[None]:
    """Run PIL code with bomb warnings as errors and every failure turned into a reject."""
    with warnings.catch_warnings():
        # PIL warns above MAX_IMAGE_PIXELS and raises above twice that; both are "too large".
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        try:
            yield
        except ImageRejected:
            raise
        except (Image.DecompressionBombError, Image.DecompressionBombWarning) as err:
            raise ImageRejected("image_too_large", str(err)) from None
        except UnidentifiedImageError:
            raise ImageRejected(
                "image_unreadable", f"not an image in a supported format ({', '.join(ALLOWED_FORMATS)})"
            ) from None
        except OSError as err:
            reason = "image_truncated" if "truncated" in str(err) else "image_unreadable"
            raise ImageRejected(reason, str(err)) from None
        # Corrupt headers surface from PIL's parsers as assorted exception types.
        except Exception as err:  # noqa: BLE001
            raise ImageRejected("image_unreadable", f"{type(err).__name__}: {err}") from None


def _open(data: bytes) -> Image.Image:
    """Lazy open: parses the header only. Call inside ``_pil_errors``."""
    if not data:
        raise ImageRejected("image_empty", "0 bytes")
    return Image.open(io.BytesIO(data), formats=ALLOWED_FORMATS)


def _check_pixels(width: int, height: int, max_pixels: int) -> None:
    if width * height > max_pixels:
        raise ImageRejected(
            "image_too_large", f"{width}x{height} = {width * height} pixels exceeds the limit of {max_pixels}"
        )


def _orientation(image: Image.Image) -> int:
    """EXIF orientation (1 = upright). JPEG EXIF lives in the header; PNG may need a load first."""
    return image.getexif().get(ExifTags.Base.Orientation, 1)


# --------------------------------------------------------------------------------------
# Public functions
# --------------------------------------------------------------------------------------


def probe(data: bytes) -> ImageProbe:
    """Format, size and mode from the header, without decoding pixels."""
    with _pil_errors(), _open(data) as image:
        return ImageProbe(image.format, image.width, image.height, image.mode)


def content_hash(data: bytes) -> str:
    return xxhash.xxh3_128_hexdigest(data)


def phash64(image: Image.Image) -> int:
    """imagehash.phash as an int: ``int(str(imagehash.phash(image)), 16)``."""
    bits = imagehash.phash(image).hash.flatten()  # (64,) bool, row-major; bit 0 is the MSB
    return int.from_bytes(np.packbits(bits).tobytes(), "big")


def to_rgb(image: Image.Image) -> Image.Image:
    """8-bit RGB: alpha flattened on white, 16-bit/int/float grayscale scaled into 0..255."""
    if image.mode == "RGB":
        return image
    if image.mode.startswith("I") or image.mode == "F":
        image = _gray_to_8bit(image)
    if image.has_transparency_data:
        rgba = image.convert("RGBA")
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(white, rgba).convert("RGB")
    return image.convert("RGB")


def _gray_to_8bit(image: Image.Image) -> Image.Image:
    """PIL's own I/F -> L conversion clips at 255; scale instead.

    Integer modes (I;16*, and I, which is how 16-bit sources decode) are taken as 16-bit
    (65535 -> 255). Float images are taken as 0..1 when their maximum is at most 1, else
    as 0..255.
    """
    pixels = np.asarray(image, dtype=np.float64)  # (H, W)
    if image.mode == "F":
        scale = 255.0 if pixels.size and pixels.max() <= 1.0 else 1.0
    else:
        scale = 255.0 / 65535.0
    return Image.fromarray(np.clip(np.rint(pixels * scale), 0, 255).astype(np.uint8), mode="L")


def check_image(data: bytes, *, max_pixels: int = DEFAULT_MAX_PIXELS) -> ImageProbe:
    """Probe, pixel limit and decode check (draft-mode for JPEG); nothing is re-encoded."""
    with _pil_errors():
        image = _open(data)
        _check_pixels(image.width, image.height, max_pixels)
        found = ImageProbe(image.format, image.width, image.height, image.mode)
        if image.format in JPEG_FORMATS:
            image.draft(None, (PREVIEW_SIDE, PREVIEW_SIDE))
        image.load()
        return found


def prepare_image(data: bytes, *, max_pixels: int = DEFAULT_MAX_PIXELS) -> PreparedImage:
    """Check, normalise and hash one encoded image (see the module docstring for the order)."""
    with _pil_errors():
        image = _open(data)
        _check_pixels(image.width, image.height, max_pixels)
        if image.format in JPEG_FORMATS and image.mode in PLAIN_MODES and _orientation(image) == 1:
            return _keep_plain_jpeg(data, image)
        image.load()  # the full decode doubles as the decode check
        if _is_plain_png(data, image):
            return PreparedImage(data, image.width, image.height, "PNG", content_hash(data), phash64(image))
        return _reencode(image)


def read_image_file(
    root: str | Path, relative_path: str | None, *, max_pixels: int = DEFAULT_MAX_PIXELS
) -> PreparedImage:
    """``prepare_image`` on ``root/relative_path``, refusing paths whose text leaves ``root``."""
    if not relative_path:
        raise ImageRejected("image_missing", "the record names no image path")
    relative = safe_relative_path(relative_path)
    if relative is None:
        raise ImageRejected("image_path_outside_root", f"{relative_path!r} escapes the dataset root")
    path = Path(root) / relative  # symlinks below root are followed (see safe_relative_path)
    try:
        data = path.read_bytes()
    except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
        raise ImageRejected("image_missing", f"no image file at {relative}") from None
    except OSError as err:
        raise ImageRejected("image_unreadable", f"{relative}: {err.strerror or err}") from None
    if not data:
        raise ImageRejected("image_empty", f"{relative} is 0 bytes")
    return prepare_image(data, max_pixels=max_pixels)


# --------------------------------------------------------------------------------------
# The three outcomes of prepare_image
# --------------------------------------------------------------------------------------


def _keep_plain_jpeg(data: bytes, image: Image.Image) -> PreparedImage:
    """Store the bytes as they are; decode once at reduced scale for the check and the phash."""
    width, height = image.size
    # "L" makes libjpeg emit luma only (phash works on luma); a grayscale JPEG is L already.
    image.draft("L", (PREVIEW_SIDE, PREVIEW_SIDE))
    image.load()
    return PreparedImage(data, width, height, "JPEG", content_hash(data), phash64(image))


def _is_plain_png(data: bytes, image: Image.Image) -> bool:
    """8-bit gray or RGB (IHDR colour type 0 or 2), no transparency, one frame, upright."""
    if image.format != "PNG" or not data.startswith(PNG_SIGNATURE):
        return False
    # IHDR is always the first chunk: signature(8) length(4) type(4) width(4) height(4) depth(1) colour(1).
    bit_depth, colour_type = data[24], data[25]
    return (
        bit_depth == 8
        and colour_type in (0, 2)
        and not image.has_transparency_data
        and getattr(image, "n_frames", 1) == 1
        and _orientation(image) == 1
    )


def _reencode(image: Image.Image) -> PreparedImage:
    """Upright 8-bit RGB, encoded with fixed settings and no metadata but the colour profile."""
    lossy = image.format in JPEG_FORMATS
    # Only an RGB profile still describes RGB pixels; CMYK/gray profiles would now be wrong.
    icc = image.info.get("icc_profile") if image.mode in ("RGB", "RGBA") else None
    ImageOps.exif_transpose(image, in_place=True)  # no copy: the image is ours
    rgb = to_rgb(image)
    rgb.info.clear()  # PIL's savers read stale keys (transparency, comment, APNG frames) from info
    buffer = io.BytesIO()
    if lossy:
        rgb.save(buffer, "JPEG", quality=JPEG_QUALITY, subsampling=0, icc_profile=icc)
    else:
        rgb.save(buffer, "PNG", compress_level=6, icc_profile=icc)
    data = buffer.getvalue()
    return PreparedImage(data, rgb.width, rgb.height, "JPEG" if lossy else "PNG", content_hash(data), phash64(rgb))
