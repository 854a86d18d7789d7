"""Outage impact and reliability indices on the real stack: grid.outages in, ``alerts.outage``
and ``reliability.indices`` out.

Topology (profiles carry a name that must never appear in the outputs):

- ``L1``: level-1, dual circuit (F1 + F2) with its own generator: safety grade A;
- ``L2``: level-2 on F1 only, no generator: safety grade D; two hours of readings give it an
  hour-of-day profile (100 kW, then 40 kW in the hour of ``o1``'s start: its est_kw);
- ``O1`` on F1, ``O2`` on F2: ordinary customers.

1. Fault ``o1`` starts on F1: L1 loses redundancy, L2 and O1 lose supply; critical (an
   important customer with safety grade D loses supply). Restored 42 minutes later (event
   timestamps): 2 x 42 = 84 customer-minutes; F1 (3 customers): SAIFI 2/3, SAIDI 28, CAIDI 42;
   system (4 customers): SAIFI 1/2, SAIDI 21, CAIDI 42.
2. ``o2`` starts on F2, then ``o3`` on F1 while F2 is out: L1 loses supply in ``o3``. Restored
   after 10 (o3) and 30 (o2) minutes: system 6 interruptions, 84 + 30 + 3 x 10 = 144
   customer-minutes: SAIFI 1.5, SAIDI 36, CAIDI 24.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import orjson
import pytest

from schemas import topics as contract
from schemas.models import OutageAlert, ReliabilityIndices
from streams.kafka import read_all, read_latest
from tests.integration.helpers import eventually, js, produce

pytestmark = [pytest.mark.integration, pytest.mark.timeout(240)]
SHANGHAI = ZoneInfo("Asia/Shanghai")
NAME = "Li Xiaolong"


def profile(cid: str, feeders: list[str], importance: str, generator: bool, manager: str, ta: str):
    return cid.encode(), js(
        {
            "customer_id": cid,
            "name": NAME,
            "tariff_class": "general_industrial",
            "voltage_kv": 10.0,
            "importance": importance,
            "feeders": feeders,
            "transformer_area": ta,
            "emergency_generator": generator,
            "manager_id": manager,
            "tariff_cny_per_kwh": 0.8,
        }
    )


def outage(oid: str, event: str, ts: datetime, feeder: str) -> tuple[bytes, bytes]:
    doc = {"outage_id": oid, "event": event, "ts": ts.isoformat(), "scope": "feeder", "scope_id": feeder}
    return oid.encode(), js(doc)


async def alerts(settings: Any) -> dict[str, dict[str, Any]]:
    return await read_latest(settings, contract.ALERTS_OUTAGE, "alert_id")


async def test_outage_alerts_and_reliability_indices(topics, worker_factory):
    settings = topics
    now = datetime.now(SHANGHAI).replace(microsecond=0)
    worker = worker_factory(settings).start()
    await worker.wait_ready()

    await produce(
        settings,
        contract.CUSTOMERS,
        [
            profile("L1", ["F1", "F2"], "level1", True, "M1", "TA1"),
            profile("L2", ["F1"], "level2", False, "M2", "TA1"),
            profile("O1", ["F1"], "none", False, "M3", "TA1"),
            profile("O2", ["F2"], "none", False, "M3", "TA2"),
        ],
    )
    # two hours of readings for L2, 100 kW then 40 kW: the second hour is that of o1's start
    # (now - 2 h), so its hourly_kw there (not the 70 kW d30 average) is the interrupted load
    t = (now - timedelta(hours=3)).replace(minute=0, second=0)  # on 15-minute boundaries
    readings = [
        {
            "meter_id": "ML2",
            "customer_id": "L2",
            "ts": (t + timedelta(minutes=15 * (i + 1))).isoformat(),
            "kwh": 25.0 if i < 4 else 10.0,
        }
        for i in range(8)
    ]
    await produce(settings, contract.METER_READINGS, [(b"L2", js(r)) for r in readings])

    stats: dict[str, Any] = {}

    async def stats_in() -> bool:
        nonlocal stats
        stats = await read_latest(settings, contract.STATS_CUSTOMER, "customer_id")
        return stats.get("L2", {}).get("d30", {}).get("intervals") == 8

    await eventually(stats_in, 60, "stats.customer of L2 with its 8 intervals")
    # 1. fault on F1, restored 42 minutes later
    start = now - timedelta(hours=2)
    start_hour = start.astimezone(settings.tz).hour
    assert stats["L2"]["d30"]["avg_kw"] == pytest.approx(70.0)
    l2_kw = stats["L2"]["hourly_kw"][start_hour]
    assert l2_kw == pytest.approx(40.0)
    await produce(settings, contract.GRID_OUTAGES, [outage("o1", "start", start, "F1")])

    async def opened() -> bool:
        return (await alerts(settings)).get("outage:o1", {}).get("status") == "open"

    await eventually(opened, 60, "alert outage:o1 open")
    alert = OutageAlert.model_validate((await alerts(settings))["outage:o1"])
    assert alert.severity == "critical" and not alert.planned
    assert [(a.customer_id, a.impact, a.safety_grade) for a in alert.affected] == [
        ("L1", "loss_of_redundancy", "A"),
        ("L2", "loss_of_supply", "D"),
        ("O1", "loss_of_supply", "D"),
    ]
    l2 = alert.affected[1]
    assert l2.est_kw == pytest.approx(l2_kw, abs=1e-3)
    assert l2.revenue_at_risk_cny_per_h == pytest.approx(l2_kw * 0.8, abs=0.01)
    assert alert.affected[2].est_kw is None
    assert alert.manager_ids == ["M1", "M2", "M3"]

    await produce(
        settings, contract.GRID_OUTAGES, [outage("o1", "restore", start + timedelta(minutes=42), "F1")]
    )

    async def resolved() -> bool:
        return (await alerts(settings)).get("outage:o1", {}).get("status") == "resolved"

    await eventually(resolved, 60, "alert outage:o1 resolved")
    alert = OutageAlert.model_validate((await alerts(settings))["outage:o1"])
    assert alert.evidence["customer_minutes"] == pytest.approx(84.0)
    assert alert.evidence["duration_min"] == pytest.approx(42.0)

    indices: dict[str, dict[str, Any]] = {}

    async def indices_in() -> bool:
        nonlocal indices
        indices = await read_latest(settings, contract.RELIABILITY_INDICES, "scope_id")
        return {"F1", "system"} <= set(indices)

    await eventually(indices_in, 30, "reliability.indices for F1 and system")
    f1 = ReliabilityIndices.model_validate(indices["F1"])
    system = ReliabilityIndices.model_validate(indices["system"])
    assert f1.year == system.year == start.year
    assert (f1.customers_served, f1.customer_interruptions, f1.customer_minutes) == (3, 2, 84.0)
    assert (
        f1.SAIFI == pytest.approx(2 / 3)
        and f1.SAIDI == pytest.approx(28.0)
        and f1.CAIDI == pytest.approx(42.0)
    )
    assert (system.customers_served, system.customer_interruptions) == (4, 2)
    assert system.SAIFI == pytest.approx(0.5) and system.SAIDI == pytest.approx(21.0)
    assert system.CAIDI == pytest.approx(42.0) and system.momentary_interruptions == 0

    # 2. overlapping outages: F2 out, then F1: the dual-circuit customer loses supply
    t2 = start + timedelta(minutes=60)
    await produce(settings, contract.GRID_OUTAGES, [outage("o2", "start", t2, "F2")])
    await eventually(lambda: _status(settings, "outage:o2", "open"), 60, "alert outage:o2 open")
    await produce(settings, contract.GRID_OUTAGES, [outage("o3", "start", t2 + timedelta(minutes=10), "F1")])
    await eventually(lambda: _status(settings, "outage:o3", "open"), 60, "alert outage:o3 open")
    latest = await alerts(settings)
    o2 = OutageAlert.model_validate(latest["outage:o2"])
    o3 = OutageAlert.model_validate(latest["outage:o3"])
    assert {a.customer_id: a.impact for a in o2.affected} == {
        "L1": "loss_of_redundancy",
        "O2": "loss_of_supply",
    }
    assert o2.severity == "major"  # a level-1 customer loses redundancy
    assert {a.customer_id: a.impact for a in o3.affected} == {
        "L1": "loss_of_supply",
        "L2": "loss_of_supply",
        "O1": "loss_of_supply",
    }
    assert o3.severity == "critical"

    # restored: o3 after 10 minutes, o2 after 30; the dual-circuit customer counts in o3
    await produce(
        settings,
        contract.GRID_OUTAGES,
        [
            outage("o3", "restore", t2 + timedelta(minutes=20), "F1"),
            outage("o2", "restore", t2 + timedelta(minutes=30), "F2"),
        ],
    )

    async def year_to_date() -> bool:
        nonlocal indices
        indices = await read_latest(settings, contract.RELIABILITY_INDICES, "scope_id")
        return (
            indices["system"]["customer_interruptions"] == 6
            and indices.get("F2", {}).get("customer_interruptions") == 2
        )

    await eventually(year_to_date, 60, "indices with the overlapping outages")
    system = ReliabilityIndices.model_validate(indices["system"])
    assert system.customer_minutes == pytest.approx(84 + 30 + 3 * 10)
    assert (system.SAIFI, system.SAIDI, system.CAIDI) == pytest.approx((1.5, 36.0, 24.0))
    f2 = ReliabilityIndices.model_validate(indices["F2"])
    assert (f2.customers_served, f2.customer_minutes) == (2, pytest.approx(30 + 10))

    # every message validates and no name leaks
    for topic, model in (
        (contract.ALERTS_OUTAGE, OutageAlert),
        (contract.RELIABILITY_INDICES, ReliabilityIndices),
    ):
        for rec in await read_all(settings, settings.topic(topic)):
            assert NAME.encode() not in rec.value
            model.model_validate(orjson.loads(rec.value))
    assert worker.running


async def _status(settings: Any, alert_id: str, status: str) -> bool:
    return (await alerts(settings)).get(alert_id, {}).get("status") == status
