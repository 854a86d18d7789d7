"""dashboard.metrics: HTTP durations by route template (never the concrete path), the SSE counters
(sent, dropped by coalescing, resets), what the dashboard holds, and the /metrics /livez /readyz
routes of the real app (no sign-in; /readyz 503 without a feed, naming each check)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator
from typing import Any, cast

import httpx
from prometheus_client import REGISTRY
from pydantic import SecretStr

from dashboard.app import create_app
from dashboard.hub import ClientQueue, Hub, Subscription, update_event
from dashboard.metrics import UNMATCHED, HttpMetrics, route_label, set_held
from gridpulse.settings import Settings
from observability.metrics import lint_exposition


def sample(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def offline_settings() -> Settings:
    # nothing listens on port 1: the dependencies are unreachable, the app still serves
    return Settings(
        kafka_bootstrap="127.0.0.1:1",
        redis_url="redis://127.0.0.1:1/0",
        pg_dsn=SecretStr("postgresql://gridpulse@127.0.0.1:1/gridpulse"),
    )


async def test_request_durations_are_labelled_by_route_template_never_by_path() -> None:
    app = create_app(offline_settings(), start_feed=False)
    route = "/api/customers/{customer_id}"
    before = sample("gridpulse_dashboard_http_request_seconds_count", route=route)
    before_unmatched = sample("gridpulse_dashboard_http_request_seconds_count", route=UNMATCHED)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as client:
        assert (await client.get("/api/customers/C000123")).status_code == 401  # no session
        assert (await client.get("/api/customers/C000456")).status_code == 401
        assert (await client.get("/no/such/C000789")).status_code == 404
        resp = await client.get("/metrics")  # no sign-in
    assert resp.status_code == 200 and resp.headers["content-type"].startswith("text/plain")
    assert sample("gridpulse_dashboard_http_request_seconds_count", route=route) == before + 2
    assert sample("gridpulse_dashboard_http_request_seconds_count", route=UNMATCHED) == before_unmatched + 1
    text = resp.text
    assert f'route="{route}"' in text
    assert lint_exposition(text, forbidden_values={"C000123", "C000456", "C000789"}) == []
    for cid in ("C000123", "C000456", "C000789"):
        assert cid not in text


async def test_livez_and_readyz_without_sign_in_and_readyz_names_what_is_missing() -> None:
    app = create_app(offline_settings(), start_feed=False)
    dash = app.state.dashboard
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        await dash.start(feed=False)  # what the lifespan does: the heartbeat
        try:
            live = await client.get("/livez")
            ready = await client.get("/readyz")
        finally:
            await dash.stop()
    assert live.status_code == 200 and live.json()["live"] is True
    assert ready.status_code == 503
    body = ready.json()
    assert body["service"] == "dashboard" and body["ready"] is False
    assert set(body["checks"]) == {"feed", "redis", "postgres", "kafka"}
    assert not any(c["ok"] for c in body["checks"].values())  # no feed; nothing listens on port 1
    assert sample("gridpulse_dependency_up", dependency="redis") == 0
    assert sample("gridpulse_dependency_up", dependency="postgres") == 0
    assert sample("gridpulse_ready", service="dashboard") == 0


async def test_an_sse_response_is_timed_to_its_start_not_its_whole_life() -> None:
    release = asyncio.Event()

    async def sse_app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"content-type", b"text/event-stream")],
            }
        )
        await send({"type": "http.response.body", "body": b"retry: 3000\n\n", "more_body": True})
        await release.wait()
        await send({"type": "http.response.body", "body": b"", "more_body": False})

    sent: list[dict[str, Any]] = []
    streaming = asyncio.Event()

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)
        if message["type"] == "http.response.body":
            streaming.set()

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b""}

    before = sample("gridpulse_dashboard_http_request_seconds_count", route=UNMATCHED)
    task = asyncio.create_task(HttpMetrics(sse_app)({"type": "http"}, receive, send))
    await asyncio.wait_for(streaming.wait(), 5)
    # observed at the start, while the stream is still open
    assert sample("gridpulse_dashboard_http_request_seconds_count", route=UNMATCHED) == before + 1
    release.set()
    await task
    assert sample("gridpulse_dashboard_http_request_seconds_count", route=UNMATCHED) == before + 1  # once


def test_route_label_is_the_template_or_unmatched() -> None:
    from starlette.routing import Mount, Route

    async def endpoint(request: Any) -> None: ...

    assert (
        route_label({"route": Route("/api/customers/{customer_id}", endpoint)})
        == "/api/customers/{customer_id}"
    )
    assert route_label({"route": Mount("/static", routes=[])}) == "/static/{path}"
    assert route_label({"path": "/api/customers/C1"}) == UNMATCHED


def test_sse_counters_count_sent_coalesced_and_resets() -> None:
    sent0 = sample("gridpulse_dashboard_sse_events_sent_total")
    coalesced0 = sample("gridpulse_dashboard_sse_events_coalesced_total")
    resets0 = sample("gridpulse_dashboard_sse_resets_total")
    q = ClientQueue(bound=2)
    q.put("scores", "c1", update_event("scores", "c1", b'{"v":1}'))
    q.put("scores", "c1", update_event("scores", "c1", b'{"v":2}'))  # replaces the first
    q.put("scores", "c1", update_event("scores", "c1", b'{"v":3}'))  # and again
    assert sample("gridpulse_dashboard_sse_events_coalesced_total") == coalesced0 + 2
    q.put("scores", "c2", update_event("scores", "c2", b"{}"))
    q.put("scores", "c3", update_event("scores", "c3", b"{}"))  # a third key over the bound
    assert sample("gridpulse_dashboard_sse_resets_total") == resets0 + 1

    async def stream_three() -> list[bytes]:
        hub = Hub(bound=100)
        queue = hub.subscribe(Subscription(frozenset({"scores"})))
        stream = cast(AsyncGenerator[bytes, None], hub.stream(queue, [b"event: subscribed\ndata: {}\n\n"]))
        chunks = [await anext(stream), await anext(stream)]  # retry directive, the first event
        for key in ("a", "b", "c"):
            hub.publish("scores", key, b"{}", key)
        chunks.append(await anext(stream))  # the three updates in one write
        await stream.aclose()
        return chunks

    chunks = asyncio.run(stream_three())
    assert chunks[2].count(b"event: update") == 3
    assert sample("gridpulse_dashboard_sse_events_sent_total") == sent0 + 1 + 3


def test_held_documents_and_customers() -> None:
    entries: dict[str, dict[str, Any]] = {
        "stats": {"c1": 1, "c2": 1},
        "scores": {"c2": 1, "c3": 1},
        "alert": {"a1": 1},
        "reliability": {},
        "area": {},
    }
    set_held(entries)
    assert sample("gridpulse_dashboard_customers") == 3  # c1, c2, c3
    assert sample("gridpulse_dashboard_documents", kind="stats") == 2
    assert sample("gridpulse_dashboard_documents", kind="alert") == 1
