"""The inspection stage on simulator/areas.py's planned population, run by faust with tables in
memory (tests/unit/worker_harness.py): the profiles through the customers agent, then day by day
the customers' daily curves through the readings agent, what it sent to the repartition topic
through the area-energy agent, and the summary meters through the area.readings agent, as the
collection run delivers them (late, retried and overlapping re-sent blocks). Every area's final
``stats.area`` equals an ``AreaState`` fed directly from the simulation, and the stage's tick at
the end opens exactly the planned alerts, the thief first among its area's suspects.

The same population is the real-stack test's (tests/integration/test_inspection_stage.py)."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

import orjson
import pytest

from schemas import topics as contract
from simulator.areas import expected_rules
from simulator.run import Message
from tests.unit.area_population import (
    DAYS,
    YEAR_END,
    approx_doc,
    by_last_day,
    forward_energy,
    latest_stats,
    opened_alerts,
    population,
    reference,
)
from tests.unit.worker_harness import WorkerUnderTest, worker_under_test

pytestmark = pytest.mark.timeout(300)


async def run_day(
    w: WorkerUnderTest, readings: list[Message], supply: list[Message], sent_before: int
) -> int:
    async with w.agent("readings").test_context() as ctx:
        await w.put_many(ctx, [(m.key, m.value) for m in readings])
    sent = await forward_energy(w, sent_before)
    async with w.agent("area_readings").test_context() as ctx:
        await w.put_many(ctx, [(m.key, m.value) for m in supply])
    return sent


async def test_the_planned_population_gives_the_reference_figures_and_the_planned_alerts(
    tmp_path: Path,
) -> None:
    async with worker_under_test(tmp_path, credit_open_hold_s=0.0) as w:
        stage = w.worker.areas
        stage.batch_within_s = 0.01
        stage.owns = lambda area: True  # type: ignore[method-assign]  # no consumer assignment here
        w.worker.app.tables.recovery.completed.set()  # type: ignore[attr-defined]
        # a fixed first day, never the wall clock's: the run spans a year's end (one start: the run
        # takes ~50 s; the pure tests cover the others; from LEAP_DAY one reading is refused, see
        # test_simulator_areas's test of the population's demand)
        first = YEAR_END
        sim, plan, messages = population(w.settings.topic_prefix, first)
        tz = w.rt.tz
        # the stage's clock a minute after the run's end (its last local midnight), set, not read:
        # the alerts' 7-day history horizon is on the clock (stopped_reporting is judged at the
        # area's data time, whatever the clock)
        assert datetime.fromtimestamp(sim.start, tz).date() == first
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

        assert w.dead_letters(contract.METER_READINGS) == []  # the reference counts every interval
        assert w.rt.counters["area_energy_late"] == 0 and w.rt.counters["area_energy_not_member"] == 0
        assert w.rt.counters["area_energy_no_area"] == 0
        refs = reference(sim, tz, w.settings.lateness_s)
        latest = latest_stats(w, contract.STATS_AREA)
        assert latest.keys() == refs.keys()
        for area, ref in refs.items():
            assert latest[area] == approx_doc(orjson.loads(orjson.dumps(ref.stats_document(area)))), area

        assert max(a.state.data_end or 0 for a in stage.areas.values()) == end
        stage.clock = lambda: end + 120.0  # settled
        await stage.tick()
        await w.producer.flush()
        alerts = [orjson.loads(s.value or b"") for s in w.sent_to(contract.ALERTS_INSPECTION)]
        opened = opened_alerts(alerts)
        assert opened == expected_rules(plan)
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
