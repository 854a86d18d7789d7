"""Inspection alerts (alerts.inspection, issue 13) in the alert store on the real PostgreSQL and
through `gridpulse alerts-consumer` on the real Kafka, notifying a real local webhook.

- the store: migration 004 (kind 'inspection', transformer_area), an area alert's managers, a
  resolution without suspects keeping them, the listing by customer (its own alerts and the
  area alerts listing it), by area and by manager, `untold_managers`;
- the consumer: an area alert notifies the managers of its suspects, a suspect's manager newly
  listed while it stays open hears of it once, the resolution reaches the managers told; a
  customer alert notifies its manager; a malformed inspection alert is skipped; stored and
  notified once each under redelivery; `gridpulse alerts list` reads them back.

Each test has its own schema or database, topic prefix and consumer group.
"""

from __future__ import annotations

import asyncio
import os
import sys
from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import asyncpg
import orjson
import pytest
import pytest_asyncio
from aiokafka import TopicPartition
from pydantic import SecretStr

from alerts.consumer import AlertsConsumer
from alerts.store import list_alerts, migrate, untold_managers, upsert_alert
from gridpulse.settings import Settings
from schemas import topics as t
from streams.kafka import make_admin, make_consumer
from tests.integration.helpers import eventually, js, produce
from tests.webhook import WebhookServer

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
TS = [f"2027-02-{day:02d}T01:00:00+08:00" for day in range(5, 12)]


def suspect(customer_id: str, score: float) -> dict[str, Any]:
    return {
        "customer_id": customer_id,
        "score": score,
        "reasons": ["negative_loss_correlation"] if score > 0.5 else [],
        "evidence": {"correlation": -0.9 if score > 0.5 else -0.1, "weights": {"correlation": 0.35}},
    }


def area_alert(status: str, severity: str, ts: str, suspects: list[tuple[str, float, str]]) -> dict[str, Any]:
    """As inspection.rules.evaluate_area publishes it: suspects (id, score, manager) listed
    while open, their managers in manager_ids; none once resolved."""
    shown = suspects if status != "resolved" else []
    return {
        "alert_id": "inspection:A1:area_high_loss",
        "kind": "inspection",
        "severity": severity,
        "status": status,
        "ts": ts,
        "reason": f"line loss {'4.0' if status == 'resolved' else '15.0'} %",
        "evidence": {"date": ts[:10], "loss_rate": 0.15, "suspects": [c for c, _, _ in shown[:3]]},
        "scope": "transformer_area",
        "transformer_area": "A1",
        "rule": "area_high_loss",
        "flapping": False,
        "suspects": [suspect(c, s) for c, s, _ in shown],
        "manager_ids": sorted({m for _, _, m in shown}),
    }


def customer_alert(status: str, ts: str) -> dict[str, Any]:
    return {
        "alert_id": "inspection:C7:tamper_flag",
        "kind": "inspection",
        "severity": "major",
        "status": status,
        "ts": ts,
        "reason": "meter m1 reported magnetic",
        "evidence": {"meter_id": "m1", "codes": ["magnetic"], "keep_days": 30.0},
        "scope": "customer",
        "customer_id": "C7",
        "rule": "tamper_flag",
        "manager_id": "M1",
        "flapping": False,
    }


FIRST = [("C7", 0.81, "M1"), ("C2", 0.30, "M2")]
CHANGED = [("C7", 0.83, "M1"), ("C5", 0.40, "M3"), ("C2", 0.30, "M2")]  # C5 (M3) newly listed


# ------------------------------------------------------------------ the store


@pytest_asyncio.fixture
async def conn(pg_settings: Settings, unique_id: str) -> AsyncIterator[asyncpg.Connection]:
    """A connection whose search_path is a schema of this test's own, dropped afterwards."""
    c = await asyncpg.connect(pg_settings.pg_dsn.get_secret_value())
    schema = f"t_{unique_id}"
    await c.execute(f"CREATE SCHEMA {schema}")
    await c.execute(f"SET search_path TO {schema}")
    try:
        yield c
    finally:
        await c.execute(f"DROP SCHEMA {schema} CASCADE")
        await c.close()


async def test_inspection_alerts_are_stored_with_their_scope(conn: asyncpg.Connection) -> None:
    assert "004_inspection_alerts" in await migrate(conn)
    await upsert_alert(conn, area_alert("open", "major", TS[0], FIRST))
    await upsert_alert(conn, customer_alert("open", TS[0]))
    row = await conn.fetchrow("SELECT * FROM alerts WHERE alert_id = 'inspection:A1:area_high_loss'")
    assert (row["kind"], row["transformer_area"], row["customer_id"]) == ("inspection", "A1", None)
    assert row["manager_ids"] == ["M1", "M2"]
    assert orjson.loads(row["payload"])["suspects"][0]["customer_id"] == "C7"
    own = await conn.fetchrow("SELECT * FROM alerts WHERE alert_id = 'inspection:C7:tamper_flag'")
    assert (own["customer_id"], own["transformer_area"], own["manager_ids"]) == ("C7", None, ["M1"])

    # resolved without suspects: the managers stay, so the resolution reaches them
    await upsert_alert(conn, area_alert("resolved", "major", TS[1], FIRST))
    row = await conn.fetchrow("SELECT * FROM alerts WHERE alert_id = 'inspection:A1:area_high_loss'")
    assert (row["status"], row["manager_ids"]) == ("resolved", ["M1", "M2"])

    # other kinds keep their rules; an unknown kind is refused by the database
    bad = {**customer_alert("open", TS[0]), "alert_id": "weather:X", "kind": "weather"}
    with pytest.raises(asyncpg.CheckViolationError):
        await upsert_alert(conn, bad)


async def test_alerts_are_listed_by_customer_area_and_manager(conn: asyncpg.Connection) -> None:
    await migrate(conn)
    await upsert_alert(conn, area_alert("open", "major", TS[0], FIRST))
    await upsert_alert(conn, customer_alert("open", TS[1]))
    credit = {
        "alert_id": "credit:C2:overdue_30",
        "kind": "credit",
        "severity": "major",
        "status": "open",
        "ts": TS[2],
        "reason": "oldest bill 31 days overdue",
        "evidence": {"oldest_overdue_days": 31},
        "customer_id": "C2",
        "rule": "overdue_30",
        "manager_id": "M2",
    }
    await upsert_alert(conn, credit)

    def ids(rows: list[asyncpg.Record]) -> list[str]:
        return [r["alert_id"] for r in rows]

    # the latest event first; a customer's own alerts and the area alerts listing it
    assert ids(await list_alerts(conn, customer_id="C7")) == [
        "inspection:C7:tamper_flag",
        "inspection:A1:area_high_loss",
    ]
    assert ids(await list_alerts(conn, customer_id="C2")) == [
        "credit:C2:overdue_30",
        "inspection:A1:area_high_loss",
    ]
    assert ids(await list_alerts(conn, transformer_area="A1")) == ["inspection:A1:area_high_loss"]
    assert ids(await list_alerts(conn, manager_id="M2", kind="inspection")) == [
        "inspection:A1:area_high_loss"
    ]
    assert len(await list_alerts(conn)) == 3
    await upsert_alert(conn, customer_alert("resolved", TS[3]))
    assert ids(await list_alerts(conn, customer_id="C7")) == ["inspection:A1:area_high_loss"]
    assert len(await list_alerts(conn, customer_id="C7", include_resolved=True)) == 2


async def test_untold_managers_are_those_without_a_notice_since_the_last_resolution(
    conn: asyncpg.Connection,
) -> None:
    await migrate(conn)
    alert_id = "inspection:A1:area_high_loss"
    await upsert_alert(conn, area_alert("open", "major", TS[0], FIRST))
    await conn.execute(
        "INSERT INTO alert_notifications (alert_id, manager_id, event, status, severity, ts, payload)"
        " VALUES ($1, 'M1', 'open', 'open', 'major', $2, '{}'::jsonb)",
        alert_id,
        await conn.fetchval("SELECT last_ts FROM alerts WHERE alert_id = $1", alert_id),
    )
    assert await untold_managers(conn, alert_id, ["M1", "M2", "M3"]) == ["M2", "M3"]
    # after a resolution, nobody has heard of the reopened alert
    await upsert_alert(conn, area_alert("resolved", "major", TS[1], FIRST))
    assert await untold_managers(conn, alert_id, ["M1", "M2"]) == ["M1", "M2"]


# ------------------------------------------------------------------ the consumer


@pytest_asyncio.fixture
async def webhook() -> AsyncIterator[WebhookServer]:
    srv = WebhookServer()
    yield srv
    await srv.close()


@pytest_asyncio.fixture
async def running(alert_settings: Settings, webhook: WebhookServer) -> AsyncIterator[AlertsConsumer]:
    url = await webhook.start()
    settings = alert_settings.model_copy(
        update={
            "alerts_notifier": "webhook",
            "alerts_webhook_url": SecretStr(url),
            "alerts_webhook_backoff_s": 0.05,
            "alerts_webhook_backoff_max_s": 0.5,
            "alerts_batch_max": 3,
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


async def inspection_committed(settings: Settings) -> bool:
    """The consumer group's offsets on alerts.inspection are at its end."""
    name = settings.topic(t.ALERTS_INSPECTION)
    admin = make_admin(settings)
    await admin.start()
    try:
        offsets = await admin.list_consumer_group_offsets(settings.alerts_group_id)
    finally:
        await admin.close()
    done = {tp: meta.offset for tp, meta in offsets.items() if tp.topic == name and meta.offset >= 0}
    consumer = make_consumer(settings)
    await consumer.start()
    try:
        await consumer._client.force_metadata_update()
        tps = [TopicPartition(name, p) for p in sorted(consumer.partitions_for_topic(name) or ())]
        ends = {tp: o for tp, o in (await consumer.end_offsets(tps)).items() if o > 0}
    finally:
        await consumer.stop()
    return bool(ends) and done == ends


async def send(settings: Settings, messages: list[dict[str, Any]]) -> None:
    await produce(settings, t.ALERTS_INSPECTION, [(m["alert_id"].encode(), js(m)) for m in messages])


def received(webhook: WebhookServer) -> Counter[tuple[str, str, str]]:
    return Counter((b["alert_id"], b["manager_id"], b["event"]) for b in webhook.received)


async def settle(settings: Settings, webhook: WebhookServer, expected: Counter[tuple[str, str, str]]) -> None:
    await eventually(lambda: inspection_committed(settings), 60, "offsets committed to the end")
    await eventually(
        lambda: asyncio.sleep(0, result=received(webhook) == expected), 30, "every notification delivered"
    )
    await asyncio.sleep(1.0)  # nothing more trickles in
    assert received(webhook) == expected


AREA = "inspection:A1:area_high_loss"
OWN = "inspection:C7:tamper_flag"


async def test_area_alerts_notify_their_suspects_managers_once_each(
    running: AlertsConsumer, webhook: WebhookServer
) -> None:
    settings = running.settings
    opened = area_alert("open", "major", TS[0], FIRST)
    await send(settings, [opened, customer_alert("open", TS[0])])
    expected = Counter({(AREA, "M1", "open"): 1, (AREA, "M2", "open"): 1, (OWN, "M1", "open"): 1})
    await settle(settings, webhook, expected)

    # the suspects change while it stays open: only the newly named manager hears of it
    changed = area_alert("open", "major", TS[1], CHANGED)
    await send(settings, [changed, opened, changed])  # redelivered and stale copies change nothing
    expected[(AREA, "M3", "open")] += 1
    await settle(settings, webhook, expected)

    # escalated: every listed manager; resolved (no suspects listed): the managers it had
    await send(settings, [area_alert("escalated", "critical", TS[2], CHANGED)])
    await send(
        settings, [area_alert("resolved", "critical", TS[3], CHANGED), customer_alert("resolved", TS[3])]
    )
    await send(settings, [area_alert("resolved", "critical", TS[3], CHANGED)])  # redelivered
    for manager in ("M1", "M2", "M3"):
        expected[(AREA, manager, "escalated")] += 1
        expected[(AREA, manager, "resolved")] += 1
    expected[(OWN, "M1", "resolved")] += 1
    await settle(settings, webhook, expected)
    assert all(b["alert"]["kind"] == "inspection" for b in webhook.received)
    assert {b["kind"] for b in webhook.received} == {"inspection"}

    conn = await asyncpg.connect(settings.pg_dsn.get_secret_value())
    try:
        rows = {r["alert_id"]: r for r in await conn.fetch("SELECT * FROM alerts")}
        history = Counter(
            (h["alert_id"], h["status"])
            for h in await conn.fetch("SELECT alert_id, status FROM alert_history")
        )
        pending = await conn.fetchval(
            "SELECT count(*) FROM alert_notifications WHERE delivered_at IS NULL AND given_up_at IS NULL"
        )
    finally:
        await conn.close()
    assert set(rows) == {AREA, OWN}
    assert (rows[AREA]["status"], rows[AREA]["severity"], rows[AREA]["transformer_area"]) == (
        "resolved",
        "critical",
        "A1",
    )
    assert rows[AREA]["manager_ids"] == ["M1", "M2", "M3"]
    assert history == Counter(
        {
            (AREA, "open"): 2,
            (AREA, "escalated"): 1,
            (AREA, "resolved"): 1,
            (OWN, "open"): 1,
            (OWN, "resolved"): 1,
        }
    )
    assert pending == 0
    assert running.counters.malformed == 0 and running.counters.rejected == 0


async def test_a_malformed_inspection_alert_is_skipped_and_the_rest_stored(
    running: AlertsConsumer, webhook: WebhookServer
) -> None:
    settings = running.settings
    no_area = {**area_alert("open", "major", TS[0], FIRST), "transformer_area": None}
    await produce(settings, t.ALERTS_INSPECTION, [(b"x", js(no_area)), (b"y", b"{not json")])
    await send(settings, [customer_alert("open", TS[0])])
    await settle(settings, webhook, Counter({(OWN, "M1", "open"): 1}))
    assert running.counters.malformed == 2


async def test_gridpulse_alerts_list_reads_them_back(running: AlertsConsumer, webhook: WebhookServer) -> None:
    settings = running.settings
    await send(settings, [area_alert("open", "major", TS[0], FIRST), customer_alert("open", TS[1])])
    await settle(
        settings,
        webhook,
        Counter({(AREA, "M1", "open"): 1, (AREA, "M2", "open"): 1, (OWN, "M1", "open"): 1}),
    )

    async def cli(*args: str) -> list[str]:
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "gridpulse.cli",
            "alerts",
            "list",
            *args,
            cwd=REPO,
            env={
                "GRIDPULSE_PG_DSN": settings.pg_dsn.get_secret_value(),
                "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            },
            stdout=asyncio.subprocess.PIPE,
        )
        out, _ = await asyncio.wait_for(proc.communicate(), timeout=60)
        assert proc.returncode == 0, out
        return out.decode().splitlines()

    lines = await cli("--customer", "C7")  # the latest first
    assert len(lines) == 2 and f" {OWN}  [M1]" in lines[0] and f" {AREA}  [M1,M2]" in lines[1]
    assert lines[1].endswith("suspects: C7 0.81, C2 0.30")
    as_json = [orjson.loads(line) for line in await cli("--area", "A1", "--json")]
    assert [a["alert_id"] for a in as_json] == [AREA] and as_json[0]["suspects"][0]["customer_id"] == "C7"
    assert await cli("--manager", "M2", "--kind", "credit") == []
