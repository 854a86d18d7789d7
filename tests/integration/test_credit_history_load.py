"""A billing history loaded after the readings publishes the end state once (issue 11, 3 and 4).

On the real stack, with the production defaults of every credit setting:

1. a simulated population (and two customers written for the test) sends its profiles and a
   day of readings; every customer is scored (its first grade: a baseline);
2. twelve months of billing history, ending eight days ago (older than the 7-day horizon), are
   loaded in event order. Then ``alerts.credit`` holds exactly one publication per
   (customer, rule) that holds at the end (by ``tests/reference.py``, on the wall clock), none
   for rules that do not, and no grade_downgrade;
3. a new late fee today on an established customer (H-LATE: one late fee in its history)
   raises its warnings at once (the 30 s open hold, not a day);
4. H-OVER owes two bills, 70 and 40 days overdue: paying the older today re-publishes its open
   overdue alert (same id and status) with the younger bill as evidence, at once; the alert
   store keeps both states in its history and notifies the manager once.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter, defaultdict
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import asyncpg
import orjson
import pytest

from alerts.consumer import AlertsConsumer
from schemas import topics as contract
from schemas.models import CreditAlert
from streams.kafka import read_all, read_latest
from tests.integration.helpers import eventually, js, produce, reading
from tests.integration.population import simulate
from tests.reference import reference_arrears

pytestmark = [pytest.mark.integration, pytest.mark.timeout(480)]
SHANGHAI = ZoneInfo("Asia/Shanghai")
CUSTOMERS = 40
HISTORY_ENDS_DAYS_AGO = 8
OPEN_HOLD_S = 30.0  # the default GRIDPULSE_CREDIT_OPEN_HOLD_S


def profile(cid: str, manager: str) -> dict[str, Any]:
    return {
        "customer_id": cid,
        "tariff_class": "general_industrial",
        "voltage_kv": 10.0,
        "feeders": ["F1"],
        "importance": "none",
        "manager_id": manager,
    }


def event(cid: str, eid: str, ts: datetime, type_: str, amount: float, **extra: Any) -> dict[str, Any]:
    return {
        "event_id": f"{cid}-{eid}",
        "customer_id": cid,
        "ts": ts.isoformat(),
        "type": type_,
        "amount": amount,
        **extra,
    }


def monthly_bills(
    cid: str, now: datetime, months_ago: range, unpaid: frozenset[int] = frozenset()
) -> list[dict[str, Any]]:
    """A bill issued every 30 days (800 CNY, due 20 days later), paid 5 days after it unless
    its month is in ``unpaid``."""
    out = []
    for k in months_ago:
        issued = now - timedelta(days=30 * k)
        bill_id = f"{cid}-B{k}"
        due = (issued + timedelta(days=20)).astimezone(SHANGHAI).date().isoformat()
        out.append(event(cid, f"bill{k}", issued, "bill", 800.0, bill_id=bill_id, due_date=due))
        if k not in unpaid:
            out.append(event(cid, f"pay{k}", issued + timedelta(days=5), "payment", 800.0, bill_id=bill_id))
    return out


def rules_holding(arrears: dict[str, Any]) -> dict[str, tuple[str, str]]:
    """(rule, severity) per family that holds for these arrears, at the default thresholds."""
    out = {}
    days = arrears["oldest_overdue_days"]
    if days > 90:
        out["overdue"] = ("overdue_90", "critical")
    elif days > 30:
        out["overdue"] = ("overdue_30", "major")
    if arrears["late_fees_12m"] >= 2:
        out["late_fees_12m"] = ("late_fees_12m", "major")
    if arrears["reversals_12m"] >= 2:
        out["reversals_12m"] = ("reversals_12m", "major")
    if arrears["theft_12m"] > 50_000:
        out["theft_12m"] = ("theft_12m", "critical")
    return out


async def alert_records(settings: Any) -> list[tuple[float, dict[str, Any]]]:
    """(broker timestamp s, message) of every alerts.credit record, in order."""
    out = []
    for rec in await read_all(settings, settings.topic(contract.ALERTS_CREDIT)):
        doc = orjson.loads(rec.value)
        CreditAlert.model_validate(doc)
        out.append((rec.timestamp / 1000.0, doc))
    return out


async def until_quiet(worker: Any, settings: Any, within_s: float) -> list[tuple[float, dict[str, Any]]]:
    """Until no customer is settling or held and alerts.credit has not grown for 5 s."""
    deadline = time.monotonic() + within_s
    seen = -1
    while time.monotonic() < deadline:
        c = (await worker.counters())["counters"]
        records = await alert_records(settings)
        if not c.get("credit_settling") and not c.get("credit_held") and len(records) == seen:
            return records
        seen = len(records)
        await asyncio.sleep(5.0)
    raise TimeoutError(f"credit alerts still settling after {within_s:.0f} s")


def publications(records: list[tuple[float, dict[str, Any]]]) -> Counter[str]:
    return Counter(doc["alert_id"] for _, doc in records)


async def test_a_history_load_publishes_the_end_state_once(alert_settings, worker_factory):
    settings = alert_settings
    worker = worker_factory(settings, GRIDPULSE_SCORING_INTERVAL_S="3").start()
    await worker.wait_ready()
    now = datetime.now(SHANGHAI)

    # --- 1. profiles and readings, then a first grade for everyone
    sim = simulate(
        settings,
        customers=CUSTOMERS,
        days=1,
        billing_history_months=12,
        bad_share=0.0,
        duplicate_share=0.0,
        late_share=0.0,
    )
    by_topic: dict[str, list[tuple[bytes, bytes]]] = defaultdict(list)
    for m in sim:
        by_topic[m.topic[len(settings.topic_prefix) :]].append((m.key, m.value))
    crafted = ("H-LATE", "H-OVER")
    by_topic[contract.CUSTOMERS] += [(c.encode(), js(profile(c, "mgr-h"))) for c in crafted]
    quarter = now.replace(minute=now.minute - now.minute % 15, second=0, microsecond=0)
    for c in crafted:
        for i in range(8):
            end = quarter - timedelta(hours=3) + timedelta(minutes=15 * i)
            by_topic[contract.METER_READINGS].append((c.encode(), js(reading(c, end, 3.0))))
    for topic in (contract.CUSTOMERS, contract.CONSUMPTION_HISTORY, contract.METER_READINGS):
        await produce(settings, topic, by_topic[topic])
    everyone = {orjson.loads(v)["customer_id"] for _, v in by_topic[contract.CUSTOMERS]}

    missing: set[str] = set()

    async def all_scored() -> bool:
        nonlocal missing
        missing = everyone - set(await read_latest(settings, contract.SCORES_CUSTOMER, "customer_id"))
        return not missing

    try:
        await eventually(all_scored, 120, f"a first score for each of {len(everyone)} customers")
    except AssertionError:
        stats = await read_latest(settings, contract.STATS_CUSTOMER, "customer_id")
        raise AssertionError(
            f"no score for {sorted(missing)}; stats for {len(stats)}: {worker.log_tail()}"
        ) from None

    # --- 2. twelve months of billing history, ending before the horizon, in event order
    horizon = now - timedelta(days=HISTORY_ENDS_DAYS_AGO)
    history = [orjson.loads(v) for _, v in by_topic[contract.BILLING_EVENTS]]
    history = [e for e in history if datetime.fromisoformat(e["ts"]) < horizon]
    history += monthly_bills("H-LATE", now, range(12, 0, -1))
    fee_t = now - timedelta(days=150)
    history += [
        event("H-LATE", "fee1", fee_t, "late_fee", 12.5),
        event("H-LATE", "feepay1", fee_t + timedelta(seconds=1), "payment", 12.5),
    ]
    history += monthly_bills(
        "H-OVER", now, range(13, 1, -1), unpaid=frozenset({3, 2})
    )  # due 70 and 40 days ago
    history = [e for e in history if datetime.fromisoformat(e["ts"]) < horizon]
    history.sort(key=lambda e: (datetime.fromisoformat(e["ts"]), e["event_id"]))
    await produce(settings, contract.BILLING_EVENTS, [(e["customer_id"].encode(), js(e)) for e in history])

    async def billing_applied() -> bool:
        c = (await worker.counters())["counters"]
        return c.get("billing_applied", 0) + c.get("billing_duplicate", 0) >= len(history)

    await eventually(billing_applied, 120, f"{len(history)} billing events applied")
    loaded_at = datetime.now(SHANGHAI)
    records = await until_quiet(worker, settings, 180)
    checked_at = datetime.now(SHANGHAI)

    per_alert = publications(records)
    print(
        f"\nhistory load: {len(history)} billing events for {len(everyone)} customers -> "
        f"{sum(per_alert.values())} publications for {len(per_alert)} alerts "
        f"(most for one alert: {max(per_alert.values(), default=0)})"
    )

    # what holds at the end, by the reference (customers whose rules change between the end of
    # the load and the check, a day boundary say, are left out of the comparison)
    events: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for e in history:
        events[e["customer_id"]].append({**e, "ts": datetime.fromisoformat(e["ts"])})
    expected: dict[str, tuple[str, str]] = {}
    oldest: dict[str, str | None] = {}
    unsure: set[str] = set()
    for cid, evs in events.items():
        at_end = reference_arrears(evs, checked_at, SHANGHAI)
        holds = rules_holding(at_end)
        if holds != rules_holding(reference_arrears(evs, loaded_at, SHANGHAI)):
            unsure.add(cid)
            continue
        oldest[cid] = at_end["oldest_overdue_id"]
        expected.update({f"credit:{cid}:{family}": rule for family, rule in holds.items()})
    latest = {doc["alert_id"]: doc for _, doc in records if doc["customer_id"] not in unsure}

    assert not [a for a in per_alert if a.endswith(":grade_downgrade")], per_alert
    again = {a: n for a, n in per_alert.items() if n != 1 and a.split(":")[1] not in unsure}
    assert again == {}, "alerts published more than once"
    assert set(latest) == set(expected)
    for aid, doc in latest.items():
        assert doc["status"] == "open" and not doc["flapping"], doc
        assert (doc["rule"], doc["severity"]) == expected[aid], doc
        if aid.endswith(":overdue"):
            assert doc["evidence"]["oldest_overdue_id"] == oldest[doc["customer_id"]], doc
    assert "credit:H-OVER:overdue" in latest and len(expected) > 2  # the population fired some too
    assert latest["credit:H-OVER:overdue"]["evidence"]["oldest_overdue_id"] == "H-OVER-B3"

    # --- 3. a new late fee today on an established customer raises its warnings at once
    sent_at = time.time()
    fee = event("H-LATE", "fee-today", datetime.now(SHANGHAI), "late_fee", 16.0)
    await produce(settings, contract.BILLING_EVENTS, [(b"H-LATE", js(fee))])

    async def late_fee_warned() -> bool:
        ids = publications(await alert_records(settings))
        return {"credit:H-LATE:late_fees_12m", "credit:H-LATE:grade_downgrade"} <= set(ids)

    await eventually(late_fee_warned, OPEN_HOLD_S + 30, "H-LATE warned about its second late fee")
    records = await alert_records(settings)
    mine = {doc["alert_id"]: (t, doc) for t, doc in records if doc["customer_id"] == "H-LATE"}
    for aid in ("credit:H-LATE:late_fees_12m", "credit:H-LATE:grade_downgrade"):
        t, doc = mine[aid]
        assert doc["status"] == "open" and t - sent_at <= OPEN_HOLD_S + 10, (t - sent_at, doc)
    assert mine["credit:H-LATE:late_fees_12m"][1]["evidence"]["late_fees_12m"] == 2
    assert mine["credit:H-LATE:grade_downgrade"][1]["evidence"]["from_grade"] == "A"
    assert publications(records)["credit:H-LATE:late_fees_12m"] == 1

    # --- 4. H-OVER pays its older bill: the open overdue alert is re-published, refreshed
    before = publications(records)["credit:H-OVER:overdue"]
    pay = event("H-OVER", "pay-old", datetime.now(SHANGHAI), "payment", 800.0, bill_id="H-OVER-B3")
    await produce(settings, contract.BILLING_EVENTS, [(b"H-OVER", js(pay))])

    async def refreshed() -> bool:
        return publications(await alert_records(settings))["credit:H-OVER:overdue"] > before

    await eventually(refreshed, 30, "the overdue alert of H-OVER re-published")
    await asyncio.sleep(3.0)
    over = [doc for _, doc in await alert_records(settings) if doc["alert_id"] == "credit:H-OVER:overdue"]
    assert len(over) == 2, over
    first, second = over
    assert (second["status"], second["severity"], second["rule"]) == (first["status"], "major", "overdue_30")
    assert second["evidence"]["oldest_overdue_id"] == "H-OVER-B2"
    assert second["evidence"]["outstanding"] == 800.0
    assert second["reason"].startswith("bill H-OVER-B2 (due ")

    # the alert store keeps both states; the manager was told once
    consumer = AlertsConsumer(settings)
    task = asyncio.create_task(consumer.run())
    try:
        await asyncio.wait_for(consumer.ready.wait(), timeout=60)
        conn = await asyncpg.connect(settings.pg_dsn.get_secret_value())
        try:
            total = len(await alert_records(settings))

            async def stored() -> bool:
                return int(await conn.fetchval("SELECT count(*) FROM alert_history")) >= total

            await eventually(stored, 60, "every alert message in the alert store")
            history_rows = await conn.fetch(
                "SELECT evidence FROM alert_history WHERE alert_id = 'credit:H-OVER:overdue' ORDER BY ts"
            )
            told = await conn.fetchval(
                "SELECT count(*) FROM alert_notifications WHERE alert_id = 'credit:H-OVER:overdue'"
            )
            row = await conn.fetchrow(
                "SELECT status, evidence FROM alerts WHERE alert_id = 'credit:H-OVER:overdue'"
            )
        finally:
            await conn.close()
    finally:
        consumer.stop()
        await asyncio.wait_for(task, timeout=60)
    assert [orjson.loads(r["evidence"])["oldest_overdue_id"] for r in history_rows] == [
        "H-OVER-B3",
        "H-OVER-B2",
    ]
    assert told == 1
    assert row["status"] == "open" and orjson.loads(row["evidence"])["oldest_overdue_id"] == "H-OVER-B2"
