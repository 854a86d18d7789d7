"""Credit warnings on the real stack: billing events in, ``alerts.credit`` out.

Two customers, with profiles naming their managers (and a name that must never appear):

- K1 first pays a bill on time (its first credit grade, established: it has billing history),
  then runs up every warning: a bill 40 days overdue (major, ``overdue_30``), two late fees
  (major), two bounced payments (major), a 60,000 CNY theft penalty (critical), and its credit
  grade drops (``grade_downgrade``). Its newest billing event is recent, so it is judged at
  once; the 30 s open hold makes each warning one publication however many events land;
- K2 has only a bill 100 days overdue (old inputs: judged once settled): the overdue alert
  opens directly as critical (``overdue_90``).

Then every event is sent again (head-end retries): the statistics are republished, the alerts
are not (no storm). Last, K1 pays everything: the overdue alert resolves (resolve hold set to
2 s here; 1 h by default) and says why; the 12-month ones stay open.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import asyncpg
import orjson
import pytest

from alerts.consumer import AlertsConsumer
from schemas import topics as contract
from schemas.models import CreditAlert
from streams.kafka import read_all
from tests.integration.helpers import eventually, js, produce

pytestmark = [pytest.mark.integration, pytest.mark.timeout(360)]
SHANGHAI = ZoneInfo("Asia/Shanghai")
NAME = "Zhang Sanfeng"


def profile(cid: str, manager: str) -> tuple[bytes, bytes]:
    return cid.encode(), js(
        {
            "customer_id": cid,
            "name": NAME,
            "tariff_class": "general_industrial",
            "voltage_kv": 10.0,
            "feeders": ["F1"],
            "importance": "none",
            "manager_id": manager,
        }
    )


def events(cid: str, now: datetime, items: list[dict[str, Any]], tag: str) -> list[tuple[bytes, bytes]]:
    out = []
    for k, e in enumerate(items):
        e = dict(e)
        e["ts"] = (now - timedelta(days=e.pop("days_ago"))).isoformat()
        if "due_days_ago" in e:
            e["due_date"] = (now - timedelta(days=e.pop("due_days_ago"))).date().isoformat()
        out.append((cid.encode(), js({"event_id": f"{cid}-{tag}-{k}", "customer_id": cid, **e})))
    return out


async def alert_records(settings: Any) -> list[dict[str, Any]]:
    records = await read_all(settings, settings.topic(contract.ALERTS_CREDIT))
    out = []
    for rec in records:
        assert NAME.encode() not in rec.value
        doc = orjson.loads(rec.value)
        CreditAlert.model_validate(doc)
        assert rec.key == doc["alert_id"].encode()
        out.append(doc)
    return out


def latest(alerts: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {a["alert_id"]: a for a in alerts}


async def test_credit_warnings_fire_once_and_resolve(alert_settings, worker_factory):
    settings = alert_settings  # the topics of this test, and a database of its own
    now = datetime.now(SHANGHAI)
    worker = worker_factory(
        settings, GRIDPULSE_SCORING_INTERVAL_S="2", GRIDPULSE_CREDIT_RESOLVE_HOLD_S="2"
    ).start()
    await worker.wait_ready()
    await produce(settings, contract.CUSTOMERS, [profile("K1", "mgr-1"), profile("K2", "mgr-2")])

    # phase 1: K1 pays before the due date (a bill sent late with its payment would be
    # overdue between the two messages, and rightly warned about), and is graded
    good = [
        {"type": "bill", "amount": 500.0, "bill_id": "K1-B0", "due_days_ago": -10, "days_ago": 5},
        {"type": "payment", "amount": 500.0, "bill_id": "K1-B0", "days_ago": 4},
    ]
    await produce(settings, contract.BILLING_EVENTS, events("K1", now, good, "good"))

    async def graded() -> bool:
        recs = await read_all(settings, settings.topic(contract.SCORES_CUSTOMER))
        return any(orjson.loads(r.value)["customer_id"] == "K1" for r in recs)

    await eventually(graded, 60, "a first credit grade for K1")

    # phase 2: every warning
    bad_k1 = [
        {"type": "bill", "amount": 1000.0, "bill_id": "K1-B1", "due_days_ago": 40, "days_ago": 50},
        {"type": "late_fee", "amount": 10.0, "days_ago": 30},
        {"type": "late_fee", "amount": 10.0, "days_ago": 20},
        {"type": "payment", "amount": 100.0, "days_ago": 15},
        {"type": "payment_reversal", "amount": 100.0, "days_ago": 14},
        {"type": "payment", "amount": 100.0, "days_ago": 13},
        {"type": "payment_reversal", "amount": 100.0, "days_ago": 12},
        {"type": "theft_penalty", "amount": 60_000.0, "days_ago": 10},
    ]
    bad_k2 = [{"type": "bill", "amount": 800.0, "bill_id": "K2-B1", "due_days_ago": 100, "days_ago": 110}]
    phase2 = events("K1", now, bad_k1, "bad") + events("K2", now, bad_k2, "bad")
    await produce(settings, contract.BILLING_EVENTS, phase2)

    expected = {
        "credit:K1:overdue": ("overdue_30", "major"),
        "credit:K1:late_fees_12m": ("late_fees_12m", "major"),
        "credit:K1:reversals_12m": ("reversals_12m", "major"),
        "credit:K1:theft_12m": ("theft_12m", "critical"),
        "credit:K1:grade_downgrade": ("grade_downgrade", None),
        "credit:K2:overdue": ("overdue_90", "critical"),
    }
    alerts: list[dict[str, Any]] = []

    async def all_fired() -> bool:
        nonlocal alerts
        alerts = await alert_records(settings)
        return set(latest(alerts)) == set(expected)

    await eventually(all_fired, 120, f"alerts {sorted(expected)}")
    await asyncio.sleep(5.0)
    alerts = await alert_records(settings)
    for aid, (rule, severity) in expected.items():
        a = latest(alerts)[aid]
        assert a["rule"] == rule and a["status"] != "resolved", a
        if severity is not None:
            assert a["severity"] == severity, a
        assert a["manager_id"] == ("mgr-1" if ":K1:" in aid else "mgr-2")
    # each warning published exactly once: the grade stepped down with every event, the hold
    # published where it ended
    per_id = Counter(a["alert_id"] for a in alerts)
    assert per_id == Counter(set(expected)), per_id
    assert all(a["status"] == "open" and not a["flapping"] for a in alerts), alerts
    evidence = {aid: a["evidence"] for aid, a in latest(alerts).items()}
    assert evidence["credit:K1:overdue"]["oldest_overdue_days"] == 40
    assert evidence["credit:K1:overdue"]["oldest_overdue_id"] == "K1-B1"
    assert (
        evidence["credit:K1:overdue"]["oldest_overdue_due_date"]
        == (now - timedelta(days=40)).date().isoformat()
    )
    assert evidence["credit:K1:late_fees_12m"]["late_fees_12m"] == 2
    assert evidence["credit:K1:reversals_12m"]["reversals_12m"] == 2
    assert evidence["credit:K1:theft_12m"]["theft_12m_cny"] == 60_000.0
    assert evidence["credit:K2:overdue"]["oldest_overdue_days"] == 100
    grade = latest(alerts)["credit:K1:grade_downgrade"]["evidence"]
    assert grade["from_grade"] < grade["to_grade"]  # A best: a later letter is worse

    # the same events again: statistics are republished, alerts are not
    stats_before = len(await read_all(settings, settings.topic(contract.STATS_CUSTOMER)))
    await produce(settings, contract.BILLING_EVENTS, phase2)

    async def republished() -> bool:
        n = len(await read_all(settings, settings.topic(contract.STATS_CUSTOMER)))
        return n >= stats_before + len(phase2)

    await eventually(republished, 60, "stats republished for the re-sent events")
    await asyncio.sleep(5.0)  # a few population passes (every 2 s): no grade changes either
    assert len(await alert_records(settings)) == len(alerts), "re-sent events created alert messages"

    # K1 pays everything: the overdue alert resolves, the 12-month warnings stay
    pay = [{"type": "payment", "amount": 61_020.0, "days_ago": 0}]
    await produce(settings, contract.BILLING_EVENTS, events("K1", now, pay, "pay"))

    async def resolved() -> bool:
        nonlocal alerts
        alerts = await alert_records(settings)
        return latest(alerts)["credit:K1:overdue"]["status"] == "resolved"

    await eventually(resolved, 60, "the overdue alert of K1 resolved")
    final = latest(alerts)
    assert final["credit:K1:overdue"]["evidence"]["oldest_overdue_days"] == 0
    assert final["credit:K1:overdue"]["evidence"]["outstanding"] == 0.0
    paid_on = now.date().isoformat()
    assert final["credit:K1:overdue"]["reason"] == (
        f"resolved: bill K1-B1 settled by {paid_on}; no bill more than 30 days overdue"
    )
    for aid in (
        "credit:K1:late_fees_12m",
        "credit:K1:reversals_12m",
        "credit:K1:theft_12m",
        "credit:K2:overdue",
    ):
        assert final[aid]["status"] == "open", final[aid]
    assert Counter(a["alert_id"] for a in alerts)["credit:K1:overdue"] == 2

    # what customer managers read: the alert store, filled by `gridpulse alerts-consumer`
    consumer = AlertsConsumer(settings)
    task = asyncio.create_task(consumer.run())
    try:
        await asyncio.wait_for(consumer.ready.wait(), timeout=60)
        conn = await asyncpg.connect(settings.pg_dsn.get_secret_value())
        try:

            async def all_stored() -> bool:
                n = await conn.fetchval("SELECT count(*) FROM alert_history")
                return int(n) >= len(alerts)

            await eventually(all_stored, 60, "every alert message in the alert store")
            rows = {r["alert_id"]: r for r in await conn.fetch("SELECT * FROM alerts")}
            history = Counter(r["alert_id"] for r in await conn.fetch("SELECT alert_id FROM alert_history"))
        finally:
            await conn.close()
    finally:
        consumer.stop()
        await asyncio.wait_for(task, timeout=60)
    assert rows.keys() == final.keys()
    for aid, msg in final.items():
        row = rows[aid]
        assert (row["status"], row["severity"], row["rule"]) == (msg["status"], msg["severity"], msg["rule"])
        assert row["manager_ids"] == [msg["manager_id"]]
        assert orjson.loads(row["evidence"]) == msg["evidence"]
    # one history entry per state change that was published, none twice
    assert history == Counter(a["alert_id"] for a in alerts)
