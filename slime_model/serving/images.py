"""Image URLs of chat requests -> RGB PIL images, refusing what a server must not do.

- `data:image/...;base64,` URLs: always accepted (the client sends the bytes).
- Local files (`file:///...` or an absolute path): only below `--allow-image-dir`, symlinks
  resolved first, so `../` or a link cannot reach other files.
- `http(s)` URLs: refused unless `--allow-remote-images`: fetching arbitrary URLs from the server
  lets any client make it reach hosts only it can reach (server-side request forgery, e.g. cloud
  metadata endpoints or internal services). When allowed, one GET without redirects, bounded in
  bytes and in total time.
- Every image: at most `max_image_bytes` encoded and `max_image_pixels` decoded, checked from the
  header before any pixel is decoded (a 50 KB PNG can declare 100,000 x 100,000 pixels).
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import io
import re
import warnings
from pathlib import Path
from urllib.parse import unquote, urlsplit

import httpx2
from PIL import Image, UnidentifiedImageError

from slime_model.serving.errors import ApiError, bad_request
from slime_model.serving.settings import ServeSettings

_DATA_URL = re.compile(r"data:(?P<mime>[\w.+-]+/[\w.+-]+)?(?P<params>(;[^;,]*)*?);base64,", re.IGNORECASE)


def _too_large(where: str, size: int, limit: int) -> ApiError:
    return bad_request(f"{where}: {size} bytes is more than the server's limit of {limit} bytes", "image_too_large")


def _data_url_bytes(url: str, where: str, settings: ServeSettings) -> bytes:
    match = _DATA_URL.match(url)
    if match is None:
        raise bad_request(f"{where}: a data URL must be data:image/<type>;base64,<data>", "invalid_image_url")
    payload = url[match.end() :]
    if len(payload) * 3 // 4 > settings.max_image_bytes + 3:  # before decoding anything
        raise _too_large(where, len(payload) * 3 // 4, settings.max_image_bytes)
    try:
        return base64.b64decode(payload, validate=True)
    except (binascii.Error, ValueError):
        raise bad_request(f"{where}: the data URL is not valid base64", "invalid_image_url") from None


def _local_file_bytes(url: str, where: str, settings: ServeSettings) -> bytes:
    if settings.allow_image_dir is None:
        raise bad_request(
            f"{where}: local image files are refused; start the server with --allow-image-dir DIR "
            "to serve the files below DIR",
            "image_source_refused",
        )
    path = Path(unquote(urlsplit(url).path) if url.startswith("file:") else url)
    root = settings.allow_image_dir.resolve()
    resolved = path.resolve()
    if not resolved.is_relative_to(root):
        raise bad_request(f"{where}: {path} is outside the allowed image folder {root}", "image_source_refused")
    if not resolved.is_file():
        raise bad_request(f"{where}: no image file {path}", "invalid_image_url")
    size = resolved.stat().st_size
    if size > settings.max_image_bytes:
        raise _too_large(where, size, settings.max_image_bytes)
    return resolved.read_bytes()


async def _remote_bytes(url: str, where: str, settings: ServeSettings) -> bytes:
    if not settings.allow_remote_images:
        raise bad_request(
            f"{where}: http(s) image URLs are refused: fetching them would let clients make this server request "
            "any address it can reach (server-side request forgery). Send the image as a data: URL, or start "
            "the server with --allow-remote-images on a trusted network",
            "image_source_refused",
        )
    chunks, received = [], 0
    try:
        async with asyncio.timeout(settings.remote_timeout_s):
            async with httpx2.AsyncClient(follow_redirects=False, timeout=settings.remote_timeout_s) as client:
                async with client.stream("GET", url) as response:
                    if response.status_code != 200:
                        raise bad_request(
                            f"{where}: fetching it answered HTTP {response.status_code}", "image_fetch_failed"
                        )
                    async for chunk in response.aiter_bytes():
                        received += len(chunk)
                        if received > settings.max_image_bytes:
                            raise _too_large(where, received, settings.max_image_bytes)
                        chunks.append(chunk)
    except TimeoutError:
        raise bad_request(
            f"{where}: not fetched within {settings.remote_timeout_s:g} s", "image_fetch_failed"
        ) from None
    except httpx2.HTTPError as err:
        raise bad_request(f"{where}: fetching it failed ({type(err).__name__})", "image_fetch_failed") from None
    return b"".join(chunks)


def decode_image(data: bytes, where: str, settings: ServeSettings) -> Image.Image:
    """Encoded bytes -> RGB image; the pixel count is checked from the header, before decoding."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            opened = Image.open(io.BytesIO(data))
            pixels = opened.width * opened.height
            if pixels > settings.max_image_pixels:
                raise bad_request(
                    f"{where}: {opened.width}x{opened.height} pixels is more than the server's limit of "
                    f"{settings.max_image_pixels} pixels",
                    "image_too_large",
                )
            return opened.convert("RGB")
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as err:  # Pillow's own, larger limit
        raise bad_request(f"{where}: {err}", "image_too_large") from None
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as err:
        raise bad_request(f"{where}: not a readable image ({err})", "invalid_image") from None


async def load_image(url: str, where: str, settings: ServeSettings) -> Image.Image:
    """An image part's URL -> RGB image, or an ApiError (400) saying which part and why."""
    scheme = urlsplit(url).scheme.lower() if "://" in url or url.startswith("data:") else ""
    if scheme == "data":
        data = _data_url_bytes(url, where, settings)
    elif scheme in ("http", "https"):
        data = await _remote_bytes(url, where, settings)
    elif scheme == "file" or url.startswith("/"):
        data = _local_file_bytes(url, where, settings)
    else:
        raise bad_request(f"{where}: unsupported image URL (use data:, http(s):// or file://)", "invalid_image_url")
    return await asyncio.to_thread(decode_image, data, where, settings)
