"""One teacher for a whole Ray cluster: a shared rate limiter, budget and response cache.

Under ``--executor ray`` the teacher runs in many worker processes on many nodes. The driver
starts one ``TeacherHub`` actor per teacher configuration (on its own node, named after the
configuration) for the length of the run; a teacher step in a Ray task finds it by that name
and talks to the server through ``ClusterTeacherClient``, which asks the hub

- before every request: for a rate-limit token (RPM/TPM buckets, first come first served,
  cluster-wide) and for a request of the budget (``--max-requests``, and the ``--max-cost``
  ceiling: each request reserves its worst-case cost until its answer is counted), cluster-wide;
- around every request: for the request's key, so the same request asked by two workers at once
  is sent once and the second is answered from the cache;
- for the cache itself: the hub owns the SQLite file (``cache:`` of the driver's configuration).

Why the cache lives behind the actor rather than in per-task caches merged on the driver: only a
shared cache makes "no request is paid twice" hold *during* the run (two tasks asking the same
thing, a task retried after its node died), and SQLite must not be shared over a network
filesystem (its locks are unreliable there). The hub's cost is one small round trip per request,
negligible next to a teacher's seconds of latency. Keys and URLs the driver resolved (its
``$OPENAI_API_KEY``) reach the workers through the hub, never through task arguments.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import sys
import time
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

from slime_data.shards import config_hash
from slime_data.teacher.cache import ResponseCache
from slime_data.teacher.client import ChatRequest, TeacherClient, read_completion
from slime_data.teacher.config import TeacherConfig
from slime_data.teacher.errors import BudgetExhausted
from slime_data.teacher.limiter import RateLimiter
from slime_data.teacher.usage import Usage

NAMESPACE = "slime"
_ADOPTED: set[str] = set()  # environment variables this worker process took from a hub


def hub_name(config: TeacherConfig) -> str:
    """The same in the driver and in every worker: the configuration without secrets or local paths."""
    return "slime-teacher-" + config_hash(config.model_dump(mode="json", exclude={"api_key", "cache"}))[:16]


class TeacherHub:
    """The cluster's teacher state (a Ray async actor: every method runs on one event loop)."""

    def __init__(self, config: TeacherConfig, settings: dict[str, str]) -> None:
        self.config = config
        self.settings = settings  # what workers need and may not have: base URL, key variable and key
        self._cache: ResponseCache | None = None  # opened on the actor's event-loop thread, where it is used
        self.limiter = RateLimiter(config.limits.rpm, config.limits.tpm)
        self.usage = Usage(price=config.price())  # what the budget counts: every request any worker sent
        retry = config.retry
        # A claim whose holder died (its node was lost) expires after the longest a live request can take.
        self.lease_s = max(60.0, retry.max_attempts * (retry.timeout_s + retry.backoff_max_s))
        self._claims: dict[str, tuple[int, asyncio.Event, float]] = {}
        self._tokens = 0

    @property
    def cache(self) -> ResponseCache:
        if self._cache is None:
            self._cache = ResponseCache(self.config.resolved_cache())
        return self._cache

    async def worker_settings(self) -> dict[str, str]:
        self.cache  # noqa: B018 -- open it now: a bad cache path fails the run before any task starts
        return self.settings

    async def acquire(self, estimated_tokens: int) -> None:
        await self.limiter.acquire(estimated_tokens)

    async def settle(self, estimated_tokens: int, actual_tokens: int) -> None:
        self.limiter.settle(estimated_tokens, actual_tokens)

    async def reserve(self, worst_usd: float | None) -> str | None:
        """Count one request against the budget and reserve its worst-case cost; the reason to stop instead.

        The same ceiling as ``TeacherClient._reserve_request``, over every worker's requests in flight.
        """
        limits = self.config.limits
        if limits.max_requests is not None and self.usage.requests_sent >= limits.max_requests:
            return f"--max-requests {limits.max_requests} reached"
        if limits.max_cost_usd is not None and worst_usd is not None:
            committed = (self.usage.cost_usd or 0.0) + self.usage.reserved_usd
            if committed + worst_usd > limits.max_cost_usd:
                return (
                    f"--max-cost {limits.max_cost_usd:g} USD reached: {committed:.4f} USD spent or reserved "
                    f"across the cluster, and one more request may cost up to {worst_usd:.4f} USD"
                )
            self.usage.reserved_usd += worst_usd
        self.usage.requests_sent += 1
        return None

    async def settle_cost(self, reserved_usd: float, body: str | None) -> None:
        """A request is over: release its reservation and count what it cost, in one step (no check in between)."""
        self.usage.reserved_usd = max(0.0, self.usage.reserved_usd - reserved_usd)
        if body is not None:
            with contextlib.suppress(ValueError):  # not a completion: the client retries it, nothing was billed
                self.usage.record(read_completion(body, cached=False))

    async def claim(self, key: str) -> int:
        """Wait while another worker asks this exact request, then hold it; returns the claim's token."""
        while (held := self._claims.get(key)) is not None and (left := held[2] - time.monotonic()) > 0:
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(held[1].wait(), left)
        self._tokens += 1
        self._claims[key] = (self._tokens, asyncio.Event(), time.monotonic() + self.lease_s)
        return self._tokens

    async def release(self, key: str, token: int) -> None:
        held = self._claims.get(key)
        if held is not None and held[0] == token:
            del self._claims[key]
            held[1].set()

    async def get(self, key: str) -> str | None:
        return self.cache.get(key)

    async def put(self, key: str, model: str, prompt: str, body: str) -> str:
        return self.cache.put(key, model=model, prompt=prompt, body=body)


# -- the driver --------------------------------------------------------------------------------


@contextlib.contextmanager
def teacher_hubs(configs: Callable[[], list[TeacherConfig]]) -> Iterator[None]:
    """Under ``--executor ray``: one hub per distinct configuration from ``configs()`` while the block runs."""
    from slime_data.executor import running_on_ray

    if not running_on_ray():
        yield
        return
    import ray
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    here = NodeAffinitySchedulingStrategy(ray.get_runtime_context().get_node_id(), soft=False)
    hubs = {}
    try:
        for config in configs():
            name = hub_name(config)
            if name in hubs:
                continue
            settings = {
                "base_url": config.resolved_base_url(),
                "api_key_env": config.api_key_env,
                "api_key": config.resolved_api_key(),
            }
            actor = ray.remote(TeacherHub).options(
                name=name, namespace=NAMESPACE, num_cpus=0, max_concurrency=10_000, scheduling_strategy=here
            )
            hubs[name] = actor.remote(config, settings)
        ray.get([hub.worker_settings.remote() for hub in hubs.values()])  # started (and its cache opened)
        yield
    finally:
        for hub in hubs.values():
            ray.kill(hub)


# -- a worker ----------------------------------------------------------------------------------


def find_hub(config: TeacherConfig) -> Any | None:
    """The run's hub for ``config`` when this process is a Ray task of a cluster run, else None."""
    ray = sys.modules.get("ray")  # not imported: certainly not a Ray worker
    if ray is None or not ray.is_initialized() or ray.get_runtime_context().worker.mode != ray.WORKER_MODE:
        return None
    try:
        return ray.get_actor(hub_name(config), namespace=NAMESPACE)
    except ValueError:
        return None


def adopt_cluster_settings(config: TeacherConfig) -> None:
    """In a Ray task: take the driver's base URL and key where this node has none of its own."""
    hub = find_hub(config)
    if hub is None:
        return
    import ray

    settings = ray.get(hub.worker_settings.remote())
    adopt = [("OPENAI_BASE_URL", settings["base_url"])] if config.base_url is None else []
    adopt += [(settings["api_key_env"], settings["api_key"])] if config.api_key is None else []
    for variable, value in adopt:  # a variable this node set itself wins; one a past run adopted is updated
        if variable not in os.environ or variable in _ADOPTED:
            os.environ[variable] = value
            _ADOPTED.add(variable)


class _HubCache:
    """The ``get``/``put`` of ``ResponseCache``, answered by the hub."""

    def __init__(self, hub: Any, path: str) -> None:
        self.hub = hub
        self.path = path

    def get(self, key: str) -> str | None:
        import ray

        return ray.get(self.hub.get.remote(key))

    def put(self, key: str, *, model: str, prompt: str, body: str) -> str:
        import ray

        return ray.get(self.hub.put.remote(key, model, prompt, body))


class _HubLimiter:
    """The ``acquire``/``settle`` of ``RateLimiter``, against the cluster's buckets."""

    def __init__(self, hub: Any) -> None:
        self.hub = hub

    async def acquire(self, estimated_tokens: int) -> None:
        await self.hub.acquire.remote(estimated_tokens)

    def settle(self, estimated_tokens: int, actual_tokens: int) -> None:
        self.hub.settle.remote(estimated_tokens, actual_tokens)


class ClusterTeacherClient(TeacherClient):
    """``TeacherClient`` whose limiter, budget, cache and per-request exclusivity are the hub's."""

    def __init__(self, config: TeacherConfig, hub: Any, *, usage: Usage | None = None) -> None:
        super().__init__(config, _HubCache(hub, f"hub:{hub_name(config)}"), usage=usage)  # type: ignore[arg-type]
        self.hub = hub

    async def __aenter__(self) -> ClusterTeacherClient:
        await super().__aenter__()
        self._limiter = _HubLimiter(self.hub)  # type: ignore[assignment]
        return self

    @contextlib.asynccontextmanager
    async def _exclusive(self, key: str) -> AsyncIterator[None]:
        async with super()._exclusive(key):  # this process's coroutines first, then the cluster's workers
            token = await self.hub.claim.remote(key)
            try:
                yield
            finally:
                self.hub.release.remote(key, token)

    async def _create(self, request: ChatRequest, structured: bool) -> Any:
        """One HTTP request under the cluster's budget: reserved at the hub first, settled there when over."""
        worst = self.usage.worst_case_usd(self._estimated_prompt_tokens(request), self.config.sampling.max_tokens)
        stop = await self.hub.reserve.remote(worst)
        if stop is not None:
            raise BudgetExhausted(stop)
        self.usage.requests_sent += 1
        body = None
        try:
            raw = await self._send_payload(request, structured)
            body = raw.text
            return raw
        finally:
            self.hub.settle_cost.remote(worst or 0.0, body)
