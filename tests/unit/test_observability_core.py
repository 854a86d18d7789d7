"""observability.health / metrics / http: the shared pieces behind every process's /livez,
/readyz and /metrics (served here by a real aiohttp server on a free port)."""

from __future__ import annotations

import asyncio

import aiohttp
from prometheus_client import CollectorRegistry, Counter, Gauge, generate_latest

from observability import http
from observability.health import Check, Health
from observability.metrics import lint_exposition


async def test_live_ready_and_metrics_over_http() -> None:
    health = Health("test-svc", beat_s=0.05, stall_s=0.5)
    state = {"redis": True}

    async def redis_check() -> Check:
        return Check(state["redis"], "PONG" if state["redis"] else "connection refused")

    async def slow_check() -> Check:
        await asyncio.sleep(5)
        return Check(True)

    health.add_check("redis", redis_check, dependency=True)
    runner = await http.serve(health, "127.0.0.1", 0)
    port = http.bound_port(runner)
    try:
        async with aiohttp.ClientSession() as s:
            async with s.get(f"http://127.0.0.1:{port}/livez") as r:
                assert r.status == 200, await r.text()
                assert (await r.json())["live"] is True
            async with s.get(f"http://127.0.0.1:{port}/readyz") as r:
                assert r.status == 200
                assert (await r.json())["checks"]["redis"] == {"ok": True, "detail": "PONG"}
            async with s.get(f"http://127.0.0.1:{port}/metrics") as r:
                text = await r.text()
                assert r.status == 200 and r.headers["Content-Type"].startswith("text/plain")
            assert 'gridpulse_dependency_up{dependency="redis"} 1.0' in text
            assert 'gridpulse_ready{service="test-svc"} 1.0' in text

            state["redis"] = False
            async with s.get(f"http://127.0.0.1:{port}/readyz") as r:
                assert r.status == 503
                body = await r.json()
                assert body["ready"] is False and body["checks"]["redis"]["detail"] == "connection refused"
            async with s.get(f"http://127.0.0.1:{port}/metrics") as r:
                assert 'gridpulse_dependency_up{dependency="redis"} 0.0' in await r.text()

            # a check that hangs fails on its timeout instead of hanging the probe
            health.add_check("slow", slow_check, timeout_s=0.1)
            state["redis"] = True
            async with s.get(f"http://127.0.0.1:{port}/readyz") as r:
                assert r.status == 503
                assert (await r.json())["checks"]["slow"]["detail"] == "no answer within 0.1 s"

            health.fail("consumer loop ended: RuntimeError")
            async with s.get(f"http://127.0.0.1:{port}/livez") as r:
                assert r.status == 503
                assert (await r.json())["reason"] == "consumer loop ended: RuntimeError"
    finally:
        await runner.cleanup()
        await health.stop()


async def test_livez_fails_when_the_loop_was_blocked() -> None:
    health = Health("blocked", beat_s=0.05, stall_s=0.3)
    health.start()
    try:
        await asyncio.sleep(0.1)
        assert health.live()[0]
        import time

        time.sleep(0.5)  # noqa: ASYNC251  # the loop is blocked on purpose: no heartbeat
        ok, body = health.live()
        assert not ok and body["reason"].startswith("event loop stalled")
        await asyncio.sleep(0.15)  # the loop runs again: the heartbeat catches up
        ok, body = health.live()
        assert ok and body["loop_lag_s"] >= 0.3
    finally:
        await health.stop()
    assert health.live()[1]["reason"] == "heartbeat not started"


def test_lint_exposition_names_labels_and_customer_values() -> None:
    reg = CollectorRegistry()
    Counter("gridpulse_events_in", "ok", ["topic"], registry=reg).labels(topic="meter.readings").inc()
    Gauge("gridpulse_lag_ms", "bad unit", registry=reg).set(1)
    Counter("gridpulse_by_customer", "bad label", ["customer_id"], registry=reg).labels(
        customer_id="C1"
    ).inc()
    Counter("gridpulse_dlq", "bad value", ["error"], registry=reg).labels(error="C000042").inc()
    Gauge("other_thing", "foreign", registry=reg).set(1)
    problems = lint_exposition(generate_latest(reg).decode(), forbidden_values=["C000042"])
    assert problems == [
        "gridpulse_by_customer: label 'customer_id' is not in the bounded set",
        "gridpulse_dlq: label error='C000042' names a customer",
        "gridpulse_lag_ms: not in base units (seconds, bytes)",
        "other_thing: not a gridpulse_* name",
    ]
    ok = CollectorRegistry()
    Counter("gridpulse_events_in", "ok", ["topic"], registry=ok).labels(topic="t").inc()
    assert lint_exposition(generate_latest(ok).decode()) == []


async def test_checks_refresh_the_dependency_gauges_without_a_probe() -> None:
    from prometheus_client import REGISTRY

    health = Health("refresh-svc", beat_s=0.05, refresh_s=0.05)
    state = {"up": True}

    async def pg() -> Check:
        return Check(state["up"])

    health.add_check("refresh_pg", pg, dependency=True)

    def gauge() -> float | None:
        return REGISTRY.get_sample_value("gridpulse_dependency_up", {"dependency": "refresh_pg"})

    health.start()
    try:
        for _ in range(40):
            if gauge() == 1.0:
                break
            await asyncio.sleep(0.02)
        assert gauge() == 1.0
        state["up"] = False
        for _ in range(40):
            if gauge() == 0.0:
                break
            await asyncio.sleep(0.02)
        assert gauge() == 0.0
        assert REGISTRY.get_sample_value("gridpulse_ready", {"service": "refresh-svc"}) == 0.0
    finally:
        await health.stop()
    # stopped: no more refreshes
    state["up"] = True
    await asyncio.sleep(0.15)
    assert gauge() == 0.0
