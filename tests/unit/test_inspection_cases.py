"""The inspection core on the simulated cases (simulator/areas.py, issue 13): a population of 200
customers over 14 days with a theft, two holidays in the thief's area, a customer mapped to the
wrong area, a white-screen customer and a tampered meter, fed day by day into one AreaState per
area and judged by the rules as of each day's end. Every expected rule fires, no other does, and
in the thief's area the thief ranks first among the suspects while the holiday customers do not."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime
from zoneinfo import ZoneInfo

import numpy as np
import pytest

from inspection.area import AreaState
from inspection.rules import (
    HIGH_LOSS,
    InspectionThresholds,
    TamperSeen,
    area_conditions,
    consumption_drop,
    stopped_reporting,
    tamper_codes,
    tamper_flag,
)
from inspection.suspects import Suspect, rank_area
from simulator.areas import AreaSimulation, Scenario, expected_rules, plan_scenarios
from simulator.load import LoadModel
from simulator.population import make_population

SHANGHAI = ZoneInfo("Asia/Shanghai")
# fixed first days, never the wall clock's: a Monday in March, and runs across a month's end,
# a year's end and 29 February
STARTS = [date(2026, 3, 2), date(2027, 1, 31), date(2027, 12, 30), date(2028, 2, 28)]
DAYS, SEED, N = 14, 7, 200
T = InspectionThresholds()


@dataclass
class Run:
    plan: list[Scenario]
    fired: dict[tuple[str, str], list[date]] = field(default_factory=lambda: defaultdict(list))
    rankings: dict[date, list[Suspect]] = field(default_factory=dict)  # the theft area's, on alert days
    states: dict[str, AreaState] = field(default_factory=dict)


@pytest.fixture(scope="module", params=STARTS, ids=str)
def run(request: pytest.FixtureRequest) -> Run:
    first: date = request.param
    return simulate(int(datetime(first.year, first.month, first.day, tzinfo=SHANGHAI).timestamp()))


def simulate(start: int) -> Run:
    pop = make_population(N, SEED)
    load = LoadModel(pop, SEED, SHANGHAI, growth_ref=start)
    plan = plan_scenarios(AreaSimulation(pop, load, start, DAYS, SEED, ()))
    sim = AreaSimulation(pop, load, start, DAYS, SEED, plan)
    theft_area = next(s.expected.transformer_area for s in plan if s.case == "theft" and s.expected)
    out = Run(plan, states={a: AreaState(SHANGHAI) for a in sim.areas})
    area_of = dict(zip(pop.customer_ids, sim.topology, strict=True))
    for customer, area in area_of.items():
        out.states[area].join(customer, start - 86400)
    profile = {p["customer_id"]: p for p in pop.profiles}
    tamper: dict[str, TamperSeen] = {}
    for day in sim.all_days():
        for k, area in enumerate(sim.areas):
            out.states[area].apply_supply(day.start, day.summary_kwh[k].tolist())
        for m, meter in enumerate(sim.meter_ids):
            customer = pop.customer_ids[int(sim.meter_customer[m])]
            values = [None if np.isnan(v) else float(v) for v in day.kwh[m]]
            result = out.states[area_of[customer]].apply_customer(customer, meter, day.start, values)
            assert result.count("applied") == len(result.statuses)
            for j, quality in enumerate(day.quality[m]):
                codes = tamper_codes(quality, T)
                if codes:
                    tamper[customer] = TamperSeen(meter, int(day.starts[j]) + 900, tuple(codes))
        now = float(day.end)
        ordinal = datetime.fromtimestamp(day.start, SHANGHAI).date().toordinal()
        today = date.fromordinal(ordinal)
        for area, state in out.states.items():
            days = state.days(ordinal)
            for rule, (firing, _) in area_conditions(days, T).items():
                if firing is not None:
                    out.fired[(area, rule)].append(today)
            ends = state.meters_last_end()
            flags: dict[str, set[str]] = defaultdict(set)
            for customer, series in state.customer_days(ordinal).items():
                others = [e for c, meters in ends.items() if c != customer for e in meters.values()]
                p = profile[customer]
                conditions = {
                    "consumption_drop": consumption_drop(series, days, T),
                    "stopped_reporting": stopped_reporting(
                        ends[customer],
                        others,
                        state.supply_end,
                        importance=p["importance"],
                        tariff_class=p["tariff_class"],
                        already_open=False,
                        t=T,
                    ),
                    "tamper_flag": tamper_flag(tamper.get(customer), now, T),
                }
                for rule, (firing, _) in conditions.items():
                    if firing is not None:
                        out.fired[(customer, rule)].append(today)
                        flags[customer].add(rule)
            if (
                area == theft_area
                and (area, HIGH_LOSS) in out.fired
                and out.fired[(area, HIGH_LOSS)][-1] == today
            ):
                out.rankings[today] = rank_area(state.customer_days(ordinal), days, flags)
    return out


def test_every_expected_rule_fires_and_no_other(run: Run) -> None:
    assert set(run.fired) == expected_rules(run.plan)


def test_the_rules_fire_from_the_day_the_case_shows(run: Run) -> None:
    for s in run.plan:
        assert s.expected is not None and s.expected.from_day is not None
        first = date.fromisoformat(s.expected.from_day)
        for rule in s.expected.area_rules:
            assert run.fired[(s.expected.transformer_area, rule)][0] == first, (s.case, rule)
        if s.case in ("theft", "wrong_area", "white_screen", "tamper"):
            for rule in s.expected.customer_rules:
                assert run.fired[(s.customer_id, rule)][0] == first, (s.case, rule)


def test_the_thief_ranks_first_and_the_holiday_customers_do_not(run: Run) -> None:
    thief = next(s.customer_id for s in run.plan if s.case == "theft")
    holidays = {s.customer_id for s in run.plan if s.case == "holiday"}
    assert len(run.rankings) >= 5  # every day of the theft
    for day, ranked in run.rankings.items():
        order = [s.customer_id for s in ranked]
        assert order[0] == thief, (day, [(s.customer_id, s.score, s.evidence) for s in ranked[:4]])
        assert holidays.isdisjoint(order[:1])
        top = ranked[0]
        assert "negative_loss_correlation" in top.reasons and top.evidence["coincidence"] > 0.5
