"""The dashboard's own metric families (issue 15), beside the shared ones
(``observability.metrics``: events in per topic, the feed's lag as
``gridpulse_consumer_lag_records{consumer_group="dashboard"}``, dependency and readiness gauges).

- HTTP request durations by route *template* (``/api/customers/{customer_id}``, never the
  concrete path: a customer id must not become a label value): :class:`HttpMetrics`, a plain
  ASGI middleware (no buffering, so the SSE stream passes untouched). An SSE response is timed
  to its start (its body lasts as long as the client stays); a request no route matched is
  ``route="unmatched"``.
- The SSE stream: clients connected, events sent, events dropped by coalescing (a client's
  pending event replaced by a newer one of the same document before it was sent), resets.
- What the dashboard holds: documents per kind and customers (with statistics or scores),
  set at each scrape from the state (:func:`refresh`), as is the feed's lag per partition
  (the feed reads without a group: its client's high watermark minus its position).
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition
from prometheus_client import Counter, Gauge, Histogram
from starlette.routing import Mount

from observability.metrics import CONSUMER_LAG

FEED_GROUP = "dashboard"  # the consumer_group label of the feed's lag (it has no Kafka group)

SSE_CLIENTS = Gauge("gridpulse_dashboard_sse_clients", "SSE clients connected to /events")
SSE_EVENTS_SENT = Counter(
    "gridpulse_dashboard_sse_events_sent", "SSE events written to clients (updates, overviews)"
)
SSE_EVENTS_COALESCED = Counter(
    "gridpulse_dashboard_sse_events_coalesced",
    "SSE events dropped by coalescing: replaced in a client's queue by a newer event of the same "
    "document before it was sent",
)
SSE_RESETS = Counter(
    "gridpulse_dashboard_sse_resets",
    "SSE clients that fell more than dashboard_client_queue documents behind and were told to refetch",
)
HTTP_SECONDS = Histogram(
    "gridpulse_dashboard_http_request_seconds",
    "HTTP request duration by route template (an SSE stream: until its start)",
    ["route"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
)
DOCUMENTS = Gauge("gridpulse_dashboard_documents", "documents the dashboard holds, per kind", ["kind"])
CUSTOMERS = Gauge("gridpulse_dashboard_customers", "customers the dashboard holds statistics or scores of")

UNMATCHED = "unmatched"

Receive = Callable[[], Awaitable[Any]]
Send = Callable[[Any], Awaitable[None]]
ASGIApp = Callable[[dict[str, Any], Receive, Send], Awaitable[None]]


def route_label(scope: Mapping[str, Any]) -> str:
    """The route template the router matched (``scope["route"]``), ``unmatched`` without one."""
    route = scope.get("route")
    path = getattr(route, "path", None)
    if not isinstance(path, str):
        return UNMATCHED
    if isinstance(route, Mount):
        return path.rstrip("/") + "/{path}"
    return path or "/"


class HttpMetrics:
    """ASGI middleware: ``gridpulse_dashboard_http_request_seconds{route}`` per HTTP request."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: dict[str, Any], receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        t0 = time.perf_counter()
        observed = False

        def observe() -> None:
            nonlocal observed
            if not observed:
                observed = True
                HTTP_SECONDS.labels(route=route_label(scope)).observe(time.perf_counter() - t0)

        async def timed_send(message: Any) -> None:
            kind = message.get("type")
            if kind == "http.response.start":
                headers = dict(message.get("headers") or ())
                if headers.get(b"content-type", b"").startswith(b"text/event-stream"):
                    observe()  # a stream: its start is the request's answer
            await send(message)
            if kind == "http.response.body" and not message.get("more_body", False):
                observe()

        try:
            await self.app(scope, receive, timed_send)
        finally:
            observe()  # an error or a client gone before the end: timed all the same


async def feed_lag(consumer: AIOKafkaConsumer, tps: list[TopicPartition]) -> dict[TopicPartition, int]:
    """Records between the feed's position and each partition's high watermark, as its client
    last saw them (partitions not fetched yet are left out)."""
    lag: dict[TopicPartition, int] = {}
    for tp in tps:
        high = consumer.highwater(tp)
        if high is None:
            continue
        lag[tp] = max(0, high - await consumer.position(tp))
    return lag


def set_feed_lag(lag: Mapping[TopicPartition, int]) -> None:
    for tp, n in lag.items():
        CONSUMER_LAG.labels(consumer_group=FEED_GROUP, topic=tp.topic, partition=str(tp.partition)).set(n)


def set_held(entries: Mapping[str, Mapping[str, Any]]) -> None:
    """Documents per kind and customers held (``DashboardState.entries``)."""
    for kind, docs in entries.items():
        DOCUMENTS.labels(kind=kind).set(len(docs))
    CUSTOMERS.set(len(entries.get("stats", {}).keys() | entries.get("scores", {}).keys()))
