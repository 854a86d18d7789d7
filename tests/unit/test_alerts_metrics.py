"""alerts.metrics: lag and committed offset age per partition (PartitionProgress), bounded labels,
the dispatcher's notification metrics against a real local webhook, and the alerts consumer's
ops server with nothing to talk to (/livez 200, /readyz 503 naming what is missing; /livez's
failure when the consume loop ends with an error)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
from prometheus_client import REGISTRY
from pydantic import SecretStr

from alerts.consumer import AlertsConsumer
from alerts.metrics import PartitionProgress, bounded
from alerts.notifier import Notification, NotificationDispatcher, WebhookNotifier
from gridpulse.settings import SecretFileError, Settings
from tests.webhook import WebhookServer


def sample(name: str, **labels: str) -> float | None:
    return REGISTRY.get_sample_value(name, labels)


def lag(group: str, topic: str, partition: int) -> float | None:
    return sample(
        "gridpulse_consumer_lag_records", consumer_group=group, topic=topic, partition=str(partition)
    )


def age(group: str, topic: str, partition: int) -> float | None:
    return sample(
        "gridpulse_committed_offset_age_seconds", consumer_group=group, topic=topic, partition=str(partition)
    )


def test_lag_is_end_minus_committed_and_the_age_counts_from_the_last_move_while_behind() -> None:
    g = "unit-progress-1"
    p = PartitionProgress(g)
    a, b = ("alerts.credit", 0), ("alerts.outage", 1)
    p.committed(a, 10, now=100.0)
    p.committed(b, 5, now=100.0)
    assert p.observe({a: 10, b: 8}, [a, b], now=130.0) == 3
    assert lag(g, *a) == 0 and age(g, *a) == 0  # nothing waits: age 0
    assert lag(g, *b) == 3 and age(g, *b) == 30.0  # 30 s since it last moved
    p.committed(b, 5, now=140.0)  # the same offset again: not a move
    assert p.observe({a: 12, b: 8}, [a, b], now=150.0) == 5
    assert age(g, *b) == 50.0 and lag(g, *a) == 2 and age(g, *a) == 50.0
    p.committed(b, 8, now=155.0)
    assert p.observe({a: 12, b: 8}, [a, b], now=160.0) == 2
    assert lag(g, *b) == 0 and age(g, *b) == 0
    assert p.measured_at == 160.0


def test_a_partition_no_longer_assigned_loses_its_series_and_clear_drops_all() -> None:
    g = "unit-progress-2"
    p = PartitionProgress(g)
    a, b = ("alerts.credit", 0), ("alerts.credit", 1)
    p.committed(a, 1, now=0.0)
    p.committed(b, 1, now=0.0)
    p.observe({a: 4, b: 2}, [a, b], now=1.0)
    assert lag(g, *b) == 1
    assert p.observe({a: 4}, [a], now=2.0) == 3  # b revoked
    assert lag(g, *b) is None and age(g, *b) is None and not p.known(b)
    assert lag(g, *a) == 3
    p.clear()
    assert lag(g, *a) is None and p.measured_at is None and p.total_lag() == 0


def test_an_unknown_committed_offset_is_not_guessed() -> None:
    g = "unit-progress-3"
    p = PartitionProgress(g)
    a = ("alerts.credit", 0)
    assert p.observe({a: 9}, [a], now=1.0) == 0  # no committed offset known yet: no series
    assert lag(g, *a) is None


def test_labels_stay_in_their_sets() -> None:
    assert bounded("credit", ("credit", "outage")) == "credit"
    assert bounded("C000123", ("credit", "outage")) == "other"
    assert bounded(None, ("info",)) == "other"


def note(nid: int, manager: str, severity: str) -> Notification:
    return Notification(
        id=nid,
        manager_id=manager,
        alert_id=f"outage:O{nid}",
        event="open",
        status="open",
        severity=severity,
        ts=datetime(2026, 11, 1, tzinfo=UTC),
        alert={"alert_id": f"outage:O{nid}", "kind": "outage", "reason": "feeder down"},
    )


async def test_the_dispatcher_counts_sent_and_failed_by_kind_and_severity() -> None:
    hook = WebhookServer(status=400)  # answers 400: given up at once, no retry
    url = await hook.start()
    ok_hook = WebhookServer()
    ok_url = await ok_hook.start()
    try:

        def count(outcome: str, severity: str) -> float:
            return (
                sample("gridpulse_notifications_total", outcome=outcome, kind="outage", severity=severity)
                or 0
            )

        def timed(outcome: str) -> float:
            return sample("gridpulse_notification_seconds_count", outcome=outcome) or 0

        sent0, failed0, t_sent0, t_failed0 = (
            count("sent", "critical"),
            count("failed", "major"),
            *(
                timed("sent"),
                timed("failed"),
            ),
        )
        done: list[bool] = []

        async def on_done(n: Notification, delivered: bool, attempts: int, error: str | None) -> None:
            done.append(delivered)

        good = NotificationDispatcher(WebhookNotifier(ok_url, attempts=1), on_done)
        bad = NotificationDispatcher(WebhookNotifier(url, attempts=3), on_done)
        for i in range(3):
            good.submit(note(i, "MA", "critical"))
        bad.submit(note(10, "MB", "major"))
        assert sample("gridpulse_notifications_in_flight") == 4
        assert await good.drain(10) and await bad.drain(10)
        await good.close()
        await bad.close()
        assert sorted(done) == [False, True, True, True]
        assert count("sent", "critical") == sent0 + 3 == sent0 + len(ok_hook.received)
        assert count("failed", "major") == failed0 + 1
        assert timed("sent") == t_sent0 + 3 and timed("failed") == t_failed0 + 1
        assert sample("gridpulse_notifications_in_flight") == 0
    finally:
        await hook.close()
        await ok_hook.close()


def closed_settings(**more: object) -> Settings:
    # nothing listens on port 1
    return Settings(
        kafka_bootstrap="127.0.0.1:1",
        pg_dsn=SecretStr("postgresql://gridpulse@127.0.0.1:1/gridpulse"),
        alerts_ops_port=0,
        alerts_db_backoff_max_s=0.5,
        **more,  # type: ignore[arg-type]
    )


async def test_with_nothing_reachable_livez_is_200_and_readyz_503_says_why() -> None:
    consumer = AlertsConsumer(closed_settings())
    task = asyncio.create_task(consumer.run())
    try:
        while consumer.ops_port is None:
            assert not task.done()
            await asyncio.sleep(0.01)
        url = f"http://127.0.0.1:{consumer.ops_port}"
        async with httpx.AsyncClient(base_url=url, timeout=10) as client:
            live = await client.get("/livez")
            ready = await client.get("/readyz")
            metrics = await client.get("/metrics")
        assert live.status_code == 200 and live.json()["live"] is True
        assert ready.status_code == 503
        checks = ready.json()["checks"]
        assert set(checks) == {"assigned", "postgres", "kafka", "caught_up"}
        assert not any(c["ok"] for c in checks.values()), checks
        assert "gridpulse_dependency_up" in metrics.text
        assert sample("gridpulse_dependency_up", dependency="postgres") == 0
        assert sample("gridpulse_ready", service="alerts-consumer") == 0
    finally:
        consumer.stop()
        await asyncio.wait_for(task, 10)
    with pytest.raises(httpx.ConnectError):  # stopped: the port is closed
        async with httpx.AsyncClient(base_url=url, timeout=5) as client:
            await client.get("/livez")


async def test_a_consume_loop_ending_with_an_error_fails_livez(tmp_path: Path) -> None:
    # the password file is missing: not "the database is away" (retried) but an error that ends
    # the loop; /livez must say so until the process is gone
    missing = tmp_path / "no-such-password"
    consumer = AlertsConsumer(closed_settings(pg_password_file=str(missing)))
    with pytest.raises(SecretFileError):
        await asyncio.wait_for(consumer.run(), 10)
    ok, body = consumer.health.live()
    assert not ok and body["reason"].startswith("the consume loop ended: SecretFileError")
    assert str(missing) in body["reason"]
