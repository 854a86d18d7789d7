"""The inspection stage on the real stack (streams/agents/areas.py, issue 13).

1. simulator/areas.py's planned population (200 customers, 12 whole local days ending at the last
   local midnight, the cases 5 days before the end so that every one is within the alerts'
   7-day horizon: a theft, two holidays in the thief's area, a customer mapped to the wrong area,
   a white-screen customer with two meters, a tampered meter), delivered as the collection run
   delivers daily curves (late, retried and overlapping re-sent blocks), one day after the other
   as data arrives daily (``day_done`` says why), through a real worker:
   - every area's final ``stats.area`` equals an independent reference (an ``AreaState`` per
     area fed directly from the simulation), and Redis ``gp:areas:<area>`` holds it;
   - the open alerts are exactly the planned ones (DOMAIN.md 6), and no other alert id is ever
     published; the thief ranks first among its area's suspects, the holiday customers do not;
   - ``gridpulse alerts-consumer`` stores them in PostgreSQL: read back, the same alerts.
2. The same population with the worker SIGKILLed in the middle of a day (once it has committed
   some of that day's readings) and restarted: every area ends with the same figures (nothing
   lost, nothing counted twice).
3. The same population as one 12-day backlog sent at once, every summary meter first: the
   summary meters run days ahead of the customers' energy, nothing is refused, every area ends
   with the reference figures.

Written for the lead to run against the stack (``make up``); not run by its author (the
benchmark's machine time).
"""

from __future__ import annotations

import asyncio
from collections import Counter
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg
import numpy as np
import orjson
import pytest
import redis.asyncio as aioredis

from alerts.consumer import AlertsConsumer
from gridpulse.settings import Settings
from inspection.area import AreaState
from schemas import topics as contract
from schemas.models import InspectionAlert, StatsArea
from simulator.area_run import area_messages, area_simulation
from simulator.areas import AreaSimulation, Scenario, expected_rules, plan_scenarios
from simulator.run import Message, SimulationOptions
from streams.app import area_energy_topic
from streams.kafka import create_internal_topics, make_admin, read_all, read_latest
from streams.sinks import flatten
from tests.integration.helpers import committed_offsets, eventually, produce

pytestmark = [pytest.mark.integration, pytest.mark.timeout(600)]

CUSTOMERS, DAYS, SEED = 200, 12, 7
# The inspection alerts' life cycle is the credit one. An open hold of 20 s (production: 30 s):
# stopped_reporting is judged at the area's data time, and while a day is being delivered, an area
# that already has most of its customers' curves of the day and not yet the rest reads as if the
# rest were silent; the hold lets such a passing state go unpublished, as it would in production.
# The area agents' batch window of 1 s (production: 10 s; the settle follows it): a day is counted
# in about a second instead of ten, twelve days one after the other.
FAST = {"GRIDPULSE_CREDIT_OPEN_HOLD_S": "20", "GRIDPULSE_AREA_BATCH_WITHIN_S": "1"}


def population(settings: Settings, now: datetime) -> tuple[AreaSimulation, list[Scenario], list[Message]]:
    """The planned run of ``DAYS`` whole local days ending at the last local midnight before
    ``now`` (the test's one reading of the wall clock: the broker's retention and the alerts'
    7-day horizon need recent data; no month or weekday is assumed)."""
    opts = SimulationOptions(
        bootstrap=settings.kafka_bootstrap,
        topic_prefix=settings.topic_prefix,
        customers=CUSTOMERS,
        days=DAYS,
        seed=SEED,
        blocks=True,
        outages=False,
    )
    sim, _ = area_simulation(opts, now)
    bare = replace(sim, scenarios=())
    plan = plan_scenarios(bare, event_day=sim.days - 5)  # within the horizon at the run's end
    sim = replace(bare, scenarios=plan)
    return sim, plan, list(area_messages(sim, opts))


def reference(sim: AreaSimulation, tz: Any, lateness_s: int) -> dict[str, AreaState]:
    """One AreaState per area, fed directly with the simulation's days (every customer a member
    of its topology area from the beginning, as the stream's first profile makes it)."""
    states = {a: AreaState(tz, lateness_s) for a in sim.areas}
    area_of = dict(zip(sim.pop.customer_ids, sim.topology, strict=True))
    for customer, area in area_of.items():
        states[area].join(customer, 0)
    for day in sim.all_days():
        for k, area in enumerate(sim.areas):
            states[area].apply_supply(day.start, day.summary_kwh[k].tolist())
        for m, meter in enumerate(sim.meter_ids):
            customer = sim.pop.customer_ids[int(sim.meter_customer[m])]
            values = [None if np.isnan(v) else float(v) for v in day.kwh[m]]
            states[area_of[customer]].apply_customer(customer, meter, day.start, values)
    return states


def by_last_day(messages: list[Message], settings: Settings, topic: str) -> list[tuple[str, list[Message]]]:
    """A topic's blocks grouped by the local day of their last interval (a day's collection run:
    its curves, late ones and re-sent overlaps with the day before in front), oldest first."""
    days: dict[str, list[Message]] = {}
    for m in messages:
        if m.topic != settings.topic(topic):
            continue
        v = orjson.loads(m.value or b"null")
        last = datetime.fromisoformat(v["start"]).timestamp() + (len(v["kwh"]) - 1) * v["interval_s"]
        days.setdefault(datetime.fromtimestamp(last, settings.tz).date().isoformat(), []).append(m)
    return sorted(days.items())


async def send_profiles(settings: Settings, messages: list[Message]) -> None:
    profiles = [(m.key, m.value) for m in messages if m.topic == settings.topic(contract.CUSTOMERS)]
    await produce(settings, contract.CUSTOMERS, profiles)


async def send_day(settings: Settings, readings: list[Message], supply: list[Message]) -> None:
    await produce(settings, contract.METER_READINGS, [(m.key, m.value) for m in readings])
    await produce(settings, contract.AREA_READINGS, [(m.key, m.value) for m in supply])


async def day_done(settings: Settings, day: str, want: dict[str, dict[str, Any]], within_s: float) -> None:
    """Every area's ``stats.area`` shows ``day`` as the reference does.

    The days are delivered one at a time as data arrives daily (the case the alerts are timed
    for); a whole backlog sent at once is `test_a_backlog_summary_meters_first_loses_no_energy`."""

    def entry(doc: dict[str, Any]) -> dict[str, Any] | None:
        return next((d for d in doc.get("daily", []) if d["date"] == day), None)

    latest: dict[str, Any] = {}

    async def done() -> bool:
        nonlocal latest
        latest = await read_latest(settings, contract.STATS_AREA, "transformer_area")
        return all(
            a in latest and entry(latest[a]) == approx_doc(entry(want_doc)) for a, want_doc in want.items()
        )

    try:
        await eventually(done, within_s, f"every area's figures of {day}")
    except AssertionError:
        for a, want_doc in sorted(want.items()):  # say which area and which figure
            assert entry(latest.get(a, {})) == approx_doc(entry(want_doc)), (day, a)
        raise


async def deliver(
    settings: Settings, messages: list[Message], want_by_day: dict[str, dict[str, dict[str, Any]]]
) -> None:
    """Profiles, then day by day both topics, each day once the one before is counted."""
    await send_profiles(settings, messages)
    readings = by_last_day(messages, settings, contract.METER_READINGS)
    supply = dict(by_last_day(messages, settings, contract.AREA_READINGS))
    for day, day_readings in readings:
        await send_day(settings, day_readings, supply.get(day, []))
        await day_done(settings, day, want_by_day[day], within_s=120)


def reference_by_day(sim: AreaSimulation, settings: Settings) -> dict[str, dict[str, dict[str, Any]]]:
    """Per local day of the run, every area's stats.area as the reference has it after that day
    (the daily entry of a day is final once its day has been delivered)."""
    final = reference(sim, settings.tz, settings.lateness_s)
    docs = {a: orjson.loads(orjson.dumps(s.stats_document(a))) for a, s in final.items()}
    days = sorted({d["date"] for doc in docs.values() for d in doc["daily"]})
    return {day: docs for day in days}


def approx_doc(doc: Any) -> Any:
    """A document with its floats compared to 1e-9 (sums over meters in arrival order)."""
    if isinstance(doc, dict):
        return {k: approx_doc(v) for k, v in doc.items()}
    if isinstance(doc, list):
        return [approx_doc(v) for v in doc]
    if isinstance(doc, float):
        return pytest.approx(doc, rel=1e-9, abs=1e-9)
    return doc


async def areas_match(
    settings: Settings, want: dict[str, dict[str, Any]], within_s: float, worker: Any = None
) -> dict[str, Any]:
    latest: dict[str, Any] = {}

    async def matched() -> bool:
        nonlocal latest
        latest = await read_latest(settings, contract.STATS_AREA, "transformer_area")
        return latest.keys() == want.keys() and all(latest[a] == approx_doc(want[a]) for a in want)

    try:
        await eventually(matched, within_s, "every area's stats.area equal to the reference")
    except AssertionError:
        if worker is not None:  # shown with the failure: what the worker refused or held
            area_counters = {k: v for k, v in (await worker.counters())["counters"].items() if "area" in k}
            print("worker counters:", area_counters)
        for a in sorted(want):  # say which area, which day and which figure
            got = latest.get(a) or {}
            for day in want[a].get("daily", []):
                mine = next((d for d in got.get("daily", []) if d["date"] == day["date"]), None)
                assert mine == approx_doc(day), (a, day["date"])
            assert got == approx_doc(want[a]), a
        raise
    return latest


async def alert_records(settings: Settings) -> list[dict[str, Any]]:
    out = []
    for rec in await read_all(settings, settings.topic(contract.ALERTS_INSPECTION)):
        doc = orjson.loads(rec.value)
        InspectionAlert.model_validate(doc)
        assert rec.key == doc["alert_id"].encode()
        out.append(doc)
    return out


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def scope_rule(alert: dict[str, Any]) -> tuple[str, str]:
    scope_id = alert["customer_id"] if alert["scope"] == "customer" else alert["transformer_area"]
    return str(scope_id), str(alert["rule"])


REPORT = Path(__file__).resolve().parents[2] / "bench" / "out" / "inspection_cases.json"


def write_cases_report(
    plan: list[Scenario], alerts: list[dict[str, Any]], final: dict[str, dict[str, Any]]
) -> None:
    """The run's cases, the alerts they gave (publications per alert) and every open area
    alert's suspect ranking with each planned customer's place in it: ``bench/out/
    inspection_cases.json``, for the reader of the run (the closing note's tables)."""
    publications = Counter(a["alert_id"] for a in alerts)
    cases = {s.customer_id: s.case for s in plan}
    report = {
        "cases": [
            {
                "case": s.case,
                "customer_id": s.customer_id,
                "transformer_area": s.expected.transformer_area if s.expected else None,
                "expected": sorted(r for r in (s.expected.area_rules + s.expected.customer_rules))
                if s.expected
                else [],
                "other_area": s.expected.other_area if s.expected else None,
            }
            for s in plan
        ],
        "alerts": [
            {
                "alert_id": aid,
                "status": a["status"],
                "severity": a["severity"],
                "publications": publications[aid],
                "reason": a["reason"],
                "suspects": [
                    {
                        "rank": i + 1,
                        "customer_id": x["customer_id"],
                        "score": x["score"],
                        "reasons": x["reasons"],
                        "case": cases.get(x["customer_id"]),
                    }
                    for i, x in enumerate(a.get("suspects") or [])
                ],
            }
            for aid, a in sorted(final.items())
        ],
    }
    REPORT.parent.mkdir(parents=True, exist_ok=True)
    REPORT.write_bytes(orjson.dumps(report, option=orjson.OPT_INDENT_2))


async def test_the_planned_cases_give_their_alerts_and_every_area_its_figures(alert_settings, worker_factory):
    settings = alert_settings
    now = datetime.now(UTC)  # read once: every instant of the run derives from it
    sim, plan, messages = population(settings, now)
    refs = reference(sim, settings.tz, settings.lateness_s)
    want = {a: orjson.loads(orjson.dumps(s.stats_document(a))) for a, s in refs.items()}
    for doc in want.values():
        StatsArea.model_validate(doc)
    # every planned alert, the white screen's stopped_reporting included: it is judged at the
    # area's data time (the run's last local midnight), whenever the worker looks
    expected = expected_rules(plan)
    assert any(rule == "stopped_reporting" for _, rule in expected)

    def as_planned(got: set[tuple[str, str]]) -> bool:
        return got == expected

    worker = worker_factory(settings, **FAST).start()
    await worker.wait_ready()
    await deliver(settings, messages, reference_by_day(sim, settings))

    latest = await areas_match(settings, want, within_s=240)
    client = aioredis.from_url(settings.redis_url)
    try:
        for area, doc in latest.items():
            key = f"{settings.topic_prefix}gp:areas:{area}"
            raw = await client.hgetall(key)
            stored = {_text(k): _text(v) for k, v in raw.items()}
            assert {k: stored[k] for k in ("doc", "ts")} == flatten(doc), area
            await client.delete(key)
    finally:
        await client.aclose()

    alerts: list[dict[str, Any]] = []

    async def all_open() -> bool:
        nonlocal alerts
        alerts = await alert_records(settings)
        final = {a["alert_id"]: a for a in alerts}
        return as_planned({scope_rule(a) for a in final.values() if a["status"] != "resolved"})

    await eventually(all_open, 180, f"the planned alerts open: {sorted(expected)}")
    await asyncio.sleep(15)  # a settle and a few ticks more: nothing else may come
    alerts = await alert_records(settings)
    final = {a["alert_id"]: a for a in alerts}
    assert as_planned({scope_rule(a) for a in alerts})  # no other alert, ever
    assert as_planned({scope_rule(a) for a in final.values() if a["status"] != "resolved"})
    publications = Counter(a["alert_id"] for a in alerts)
    storm = {
        aid: [(a["status"], a["severity"], a["ts"], a["reason"][:90]) for a in alerts if a["alert_id"] == aid]
        for aid, n in publications.items()
        if n > 3
    }
    # no storm: open, escalated, resolved at most (an open area alert is news again only when its
    # loss moves by more than 2 points or its first suspect changes: inspection.rules)
    assert storm == {}, orjson.dumps(storm, option=orjson.OPT_INDENT_2).decode()
    counters = (await worker.counters())["counters"]
    for refused in ("area_energy_no_area", "area_energy_not_member", "area_energy_late"):
        assert counters.get(refused, 0) == 0, counters

    write_cases_report(plan, alerts, final)

    thief = next(s for s in plan if s.case == "theft")
    holidays = {s.customer_id for s in plan if s.case == "holiday"}
    assert thief.expected is not None
    high = final[f"inspection:{thief.expected.transformer_area}:area_high_loss"]
    order = [s["customer_id"] for s in high["suspects"]]
    assert order[0] == thief.customer_id and holidays.isdisjoint(order[:1]), high["suspects"][:4]
    assert high["manager_ids"] and all(m for m in high["manager_ids"])
    customer_rule = {"white_screen": "stopped_reporting", "tamper": "tamper_flag"}
    for s in plan:
        if s.case in customer_rule and (s.customer_id, customer_rule[s.case]) in expected:
            assert s.expected is not None
            alert = final[f"inspection:{s.customer_id}:{customer_rule[s.case]}"]
            assert alert["manager_id"] is not None
            assert alert["transformer_area"] == s.expected.transformer_area  # the area that judged it

    # the alert store: `gridpulse alerts-consumer` reads alerts.inspection into PostgreSQL
    consumer = AlertsConsumer(settings)
    task = asyncio.create_task(consumer.run())
    try:
        await asyncio.wait_for(consumer.ready.wait(), timeout=60)
        conn = await asyncpg.connect(settings.pg_dsn.get_secret_value())
        try:

            async def all_stored() -> bool:
                n = await conn.fetchval("SELECT count(*) FROM alerts WHERE kind = 'inspection'")
                return int(n) >= len(final)

            await eventually(all_stored, 60, "every inspection alert in the alert store")
            rows = {
                r["alert_id"]: r for r in await conn.fetch("SELECT * FROM alerts WHERE kind = 'inspection'")
            }
        finally:
            await conn.close()
    finally:
        consumer.stop()
        await asyncio.wait_for(task, timeout=60)
    assert rows.keys() == final.keys()
    for aid, msg in final.items():
        row = rows[aid]
        assert (row["status"], row["severity"], row["rule"]) == (msg["status"], msg["severity"], msg["rule"])
        if msg["scope"] == "transformer_area":
            assert row["transformer_area"] == msg["transformer_area"]
            assert sorted(row["manager_ids"]) == sorted(msg["manager_ids"])
        else:
            assert row["manager_ids"] == [msg["manager_id"]]


async def test_sigkill_mid_run_ends_with_the_same_area_figures(topics, worker_factory):
    settings = topics.model_copy(update={"batch_max": 200, "batch_within_s": 0.2})
    now = datetime.now(UTC)  # read once: every instant of the run derives from it
    sim, _, messages = population(settings, now)
    refs = reference(sim, settings.tz, settings.lateness_s)
    want = {a: orjson.loads(orjson.dumps(s.stats_document(a))) for a, s in refs.items()}

    by_day = reference_by_day(sim, settings)
    readings = by_last_day(messages, settings, contract.METER_READINGS)
    supply = dict(by_last_day(messages, settings, contract.AREA_READINGS))
    readings_topic = settings.topic(contract.METER_READINGS)

    first = worker_factory(settings, **FAST).start()
    await first.wait_ready()
    await send_profiles(settings, messages)
    half = len(readings) // 2
    for day, day_readings in readings[:half]:
        await send_day(settings, day_readings, supply.get(day, []))
        await day_done(settings, day, by_day[day], within_s=120)
    before = sum((await committed_offsets(settings, readings_topic)).values())
    day, day_readings = readings[half]
    await send_day(settings, day_readings, supply.get(day, []))

    async def started() -> bool:  # the day's readings are being applied and committed
        return sum((await committed_offsets(settings, readings_topic)).values()) > before

    await eventually(started, 120, "the worker has committed some of the day's readings")
    first.kill()  # SIGKILL mid-day: no commit, no flush, no goodbye

    second = worker_factory(settings, **FAST).start()
    await second.wait_ready(within_s=180)
    await day_done(settings, day, by_day[day], within_s=240)
    for day, day_readings in readings[half + 1 :]:
        await send_day(settings, day_readings, supply.get(day, []))
        await day_done(settings, day, by_day[day], within_s=120)
    await areas_match(settings, want, within_s=120)
    counters = (await second.counters())["counters"]
    assert counters.get("area_energy_not_member", 0) == 0, counters  # no energy refused
    assert counters.get("area_energy_late", 0) == 0, counters
    assert counters.get("area_energy_no_area", 0) == 0, counters  # nothing left out of its area


async def test_a_backlog_summary_meters_first_loses_no_energy(topics, worker_factory):
    """The planned population as one backlog of 12 days sent at once: every summary meter's
    blocks first, then all the customers' curves. The summary meters (one hop) run days ahead
    of the customers' energy (two hops, through the repartition topic); the areas judge each
    side's lateness against its own newest interval, so nothing is refused and every area ends
    with the reference figures."""
    settings = topics
    now = datetime.now(UTC)  # read once: every instant of the run derives from it
    sim, _, messages = population(settings, now)
    refs = reference(sim, settings.tz, settings.lateness_s)
    want = {a: orjson.loads(orjson.dumps(s.stats_document(a))) for a, s in refs.items()}
    worker = worker_factory(settings, **FAST).start()
    await worker.wait_ready()
    await send_profiles(settings, messages)
    of = lambda t: [(m.key, m.value) for m in messages if m.topic == settings.topic(t)]  # noqa: E731
    await produce(settings, contract.AREA_READINGS, of(contract.AREA_READINGS))
    await produce(settings, contract.METER_READINGS, of(contract.METER_READINGS))
    await areas_match(settings, want, within_s=300, worker=worker)
    all_counters = (await worker.counters())["counters"]
    counters = {k: v for k, v in all_counters.items() if k.startswith(("area_", "readings_"))}
    assert counters.get("area_energy_applied", 0) > 0, counters
    assert refused(counters) == {}, counters
    # the profiles were sent first: the readings waited for them rather than run ahead
    assert counters.get("readings_profile_wait_expired", 0) == 0, counters


def refused(counters: dict[str, int]) -> dict[str, int]:
    """The area counters of energy or supply not counted: late, not a member, no area."""
    return {k: v for k, v in counters.items() if k.endswith(("_late", "_not_member", "_no_area")) and v}


async def test_the_repartition_topic_exists_before_a_worker_subscribes(topics):
    """`gridpulse worker` creates ``<app_id>-area-energy`` before faust starts (a group assigned
    before it existed ignored it: the area agent read nothing); with the app's partitions."""
    settings = topics
    name = area_energy_topic(settings)
    assert await create_internal_topics(settings) == {name: "created"}
    assert await create_internal_topics(settings) == {name: "exists"}  # idempotent
    admin = make_admin(settings)
    await admin.start()
    try:

        async def partitions() -> bool:  # the broker's metadata follows the creation shortly
            (described,) = await admin.describe_topics([name])
            return len(described["partitions"]) == settings.topic_partitions

        await eventually(partitions, 30, f"{name} with {settings.topic_partitions} partitions")
    finally:
        await admin.close()
