"""The alerts consumer's /metrics, /livez and /readyz (issue 15) on the real Kafka and PostgreSQL,
notifying a real local webhook: a scrape during a run against what was sent (events in, alerts
stored in committed transactions, notifications = webhook hits, lag 0 once committed, no
customer in a label), and /readyz going 503 with PostgreSQL unreachable and back to 200 (the
consumer reaches the shared PostgreSQL through a TCP relay the test cuts and restores: the
server itself is never stopped)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import urlparse

import httpx
import pytest
import pytest_asyncio
from pydantic import SecretStr

from alerts.consumer import AlertsConsumer
from gridpulse.settings import Settings
from observability.metrics import lint_exposition
from schemas import topics as t
from tests.integration.alert_bursts import (
    TS,
    all_committed,
    expected_notices,
    lifecycles,
    outage,
    received,
    stored,
)
from tests.integration.helpers import eventually, js, produce
from tests.integration.ops_helpers import TcpRelay, probe, scrape, series, value
from tests.webhook import WebhookServer

pytestmark = [pytest.mark.integration, pytest.mark.timeout(180)]


async def send(settings: Settings, credits: list[dict[str, Any]], outages: list[dict[str, Any]]) -> None:
    await produce(settings, t.ALERTS_CREDIT, [(m["alert_id"].encode(), js(m)) for m in credits])
    await produce(settings, t.ALERTS_OUTAGE, [(m["alert_id"].encode(), js(m)) for m in outages])


@pytest_asyncio.fixture
async def webhook() -> AsyncIterator[WebhookServer]:
    srv = WebhookServer()
    yield srv
    await srv.close()


def consumer_settings(settings: Settings, url: str, **more: Any) -> Settings:
    return settings.model_copy(
        update={
            "alerts_notifier": "webhook",
            "alerts_webhook_url": SecretStr(url),
            "alerts_webhook_backoff_s": 0.05,
            "alerts_webhook_backoff_max_s": 0.5,
            "alerts_db_backoff_max_s": 1.0,
            "alerts_batch_max": 7,  # several batches, several transactions
            "alerts_ops_port": 0,
            **more,
        }
    )


async def stop(consumer: AlertsConsumer, task: asyncio.Task[None]) -> None:
    consumer.stop()
    await asyncio.wait_for(task, timeout=60)


def forbidden(messages: list[dict[str, Any]]) -> set[str]:
    """Customer, manager and alert ids of the messages: none may be a label value."""
    out: set[str] = set()
    for m in messages:
        out |= {m["alert_id"], m.get("customer_id") or "", m.get("manager_id") or ""}
        out |= set(m.get("manager_ids") or [])
        out |= {a["customer_id"] for a in m.get("affected") or []}
    return out - {""}


async def test_a_scrape_during_a_run_counts_what_was_sent(
    alert_settings: Settings, webhook: WebhookServer
) -> None:
    settings = consumer_settings(alert_settings, await webhook.start())
    consumer = AlertsConsumer(settings)
    task = asyncio.create_task(consumer.run())
    try:
        await asyncio.wait_for(consumer.ready.wait(), timeout=60)
        assert consumer.ops_port  # port 0 asked: a free one, known once serving
        url = f"http://127.0.0.1:{consumer.ops_port}"
        _, before = await scrape(url)

        credits, outages = lifecycles(0, 10)
        # news for nobody: an outage that names no manager (stored, counted as suppressed)
        nobody = {**outage(900, "open", "major", TS[0]), "manager_ids": [], "affected": []}
        await send(settings, credits, [*outages, nobody])
        await produce(settings, t.ALERTS_CREDIT, [(b"x", b"{not json"), (b"y", js({"alert_id": "half"}))])
        messages = credits + outages
        expected = expected_notices(messages)
        await eventually(lambda: all_committed(settings), 60, "offsets committed to the end")
        await eventually(
            lambda: asyncio.sleep(0, result=received(webhook) == expected), 30, "every notification sent"
        )

        async def lag_measured_zero() -> bool:
            _, now = await scrape(url)
            lags = series(now, "gridpulse_consumer_lag_records", consumer_group=settings.alerts_group_id)
            return len(lags) == 3 * settings.topic_partitions and not any(lags.values())

        await eventually(lag_measured_zero, 15, "lag 0 on every assigned partition")
        text, after = await scrape(url)

        def delta(name: str, **labels: str) -> float:
            return value(after, name, **labels) - value(before, name, **labels)

        credit_topic, outage_topic = settings.topic(t.ALERTS_CREDIT), settings.topic(t.ALERTS_OUTAGE)
        # events in per topic: every message read once (nothing redelivered in this run)
        assert value(after, "gridpulse_events_in_total", topic=credit_topic) == len(credits) + 2
        assert value(after, "gridpulse_events_in_total", topic=outage_topic) == len(outages) + 1
        assert value(after, "gridpulse_alerts_skipped_total", topic=credit_topic, error="decode") == 1
        assert value(after, "gridpulse_alerts_skipped_total", topic=credit_topic, error="schema") == 1
        # alerts stored, counted in committed transactions; the store agrees
        _, history, pending = await stored(settings)
        assert delta("gridpulse_alerts_stored_total") == len(messages) + 1 == sum(history.values())
        assert delta("gridpulse_alerts_stored_total", kind="credit") == len(credits)
        assert delta("gridpulse_alerts_stored_total", kind="outage", severity="critical") == len(
            outages
        ) - sum(m["status"] == "resolved" for m in outages)
        committed_tx = delta("gridpulse_alert_store_transactions_total", outcome="committed")
        assert committed_tx == consumer.counters.batches >= -(-(len(messages) + 1) // 7)
        assert delta("gridpulse_alert_store_transactions_total", outcome="failed") == 0
        assert delta("gridpulse_alert_store_retries_total") == 0
        assert delta("gridpulse_alert_store_transaction_seconds_count", outcome="committed") == committed_tx
        # notifications: queued = sent = the webhook's hits, none failed, none left in flight
        hits = len(webhook.received)
        assert hits == sum(expected.values()) and pending == 0
        assert delta("gridpulse_notifications_total", outcome="sent") == hits
        assert delta("gridpulse_notifications_total", outcome="queued") == hits
        assert delta("gridpulse_notifications_total", outcome="failed") == 0
        assert delta("gridpulse_notifications_total", outcome="suppressed") == 1
        assert (
            delta("gridpulse_notifications_total", outcome="suppressed", kind="outage", severity="major") == 1
        )
        assert delta("gridpulse_notification_seconds_count", outcome="sent") == hits
        assert value(after, "gridpulse_notifications_in_flight") == 0
        # every assigned partition caught up: lag 0, committed offset age 0
        ages = series(
            after, "gridpulse_committed_offset_age_seconds", consumer_group=settings.alerts_group_id
        )
        assert len(ages) == 3 * settings.topic_partitions and not any(ages.values())
        assert lint_exposition(text, forbidden_values=forbidden([*messages, nobody])) == []

        status, ready = await probe(url, "/readyz")
        assert status == 200, ready
        assert ready["service"] == "alerts-consumer" and ready["ready"] is True
        assert set(ready["checks"]) == {"assigned", "postgres", "kafka", "caught_up"}
        status, live = await probe(url, "/livez")
        assert status == 200 and live["live"] is True
        _, now = await scrape(url)
        assert value(now, "gridpulse_dependency_up", dependency="postgres") == 1
        assert value(now, "gridpulse_dependency_up", dependency="kafka") == 1
        assert value(now, "gridpulse_ready", service="alerts-consumer") == 1
    finally:
        await stop(consumer, task)
    # stopped: the port is closed
    with pytest.raises(httpx.ConnectError):
        await probe(url, "/livez")


async def test_readyz_503_while_postgres_is_unreachable_and_200_again(
    alert_settings: Settings, webhook: WebhookServer
) -> None:
    dsn = urlparse(alert_settings.pg_dsn.get_secret_value())
    relay = TcpRelay(dsn.hostname or "127.0.0.1", dsn.port or 5432)
    await relay.open()
    await relay.close()  # the port is known and nothing listens there: PostgreSQL unreachable
    relayed = dsn._replace(netloc=dsn.netloc.rsplit("@", 1)[0] + f"@127.0.0.1:{relay.port}").geturl()
    settings = consumer_settings(alert_settings, await webhook.start(), pg_dsn=SecretStr(relayed))
    consumer = AlertsConsumer(settings)
    task = asyncio.create_task(consumer.run())

    async def readyz() -> tuple[int, dict[str, Any]]:
        return await probe(url, "/readyz")

    async def ready_is(status: int) -> bool:
        return (await readyz())[0] == status

    try:
        await eventually(lambda: asyncio.sleep(0, result=bool(consumer.ops_port)), 10, "ops server up")
        url = f"http://127.0.0.1:{consumer.ops_port}"
        # never connected: alive, not ready, and says why
        status, body = await readyz()
        assert status == 503
        assert body["checks"]["postgres"]["ok"] is False
        assert body["checks"]["assigned"]["ok"] is False  # it waits for the store before Kafka
        assert (await probe(url, "/livez"))[0] == 200
        _, samples = await scrape(url)
        assert value(samples, "gridpulse_dependency_up", dependency="postgres") == 0
        assert value(samples, "gridpulse_ready", service="alerts-consumer") == 0

        await relay.open()
        await asyncio.wait_for(consumer.ready.wait(), timeout=60)
        first_c, first_o = lifecycles(0, 4)
        await send(settings, first_c, first_o)
        await eventually(lambda: all_committed(settings), 60, "first alerts committed")
        await eventually(lambda: ready_is(200), 30, "/readyz 200 once PostgreSQL is reachable")
        _, before = await scrape(url)

        await relay.close()  # the path to PostgreSQL cut: pooled connections reset, new ones refused
        more_c, more_o = lifecycles(100, 4)
        await send(settings, more_c, more_o)
        await eventually(lambda: ready_is(503), 30, "/readyz 503 while PostgreSQL is unreachable")
        status, body = await readyz()
        assert body["checks"]["postgres"]["ok"] is False
        assert body["checks"]["kafka"]["ok"] is True and body["checks"]["assigned"]["ok"] is True

        async def held_as_lag() -> bool:
            _, s = await scrape(url)
            return value(s, "gridpulse_consumer_lag_records", consumer_group=settings.alerts_group_id) == len(
                more_c
            ) + len(more_o) and value(s, "gridpulse_alert_store_retries_total") > value(
                before, "gridpulse_alert_store_retries_total"
            )

        await eventually(held_as_lag, 30, "the held alerts counted as lag, retries counted")
        _, during = await scrape(url)
        assert value(during, "gridpulse_dependency_up", dependency="postgres") == 0
        assert value(during, "gridpulse_alert_store_transactions_total", outcome="failed") > value(
            before, "gridpulse_alert_store_transactions_total", outcome="failed"
        )
        assert (await probe(url, "/livez"))[0] == 200  # waiting for the database is not dying

        await relay.open()
        await eventually(lambda: ready_is(200), 60, "/readyz 200 again once PostgreSQL is reachable")
        await eventually(lambda: all_committed(settings), 60, "the held alerts committed")
        _, history, _ = await stored(settings)
        assert sum(history.values()) == len(first_c + first_o + more_c + more_o)
        _, back = await scrape(url)
        assert value(back, "gridpulse_dependency_up", dependency="postgres") == 1
    finally:
        await relay.open()  # the consumer's last stamps and the fixture's DROP DATABASE
        await stop(consumer, task)
        await relay.close()
