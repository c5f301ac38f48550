"""The FastAPI application: `POST /v1/chat/completions`, `GET /v1/models`, `GET /health`.

A request is checked and its images loaded in the event loop (refusals are 4xx in OpenAI's error
format, before a batch slot is taken), then queued for the batching worker. The answer comes back
whole or, with `stream: true`, as server-sent chunks. When the client goes away, its request is
cancelled: skipped if still queued, dropped from its batch at the next token otherwise.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import time
from collections.abc import AsyncIterator
from functools import partial

from fastapi import Depends, FastAPI, Request
from fastapi.responses import StreamingResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from slime_model.generation import GenerationResult, generate_batch
from slime_model.serving.batching import BatchQueue, Job, QueueFull, RunBatch
from slime_model.serving.errors import (
    ApiError,
    api_error_response,
    not_found_response,
    unexpected_error_response,
)
from slime_model.serving.parsing import read_body, to_generation_request
from slime_model.serving.responses import STREAM_END, Completion, server_sent_event
from slime_model.serving.settings import ServeSettings


def _generation_failed(error: BaseException) -> ApiError:
    return ApiError(
        500, f"generation failed: {type(error).__name__}: {error}", "generation_failed", error_type="server_error"
    )


async def _cancel_on_disconnect(request: Request, job: Job) -> None:
    """The body is read already, so the next ASGI message is the client hanging up."""
    while (await request.receive())["type"] != "http.disconnect":
        pass
    job.cancel()


async def _result(job: Job) -> GenerationResult:
    while True:
        event = await job.events.get()
        if isinstance(event, GenerationResult):
            return event
        if isinstance(event, BaseException):
            raise _generation_failed(event)


async def _stream(job: Job, completion: Completion, include_usage: bool) -> AsyncIterator[str]:
    try:
        yield server_sent_event(completion.chunk({"role": "assistant", "content": ""}))
        while True:
            event = await job.events.get()
            if isinstance(event, str):
                yield server_sent_event(completion.chunk({"content": event}))
            elif isinstance(event, GenerationResult):
                yield server_sent_event(completion.chunk({}, completion.body(event)["choices"][0]["finish_reason"]))
                if include_usage:
                    yield server_sent_event(completion.usage_chunk(event))
                yield STREAM_END
                return
            else:  # headers are sent: an error can only travel as an event
                yield server_sent_event(_generation_failed(event).body())
                return
    finally:  # also when the client disconnected and the response task was cancelled
        job.cancel()


def create_app(model, processor, settings: ServeSettings, run_batch: RunBatch | None = None) -> FastAPI:
    """The server for one loaded checkpoint; `run_batch` defaults to generate_batch on it."""
    queue = BatchQueue(
        run_batch or partial(generate_batch, model, processor),
        settings.max_batch,
        settings.max_wait_ms / 1000,
        settings.max_queue,
    )
    started = int(time.time())

    @contextlib.asynccontextmanager
    async def lifespan(_: FastAPI):
        queue.start()
        yield
        await asyncio.to_thread(queue.stop, settings.shutdown_timeout_s)

    app = FastAPI(title="slime-model serve", lifespan=lifespan, docs_url=None, redoc_url=None, openapi_url=None)
    app.state.queue = queue
    app.add_exception_handler(ApiError, api_error_response)
    app.add_exception_handler(StarletteHTTPException, not_found_response)
    app.add_exception_handler(Exception, unexpected_error_response)

    def require_key(request: Request) -> None:
        if settings.api_key is None:
            return
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        expected = settings.api_key.get_secret_value()
        if scheme.lower() != "bearer" or not hmac.compare_digest(token.strip().encode(), expected.encode()):
            raise ApiError(401, "missing or incorrect API key (send Authorization: Bearer KEY)", "invalid_api_key")

    @app.get("/health")
    async def health() -> dict:
        return {"status": "ok", "model": settings.model_name, **queue.load(), **queue.stats.as_dict()}

    @app.get("/v1/models", dependencies=[Depends(require_key)])
    async def models() -> dict:
        entry = {"id": settings.model_name, "object": "model", "created": started, "owned_by": "slime"}
        return {"object": "list", "data": [entry]}

    @app.post("/v1/chat/completions", dependencies=[Depends(require_key)])
    async def chat_completions(request: Request):
        declared = int(request.headers.get("content-length") or 0)
        if declared > settings.max_body_bytes():
            raise ApiError(
                413, f"the request body is larger than {settings.max_body_bytes()} bytes", "request_too_large"
            )
        body = read_body(await request.body())
        generation = await to_generation_request(body, model, processor, settings)
        try:
            job = queue.submit(generation)
        except QueueFull as busy:
            raise ApiError(503, f"server busy: {busy}; retry later", "server_busy", error_type="server_error") from None
        completion = Completion(settings.model_name)
        if body.stream:
            include_usage = body.stream_options is not None and body.stream_options.include_usage
            return StreamingResponse(_stream(job, completion, include_usage), media_type="text/event-stream")
        watcher = asyncio.create_task(_cancel_on_disconnect(request, job))
        try:
            return completion.body(await _result(job))
        finally:
            watcher.cancel()
            job.cancel()

    return app
