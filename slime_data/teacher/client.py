"""The async teacher client: cache first, then budget, rate limits, bounded concurrency, retries.

``complete`` sends one chat request (or replays it from the cache); ``ask`` turns it into a
validated reply, re-asking when the reply is not the requested JSON. The openai client runs
with ``max_retries=0``: retries are ours, so that they are counted, bounded by the budget and
honour ``Retry-After`` for every request in flight, not just the one that got the 429.

What happens on failure:
- 429, 408, 409, 5xx, timeouts, dropped connections: retry with exponential backoff and jitter
  (``Retry-After`` / ``retry-after-ms`` when given); after the last attempt the run stops
  (``TeacherError``) — a transient outage must not turn rows into permanent rejects.
- 401, 403, 404 (bad key, no such model or URL): the run stops at once.
- other 4xx: that request fails (``RequestRejected``) and its row becomes a counted reject;
  with ``structured_output: auto`` a 400/422 first retries without ``response_format``, and
  if that works, structured output stays off for the rest of the run.
"""

from __future__ import annotations

import asyncio
import contextlib
import email.utils
import json
import logging
import random
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, replace
from typing import Any

import httpx2
import openai

from slime_data.teacher.cache import ResponseCache, request_key
from slime_data.teacher.config import TeacherConfig
from slime_data.teacher.errors import BudgetExhausted, TeacherError
from slime_data.teacher.images import ImagePart
from slime_data.teacher.limiter import RateLimiter
from slime_data.teacher.prompts import PromptTemplate
from slime_data.teacher.redact import redact
from slime_data.teacher.replies import MalformedReply, Reply, parse_reply, response_format
from slime_data.teacher.usage import Completion, RowUsage, Usage

log = logging.getLogger("slime_data.teacher")

RETRYABLE_STATUS = frozenset({408, 409, 429})  # and every 5xx
FATAL_STATUS = frozenset({401, 403, 404})


@dataclass(frozen=True)
class ChatRequest:
    """One question to the teacher: a rendered prompt, an optional image, the reply it expects.

    ``repairs`` are (bad reply, correction) turns appended after a malformed answer, so a
    re-ask is a different request (and a different cache entry) from the first one.
    """

    prompt: PromptTemplate
    system: str
    user: str
    image: ImagePart | None
    reply_model: type[Reply]
    repairs: tuple[tuple[str, str], ...] = ()

    def messages(self, image_content: Callable[[ImagePart], dict[str, Any]]) -> list[dict[str, Any]]:
        user: list[dict[str, Any]] = [{"type": "text", "text": self.user}]
        if self.image is not None:
            user.insert(0, image_content(self.image))
        messages = [{"role": "system", "content": self.system}, {"role": "user", "content": user}]
        for reply, correction in self.repairs:
            messages += [{"role": "assistant", "content": reply}, {"role": "user", "content": correction}]
        return messages

    def with_repair(self, reply: str, problem: str) -> ChatRequest:
        correction = (
            f"That reply could not be used ({problem}). Reply again with only the JSON object that "
            "matches the schema, with every field filled in."
        )
        return replace(self, repairs=(*self.repairs, (reply, correction)))


@dataclass
class Answer:
    """A validated reply, or why there is none (a reject reason and detail)."""

    reply: Reply | None
    failure: tuple[str, str] | None
    usage: RowUsage
    served_model: str | None


class RequestRejected(Exception):
    """The server refused this one request with a 4xx that retrying cannot fix."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


class IncompleteResponse(Exception):
    """A 200 whose body is not a complete chat completion (treated like a 5xx)."""


def read_completion(body: str, cached: bool) -> Completion:
    try:
        data = json.loads(body)
        choice = data["choices"][0]
        message = choice["message"]
    except (json.JSONDecodeError, KeyError, IndexError, TypeError) as err:
        raise IncompleteResponse(f"not a chat completion ({type(err).__name__})") from None
    usage = data.get("usage") or {}
    content = message.get("content")
    if isinstance(content, list):  # some servers return content parts
        content = "".join(part.get("text", "") for part in content if isinstance(part, dict))
    return Completion(
        content=content,
        refusal=message.get("refusal"),
        finish_reason=choice.get("finish_reason"),
        prompt_tokens=int(usage.get("prompt_tokens") or 0),
        completion_tokens=int(usage.get("completion_tokens") or 0),
        served_model=data.get("model"),
        cached=cached,
    )


def retry_after_seconds(headers: Any) -> float | None:
    """The server's requested wait: ``retry-after-ms``, else ``Retry-After`` (seconds or a date)."""
    if headers is None:
        return None
    millis = headers.get("retry-after-ms")
    if millis:
        with contextlib.suppress(ValueError):
            return max(0.0, float(millis) / 1000)
    value = headers.get("retry-after")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    with contextlib.suppress(TypeError, ValueError):
        return max(0.0, email.utils.parsedate_to_datetime(value).timestamp() - time.time())
    return None


class TeacherClient:
    """Use as ``async with TeacherClient(config, cache) as client``; one per event loop."""

    def __init__(self, config: TeacherConfig, cache: ResponseCache, *, usage: Usage | None = None) -> None:
        self.config = config
        self.cache = cache
        # Pass one Usage to several clients to tally (and budget) them together.
        self.usage = usage if usage is not None else Usage(price=config.price())
        self._api_key = config.resolved_api_key()
        self._structured = config.structured_output != "off"
        self._paused_until = 0.0
        self._fatal: TeacherError | None = None  # once set, nothing more is sent
        self._key_locks: dict[str, list[Any]] = {}
        self._openai: openai.AsyncOpenAI | None = None

    def __repr__(self) -> str:
        return f"TeacherClient(model={self.config.model!r}, cache={str(self.cache.path)!r})"

    async def __aenter__(self) -> TeacherClient:
        self._openai = openai.AsyncOpenAI(
            api_key=self._api_key,
            base_url=self.config.resolved_base_url(),
            max_retries=0,
            timeout=self.config.retry.timeout_s,
        )
        self._slots = asyncio.Semaphore(self.config.limits.concurrency)
        self._limiter = RateLimiter(self.config.limits.rpm, self.config.limits.tpm)
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._openai is not None:
            await self._openai.close()
            self._openai = None

    def redact(self, text: str) -> str:
        return redact(text, self._api_key)

    # -- requests --------------------------------------------------------------------------
    def _image_content(self, image: ImagePart) -> dict[str, Any]:
        url: dict[str, Any] = {"url": image.data_url()}
        if self.config.image_detail is not None:
            url["detail"] = self.config.image_detail
        return {"type": "image_url", "image_url": url}

    def _image_key(self, image: ImagePart) -> dict[str, Any]:
        return {"type": "image", **image.key(), "detail": self.config.image_detail}

    def _sampling(self) -> dict[str, Any]:
        return self.config.sampling.model_dump(exclude_none=True)

    def cache_key(self, request: ChatRequest) -> str:
        """Model, prompt version and hash, messages (images by content hash), sampling."""
        return request_key(
            {
                "model": self.config.model,
                "prompt": request.prompt.ref,
                "prompt_sha256": request.prompt.sha256,
                "messages": request.messages(self._image_key),
                "sampling": self._sampling(),
            }
        )

    def _estimated_prompt_tokens(self, request: ChatRequest) -> int:
        text = len(request.system) + len(request.user) + sum(len(a) + len(b) for a, b in request.repairs)
        image = self.config.image_tokens_estimate if request.image is not None else 0
        return text // 4 + image

    def _estimated_tokens(self, request: ChatRequest) -> int:
        return self._estimated_prompt_tokens(request) + self.config.sampling.max_tokens

    async def complete(self, request: ChatRequest) -> Completion:
        """The completion for ``request``: from the cache, else from the server (then cached)."""
        key = self.cache_key(request)
        async with self._exclusive(key):  # identical requests in flight wait for the first one
            body = self.cache.get(key)
            if body is None:
                return await self._send(request, key)
        completion = read_completion(body, cached=True)
        self.usage.record(completion)
        return completion

    @contextlib.asynccontextmanager
    async def _exclusive(self, key: str) -> AsyncIterator[None]:
        entry = self._key_locks.setdefault(key, [asyncio.Lock(), 0])
        entry[1] += 1
        try:
            async with entry[0]:
                yield
        finally:
            entry[1] -= 1
            if entry[1] == 0:
                del self._key_locks[key]

    def _reserve_request(self, request: ChatRequest) -> float:
        """Count one HTTP request against the budget; returns the cost reserved for it (USD).

        ``max_cost_usd`` is a ceiling, whatever the concurrency: each request reserves its
        worst case (the prompt estimate at the input price plus ``max_tokens`` at the output
        price) before it is sent, and a request that could take the spend plus the reservations
        of those in flight over the ceiling is not sent. The caller releases the reservation
        once the real usage is recorded (or the request failed).
        """
        limits = self.config.limits
        if limits.max_requests is not None and self.usage.requests_sent >= limits.max_requests:
            raise BudgetExhausted(f"--max-requests {limits.max_requests} reached")
        reserved = 0.0
        worst = self.usage.worst_case_usd(self._estimated_prompt_tokens(request), self.config.sampling.max_tokens)
        if limits.max_cost_usd is not None and worst is not None:
            committed = self.usage.cost_usd + self.usage.reserved_usd
            if committed + worst > limits.max_cost_usd:
                raise BudgetExhausted(
                    f"--max-cost {limits.max_cost_usd:g} USD reached: {committed:.4f} USD spent or reserved, "
                    f"and one more request may cost up to {worst:.4f} USD"
                )
            reserved = worst
            self.usage.reserved_usd += reserved
        self.usage.requests_sent += 1
        return reserved

    def _backoff(self, attempt: int) -> float:
        retry = self.config.retry
        return min(retry.backoff_max_s, retry.backoff_base_s * 2**attempt) * random.uniform(0.5, 1.0)

    async def _wait_for_pause(self) -> None:
        while (delay := self._paused_until - time.monotonic()) > 0:
            await asyncio.sleep(delay)

    def _describe(self, err: openai.APIStatusError) -> str:
        error = err.body.get("error", err.body) if isinstance(err.body, dict) else None
        detail = error.get("message") if isinstance(error, dict) else None
        return self.redact(f"HTTP {err.status_code}: {detail or err.message}")[:500]

    async def _create(self, request: ChatRequest, structured: bool) -> Any:
        """One HTTP request (counted against the budget); the raw response, or an openai error.

        The cost reservation is released when the response is in; the caller records the real
        usage right after, with no await in between, so no budget check runs between the two.
        """
        reserved = self._reserve_request(request)
        try:
            return await self._send_payload(request, structured)
        finally:
            self.usage.reserved_usd = max(0.0, self.usage.reserved_usd - reserved)

    async def _send_payload(self, request: ChatRequest, structured: bool) -> Any:
        payload: dict[str, Any] = {
            "model": self.config.model,
            "messages": request.messages(self._image_content),
            **self._sampling(),
        }
        if structured:
            payload["response_format"] = response_format(request.reply_model)
        # The documented raw route (openai README, "Undocumented endpoints"): the same client,
        # auth, timeouts and error mapping as chat.completions.create, minus its typed payload
        # transform, which costs ~4 ms of CPU per request on our already wire-format messages.
        return await self._openai.post("/chat/completions", cast_to=httpx2.Response, body=payload)

    async def _send(self, request: ChatRequest, key: str) -> Completion:
        retry = self.config.retry
        estimate = self._estimated_tokens(request)
        attempt = 0
        while True:
            await self._limiter.acquire(estimate)
            async with self._slots:
                # Checked with the slot held, so requests queued behind a 429, a fatal error or
                # a budget stop see it before they send anything.
                await self._wait_for_pause()
                if self._fatal is not None:
                    raise self._fatal
                try:
                    structured = self._structured
                    try:
                        raw = await self._create(request, structured)
                    except (openai.BadRequestError, openai.UnprocessableEntityError):
                        if not (structured and self.config.structured_output == "auto"):
                            raise
                        # Maybe response_format is what it refuses: ask again without, in this slot.
                        raw = await self._create(request, structured=False)
                        log.warning("the server refuses response_format; the prompt's schema alone is used from now on")
                        self._structured = False
                    body = self.redact(raw.text)  # a server that echoes the key must not get it cached
                    read_completion(body, cached=False)  # complete? else retried below, never cached
                    # Cached while the slot is held: a request sent after this one finished always
                    # finds it in the cache, even if the process is killed right after.
                    body = self.cache.put(key, model=self.config.model, prompt=request.prompt.ref, body=body)
                    completion = read_completion(body, cached=False)
                    self.usage.record(completion)
                    self._limiter.settle(estimate, completion.prompt_tokens + completion.completion_tokens)
                    return completion
                except openai.APIStatusError as err:
                    status, message = err.status_code, self._describe(err)
                    if status in FATAL_STATUS:
                        self._fatal = TeacherError(f"the teacher server refused the request ({message})")
                        raise self._fatal from None
                    if status not in RETRYABLE_STATUS and status < 500:
                        raise RequestRejected(status, message) from None
                    cause, waited = str(status), retry_after_seconds(err.response.headers)
                except openai.APITimeoutError:
                    cause, waited, message = "timeout", None, f"no response within {retry.timeout_s:g} s"
                except openai.APIConnectionError as err:
                    reason = err.__cause__ or err
                    cause, waited = "connection", None
                    message = self.redact(f"connection error ({type(reason).__name__}: {reason})")
                except IncompleteResponse as err:
                    cause, waited, message = "incomplete", None, f"incomplete response: {err}"
            attempt += 1
            if attempt >= retry.max_attempts:
                self._fatal = TeacherError(
                    f"the teacher server at {self.config.resolved_base_url()} kept failing ({message}) "
                    f"after {retry.max_attempts} attempts; answers received so far are cached: rerun to resume"
                )
                raise self._fatal
            delay = min(waited, retry.max_retry_after_s) if waited is not None else self._backoff(attempt - 1)
            if cause == "429":  # the server asked everyone to slow down, not just this request
                self._paused_until = max(self._paused_until, time.monotonic() + delay)
            self.usage.retried(cause)
            log.warning("%s; retrying in %.2f s (attempt %d of %d)", message, delay, attempt + 1, retry.max_attempts)
            await asyncio.sleep(delay)

    # -- validated replies -------------------------------------------------------------------
    async def ask(self, request: ChatRequest, check: Callable[[Reply], str | None] | None = None) -> Answer:
        """A validated reply, re-asking up to ``malformed_retries`` times; failures become reasons.

        ``check`` adds a rule the schema cannot state (e.g. one answer per question): it returns
        what is wrong with a reply, or None, and a reply it faults is re-asked like a malformed one.
        """
        usage = RowUsage()
        served_model = None
        problem, raw_text = "", ""
        for _ in range(self.config.retry.malformed_retries + 1):
            try:
                completion = await self.complete(request)
            except RequestRejected as err:
                return Answer(None, (f"teacher_http_{err.status}", str(err)), usage, served_model)
            usage.add(completion)
            served_model = completion.served_model
            if completion.refusal or completion.finish_reason == "content_filter":
                detail = completion.refusal or "stopped by the server's content filter"
                return Answer(None, ("teacher_refusal", self.redact(detail)), usage, served_model)
            try:
                reply = parse_reply(completion.content, request.reply_model)
                fault = check(reply) if check is not None else None
                if fault is not None:
                    raise MalformedReply(fault)
                return Answer(reply, None, usage, served_model)
            except MalformedReply as err:
                problem, raw_text = str(err), completion.content or ""
                if completion.finish_reason == "length":
                    problem += "; the reply was cut off at max_tokens"
                request = request.with_repair(raw_text, problem)
        detail = self.redact(f"{problem}; raw reply: {raw_text}")
        return Answer(None, ("teacher_malformed", detail), usage, served_model)
