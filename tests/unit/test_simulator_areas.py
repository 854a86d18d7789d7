"""simulator/areas.py: transformer areas with summary meters and the inspection cases (issue 13).

The summary meter against an independent sum of the true energy; each case changing exactly what
it says (and nothing else, against the same run without cases); the planned cases showing in the
areas' daily loss rates as their expected outcomes say; white screen, tamper codes, wrong area and
holiday on the wire; determinism by seed; the single and block forms carrying the same intervals,
and every value decoding and validating as the contract's ``meter.readings``."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date, datetime, timedelta
from itertools import islice, pairwise
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np
import orjson
import pytest

from gridpulse.cli import build_parser
from schemas import topics
from schemas.blocks import ReadingBlock, decode_reading
from schemas.validation import DEMAND_MARGIN, check_block, check_reading
from simulator.area_run import area_messages, area_simulation
from simulator.areas import (
    TAMPER_CODES,
    AreaDay,
    AreaSimulation,
    LossOptions,
    Scenario,
    plan_scenarios,
    summary_meter_id,
)
from simulator.bad import BadConfig
from simulator.blocks import CollectionOptions
from simulator.cli import options_from_args
from simulator.clock import INTERVAL_S
from simulator.load import LoadModel
from simulator.population import make_population
from simulator.run import Message, Simulation, SimulationOptions
from tests.unit.area_population import LEAP_DAY, YEAR_END, population

SHANGHAI = ZoneInfo("Asia/Shanghai")
START = int(datetime(2026, 3, 2, tzinfo=SHANGHAI).timestamp())  # a Monday
DAYS = 14
SEED = 7
N = 200


def make_sim(
    scenarios: list[Scenario] | None = None, seed: int = SEED, n: int = N, days: int = DAYS
) -> AreaSimulation:
    pop = make_population(n, seed)
    load = LoadModel(pop, seed, SHANGHAI, growth_ref=START)
    return AreaSimulation(pop, load, START, days, seed, scenarios or ())


@pytest.fixture(scope="module")
def bare() -> AreaSimulation:
    return make_sim()


@pytest.fixture(scope="module")
def plan(bare: AreaSimulation) -> list[Scenario]:
    return plan_scenarios(bare)


@pytest.fixture(scope="module")
def sim(plan: list[Scenario]) -> AreaSimulation:
    return make_sim(plan)


@pytest.fixture(scope="module")
def window(sim: AreaSimulation, plan: list[Scenario]) -> AreaSimulation:
    """The planned run's two days from the cases' start (every case on the wire, fewer messages)."""
    first = datetime.fromtimestamp(case(plan, "theft").since, SHANGHAI)
    return AreaSimulation(sim.pop, sim.load, int(first.timestamp()), 2, SEED, plan)


@pytest.fixture(scope="module")
def bare_days(bare: AreaSimulation) -> list[AreaDay]:
    return list(bare.all_days())


@pytest.fixture(scope="module")
def days(sim: AreaSimulation) -> list[AreaDay]:
    return list(sim.all_days())


def case(plan: list[Scenario], name: str) -> Scenario:
    return next(s for s in plan if s.case == name)


def cidx(sim: AreaSimulation, customer_id: str) -> int:
    return sim.pop.customer_ids.index(customer_id)


def meters_of(sim: AreaSimulation, customer_id: str) -> list[int]:
    return [m for m, i in enumerate(sim.meter_customer.tolist()) if sim.pop.customer_ids[i] == customer_id]


def daily_rates(sim: AreaSimulation, days: list[AreaDay]) -> dict[str, np.ndarray]:
    """Each area's daily loss rate by DOMAIN.md 6, computed here: the summary meter's kWh against
    the sum of what the meters the topology puts in the area reported, per local day."""
    out: dict[str, list[float]] = {a: [] for a in sim.areas}
    for day in days:
        for a, area in enumerate(sim.areas):
            members = set(sim.customers_in(area))
            rows = [
                m for m, i in enumerate(sim.meter_customer.tolist()) if sim.pop.customer_ids[i] in members
            ]
            supplied = float(day.summary_kwh[a].sum())
            consumed = float(np.nansum(day.kwh[rows]))
            out[area].append((supplied - consumed) / supplied)
    return {a: np.array(v) for a, v in out.items()}


def day_index(sim: AreaSimulation, iso: str) -> int:
    first = datetime.fromtimestamp(sim.start, SHANGHAI).date()
    return (datetime.fromisoformat(iso).date() - first).days


# -- the summary meter ------------------------------------------------------------------------


def test_the_summary_meter_is_the_true_sum_of_the_area_times_one_plus_its_loss(
    sim: AreaSimulation, days: list[AreaDay]
) -> None:
    for day in days:
        assert day.summary_kwh.shape == (len(sim.areas), 96)
        for a in range(len(sim.areas)):
            for t in range(day.true_kwh.shape[1]):
                inside = day.physical_area[:, t] == a
                expected = day.true_kwh[inside, t].sum() * (1 + day.technical_loss[a])
                assert day.summary_kwh[a, t] == pytest.approx(expected, abs=6e-5)


def test_technical_loss_is_a_few_per_cent_per_area_with_daily_noise(bare_days: list[AreaDay]) -> None:
    loss = np.stack([d.technical_loss for d in bare_days], axis=1)  # [area, day]
    opts = LossOptions()
    assert loss.min() >= opts.floor and loss.max() <= opts.ceiling
    assert np.all((loss.mean(axis=1) > 0.015) & (loss.mean(axis=1) < 0.055))
    assert np.all(loss.std(axis=1) > 0)  # the days differ
    assert loss.mean(axis=1).std() > 0.003  # so do the areas


def test_without_cases_the_meters_report_the_true_energy_and_the_simulator_s_readings(
    bare: AreaSimulation, bare_days: list[AreaDay]
) -> None:
    day = bare_days[0]
    assert bare.meter_ids == [bare.pop.meter_id(i) for i in range(bare.pop.n)]
    np.testing.assert_array_equal(day.kwh, np.round(day.true_kwh, 4))
    opts = SimulationOptions(
        customers=N,
        days=1,
        start=datetime.fromtimestamp(START, SHANGHAI),
        seed=SEED,
        billing=False,
        outages=False,
        consumption_history_months=0,
        bad_share=0,
        duplicate_share=0,
        late_share=0,
    )
    singles = {
        (v["meter_id"], v["ts"]): v
        for m in Simulation(opts).messages()
        if m.topic == topics.METER_READINGS
        for v in [orjson.loads(m.value)]
    }
    ours = [v for v in bare.meter_values(day, "single")]
    assert len(ours) == len(singles) == N * 96
    for v in ours:
        assert singles[(v["meter_id"], v["ts"])] == v


# -- the cases, each against the same run without cases ------------------------------------------


def test_theft_reports_the_share_less_from_its_day_and_the_area_loses_exactly_that(
    sim: AreaSimulation, plan: list[Scenario], days: list[AreaDay], bare_days: list[AreaDay]
) -> None:
    theft = case(plan, "theft")
    i = cidx(sim, theft.customer_id)
    (m,) = meters_of(sim, theft.customer_id)
    a = sim.areas.index(sim.topology[i])
    members = [cidx(sim, c) for c in sim.customers_in(sim.areas[a])]
    rows = [r for c in sim.customers_in(sim.areas[a]) for r in meters_of(sim, c)]
    stolen_total = 0.0
    for day, base in zip(days, bare_days, strict=True):
        on = day.starts >= theft.since
        np.testing.assert_allclose(day.true_kwh[i], base.true_kwh[i])  # the load itself is the same
        np.testing.assert_allclose(day.kwh[m, ~on], base.kwh[i, ~on])  # bare: meter i is customer i's
        np.testing.assert_allclose(day.kwh[m, on], np.round(base.true_kwh[i, on] * (1 - theft.share), 4))
        # the area's apparent loss: its technical loss plus what the thief's meter did not count
        apparent = day.summary_kwh[a] - np.nansum(day.kwh[rows], axis=0)
        technical = day.true_kwh[members].sum(axis=0) * day.technical_loss[a]
        stolen = np.where(on, base.true_kwh[i] * theft.share, 0.0)
        np.testing.assert_allclose(apparent - technical, stolen, atol=len(members) * 5e-5 + 1e-4)
        stolen_total += float(stolen.sum())
    assert stolen_total > 0


def test_white_screen_meters_report_nothing_after_the_instant_and_half_each_before(
    sim: AreaSimulation, plan: list[Scenario], days: list[AreaDay], bare_days: list[AreaDay]
) -> None:
    ws = case(plan, "white_screen")
    i = cidx(sim, ws.customer_id)
    rows = meters_of(sim, ws.customer_id)
    assert ws.meters == 2 and [sim.meter_ids[m] for m in rows] == [
        f"MTR-{ws.customer_id}-1",
        f"MTR-{ws.customer_id}-2",
    ]
    for day, base in zip(days, bare_days, strict=True):
        on = day.starts >= ws.since
        assert np.isnan(day.kwh[rows][:, on]).all()
        assert not np.isnan(day.kwh[rows][:, ~on]).any()
        np.testing.assert_allclose(day.kwh[rows][:, ~on].sum(axis=0), base.kwh[i, ~on], atol=1e-4)
        # the energy still flows through the area's summary meter
        a = sim.areas.index(sim.topology[i])
        np.testing.assert_array_equal(day.summary_kwh[a], base.summary_kwh[a])
    silent_ids = {sim.meter_ids[m] for m in rows}
    after = [
        orjson.loads(msg.value)
        for msg in sim.messages("single", profiles=False)
        if msg.topic == topics.METER_READINGS and msg.key == ws.customer_id.encode()
    ]
    stamps = [datetime.fromisoformat(v["ts"]).timestamp() for v in after if v["meter_id"] in silent_ids]
    assert stamps and max(stamps) == ws.since  # the last reading is the interval ending at the instant
    ws_day = datetime.fromtimestamp(ws.since, SHANGHAI).date()
    blocks = [
        orjson.loads(msg.value)
        for msg in sim.messages("block", profiles=False)
        if msg.topic == topics.METER_READINGS and msg.key == ws.customer_id.encode()
    ]
    block_days = {datetime.fromisoformat(b["start"]).date() for b in blocks}
    assert max(block_days) == ws_day  # the partly read day, then no block at all
    last = [b for b in blocks if datetime.fromisoformat(b["start"]).date() == ws_day]
    assert len(last) == 2 and all(b["kwh"][40:] == [None] * 56 and None not in b["kwh"][:40] for b in last)


def test_tamper_codes_are_on_the_case_s_intervals_and_nowhere_else(
    sim: AreaSimulation, plan: list[Scenario], days: list[AreaDay], bare_days: list[AreaDay]
) -> None:
    tamper = case(plan, "tamper")
    assert tamper.codes == TAMPER_CODES == ("tamper", "cover_open", "magnetic")
    (m,) = meters_of(sim, tamper.customer_id)
    i = cidx(sim, tamper.customer_id)
    flagged: list[tuple[int, int, int]] = []
    for day, base in zip(days, bare_days, strict=True):
        np.testing.assert_array_equal(day.kwh[m], base.kwh[i])  # codes only: no under-registration
        for row, codes in enumerate(day.quality):
            for t, q in enumerate(codes):
                if set(q) & set(TAMPER_CODES):
                    flagged.append((row, int(day.starts[t]), len(q)))
                    assert set(TAMPER_CODES) <= set(q)
    assert [(row, s) for row, s, _ in flagged] == [
        (m, s) for s in range(tamper.since, tamper.until or 0, INTERVAL_S)
    ]
    on_wire = [
        v
        for msg in sim.messages("single", profiles=False)
        if msg.topic == topics.METER_READINGS
        for v in [orjson.loads(msg.value)]
        if set(v["quality"]) & set(TAMPER_CODES)
    ]
    assert len(on_wire) == 4 and {v["customer_id"] for v in on_wire} == {tamper.customer_id}


def test_wrong_area_keeps_the_topology_and_moves_the_energy_to_the_other_summary_meter(
    sim: AreaSimulation, plan: list[Scenario], days: list[AreaDay], bare_days: list[AreaDay]
) -> None:
    wrong = case(plan, "wrong_area")
    i = cidx(sim, wrong.customer_id)
    a, b = sim.areas.index(sim.topology[i]), sim.areas.index(wrong.physical_area or "")
    profile = next(
        orjson.loads(m.value) for m in sim.profile_messages() if m.key == wrong.customer_id.encode()
    )
    assert profile["transformer_area"] == sim.areas[a] != sim.areas[b]
    (m,) = meters_of(sim, wrong.customer_id)
    holiday_area = sim.areas.index(sim.topology[cidx(sim, case(plan, "holiday").customer_id)])
    untouched = [k for k in range(len(sim.areas)) if k not in (a, b, holiday_area)]
    for day, base in zip(days, bare_days, strict=True):
        np.testing.assert_array_equal(day.kwh[m], base.kwh[i])  # its meter reads as before
        moved = base.true_kwh[i]
        np.testing.assert_allclose(
            base.summary_kwh[a] - day.summary_kwh[a], moved * (1 + day.technical_loss[a]), atol=1e-4
        )
        np.testing.assert_allclose(
            day.summary_kwh[b] - base.summary_kwh[b], moved * (1 + day.technical_loss[b]), atol=1e-4
        )
        np.testing.assert_array_equal(day.summary_kwh[untouched], base.summary_kwh[untouched])


def test_holiday_drops_the_true_load_so_the_meter_and_the_summary_meter_both_drop(
    sim: AreaSimulation, plan: list[Scenario], days: list[AreaDay], bare_days: list[AreaDay]
) -> None:
    holidays = [s for s in plan if s.case == "holiday"]
    assert len(holidays) == 2
    rows = [cidx(sim, h.customer_id) for h in holidays]
    a = sim.areas.index(sim.topology[rows[0]])
    seen = 0
    for day, base in zip(days, bare_days, strict=True):
        on = holidays[0].covers(day.starts)
        factor = np.where(on, 1 - holidays[0].share, 1.0)
        for i in rows:
            (m,) = meters_of(sim, sim.pop.customer_ids[i])
            np.testing.assert_allclose(day.true_kwh[i], base.true_kwh[i] * factor)
            np.testing.assert_allclose(day.kwh[m], np.round(base.true_kwh[i] * factor, 4))
        dropped = (base.true_kwh[rows] - day.true_kwh[rows]).sum(axis=0)
        np.testing.assert_allclose(
            base.summary_kwh[a] - day.summary_kwh[a], dropped * (1 + day.technical_loss[a]), atol=1e-4
        )
        seen += int(on.sum())
    assert seen == 4 * 96


# -- the planned cases show as their expected outcomes ---------------------------------------------


def test_each_planned_case_shows_in_the_daily_loss_rates_as_expected(
    sim: AreaSimulation,
    bare: AreaSimulation,
    plan: list[Scenario],
    days: list[AreaDay],
    bare_days: list[AreaDay],
) -> None:
    rates = daily_rates(sim, days)
    bare_rates = daily_rates(bare, bare_days)
    theft, wrong = case(plan, "theft"), case(plan, "wrong_area")
    assert theft.expected and wrong.expected
    t_area, k = theft.expected.transformer_area, day_index(sim, theft.expected.from_day or "")
    assert set(theft.expected.area_rules) == {"area_high_loss", "area_loss_jump"}
    assert theft.expected.rank_first is True
    assert rates[t_area][k:].min() > 0.10  # area_high_loss
    assert rates[t_area][:k].max() < 0.10
    assert rates[t_area][k:].min() - np.median(rates[t_area][:k]) > 0.05  # area_loss_jump
    a, b = wrong.expected.transformer_area, wrong.expected.other_area or ""
    assert wrong.expected.area_rules == ("area_negative_loss",)
    # a plausible customer: 5-30 % of its physical area's load, not one far larger than the area
    # it is mapped to; that area's loss clearly negative (2 points from -1 %), not absurd
    i = cidx(sim, wrong.customer_id)
    physical = [k for k, c in enumerate(sim.pop.customer_ids) if sim.topology[k] == b or k == i]
    for day in days:
        part = day.true_kwh[i].sum() / day.true_kwh[physical].sum()
        assert 0.05 <= part <= 0.30, part
    assert rates[a].max() < -0.03 and rates[a].min() > -0.30, rates[a]
    assert np.all(rates[b] > bare_rates[b])
    assert rates[b].max() - rates[b].min() < 0.03  # no area_loss_jump in the physical area
    if "area_high_loss" in wrong.expected.other_area_rules:  # 2 points from 10 % and from 20 %
        assert rates[b].min() > 0.12 and (rates[b].max() < 0.18 or rates[b].min() > 0.22), rates[b]
    else:
        assert rates[b].max() < 0.08
    # every other area keeps a normal loss (white screen and tamper included): no area rule
    for area in set(sim.areas) - {t_area, a, b}:
        assert 0 < rates[area].min() and rates[area].max() < 0.10, area
        assert np.abs(rates[area] - np.median(rates[area])).max() < 0.05, area
    # the holiday customers are in the thief's area and expected not to rank first
    for h in (s for s in plan if s.case == "holiday"):
        assert h.expected and h.expected.transformer_area == t_area and h.expected.rank_first is False
        assert h.expected.customer_rules == ("consumption_drop",)
    assert {s.case for s in plan} == {"theft", "holiday", "wrong_area", "white_screen", "tamper"}
    assert len({s.customer_id for s in plan}) == len(plan)


def test_the_thief_s_consumption_follows_the_area_loss_inversely_most_and_the_holidays_less(
    sim: AreaSimulation, plan: list[Scenario], days: list[AreaDay]
) -> None:
    """Plausibility of ``rank_first`` (the ranking is inspection's): over the run, the thief's
    daily kWh is the most negatively correlated with its area's daily loss kWh (DOMAIN.md 6)."""
    theft = case(plan, "theft")
    area = sim.topology[cidx(sim, theft.customer_id)]
    a = sim.areas.index(area)
    members = sim.customers_in(area)
    rows = {c: meters_of(sim, c) for c in members}
    own = {c: np.array([np.nansum(d.kwh[rows[c]]) for d in days]) for c in members}
    loss = np.array([d.summary_kwh[a].sum() for d in days]) - sum(own.values())
    corr = {c: float(np.corrcoef(v, loss)[0, 1]) for c, v in own.items() if v.std() > 0}
    ranked = sorted(corr, key=corr.__getitem__)
    assert ranked[0] == theft.customer_id and corr[theft.customer_id] < -0.9
    for h in (s for s in plan if s.case == "holiday"):
        assert corr[h.customer_id] > corr[theft.customer_id]


# -- the wire ---------------------------------------------------------------------------------------


def expand(value: dict[str, Any]) -> list[tuple[str, str, str, float]]:
    """(key field's value, meter_id, ts, kwh) of every interval read: a single reading as it is, a
    block interval by interval (written here, independently of simulator/blocks.py)."""
    owner = value.get("customer_id", value.get("transformer_area"))
    if "start" not in value:
        return [(owner, value["meter_id"], value["ts"], value["kwh"])]
    start = datetime.fromisoformat(value["start"])
    return [
        (
            owner,
            value["meter_id"],
            (start + timedelta(seconds=(k + 1) * value["interval_s"])).isoformat(),
            kwh,
        )
        for k, kwh in enumerate(value["kwh"])
        if kwh is not None
    ]


def test_both_forms_carry_the_same_intervals_keyed_by_area_and_customer(window: AreaSimulation) -> None:
    sim = window
    by_form: dict[str, dict[str, set[tuple[str, str, str, float]]]] = {}
    for form in ("single", "block"):
        seen: dict[str, set[tuple[str, str, str, float]]] = {
            topics.AREA_READINGS: set(),
            topics.METER_READINGS: set(),
        }
        count = 0
        for msg in sim.messages(form, profiles=False):  # type: ignore[arg-type]
            value = orjson.loads(msg.value)
            for row in expand(value):
                assert msg.key == row[0].encode()
                seen[msg.topic].add(row)
                count += 1
        assert count == sum(len(s) for s in seen.values())  # no interval twice
        by_form[form] = seen
    assert by_form["single"] == by_form["block"]
    areas = by_form["single"][topics.AREA_READINGS]
    assert len(areas) == len(sim.areas) * 2 * 96
    assert {r[1] for r in areas} == {summary_meter_id(a) for a in sim.areas}


def test_every_value_decodes_and_validates_as_the_contract_s_readings(window: AreaSimulation) -> None:
    """``area.readings`` has the fields of ``meter.readings`` with transformer_area in place of
    customer_id (CONTRACT.md); its model comes with the stream stage, so it is checked as that."""
    sim = window
    now = datetime.fromtimestamp(sim.end, SHANGHAI)
    counts = {"single": 0, "block": 0}
    for form in ("single", "block"):
        for msg in sim.messages(form, profiles=False):  # type: ignore[arg-type]
            value = orjson.loads(msg.value)
            if msg.topic == topics.AREA_READINGS:
                value["customer_id"] = value.pop("transformer_area")
                assert set(value) <= {"meter_id", "customer_id", "ts", "start", "interval_s", "kwh"}
            raw = orjson.dumps(value)
            decoded = decode_reading(msg.key, raw)
            if isinstance(decoded, ReadingBlock):
                assert check_block(decoded, now=now, contract_kva=None) == {}
            else:
                assert check_reading(decoded, now=now, contract_kva=None) is None
            counts[form] += 1
    assert counts["block"] < counts["single"]


def test_the_stream_starts_with_the_profiles_and_is_deterministic_by_seed(plan: list[Scenario]) -> None:
    def stream(seed: int, scenarios: list[Scenario]) -> list[Message]:
        return list(make_sim(scenarios, seed=seed, days=2).messages("single"))

    first = stream(SEED, plan[:0])
    assert [m.topic for m in first[:N]] == [topics.CUSTOMERS] * N
    assert stream(SEED, plan[:0]) == first
    other = stream(SEED + 1, plan[:0])
    assert [m.value for m in other if m.topic == topics.AREA_READINGS] != [
        m.value for m in first if m.topic == topics.AREA_READINGS
    ]
    # the same day drawn by runs that start on different days is the same day
    late = make_sim(days=1)
    late_start = START + 86400
    one = AreaSimulation(late.pop, late.load, late_start, 1, SEED)
    two = make_sim(days=2)
    np.testing.assert_array_equal(one.day(late_start).summary_kwh, two.day(late_start).summary_kwh)


# -- descriptions and checks ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"case": "arson"}, "unknown case"),
        ({"case": "theft", "since": START + 60, "share": 0.5}, "15-minute"),
        ({"case": "theft", "share": 0.0}, "share > 0"),
        ({"case": "theft", "share": 1.5}, "share must be"),
        ({"case": "white_screen", "share": 0.2}, "no share"),
        ({"case": "theft", "share": 0.3, "meters": 2}, "meters"),
        ({"case": "tamper"}, "codes among"),
        ({"case": "tamper", "codes": ("glitter",)}, "codes among"),
        ({"case": "holiday", "share": 0.5, "codes": ("tamper",)}, "no codes"),
        ({"case": "wrong_area"}, "physical_area"),
        ({"case": "theft", "share": 0.3, "physical_area": "TA0001"}, "physical_area"),
        ({"case": "holiday", "share": 0.5, "until": START}, "until must be after"),
    ],
)
def test_a_scenario_says_what_is_wrong_with_it(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        Scenario(**({"customer_id": "C000001", "since": START} | kwargs))


def test_a_simulation_refuses_scenarios_it_cannot_apply(bare: AreaSimulation) -> None:
    area = bare.topology[0]
    other = next(a for a in bare.areas if a != area)
    bad = [
        ([Scenario("theft", "C999999", START, share=0.3)], "unknown customer"),
        (
            [
                Scenario("theft", "C000001", START, share=0.3),
                Scenario("tamper", "C000001", START, codes=("tamper",)),
            ],
            "two scenarios",
        ),
        ([Scenario("wrong_area", "C000001", START, physical_area="TA9999")], "unknown physical area"),
        ([Scenario("wrong_area", "C000001", START, physical_area=area)], "already in"),
    ]
    for scenarios, message in bad:
        with pytest.raises(ValueError, match=message):
            AreaSimulation(bare.pop, bare.load, START, 1, SEED, scenarios)
    with pytest.raises(ValueError, match="local midnight"):
        AreaSimulation(bare.pop, bare.load, START + 3600, 1, SEED)
    assert AreaSimulation(
        bare.pop, bare.load, START, 1, SEED, [Scenario("wrong_area", "C000001", START, physical_area=other)]
    )


def test_the_plan_needs_history_and_a_population_with_room_for_every_case(bare: AreaSimulation) -> None:
    with pytest.raises(ValueError, match="5 days before"):
        plan_scenarios(bare, event_day=3)
    with pytest.raises(ValueError, match="holiday inside"):
        plan_scenarios(bare, event_day=DAYS - 2)
    with pytest.raises(ValueError, match="use more customers"):
        plan_scenarios(make_sim(n=12, days=12))


def test_a_scenario_describes_itself_with_its_expected_outcome(plan: list[Scenario]) -> None:
    theft = case(plan, "theft").to_dict(SHANGHAI)
    assert theft["since"].endswith("T00:00:00+08:00") and theft["until"] is None
    assert theft["expected"]["area_rules"] == ["area_high_loss", "area_loss_jump"]
    assert theft["expected"]["rank_first"] is True
    orjson.dumps([s.to_dict(SHANGHAI) for s in plan])  # JSON-able


# -- gridpulse simulate --areas -----------------------------------------------------------------


def parse_blocks(messages: Iterator[Message]) -> list[tuple[str, list[float | None]]]:
    """(topic, kwh list) of the first day's blocks of a stream (profiles skipped)."""
    out = []
    for m in messages:
        if m.topic == topics.CUSTOMERS:
            continue
        value = orjson.loads(m.value)
        if value["start"] != "2026-03-02T00:00:00+08:00":
            break
        out.append((m.topic, value["kwh"]))
    return out


def test_simulate_areas_plans_the_cases_on_the_simulator_s_own_population(
    sim: AreaSimulation, plan: list[Scenario], capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["simulate", "--areas", "--customers", str(N), "--days", str(DAYS), "--seed", str(SEED)]
    argv += ["--start", "2026-03-02T06:00:00+08:00", "--timezone", "Asia/Shanghai"]
    args = build_parser().parse_args(argv)
    assert args.areas is True and build_parser().parse_args(["simulate"]).areas is False
    ours, ours_plan = area_simulation(options_from_args(args))
    assert (ours.start, ours.days) == (START, DAYS)  # whole local days from the start's day
    assert ours_plan == plan
    first = [m for m, _ in zip(ours.messages("single"), range(N + 2_000), strict=False)]
    assert first == [m for m, _ in zip(sim.messages("single"), range(N + 2_000), strict=False)]
    # delivered with the options' shares: late, retried, and bad copies of meter readings only
    delivered = list(islice(area_messages(ours, options_from_args(args)), N + 60_000))
    outcomes = {(m.topic, m.outcome) for m in delivered}
    assert {(topics.AREA_READINGS, "duplicate"), (topics.METER_READINGS, "duplicate")} <= outcomes
    assert {o for t, o in outcomes if t == topics.AREA_READINGS} == {"valid", "duplicate"}
    assert {o for t, o in outcomes if t == topics.METER_READINGS} > {"valid", "duplicate"}
    blocks = parse_blocks(
        area_messages(ours, options_from_args(build_parser().parse_args([*argv, "--blocks"])))
    )
    assert blocks and all(None not in kwh for topic, kwh in blocks if topic == topics.AREA_READINGS)
    # too short a run for the cases: a usage error before any Kafka connection
    short = build_parser().parse_args([*argv, "--days", "3", "--bootstrap", "127.0.0.1:1"])
    assert short.func(short) == 2
    assert "--days 12 or more" in capsys.readouterr().err


def test_a_daylight_saving_day_has_its_own_number_of_intervals_in_both_forms() -> None:
    berlin = ZoneInfo("Europe/Berlin")
    start = int(datetime(2026, 3, 28, tzinfo=berlin).timestamp())  # Sat; Sunday has 23 hours
    pop = make_population(30, 3)
    area_sim = AreaSimulation(pop, LoadModel(pop, 3, berlin, growth_ref=start), start, 2, 3)
    lengths = [d.summary_kwh.shape[1] for d in area_sim.all_days()]
    assert lengths == [96, 92]
    blocks = [orjson.loads(m.value) for m in area_sim.messages("block", profiles=False)]
    assert sorted({len(b["kwh"]) for b in blocks}) == [92, 96]
    singles = sum(1 for m in area_sim.messages("single", profiles=False) if m.topic == topics.AREA_READINGS)
    assert singles == len(area_sim.areas) * (96 + 92)
    assert area_sim.end - area_sim.start == (96 + 92) * INTERVAL_S


# -- delivered as a head-end and a collection run do -------------------------------------------------


def test_single_readings_delivered_late_retried_and_corrupted_carry_the_in_order_run(
    window: AreaSimulation,
) -> None:
    faults = BadConfig(bad_share=0.02, duplicate_share=0.05, late_share=0.05, max_lateness_s=3600)
    in_order = list(window.messages("single", profiles=False))
    delivered = list(window.messages("single", profiles=False, singles=faults))
    assert {m.outcome for m in in_order} == {"valid"}
    valid = [m for m in delivered if m.outcome == "valid"]
    assert sorted(valid) == sorted(in_order)  # every reading once, nothing else valid
    first_seen: dict[bytes, int] = {}
    for k, m in enumerate(delivered):
        if m.outcome == "valid":
            first_seen.setdefault(m.value, k)
        elif m.outcome == "duplicate":  # a byte copy of a reading already delivered
            assert m.value in first_seen
    counts: dict[tuple[str, str], int] = {}
    for m in delivered:
        counts[(m.topic, m.outcome)] = counts.get((m.topic, m.outcome), 0) + 1
    assert counts.get((topics.AREA_READINGS, "duplicate"), 0) > 0
    assert counts.get((topics.METER_READINGS, "duplicate"), 0) > 0
    assert {o for t, o in counts if t == topics.AREA_READINGS} == {"valid", "duplicate"}  # no garbage
    assert {o for t, o in counts if t == topics.METER_READINGS} - {"valid", "duplicate"}  # some garbage
    for topic in (topics.AREA_READINGS, topics.METER_READINGS):  # some arrive after newer ones
        order = [orjson.loads(m.value)["ts"] for m in delivered if m.topic == topic and m.outcome == "valid"]
        stamps = [datetime.fromisoformat(ts).timestamp() for ts in order]
        assert any(b < a for a, b in pairwise(stamps)), topic


def test_blocks_delivered_as_a_collection_run_carry_the_in_order_intervals(window: AreaSimulation) -> None:
    run = CollectionOptions(late_share=0.3, retry_share=0.3, overlap_share=0.3, partial_share=0.0)
    in_order = list(window.messages("block", profiles=False))
    delivered = list(window.messages("block", profiles=False, collection=run))

    def intervals(messages: list[Message]) -> set[tuple[str, tuple[str, str, str, float]]]:
        return {(m.topic, row) for m in messages for row in expand(orjson.loads(m.value))}

    assert intervals(delivered) == intervals(in_order)
    for topic in (topics.AREA_READINGS, topics.METER_READINGS):
        mine = [m for m in delivered if m.topic == topic]
        assert any(m.outcome == "duplicate" for m in mine), topic
        assert len({orjson.loads(m.value)["start"] for m in mine}) > 2, topic  # overlapping re-sends
        for m in mine:
            value = orjson.loads(m.value)
            assert (
                m.key
                == (
                    value["transformer_area"] if topic == topics.AREA_READINGS else value["customer_id"]
                ).encode()
            )
            assert None not in value["kwh"] or topic == topics.METER_READINGS
    with pytest.raises(ValueError, match="partial_share"):
        next(window.messages("block", collection=CollectionOptions()))
    with pytest.raises(ValueError, match="single form"):
        next(window.messages("block", singles=BadConfig()))


@pytest.mark.parametrize(
    "first",
    [YEAR_END, LEAP_DAY],
    ids=str,
)
def test_the_planned_population_s_demand_stays_within_what_the_readings_agent_accepts(first: date) -> None:
    """The agent-flow tests compare the stage with a reference fed every simulated interval: the
    readings agent must refuse none, so no meter's demand may pass its contract x DEMAND_MARGIN."""
    _, _, messages = population("u.", first)
    profiles = [orjson.loads(m.value or b"") for m in messages if m.topic == "u." + topics.CUSTOMERS]
    contract = {p["customer_id"]: p.get("contract_kva") for p in profiles}
    assert len(contract) == N
    over, seen = [], 0
    for m in messages:
        if m.topic != "u." + topics.METER_READINGS:
            continue
        v = orjson.loads(m.value or b"")
        kva = contract[v["customer_id"]]
        for i, kw in enumerate(v.get("demand_kw") or []):
            seen += kw is not None
            if kva and kw is not None and kw > kva * DEMAND_MARGIN:
                over.append((v["customer_id"], v["start"], i, kw, kva))
    assert seen > 0
    assert over == []
