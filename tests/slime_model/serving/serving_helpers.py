"""Builders shared by the serving tests: a tiny checkpoint on disk and a real uvicorn server on 127.0.0.1."""

from __future__ import annotations

import base64
import contextlib
import io
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import torch
import uvicorn
from PIL import Image

from slime_model.configuration import SliMEConfig
from slime_model.modeling import SliMEForConditionalGeneration
from slime_model.processing import SliMEProcessor
from slime_model.tiny import tiny_tokenizer

MODEL_NAME = "tiny-slime"


def save_tiny_checkpoint(directory: Path) -> Path:
    """A random-weight tiny SliME saved as a trainer stage is (save_pretrained + processor)."""
    config = SliMEConfig.from_name("tiny")
    torch.manual_seed(0)
    SliMEForConditionalGeneration(config).eval().save_pretrained(directory)
    SliMEProcessor.from_config(config, tiny_tokenizer()).save_pretrained(directory)
    return directory


def free_socket() -> socket.socket:
    """A listening-ready socket on a free loopback port (bound here, so no other process can take it)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    return sock


@contextlib.contextmanager
def running_server(app) -> Iterator[str]:
    """Serve `app` with uvicorn in a thread; yields the base URL (http://127.0.0.1:PORT)."""
    sock = free_socket()
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", timeout_graceful_shutdown=10))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 60
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("the test server did not start")
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        server.should_exit = True
        thread.join(30)
        sock.close()


def png_bytes(width: int, height: int, seed: int = 0) -> bytes:
    pixels = torch.Generator().manual_seed(seed)
    array = torch.randint(0, 256, (height, width, 3), generator=pixels, dtype=torch.uint8).numpy()
    out = io.BytesIO()
    Image.fromarray(array).save(out, format="PNG")
    return out.getvalue()


def data_url(data: bytes, mime: str = "image/png") -> str:
    return f"data:{mime};base64,{base64.b64encode(data).decode('ascii')}"


def user_message(text: str, *image_urls: str) -> dict:
    parts = [{"type": "image_url", "image_url": {"url": url}} for url in image_urls]
    return {"role": "user", "content": [*parts, {"type": "text", "text": text}]}
