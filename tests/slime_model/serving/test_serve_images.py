"""Where images may come from: data URLs, files below --allow-image-dir only, and http(s) URLs only with
--allow-remote-images (then bounded in size and time), against a real image server on 127.0.0.1."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx2
import pytest

from tests.slime_model.serving.serving_helpers import MODEL_NAME, png_bytes, user_message

SMALL_PNG = png_bytes(96, 64, seed=4)


def ask_about(url: str, image_url: str) -> httpx2.Response:
    messages = [user_message("What is it?", image_url)]
    body = {"model": MODEL_NAME, "messages": messages, "max_tokens": 3, "temperature": 0}
    return httpx2.post(f"{url}/v1/chat/completions", json=body, timeout=60)


def error_code(response: httpx2.Response) -> str:
    assert response.status_code == 400, response.text
    return response.json()["error"]["code"]


class ImageHandler(BaseHTTPRequestHandler):
    requests: list[str] = []

    def do_GET(self) -> None:  # noqa: N802 - http.server's name
        type(self).requests.append(self.path)
        if self.path == "/redirect.png":
            self.send_response(302)
            self.send_header("Location", "/small.png")
            self.end_headers()
            return
        if self.path not in ("/small.png", "/big.png", "/slow.png"):
            self.send_error(404)
            return
        body = png_bytes(400, 400) if self.path == "/big.png" else SMALL_PNG
        self.send_response(200)
        self.send_header("Content-Type", "image/png")
        self.end_headers()
        if self.path == "/slow.png":  # a trickle: each piece in time, the whole far too late
            for start in range(0, len(body), 1024):
                self.wfile.write(body[start : start + 1024])
                self.wfile.flush()
                time.sleep(0.3)
            return
        self.wfile.write(body)

    def log_message(self, *args) -> None:
        pass


@pytest.fixture
def image_host() -> Iterator[str]:
    ImageHandler.requests = []
    host = ThreadingHTTPServer(("127.0.0.1", 0), ImageHandler)
    thread = threading.Thread(target=host.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{host.server_address[1]}"
    host.shutdown()
    host.server_close()


def test_remote_images_are_refused_by_default_and_never_fetched(server, image_host):
    url = server()
    refused = ask_about(url, f"{image_host}/small.png")
    assert error_code(refused) == "image_source_refused"
    assert "server-side request forgery" in refused.json()["error"]["message"]
    assert ImageHandler.requests == []


def test_remote_images_when_allowed_are_bounded(server, image_host):
    url = server(allow_remote_images=True, max_image_bytes=100_000, remote_timeout_s=1.0)
    reply = ask_about(url, f"{image_host}/small.png")
    assert reply.status_code == 200 and reply.json()["usage"]["visual_tokens"] > 0
    assert error_code(ask_about(url, f"{image_host}/big.png")) == "image_too_large"
    assert error_code(ask_about(url, f"{image_host}/slow.png")) == "image_fetch_failed"
    assert error_code(ask_about(url, f"{image_host}/missing.png")) == "image_fetch_failed"
    assert error_code(ask_about(url, f"{image_host}/redirect.png")) == "image_fetch_failed"  # redirects not followed
    assert ImageHandler.requests.count("/small.png") == 1


def test_local_files_only_below_the_allowed_folder(server, tmp_path: Path):
    allowed = tmp_path / "images"
    allowed.mkdir()
    (allowed / "chart.png").write_bytes(SMALL_PNG)
    (tmp_path / "secret.png").write_bytes(SMALL_PNG)
    (allowed / "link.png").symlink_to(tmp_path / "secret.png")

    closed = server()
    assert error_code(ask_about(closed, (allowed / "chart.png").as_uri())) == "image_source_refused"

    url = server(allow_image_dir=allowed)
    assert ask_about(url, (allowed / "chart.png").as_uri()).status_code == 200
    assert ask_about(url, str(allowed / "chart.png")).status_code == 200
    for escape in (tmp_path / "secret.png", allowed / ".." / "secret.png", allowed / "link.png"):
        assert error_code(ask_about(url, str(escape))) == "image_source_refused"
    assert error_code(ask_about(url, (allowed / "absent.png").as_uri())) == "invalid_image_url"
    assert error_code(ask_about(url, "ftp://example.com/x.png")) == "invalid_image_url"
