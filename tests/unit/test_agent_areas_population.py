"""The inspection stage on simulator/areas.py's planned population, run by faust with tables in
memory (tests/unit/worker_harness.py): the profiles through the customers agent, then day by day
the customers' daily curves through the readings agent, what it sent to the repartition topic
through the area-energy agent, and the summary meters through the area.readings agent, as the
collection run delivers them (late, retried and overlapping re-sent blocks). Every area's final
``stats.area`` equals an ``AreaState`` fed directly from the simulation, and the stage's tick at
the end opens exactly the planned alerts, the thief first among its area's suspects.

The same population is the real-stack test's (tests/integration/test_inspection_stage.py)."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pytest

from inspection.area import AreaState
from schemas import topics as contract
from simulator.area_run import area_messages, area_simulation
from simulator.areas import AreaSimulation, Scenario, plan_scenarios
from simulator.run import Message, SimulationOptions
from streams.app import area_energy_topic
from tests.unit.worker_harness import WorkerUnderTest, worker_under_test

pytestmark = pytest.mark.timeout(300)

CUSTOMERS, DAYS, SEED = 200, 12, 7


def population(prefix: str) -> tuple[AreaSimulation, list[Scenario], list[Message]]:
    opts = SimulationOptions(
        bootstrap="unused:9",
        topic_prefix=prefix,
        customers=CUSTOMERS,
        days=DAYS,
        seed=SEED,
        blocks=True,
        outages=False,
    )
    sim, _ = area_simulation(opts)
    bare = replace(sim, scenarios=())
    plan = plan_scenarios(bare, event_day=sim.days - 5)  # every case within the 7-day horizon at the end
    sim = replace(bare, scenarios=plan)
    return sim, plan, list(area_messages(sim, opts))


def reference(sim: AreaSimulation, tz: Any, lateness_s: int) -> dict[str, AreaState]:
    states = {a: AreaState(tz, lateness_s) for a in sim.areas}
    area_of = dict(zip(sim.pop.customer_ids, sim.topology, strict=True))
    for customer, area in area_of.items():
        states[area].join(customer, 0)
    for day in sim.all_days():
        for k, area in enumerate(sim.areas):
            states[area].apply_supply(day.start, day.summary_kwh[k].tolist())
        for m, meter in enumerate(sim.meter_ids):
            customer = sim.pop.customer_ids[int(sim.meter_customer[m])]
            states[area_of[customer]].apply_customer(
                customer, meter, day.start, [None if np.isnan(v) else float(v) for v in day.kwh[m]]
            )
    return states


def expected_alerts(plan: list[Scenario]) -> set[tuple[str, str]]:
    out: set[tuple[str, str]] = set()
    for s in plan:
        assert s.expected is not None
        e = s.expected
        out |= {(e.transformer_area, rule) for rule in e.area_rules}
        out |= {(s.customer_id, rule) for rule in e.customer_rules}
        if e.other_area is not None:
            out |= {(e.other_area, rule) for rule in e.other_area_rules}
    return out


def by_last_day(messages: list[Message], tz: Any) -> list[list[Message]]:
    """The blocks grouped by the local day of their last interval, in delivery order."""
    days: dict[str, list[Message]] = {}
    for m in messages:
        v = orjson.loads(m.value or b"null")
        start = datetime.fromisoformat(v["start"]).timestamp()
        last = start + (len(v["kwh"]) - 1) * v["interval_s"]
        days.setdefault(datetime.fromtimestamp(last, tz).date().isoformat(), []).append(m)
    return [days[d] for d in sorted(days)]


async def run_day(
    w: WorkerUnderTest, readings: list[Message], supply: list[Message], sent_before: int
) -> int:
    async with w.agent("readings").test_context() as ctx:
        await w.put_many(ctx, [(m.key, m.value) for m in readings])
    name = area_energy_topic(w.settings)
    sent = [s for s in w.producer.sent if s.topic == name]
    async with w.agent("area_energy").test_context() as ctx:
        for s in sent[sent_before:]:
            await w.put(ctx, s.key, s.value, partition=s.partition)
    async with w.agent("area_readings").test_context() as ctx:
        await w.put_many(ctx, [(m.key, m.value) for m in supply])
    return len(sent)


def approx_doc(doc: Any) -> Any:
    if isinstance(doc, dict):
        return {k: approx_doc(v) for k, v in doc.items()}
    if isinstance(doc, list):
        return [approx_doc(v) for v in doc]
    if isinstance(doc, float):
        return pytest.approx(doc, rel=1e-9, abs=1e-9)
    return doc


async def test_the_planned_population_gives_the_reference_figures_and_the_planned_alerts(
    tmp_path: Path,
) -> None:
    async with worker_under_test(tmp_path, credit_open_hold_s=0.0) as w:
        stage = w.worker.areas
        stage.batch_within_s = 0.01
        stage.owns = lambda area: True  # type: ignore[method-assign]  # no consumer assignment here
        w.worker.app.tables.recovery.completed.set()  # type: ignore[attr-defined]
        sim, plan, messages = population(w.settings.topic_prefix)
        tz = w.rt.tz
        # the stage's clock a minute after the run's end (its last local midnight): stopped_reporting
        # compares the meters' newest interval ends with the clock (4 h), so it is set, not read
        first = datetime.fromtimestamp(sim.start, tz).date()
        last = first + timedelta(days=sim.days)
        end = int(datetime(last.year, last.month, last.day, tzinfo=tz).timestamp())
        stage.clock = lambda: end + 60.0
        topic = {m.topic[len(w.settings.topic_prefix) :] for m in messages}
        assert topic == {contract.CUSTOMERS, contract.METER_READINGS, contract.AREA_READINGS}
        of = lambda t: [m for m in messages if m.topic == w.settings.topic(t)]  # noqa: E731
        async with w.agent("customers").test_context() as ctx:
            await w.put_many(ctx, [(m.key, m.value) for m in of(contract.CUSTOMERS)])
        readings, supply = (
            by_last_day(of(contract.METER_READINGS), tz),
            by_last_day(of(contract.AREA_READINGS), tz),
        )
        assert len(readings) == len(supply) == DAYS
        sent = 0
        for day_readings, day_supply in zip(readings, supply, strict=True):
            sent = await run_day(w, day_readings, day_supply, sent)

        assert w.rt.counters["area_energy_late"] == 0 and w.rt.counters["area_energy_not_member"] == 0
        assert w.rt.counters["area_energy_no_area"] == 0
        refs = reference(sim, tz, w.settings.lateness_s)
        latest = {}
        for s in w.sent_to(contract.STATS_AREA):
            assert s.key is not None and s.value is not None
            latest[s.key.decode()] = orjson.loads(s.value)
        assert latest.keys() == refs.keys()
        for area, ref in refs.items():
            assert latest[area] == approx_doc(orjson.loads(orjson.dumps(ref.stats_document(area)))), area

        assert max(a.state.data_end or 0 for a in stage.areas.values()) == end
        stage.clock = lambda: end + 120.0  # settled
        await stage.tick()
        await w.producer.flush()
        alerts = [orjson.loads(s.value or b"") for s in w.sent_to(contract.ALERTS_INSPECTION)]
        opened = {
            (a["customer_id"] if a["scope"] == "customer" else a["transformer_area"], a["rule"])
            for a in alerts
            if a["status"] != "resolved"
        }
        assert opened == expected_alerts(plan)
        assert len(alerts) == len(opened)  # once each
        thief = next(s for s in plan if s.case == "theft")
        assert thief.expected is not None
        holidays = {s.customer_id for s in plan if s.case == "holiday"}
        theft_area = thief.expected.transformer_area
        (high,) = [
            a for a in alerts if a["rule"] == "area_high_loss" and a.get("transformer_area") == theft_area
        ]
        order = [s["customer_id"] for s in high["suspects"]]
        assert order[0] == thief.customer_id and holidays.isdisjoint(order[:1]), high["suspects"][:3]
