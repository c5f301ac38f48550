"""Plant good and bad image files in test fixtures.

Each function writes one file at ``path`` (parents created) and returns the path, so source
adapter tests can drop a bad image under the name a native record expects::

    from tests.slime_data.image_faults import truncated_jpeg
    truncated_jpeg(root / "images" / "17.jpg")

Files are small and deterministic (the same call writes the same bytes).
"""

from __future__ import annotations

import io
import struct
import zlib
from pathlib import Path

import numpy as np
from PIL import ExifTags, Image

DEFAULT_SIZE = (96, 64)  # (width, height): not square, so a rotation shows in the size


def picture(size: tuple[int, int] = DEFAULT_SIZE) -> Image.Image:
    """An RGB test picture: a diagonal gradient, a red block top-left, a blue bar at the bottom."""
    width, height = size
    y, x = np.mgrid[0:height, 0:width]
    pixels = np.stack(
        [x * 255 // max(width - 1, 1), y * 255 // max(height - 1, 1), (x + y) * 255 // max(width + height - 2, 1)],
        axis=-1,
    ).astype(np.uint8)  # (H, W, 3)
    pixels[: height // 4, : width // 4] = (255, 0, 0)
    pixels[-max(height // 8, 1) :, :] = (0, 0, 255)
    return Image.fromarray(pixels, mode="RGB")


def _target(path: str | Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    return path


def _encoded(image: Image.Image, fmt: str, **options) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, fmt, **options)
    return buffer.getvalue()


# -- good files ----------------------------------------------------------------------------


def plain_jpeg(path: str | Path, size: tuple[int, int] = DEFAULT_SIZE, *, gray: bool = False) -> Path:
    image = picture(size).convert("L") if gray else picture(size)
    _target(path).write_bytes(_encoded(image, "JPEG", quality=90))
    return Path(path)


def plain_png(path: str | Path, size: tuple[int, int] = DEFAULT_SIZE, *, gray: bool = False) -> Path:
    image = picture(size).convert("L") if gray else picture(size)
    _target(path).write_bytes(_encoded(image, "PNG"))
    return Path(path)


# -- bad or unusual files --------------------------------------------------------------------


def zero_byte(path: str | Path) -> Path:
    _target(path).write_bytes(b"")
    return Path(path)


def not_an_image(path: str | Path) -> Path:
    _target(path).write_bytes(b"<html><body>404 Not Found</body></html>\n")
    return Path(path)


def truncated_jpeg(path: str | Path, size: tuple[int, int] = DEFAULT_SIZE) -> Path:
    """A valid header followed by only half of the entropy-coded data."""
    data = _encoded(picture(size), "JPEG", quality=90)
    _target(path).write_bytes(data[: len(data) // 2])
    return Path(path)


def truncated_png(path: str | Path, size: tuple[int, int] = DEFAULT_SIZE) -> Path:
    data = _encoded(picture(size), "PNG")
    _target(path).write_bytes(data[: len(data) // 2])
    return Path(path)


def cmyk_jpeg(path: str | Path, size: tuple[int, int] = DEFAULT_SIZE) -> Path:
    _target(path).write_bytes(_encoded(picture(size).convert("CMYK"), "JPEG", quality=95))
    return Path(path)


def exif_rotated_jpeg(path: str | Path, size: tuple[int, int] = DEFAULT_SIZE, *, orientation: int = 6) -> Path:
    """Stored ``size`` (w, h); orientation 6 means "rotate 90° clockwise to view": upright is (h, w)."""
    exif = Image.Exif()
    exif[ExifTags.Base.Orientation] = orientation
    _target(path).write_bytes(_encoded(picture(size), "JPEG", quality=95, exif=exif))
    return Path(path)


def palette_alpha_png(path: str | Path, size: tuple[int, int] = DEFAULT_SIZE) -> Path:
    """A palette PNG whose left half uses a fully transparent palette entry (index 0, black)."""
    image = picture(size).quantize(colors=16)
    indices = np.asarray(image).copy()  # (H, W) palette indices
    palette = image.getpalette()[: 16 * 3]
    palette[0:3] = [0, 0, 0]
    indices[indices == 0] = 1  # index 0 is reserved for the transparent half
    indices[:, : size[0] // 2] = 0
    planted = Image.fromarray(indices, mode="P")
    planted.putpalette(palette)
    _target(path).write_bytes(_encoded(planted, "PNG", transparency=0))
    return Path(path)


def rgba_png(path: str | Path, size: tuple[int, int] = DEFAULT_SIZE) -> Path:
    """RGBA whose top half is fully transparent black."""
    pixels = np.asarray(picture(size).convert("RGBA")).copy()  # (H, W, 4)
    pixels[: size[1] // 2] = (0, 0, 0, 0)
    _target(path).write_bytes(_encoded(Image.fromarray(pixels, mode="RGBA"), "PNG"))
    return Path(path)


def png16(path: str | Path, size: tuple[int, int] = DEFAULT_SIZE, *, gray: bool = False) -> Path:
    """A 16-bit PNG: a horizontal ramp 0..65535 (gray), or the test picture scaled to 16 bits (RGB)."""
    width, height = size
    if gray:
        ramp = np.linspace(0, 65535, width).round().astype(">u2")
        pixels = np.broadcast_to(ramp, (height, width))  # (H, W) big-endian, as PNG stores it
        colour_type = 0
    else:
        pixels = (np.asarray(picture(size)).astype(np.uint32) * 257).astype(">u2")  # (H, W, 3)
        colour_type = 2
    rows = (b"\x00" + row.tobytes() for row in pixels)  # filter type 0 per row
    _write_png(_target(path), width, height, bit_depth=16, colour_type=colour_type, rows=rows)
    return Path(path)


def bomb_png(path: str | Path, side: int = 20_000) -> Path:
    """A tiny file (tens of KB) declaring ``side``×``side`` pixels of 1-bit black.

    The default, 400 MP, trips PIL's own DecompressionBombError; 12_000 (144 MP) trips only
    PIL's warning; 9_000 (81 MP) passes PIL and must be caught by our own pixel limit.
    """
    row = b"\x00" + bytes((side + 7) // 8)
    _write_png(_target(path), side, side, bit_depth=1, colour_type=0, rows=(row for _ in range(side)))
    return Path(path)


def _write_png(path: Path, width: int, height: int, *, bit_depth: int, colour_type: int, rows) -> None:
    """A minimal PNG writer (PIL cannot write 16-bit RGB, and a bomb must not be built in memory)."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    compressor = zlib.compressobj(9)
    idat = b"".join(compressor.compress(row) for row in rows) + compressor.flush()
    header = struct.pack(">IIBBBBB", width, height, bit_depth, colour_type, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", idat) + chunk(b"IEND", b""))
