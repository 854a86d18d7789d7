"""Alert messages for the alerts consumer, and what became of them: credit and outage alert
lifecycles, the notifications they should cause, the committed offsets, the stored rows and
the notifications a webhook received (tests/integration/test_alerts_consumer.py and the
PostgreSQL fault scenario)."""

from __future__ import annotations

from collections import Counter
from typing import Any

import asyncpg
from aiokafka import TopicPartition

from gridpulse.settings import Settings
from schemas import topics as t
from streams.kafka import make_admin, make_consumer
from tests.webhook import WebhookServer

TS = ["2026-11-01T08:00:00+08:00", "2026-12-01T08:00:00+08:00", "2027-01-05T08:00:00+08:00"]


def credit(i: int, status: str, severity: str, ts: str) -> dict[str, Any]:
    return {
        "alert_id": f"credit:C{i}:overdue_30",
        "kind": "credit",
        "severity": severity,
        "status": status,
        "ts": ts,
        "reason": f"{status}: oldest bill overdue",
        "evidence": {"oldest_overdue_days": 31},
        "customer_id": f"C{i}",
        "rule": "overdue_30",
        "manager_id": f"M{i % 3}",
    }


def outage(i: int, status: str, severity: str, ts: str) -> dict[str, Any]:
    return {
        "alert_id": f"outage:O{i}",
        "kind": "outage",
        "severity": severity,
        "status": status,
        "ts": ts,
        "reason": f"feeder F{i} {status}",
        "evidence": {"customers": 1},
        "outage_id": f"O{i}",
        "scope": "feeder",
        "scope_id": f"F{i}",
        "planned": False,
        "manager_ids": ["MA", f"MB{i}"],
        "affected": [
            {
                "customer_id": f"C{i}",
                "importance": "level1",
                "safety_grade": "B",
                "impact": "loss_of_supply",
                "est_kw": 50.0,
                "revenue_at_risk_cny_per_h": 20.0,
                "manager_id": "MA",
            }
        ],
    }


def lifecycles(first: int, n: int) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Credit and outage alert messages, in order per alert: open; for some escalated; for
    some resolved."""
    credits: list[dict[str, Any]] = []
    outages: list[dict[str, Any]] = []
    for i in range(first, first + n):
        credits.append(credit(i, "open", "major", TS[0]))
        if i % 2 == 0:
            credits.append(credit(i, "escalated", "critical", TS[1]))
        if i % 3 == 0:
            credits.append(credit(i, "resolved", "info", TS[2]))
        outages.append(outage(i, "open", "critical", TS[0]))
        if i % 2 == 1:
            outages.append(outage(i, "resolved", "info", TS[1]))
    return credits, outages


def expected_notices(messages: list[dict[str, Any]]) -> Counter[tuple[str, str, str]]:
    """(alert_id, manager_id, event) per message that changes an alert's state."""
    out: Counter[tuple[str, str, str]] = Counter()
    for m in messages:
        event = {"open": "open", "escalated": "escalated", "resolved": "resolved"}[m["status"]]
        for manager in m.get("manager_ids") or [m["manager_id"]]:
            out[(m["alert_id"], manager, event)] += 1
    return out


async def committed(settings: Settings) -> dict[TopicPartition, int]:
    admin = make_admin(settings)
    await admin.start()
    try:
        offsets = await admin.list_consumer_group_offsets(settings.alerts_group_id)
    finally:
        await admin.close()
    return {tp: meta.offset for tp, meta in offsets.items() if meta.offset >= 0}


async def end_offsets(settings: Settings) -> dict[TopicPartition, int]:
    consumer = make_consumer(settings)
    await consumer.start()
    try:
        names = [settings.topic(t.ALERTS_CREDIT), settings.topic(t.ALERTS_OUTAGE)]
        await consumer._client.force_metadata_update()
        tps = [TopicPartition(n, p) for n in names for p in sorted(consumer.partitions_for_topic(n) or ())]
        ends: dict[TopicPartition, int] = await consumer.end_offsets(tps)
        return {tp: o for tp, o in ends.items() if o > 0}
    finally:
        await consumer.stop()


async def all_committed(settings: Settings) -> bool:
    return await committed(settings) == await end_offsets(settings)


async def stored(settings: Settings) -> tuple[dict[str, asyncpg.Record], Counter[tuple[str, str, str]], int]:
    """Alert rows by id; history rows (alert_id, status, severity) counted; pending outbox rows."""
    conn = await asyncpg.connect(settings.pg_dsn.get_secret_value())
    try:
        rows = {r["alert_id"]: r for r in await conn.fetch("SELECT * FROM alerts")}
        history = Counter(
            (h["alert_id"], h["status"], h["severity"])
            for h in await conn.fetch("SELECT alert_id, status, severity FROM alert_history")
        )
        pending = await conn.fetchval(
            "SELECT count(*) FROM alert_notifications WHERE delivered_at IS NULL AND given_up_at IS NULL"
        )
    finally:
        await conn.close()
    return rows, history, pending


def received(webhook: WebhookServer) -> Counter[tuple[str, str, str]]:
    return Counter((b["alert_id"], b["manager_id"], b["event"]) for b in webhook.received)
