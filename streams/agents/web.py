"""The worker's own web endpoints, on faust's web server (``web_bind``:``web_port``, default
127.0.0.1:6066; 0.0.0.0 in containers so a probe from another host reaches them):

- ``/metrics``: Prometheus text format, prometheus_client's default registry (the worker's
  families: ``streams.metrics``; the shared ones: ``observability.metrics``);
- ``/livez``: the event loop is alive (``observability.health.Health``'s heartbeat);
- ``/readyz``: assigned, recovered, not rebalancing, caught up within ``ready_max_lag``, Kafka
  and Redis reachable; 200 or 503 with every check's result (JSON, no personal data);
- ``/gridpulse/health/`` (the old readiness page: assigned and recovered) and
  ``/gridpulse/counters/`` (the runtime's counters, as JSON).
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

import redis.asyncio as aioredis
from aiokafka.client import AIOKafkaClient

from gridpulse.settings import Settings
from observability.health import Check, Health
from observability.metrics import exposition
from streams.kafka import client_kwargs
from streams.runtime import Runtime

log = logging.getLogger(__name__)

KAFKA_CHECK_CACHE_S = 3.0  # a probe's answer is reused this long (probes from several places)
KAFKA_CHECK_TIMEOUT_S = 5.0  # one metadata request, connection included
LIVE_STALL_S = 30.0  # a loop blocked this long fails /livez (a large batch blocks it for seconds)


class KafkaProbe:
    """Kafka reachable: a metadata request through a small aiokafka client of its own (built
    with ``streams.kafka.client_kwargs``: SASL/SSL as configured), answered within
    :data:`KAFKA_CHECK_TIMEOUT_S` or failed; the result is cached :data:`KAFKA_CHECK_CACHE_S`.
    A failed request drops the client; the next check bootstraps a new one."""

    def __init__(
        self,
        settings: Settings,
        *,
        cache_s: float = KAFKA_CHECK_CACHE_S,
        timeout_s: float = KAFKA_CHECK_TIMEOUT_S,
    ) -> None:
        self.settings = settings
        self.cache_s = cache_s
        self.timeout_s = timeout_s
        self._client: AIOKafkaClient | None = None
        self._result: Check | None = None
        self._at = 0.0
        self._lock = asyncio.Lock()

    async def __call__(self) -> Check:
        async with self._lock:
            if self._result is not None and time.monotonic() - self._at < self.cache_s:
                return self._result
            self._result = await self._ask()
            self._at = time.monotonic()
            return self._result

    async def _ask(self) -> Check:
        try:
            async with asyncio.timeout(self.timeout_s):
                if self._client is None:
                    self._client = AIOKafkaClient(
                        **client_kwargs(self.settings),
                        client_id=f"{self.settings.app_id}-readyz",
                        request_timeout_ms=int(self.timeout_s * 1000),
                    )
                    await self._client.bootstrap()
                metadata = await self._client.fetch_all_metadata()
            return Check(True, f"metadata from {len(metadata.brokers())} broker(s)")
        except Exception as exc:  # the check's result, not an error of the probe
            await self.close()
            return Check(False, f"no metadata within {self.timeout_s:g} s: {type(exc).__name__}: {exc}"[:300])

    async def close(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            try:
                await client.close()
            except Exception:
                pass


def readiness(rt: Runtime) -> Health:
    """The worker's :class:`Health` with its readiness checks."""
    app, s = rt.app, rt.settings
    health = Health("worker", stall_s=LIVE_STALL_S)

    def assignment() -> set[Any]:
        try:
            return set(app.consumer.assignment())
        except Exception:  # faust's ConsumerNotStarted: before start, between restarts
            return set()

    async def assigned() -> Check:
        inputs = [tp for tp in assignment() if tp.topic in rt.metrics.input_topics]
        return Check(bool(inputs), f"{len(inputs)} input partitions assigned")

    async def recovered() -> Check:
        done = app.tables.recovery.completed.is_set()  # type: ignore[attr-defined]  # not in the stub
        return Check(done, "table recovery completed" if done else "tables recovering")

    async def not_rebalancing() -> Check:
        return Check(not app.rebalancing, "rebalancing" if app.rebalancing else "")

    async def caught_up() -> Check:
        states = rt.metrics.partitions()
        unknown = [p for p in states if p.lag is None]
        behind = sum(p.lag or 0 for p in states)
        detail = f"{behind} records behind on {len(states)} input partitions (limit {s.ready_max_lag})"
        if unknown:
            return Check(False, f"{detail}; end offsets not fetched yet for {len(unknown)}")
        return Check(behind <= s.ready_max_lag, detail)

    redis_client = aioredis.from_url(s.redis_url, socket_timeout=1.0, socket_connect_timeout=1.0)

    async def redis() -> Check:
        await redis_client.ping()
        return Check(True, "PING answered")

    health.add_check("assigned", assigned)
    health.add_check("recovered", recovered)
    health.add_check("not_rebalancing", not_rebalancing)
    health.add_check("caught_up", caught_up)
    health.add_check("kafka", KafkaProbe(s), timeout_s=KAFKA_CHECK_TIMEOUT_S + 1.0, dependency=True)
    health.add_check("redis", redis, timeout_s=2.0, dependency=True)
    return health


def register(rt: Runtime) -> Health:
    app = rt.app
    health = readiness(rt)

    @app.task
    async def start_heartbeat() -> None:
        health.start()  # /livez: the loop's heartbeat, from the worker's start

    @app.timer(interval=1.0)
    async def sample_commits() -> None:
        rt.metrics.sample_commits()  # the committed offset's age counts from its move

    @app.page("/metrics")
    async def metrics(web: Any, request: Any) -> Any:
        rt.metrics.refresh()
        body, content_type = exposition()
        # aiohttp takes a content type with its charset only as a header
        return web.bytes(body, headers={"Content-Type": content_type})

    @app.page("/livez")
    async def livez(web: Any, request: Any) -> Any:
        ok, body = health.live()
        return web.json(body, status=200 if ok else 503)

    @app.page("/readyz")
    async def readyz(web: Any, request: Any) -> Any:
        ok, body = await health.ready()
        return web.json(body, status=200 if ok else 503)

    @app.page("/gridpulse/health/")
    async def old_health(web: Any, request: Any) -> Any:
        try:
            assignment = app.consumer.assignment()
        except Exception:  # faust's ConsumerNotStarted while the worker starts: not ready yet
            assignment = set()
        recovered = app.tables.recovery.completed.is_set()  # type: ignore[attr-defined]  # not in the stub
        ready = bool(assignment) and recovered and not app.rebalancing
        return web.json({"ready": ready, "partitions": len(assignment), "recovered": recovered})

    @app.page("/gridpulse/counters/")
    async def counters(web: Any, request: Any) -> Any:
        return web.json(
            {
                "counters": dict(rt.counters),
                "dead_letters": rt.dead_letters.as_dict(),
                "redis_backlog": rt.redis.backlog,
            }
        )

    return health
