"""Run a serving app with uvicorn in a background thread on 127.0.0.1, for tests and benchmarks.

with running_server(create_app(model, processor, settings)) as url:
    ...  # point an OpenAI client at f"{url}/v1"
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Iterator

import uvicorn


def free_socket() -> socket.socket:
    """A socket bound to a free loopback port (bound here, so no other process takes the port meanwhile)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    return sock


@contextlib.contextmanager
def running_server(app, start_timeout_s: float = 60.0) -> Iterator[str]:
    """Serve `app` in a thread (its lifespan included); yields the base URL http://127.0.0.1:PORT."""
    sock = free_socket()
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", timeout_graceful_shutdown=10))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, name="uvicorn", daemon=True)
    thread.start()
    deadline = time.monotonic() + start_timeout_s
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("the server did not start")
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        server.should_exit = True
        thread.join(30)
        sock.close()
