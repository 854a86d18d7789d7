"""Ingestion on the real broker: valid, malformed, impossible and duplicate readings.

Every valid reading is counted exactly once (stats.customer kWh equals the sum of the valid
ones), every bad one is in meter.readings.dlq with its reason, raw bytes and offset, and the
worker is still running and processing afterwards.
"""

from __future__ import annotations

import base64
from collections import Counter
from datetime import UTC, datetime, timedelta

import orjson
import pytest

from schemas import topics as contract
from schemas.models import DeadLetter
from streams.kafka import read_all, read_latest
from tests.integration.helpers import eventually, js, produce, reading

pytestmark = [pytest.mark.integration, pytest.mark.timeout(240)]


async def test_bad_input_goes_to_dlq_and_valid_is_counted_once(topics, worker_factory):
    settings = topics
    worker = worker_factory(settings).start()
    await worker.wait_ready()

    base = (datetime.now(UTC) - timedelta(hours=6)).replace(minute=0, second=0, microsecond=0)
    customers = ["C1", "C2", "C3"]
    messages: list[tuple[bytes | None, bytes | None]] = []
    expected_kwh: Counter[str] = Counter()
    for i in range(12):
        end = base + timedelta(minutes=15 * (i + 1))
        for n, cid in enumerate(customers):
            kwh = round(1.0 + 0.25 * i + n, 4)
            messages.append((cid.encode(), js(reading(cid, end, kwh))))
            expected_kwh[cid] += kwh
    valid = len(messages)
    # duplicates: head-end retries of readings already sent (and one out of order)
    duplicates = [messages[0], messages[5], messages[17], messages[3]]
    expected_dlq = {
        "decode": [(b"C1", b"not json at all"), (b"C2", b"\xff\xfe\x00garbage"), (b"C1", b"[1, 2, 3]")],
        "schema": [
            (b"C1", js({"meter_id": "M-C1", "customer_id": "C1", "ts": base.isoformat()})),  # no kwh
            (b"C2", js({**reading("C2", base, 1.0), "kwh": "lots"})),
            (b"C3", js({**reading("C3", base, 1.0), "interval_s": "900"})),
        ],
        "negative_energy": [(b"C1", js(reading("C1", base, -2.5)))],
        "future_timestamp": [(b"C2", js(reading("C2", base + timedelta(days=400), 1.0)))],
        "key_mismatch": [(b"C9", js(reading("C3", base, 1.0)))],
    }
    bad = [m for group in expected_dlq.values() for m in group]
    await produce(settings, contract.METER_READINGS, messages[:20] + bad[:4] + duplicates)
    await produce(settings, contract.METER_READINGS, messages[20:] + bad[4:])

    async def all_accounted() -> bool:
        c = await worker.counters()
        dl = sum(c["dead_letters"].get(contract.METER_READINGS, {}).values())
        got = c["counters"].get("readings_applied", 0) + c["counters"].get("readings_duplicate", 0)
        return got + dl >= valid + len(duplicates) + len(bad)

    await eventually(all_accounted, 90, "worker accounts for every reading")
    counters = await worker.counters()
    assert counters["counters"]["readings_applied"] == valid
    assert counters["counters"]["readings_duplicate"] == len(duplicates)
    assert counters["dead_letters"][contract.METER_READINGS] == {k: len(v) for k, v in expected_dlq.items()}

    # the DLQ holds each bad message byte for byte, with its context
    dlq = [
        orjson.loads(r.value)
        for r in await read_all(settings, settings.topic(contract.dlq(contract.METER_READINGS)))
    ]
    assert len(dlq) == len(bad)
    by_kind: dict[str, list[bytes]] = {}
    for rec in dlq:
        DeadLetter.model_validate(rec)
        assert rec["topic"] == settings.topic(contract.METER_READINGS)
        assert rec["offset"] >= 0 and 0 <= rec["partition"] < settings.topic_partitions
        assert rec["detail"]
        by_kind.setdefault(rec["error"], []).append(base64.b64decode(rec["raw"]))
    assert {k: sorted(v) for k, v in by_kind.items()} == {
        k: sorted(m[1] for m in v) for k, v in expected_dlq.items()
    }

    # every valid reading counted exactly once
    async def stats_complete() -> bool:
        latest = await read_latest(settings, contract.STATS_CUSTOMER, "customer_id")
        return all(c in latest and latest[c]["d30"]["intervals"] == 12 for c in customers)

    await eventually(stats_complete, 30, "stats for all customers")
    latest = await read_latest(settings, contract.STATS_CUSTOMER, "customer_id")
    for cid in customers:
        assert latest[cid]["d30"]["kwh"] == pytest.approx(expected_kwh[cid], rel=1e-12)
        assert latest[cid]["profile_known"] is False  # accepted and flagged, not dropped

    # the agent is alive: a new reading after all that is applied
    later = base + timedelta(minutes=15 * 13)
    await produce(settings, contract.METER_READINGS, [(b"C1", js(reading("C1", later, 7.0)))])

    async def applied_one_more() -> bool:
        return (await worker.counters())["counters"]["readings_applied"] == valid + 1

    await eventually(applied_one_more, 30, "a reading after the bad ones is applied")
    assert worker.running


async def dead_letters(settings, topic: str) -> list[dict]:
    return [orjson.loads(r.value) for r in await read_all(settings, settings.topic(contract.dlq(topic)))]


async def test_late_impossible_and_billing_rules_on_the_real_stack(topics, worker_factory):
    settings = topics
    worker = worker_factory(settings, GRIDPULSE_LATENESS_S="3600").start()
    await worker.wait_ready()
    base = (datetime.now(UTC) - timedelta(hours=8)).replace(minute=0, second=0, microsecond=0)
    profile = {
        "customer_id": "C5",
        "name": "某某机械厂",
        "tariff_class": "general_industrial",
        "contract_kva": 100.0,
        "voltage_kv": 10.0,
        "feeders": ["F1"],
        "manager_id": "M1",
        "tariff_cny_per_kwh": 0.7,
    }
    await produce(settings, contract.CUSTOMERS, [(b"C5", js(profile))])

    async def profile_known() -> bool:
        return (await worker.counters())["counters"].get("profiles_applied", 0) == 1

    await eventually(profile_known, 30, "the profile is materialised")
    newest = base + timedelta(hours=4)
    await produce(
        settings,
        contract.METER_READINGS,
        [
            (b"C5", js(reading("C5", newest, 10.0))),
            (b"C5", js(reading("C5", newest - timedelta(minutes=30), 10.0))),  # out of order, in time
            (b"C5", js(reading("C5", base, 10.0))),  # 4 h behind the newest: later than the lateness
            (b"C5", js(reading("C5", newest + timedelta(minutes=15), 100.0))),  # 400 kW on 100 kVA
        ],
    )
    bill = {
        "event_id": "E1",
        "customer_id": "C5",
        "ts": base.isoformat(),
        "type": "bill",
        "amount": 800.0,
        "bill_id": "B1",
        "due_date": (base + timedelta(days=20)).date().isoformat(),
        "period": "2026-10",
    }
    payment = {
        "event_id": "E2",
        "customer_id": "C5",
        "ts": (base + timedelta(hours=1)).isoformat(),
        "type": "payment",
        "amount": 300.0,
    }
    no_due = {**bill, "event_id": "E3", "bill_id": "B2", "due_date": None}
    await produce(settings, contract.BILLING_EVENTS, [(b"C5", js(e)) for e in (bill, bill, payment, no_due)])

    async def settled() -> bool:
        got = await worker.counters()
        c, dead = got["counters"], got["dead_letters"]
        return (
            c.get("billing_applied", 0) == 2
            and c.get("billing_duplicate", 0) == 1
            and c.get("readings_applied", 0) == 2
            and sum(dead.get(contract.METER_READINGS, {}).values()) == 2
            and sum(dead.get(contract.BILLING_EVENTS, {}).values()) == 1
        )

    await eventually(settled, 60, "billing and readings handled")
    counters = await worker.counters()
    assert counters["counters"]["billing_duplicate"] == 1
    assert counters["dead_letters"] == {
        contract.METER_READINGS: {"late": 1, "impossible_demand": 1},
        contract.BILLING_EVENTS: {"incomplete_bill": 1},
    }
    late = [d for d in await dead_letters(settings, contract.METER_READINGS) if d["error"] == "late"]
    assert orjson.loads(base64.b64decode(late[0]["raw"]))["ts"] == base.isoformat()

    async def final_stats() -> bool:
        doc = (await read_latest(settings, contract.STATS_CUSTOMER, "customer_id")).get("C5")
        return doc is not None and doc["arrears"]["outstanding"] == 500.0 and doc["d30"]["intervals"] == 2

    await eventually(final_stats, 30, "stats with the bill counted once and the payment applied")
    doc = (await read_latest(settings, contract.STATS_CUSTOMER, "customer_id"))["C5"]
    assert doc["profile_known"] is True
    assert doc["d30"]["kwh"] == 20.0  # the late and the impossible readings are not in it
    assert doc["month"]["pf_standard"] == 0.85  # general industrial, 100 kVA, 10 kV
    assert "某某机械厂" not in orjson.dumps(doc).decode()  # no customer name in outputs
