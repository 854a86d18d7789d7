"""`gridpulse alerts-consumer` on the real Kafka and PostgreSQL, notifying a real local webhook.

Each test has its own topic prefix, consumer group and database (``gridpulse_<unique>``,
dropped afterwards). The second test stops the project's PostgreSQL during a burst.
"""

from __future__ import annotations

import asyncio
import subprocess
from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import asyncpg
import pytest
import pytest_asyncio
from pydantic import SecretStr

from alerts.consumer import AlertsConsumer
from gridpulse.settings import Settings
from schemas import topics as t
from tests.integration.alert_bursts import (
    TS,
    all_committed,
    committed,
    credit,
    end_offsets,
    expected_notices,
    lifecycles,
    received,
    stored,
)
from tests.integration.helpers import eventually, js, produce
from tests.webhook import WebhookServer

pytestmark = pytest.mark.integration

STACK = Path(__file__).resolve().parents[2] / "scripts" / "stack.sh"


async def send(settings: Settings, credits: list[dict[str, Any]], outages: list[dict[str, Any]]) -> None:
    await produce(settings, t.ALERTS_CREDIT, [(m["alert_id"].encode(), js(m)) for m in credits])
    await produce(settings, t.ALERTS_OUTAGE, [(m["alert_id"].encode(), js(m)) for m in outages])


@pytest_asyncio.fixture
async def webhook() -> AsyncIterator[WebhookServer]:
    srv = WebhookServer()
    yield srv
    await srv.close()


@pytest_asyncio.fixture
async def running(alert_settings: Settings, webhook: WebhookServer) -> AsyncIterator[AlertsConsumer]:
    """The alerts consumer as an in-process task, notifying the local webhook."""
    url = await webhook.start()
    settings = alert_settings.model_copy(
        update={
            "alerts_notifier": "webhook",
            "alerts_webhook_url": SecretStr(url),
            "alerts_webhook_backoff_s": 0.05,
            "alerts_webhook_backoff_max_s": 0.5,
            "alerts_db_backoff_max_s": 1.0,
            "alerts_batch_max": 7,  # several batches, several transactions
        }
    )
    consumer = AlertsConsumer(settings)
    task = asyncio.create_task(consumer.run())
    try:
        await asyncio.wait_for(consumer.ready.wait(), timeout=60)
        yield consumer
    finally:
        consumer.stop()
        await asyncio.wait_for(task, timeout=60)


def check_store(
    rows: dict[str, asyncpg.Record], history: Counter[tuple[str, str, str]], messages: list[dict[str, Any]]
) -> None:
    latest: dict[str, dict[str, Any]] = {}
    for m in messages:
        latest[m["alert_id"]] = m  # in order per alert: the last one is the newest
    assert set(rows) == set(latest)
    for alert_id, m in latest.items():
        assert (rows[alert_id]["status"], rows[alert_id]["severity"]) == (m["status"], m["severity"])
    assert history == Counter((m["alert_id"], m["status"], m["severity"]) for m in messages)


async def test_burst_with_duplicates_stored_once_and_notified_once(
    running: AlertsConsumer, webhook: WebhookServer
) -> None:
    settings = running.settings
    credits, outages = lifecycles(0, 12)
    await send(settings, credits, outages)
    await send(settings, credits[:10], outages[:5])  # head-end style redelivery of a stretch
    await produce(settings, t.ALERTS_CREDIT, [(b"x", b"{not json"), (b"y", js({"alert_id": "half"}))])
    expected = expected_notices(credits + outages)

    await eventually(lambda: all_committed(settings), 60, "offsets committed to the end")
    await eventually(
        lambda: asyncio.sleep(0, result=received(webhook) == expected), 30, "every notification delivered"
    )
    await asyncio.sleep(1.0)  # nothing more trickles in
    assert received(webhook) == expected
    assert webhook.received[0]["alert"]["alert_id"] == webhook.received[0]["alert_id"]

    rows, history, pending = await stored(settings)
    check_store(rows, history, credits + outages)
    assert pending == 0
    assert all(r["notified_at"] is not None for r in rows.values())
    total = len(credits) + len(outages) + 10 + 5
    assert running.counters.stored == total and running.counters.malformed == 2
    assert running.counters.rejected == 0 and running.counters.db_retries == 0


async def test_acknowledged_alert_is_not_renotified_until_worse(
    running: AlertsConsumer, webhook: WebhookServer
) -> None:
    settings = running.settings
    await send(settings, [credit(1, "open", "minor", TS[0])], [])
    await eventually(lambda: asyncio.sleep(0, result=len(webhook.received) == 1), 60, "first notice")
    proc = await asyncio.create_subprocess_exec(
        str(STACK.parents[1] / ".venv" / "bin" / "gridpulse"),
        "alerts",
        "ack",
        "credit:C1:overdue_30",
        "--manager",
        "M1",
        env={"GRIDPULSE_PG_DSN": settings.pg_dsn.get_secret_value(), "PATH": "/usr/bin:/bin"},
        stdout=asyncio.subprocess.PIPE,
    )
    out, _ = await asyncio.wait_for(proc.communicate(), timeout=60)
    assert proc.returncode == 0, out
    await send(settings, [credit(1, "escalated", "minor", TS[1])], [])  # not worse: quiet
    await send(settings, [credit(1, "escalated", "major", TS[2])], [])  # worse: notify
    await eventually(lambda: all_committed(settings), 60, "offsets committed")
    await eventually(lambda: asyncio.sleep(0, result=len(webhook.received) == 2), 30, "escalation notice")
    await asyncio.sleep(1.0)
    assert [(b["event"], b["severity"]) for b in webhook.received] == [
        ("open", "minor"),
        ("escalated", "major"),
    ]


def stack(*args: str) -> None:
    subprocess.run([str(STACK), *args], check=True, timeout=120, capture_output=True)


async def test_postgres_down_during_a_burst_loses_nothing(
    running: AlertsConsumer, webhook: WebhookServer
) -> None:
    settings = running.settings
    before_c, before_o = lifecycles(0, 6)
    await send(settings, before_c, before_o)
    await eventually(lambda: all_committed(settings), 60, "first burst committed")

    async def first_notices_stamped() -> bool:
        return (await stored(settings))[2] == 0 and received(webhook) == expected_notices(before_c + before_o)

    # so that no delivered notification waits for its stamp while the database is away
    await eventually(first_notices_stamped, 30, "first burst notified")
    committed_before = await committed(settings)

    during_c, during_o = lifecycles(100, 10)
    try:
        await asyncio.to_thread(stack, "down", "postgres")
        await send(settings, during_c, during_o)
        await asyncio.sleep(5.0)
        # nothing stored, so nothing committed past what was
        assert await committed(settings) == committed_before
        assert await end_offsets(settings) != committed_before
        assert running.counters.db_retries > 0
    finally:
        await asyncio.to_thread(stack, "up", "postgres")

    await eventually(lambda: all_committed(settings), 90, "every alert committed after the restart")
    messages = before_c + before_o + during_c + during_o
    expected = expected_notices(messages)
    await eventually(
        lambda: asyncio.sleep(0, result=received(webhook) == expected), 60, "every notification delivered"
    )
    rows, history, pending = await stored(settings)
    check_store(rows, history, messages)
    assert pending == 0
    assert received(webhook) == expected
