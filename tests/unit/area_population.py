"""The planned population of the inspection stage's agent-flow tests (simulator/areas.py: every
case of issue 13, 5 days before the end), its reference figures (an ``AreaState`` per area fed
directly, day by day, from the simulation), the alerts it plans, and the stage's sends read back.
Shared by tests/unit/test_agent_areas_population.py and tests/unit/test_agent_areas.py."""

from __future__ import annotations

from dataclasses import replace
from datetime import date, datetime
from typing import Any

import numpy as np
import orjson
import pytest

from inspection.area import AreaState
from simulator.area_run import area_messages, area_simulation
from simulator.areas import AreaSimulation, Scenario, plan_scenarios
from simulator.run import Message, SimulationOptions
from streams.app import area_energy_topic
from tests.unit.worker_harness import WorkerUnderTest

CUSTOMERS, DAYS, SEED = 200, 12, 7
# Fixed first days, never the wall clock's: a run from YEAR_END spans a year's end, from LEAP_DAY
# 29 February and a month's end. In the past, as the agents refuse readings from the future.
YEAR_END, LEAP_DAY = date(2025, 12, 30), date(2024, 2, 28)


def population(prefix: str, first: date) -> tuple[AreaSimulation, list[Scenario], list[Message]]:
    """The planned run of ``DAYS`` whole local days from ``first`` (the options' time zone)."""
    opts = SimulationOptions(
        bootstrap="unused:9",
        topic_prefix=prefix,
        customers=CUSTOMERS,
        days=DAYS,
        seed=SEED,
        blocks=True,
        outages=False,
    )
    opts = replace(opts, start=datetime(first.year, first.month, first.day, tzinfo=opts.tz))
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


def by_last_day(messages: list[Message], tz: Any) -> list[list[Message]]:
    """The blocks grouped by the local day of their last interval, in delivery order."""
    days: dict[str, list[Message]] = {}
    for m in messages:
        v = orjson.loads(m.value or b"null")
        start = datetime.fromisoformat(v["start"]).timestamp()
        last = start + (len(v["kwh"]) - 1) * v["interval_s"]
        days.setdefault(datetime.fromtimestamp(last, tz).date().isoformat(), []).append(m)
    return [days[d] for d in sorted(days)]


async def forward_energy(w: WorkerUnderTest, sent_before: int) -> int:
    """What the readings agent sent to the repartition topic since ``sent_before`` through the
    area-energy agent (each in its partition); returns how many were sent in all."""
    name = area_energy_topic(w.settings)
    sent = [s for s in w.producer.sent if s.topic == name]
    async with w.agent("area_energy").test_context() as ctx:
        for s in sent[sent_before:]:
            await w.put(ctx, s.key, s.value, partition=s.partition)
    return len(sent)


def approx_doc(doc: Any) -> Any:
    if isinstance(doc, dict):
        return {k: approx_doc(v) for k, v in doc.items()}
    if isinstance(doc, list):
        return [approx_doc(v) for v in doc]
    if isinstance(doc, float):
        return pytest.approx(doc, rel=1e-9, abs=1e-9)
    return doc


def latest_stats(w: WorkerUnderTest, topic: str) -> dict[str, Any]:
    """Per key, the newest document the stage sent to ``topic`` (a contract name)."""
    latest = {}
    for s in w.sent_to(topic):
        assert s.key is not None and s.value is not None
        latest[s.key.decode()] = orjson.loads(s.value)
    return latest


def opened_alerts(alerts: list[dict[str, Any]]) -> set[tuple[str, str]]:
    return {
        (a["customer_id"] if a["scope"] == "customer" else a["transformer_area"], a["rule"])
        for a in alerts
        if a["status"] != "resolved"
    }
