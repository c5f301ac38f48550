"""A scripted OpenAI-compatible server on 127.0.0.1, for offline tests, benchmarks and dry runs.

``FakeOpenAIServer(script)`` answers ``POST .../chat/completions``; ``script(request)`` decides
each reply: content, HTTP status and headers, latency, a dropped connection, or a hold until
an event is set. The server records every request (arrival time, JSON body, headers) and the
most requests it had in flight at once, so tests can check what the client really sent.

    with FakeOpenAIServer(lambda request: ScriptedReply(content='{"verdict": "correct", "reason": "ok"}')) as server:
        ...  # point the client at server.url
"""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class ScriptedReply:
    content: str | None = None  # the assistant message (JSON text for slime's prompts)
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    body: str | None = None  # raw response body instead of a completion built from the fields
    delay_s: float = 0.0  # latency before answering
    drop: bool = False  # close the connection without a response
    hold: threading.Event | None = None  # wait for this event before answering
    refusal: str | None = None
    finish_reason: str = "stop"
    prompt_tokens: int = 100
    completion_tokens: int = 20
    model: str = "fake-teacher-1"


@dataclass
class ReceivedRequest:
    index: int  # arrival order, from 0
    arrived: float  # time.monotonic()
    path: str
    headers: dict[str, str]
    body: dict[str, Any]

    @property
    def user_text(self) -> str:
        """The text of the first user message (the rendered prompt)."""
        for message in self.body.get("messages", []):
            if message.get("role") == "user":
                content = message["content"]
                if isinstance(content, str):
                    return content
                return "\n".join(part.get("text", "") for part in content if part.get("type") == "text")
        return ""

    @property
    def image_urls(self) -> list[str]:
        urls = []
        for message in self.body.get("messages", []):
            if isinstance(message.get("content"), list):
                urls += [part["image_url"]["url"] for part in message["content"] if part.get("type") == "image_url"]
        return urls

    @property
    def turns(self) -> int:
        return len(self.body.get("messages", []))


def completion_body(reply: ScriptedReply) -> str:
    message: dict[str, Any] = {"role": "assistant", "content": reply.content, "refusal": reply.refusal}
    return json.dumps(
        {
            "id": "chatcmpl-fake",
            "object": "chat.completion",
            "created": 0,
            "model": reply.model,
            "choices": [{"index": 0, "message": message, "finish_reason": reply.finish_reason, "logprobs": None}],
            "usage": {
                "prompt_tokens": reply.prompt_tokens,
                "completion_tokens": reply.completion_tokens,
                "total_tokens": reply.prompt_tokens + reply.completion_tokens,
            },
        }
    )


def error_body(message: str, kind: str = "server_error") -> str:
    return json.dumps({"error": {"message": message, "type": kind, "param": None, "code": None}})


class _Server(ThreadingHTTPServer):
    request_queue_size = 256  # the default backlog of 5 refuses bursts of concurrent clients
    daemon_threads = True


class FakeOpenAIServer:
    def __init__(self, script: Callable[[ReceivedRequest], ScriptedReply]) -> None:
        self.script = script
        self.requests: list[ReceivedRequest] = []
        self.max_in_flight = 0
        self._in_flight = 0
        self._lock = threading.Lock()
        self._httpd = _Server(("127.0.0.1", 0), self._handler_class())
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.02}, name="fake-openai", daemon=True
        )

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._httpd.server_address[1]}/v1"

    def start(self) -> FakeOpenAIServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()

    def __enter__(self) -> FakeOpenAIServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"  # keep-alive, as real servers do
            disable_nagle_algorithm = True  # headers and body go out at once, as real servers do

            def log_message(self, *args: Any) -> None:  # quiet
                pass

            def do_POST(self) -> None:
                arrived = time.monotonic()
                raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                with server._lock:
                    request = ReceivedRequest(
                        index=len(server.requests),
                        arrived=arrived,
                        path=self.path,
                        headers={k.lower(): v for k, v in self.headers.items()},
                        body=json.loads(raw or b"{}"),
                    )
                    server.requests.append(request)
                    server._in_flight += 1
                    server.max_in_flight = max(server.max_in_flight, server._in_flight)
                try:
                    self._answer(request)
                finally:
                    with server._lock:
                        server._in_flight -= 1

            def _answer(self, request: ReceivedRequest) -> None:
                if not self.path.endswith("/chat/completions"):
                    reply = ScriptedReply(status=404, body=error_body(f"no route {self.path}", "not_found"))
                else:
                    reply = server.script(request)
                if reply.hold is not None:
                    reply.hold.wait()
                if reply.delay_s:
                    time.sleep(reply.delay_s)
                if reply.drop:
                    self.close_connection = True
                    self.connection.shutdown(socket.SHUT_RDWR)
                    return
                body = (reply.body if reply.body is not None else completion_body(reply)).encode()
                try:
                    self.send_response(reply.status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(body)))
                    for name, value in reply.headers.items():
                        self.send_header(name, value)
                    self.end_headers()
                    self.wfile.write(body)
                except (BrokenPipeError, ConnectionResetError):  # the client gave up (timeout)
                    self.close_connection = True

        return Handler
