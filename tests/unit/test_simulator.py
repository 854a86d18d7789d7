"""The head-end simulator: determinism, the wire contract, realistic aggregates, bad messages."""

from __future__ import annotations

import re
from collections import Counter, defaultdict
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import numpy as np
import orjson
import pytest

from schemas import topics
from simulator.bad import BAD_VARIANTS, DLQ_KINDS, BadConfig, ReadingDelivery, corrupt
from simulator.billing import plan_billing
from simulator.load import LoadModel
from simulator.outages import plan_outages, supply_loss_masks
from simulator.population import PROFILES, make_population
from simulator.run import Simulation, SimulationOptions, generate, summarize

SHANGHAI = ZoneInfo("Asia/Shanghai")
START = datetime(2026, 3, 2, tzinfo=SHANGHAI)  # a Monday
RFC3339 = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?[+-]\d\d:\d\d$")

# CONTRACT.md, transcribed by hand: field -> allowed Python types of the decoded JSON
OPT_FLOAT = (float, int, type(None))
OPT_STR = (str, type(None))
CONTRACT = {
    topics.METER_READINGS: {
        "meter_id": (str,),
        "customer_id": (str,),
        "ts": (str,),
        "interval_s": (int,),
        "kwh": (float, int),
        "kvarh": OPT_FLOAT,
        "kvarh_export": OPT_FLOAT,
        "demand_kw": OPT_FLOAT,
        "quality": (list,),
    },
    topics.BILLING_EVENTS: {
        "event_id": (str,),
        "customer_id": (str,),
        "ts": (str,),
        "type": (str,),
        "amount": (float, int),
        "bill_id": OPT_STR,
        "due_date": OPT_STR,
        "period": OPT_STR,
    },
    topics.GRID_OUTAGES: {
        "outage_id": (str,),
        "event": (str,),
        "ts": (str,),
        "scope": (str,),
        "scope_id": (str,),
        "planned": (bool,),
        "planned_start": OPT_STR,
        "expected_restore": OPT_STR,
        "cause": OPT_STR,
    },
    topics.CUSTOMERS: {
        "customer_id": (str,),
        "name": (str,),
        "tariff_class": (str,),
        "contract_kva": (float, int),
        "voltage_kv": (float, int),
        "importance": (str,),
        "feeders": (list,),
        "transformer_area": (str,),
        "emergency_generator": (bool,),
        "manager_id": (str,),
        "industry": OPT_STR,
        "pf_standard": OPT_FLOAT,
        "tariff_cny_per_kwh": OPT_FLOAT,
    },
    # gridpulse's own input (README, schemas/json/consumption.history.json)
    topics.CONSUMPTION_HISTORY: {"customer_id": (str,), "period": (str,), "kwh": (float, int)},
}
ENUMS = {
    (topics.BILLING_EVENTS, "type"): {
        "bill",
        "payment",
        "late_fee",
        "payment_reversal",
        "theft_penalty",
        "adjustment",
    },
    (topics.GRID_OUTAGES, "event"): {"notice", "start", "restore"},
    (topics.GRID_OUTAGES, "scope"): {"feeder", "transformer_area"},
    (topics.CUSTOMERS, "tariff_class"): {
        "residential",
        "commercial",
        "general_industrial",
        "large_industrial",
        "agricultural",
        "wholesale",
        "other",
    },
    (topics.CUSTOMERS, "importance"): {"special", "level1", "level2", "temporary", "none"},
}


def opts(**kw: object) -> SimulationOptions:
    base: dict[str, object] = {"customers": 60, "days": 2, "start": START, "seed": 7}
    base.update(kw)
    return SimulationOptions(**base)  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def stream() -> list[tuple[str, bytes, bytes, str]]:
    return [tuple(m) for m in generate(opts(bad_share=0.05, duplicate_share=0.03, late_share=0.05))]


def epoch(ts: str) -> int:
    return int(datetime.fromisoformat(ts).timestamp())


# --- determinism -------------------------------------------------------------------------------


def test_same_seed_same_stream(stream):
    again = [tuple(m) for m in generate(opts(bad_share=0.05, duplicate_share=0.03, late_share=0.05))]
    assert again == stream


def test_other_seed_other_stream(stream):
    other = [tuple(m) for m in generate(opts(seed=8, bad_share=0.05, duplicate_share=0.03, late_share=0.05))]
    assert other != stream


def test_population_is_deterministic_and_prefix_stable():
    a, b = make_population(300, 3), make_population(300, 3)
    assert a.profiles == b.profiles
    assert np.array_equal(a.base_kw, b.base_kw)
    assert make_population(300, 4).profiles != a.profiles


# --- contract ----------------------------------------------------------------------------------


def test_every_usable_message_matches_the_contract(stream):
    seen = Counter()
    for topic, key, value, outcome in stream:
        if outcome not in ("valid", "duplicate"):
            continue
        seen[topic] += 1
        msg = orjson.loads(value)
        fields = CONTRACT[topic]
        assert set(fields) <= set(msg), (topic, set(fields) - set(msg))
        for name, types in fields.items():
            assert isinstance(msg[name], types), (topic, name, msg[name])
            if (topic, name) in ENUMS:
                assert msg[name] in ENUMS[(topic, name)], (topic, name, msg[name])
        if "ts" in msg:
            assert RFC3339.match(msg["ts"]), msg["ts"]
        key_field = "outage_id" if topic == topics.GRID_OUTAGES else "customer_id"
        assert key == msg[key_field].encode()
    # the summary meters (area.readings) are `simulate --areas`'s (simulator/area_run.py)
    assert set(seen) == set(topics.INPUTS) - {topics.AREA_READINGS}


def test_customers_profiles_are_plausible():
    pop = make_population(2000, 1)
    profiles = pop.profiles
    classes = Counter(p["tariff_class"] for p in profiles)
    assert classes["residential"] > classes["commercial"] > classes["general_industrial"]
    assert classes["large_industrial"] > 0 and classes["agricultural"] > 0
    assert len({p["customer_id"] for p in profiles}) == 2000
    for p in profiles:
        assert re.fullmatch(r"C\d{6}", p["customer_id"])
        assert re.fullmatch(r"M(0[1-9]|1\d|20)", p["manager_id"])
        assert re.fullmatch(r"TA\d{4}", p["transformer_area"])
        assert all(re.fullmatch(r"F\d{3}", f) for f in p["feeders"])
        assert len(set(p["feeders"])) == len(p["feeders"])
        assert p["voltage_kv"] in (0.4, 10.0, 35.0, 110.0)
        assert 0.5 <= p["tariff_cny_per_kwh"] <= 0.9
        assert p["pf_standard"] in (None, 0.9, 0.85, 0.8)
        if p["tariff_class"] == "residential":
            assert 8 <= p["contract_kva"] <= 20 and p["importance"] == "none"
        if p["tariff_class"] == "large_industrial":
            assert 315 <= p["contract_kva"] <= 20_000
    # every transformer area hangs on one feeder: its customers' first feeder
    area_feeder = defaultdict(set)
    for p in profiles:
        area_feeder[p["transformer_area"]].add(p["feeders"][0])
    assert all(len(f) == 1 for f in area_feeder.values())
    important = [p for p in profiles if p["importance"] != "none"]
    assert 0.02 < len(important) / len(profiles) < 0.15
    level2 = [p for p in important if p["importance"] == "level2"]
    assert sum(len(p["feeders"]) >= 2 for p in level2) / len(level2) > 0.75
    gen_imp = np.mean([p["emergency_generator"] for p in important])
    gen_ord = np.mean([p["emergency_generator"] for p in profiles if p["importance"] == "none"])
    assert gen_imp > 3 * gen_ord
    hospitals = [p for p in profiles if p["industry"] == "hospital"]
    assert hospitals and np.mean([p["importance"] != "none" for p in hospitals]) > 0.6
    # base load is consistent with the contract: average well below capacity
    assert np.all(pop.base_kw < pop.contract_kva * 0.75) and np.all(pop.base_kw > 0)


# --- readings: time semantics and aggregates ----------------------------------------------------


def test_reading_ts_is_interval_end_aligned_local(stream):
    by_meter = defaultdict(list)
    for topic, _, value, outcome in stream:
        if topic == topics.METER_READINGS and outcome == "valid":
            r = orjson.loads(value)
            assert r["ts"].endswith("+08:00")
            assert epoch(r["ts"]) % 900 == 0
            assert r["interval_s"] == 900
            by_meter[r["meter_id"]].append(epoch(r["ts"]))
    first, last = int(START.timestamp()) + 900, int(START.timestamp()) + 2 * 86400
    assert len(by_meter) == 60
    for stamps in by_meter.values():
        assert sorted(stamps) == list(range(first, last + 1, 900))  # 192 each, END of interval


def _week_of_steps(n: int = 800, seed: int = 5):
    pop = make_population(n, seed)
    start = int(START.timestamp())
    model = LoadModel(pop, seed, SHANGHAI, growth_ref=start)
    steps = [model.step(start + k * 900) for k in range(7 * 96)]
    return pop, np.stack([s.kwh for s in steps]), np.stack([s.kvarh for s in steps])


def test_power_factor_distribution():
    pop, kwh, kvarh = _week_of_steps()
    has = pop.has_kvarh
    pf = kwh.sum(0)[has] / np.sqrt(kwh.sum(0)[has] ** 2 + kvarh.sum(0)[has] ** 2)
    assert 0.6 < pf.min() and pf.max() < 0.99
    assert 0.80 < np.mean((pf >= 0.9) & (pf <= 0.985)) < 0.95
    assert 0.04 < np.mean(pf < 0.89) < 0.18
    assert np.isnan(kvarh[:, ~has]).all()


def test_load_factor_and_shape_per_profile():
    pop, kwh, _ = _week_of_steps()
    kw = (kwh * 4).reshape(7, 96, -1)
    lf = kw.mean(1) / kw.max(1)  # daily load factor
    expect = {
        "residential": (0.15, 0.45),
        "commercial": (0.35, 0.65),
        "industrial_continuous": (0.7, 0.95),
        "wholesale": (0.55, 0.85),
    }
    for name, (lo, hi) in expect.items():
        sel = pop.profile_idx == PROFILES.index(name)
        assert sel.any(), name
        med = float(np.median(lf[:, sel]))
        assert lo < med < hi, (name, med)
    assert np.all((lf > 0) & (lf <= 1))
    res = kw[:5, :, pop.profile_idx == 0].mean(axis=(0, 2))
    evening, night = res[19 * 4 : 21 * 4].mean(), res[3 * 4 : 5 * 4].mean()
    assert evening > 2.5 * night
    com = kw[:, :, pop.profile_idx == 1].mean(axis=2)
    assert com[:5, 10 * 4 : 17 * 4].mean() > 1.2 * com[5:, 10 * 4 : 17 * 4].mean()  # weekdays


def test_demand_at_least_interval_average_and_never_negative():
    pop = make_population(400, 2)
    model = LoadModel(pop, 2, SHANGHAI, growth_ref=int(START.timestamp()))
    for k in range(20):
        r = model.step(int(START.timestamp()) + k * 900)
        assert np.all(r.kwh >= 0)
        d = r.demand_kw[pop.has_demand]
        assert np.all(d >= r.kwh[pop.has_demand] * 4 - 1e-9)
        assert np.isnan(r.demand_kw[~pop.has_demand]).all()
        assert np.isnan(r.kvarh_export[~pop.has_kvarh_export]).all()


def test_growth_raises_load_over_months():
    pop = make_population(500, 9)
    start = int(START.timestamp())
    model = LoadModel(pop, 9, SHANGHAI, growth_ref=start)
    growing = pop.growth_per_month > 0.009
    assert 0.1 < growing.mean() < 0.3
    later = model.expected_kwh(start + 365 * 86400, start + 372 * 86400)
    now = model.expected_kwh(start, start + 7 * 86400)
    assert np.all(later[growing] / now[growing] > 1.1)


# --- billing -----------------------------------------------------------------------------------


def test_bills_match_the_readings_of_the_month():
    o = opts(customers=40, days=40, start=datetime(2026, 3, 1, tzinfo=SHANGHAI), bad_share=0.0)
    sim = Simulation(o)
    march = defaultdict(float)
    for topic, _, value, outcome in sim.messages():
        if topic == topics.METER_READINGS and outcome == "valid":
            r = orjson.loads(value)
            start = datetime.fromisoformat(r["ts"]) - timedelta(seconds=r["interval_s"])
            if (start.year, start.month) == (2026, 3):  # an interval belongs to the month it starts
                march[r["customer_id"]] += r["kwh"]
    bills = {v["customer_id"]: v for _, v in sim.billing if v["type"] == "bill" and v["period"] == "2026-03"}
    assert len(bills) == 40
    for cid, bill in bills.items():
        tariff = sim.pop.tariff[sim.pop.customer_ids.index(cid)]
        assert bill["amount"] == pytest.approx(march[cid] * tariff, abs=0.011)
        bill_day = datetime.fromisoformat(bill["ts"]).date()
        assert date.fromisoformat(bill["due_date"]) == bill_day + timedelta(days=20)
        assert bill["bill_id"] == f"B-{cid}-2026-03"


def test_billing_behaviour_per_payer_type():
    pop = make_population(2000, 11)
    start = int(datetime(2026, 1, 1, tzinfo=SHANGHAI).timestamp())
    model = LoadModel(pop, 11, SHANGHAI, growth_ref=start)
    events = plan_billing(pop, start, start + 86400, 11, SHANGHAI, model.expected_kwh, history_months=12)
    ids = [v["event_id"] for _, v in events]
    assert len(ids) == len(set(ids))
    assert [t for t, _ in events] == sorted(t for t, _ in events)
    by_type = defaultdict(list)
    for _, v in events:
        by_type[v["type"]].append(v)
        assert v["amount"] > 0 or v["type"] == "adjustment"
        assert (v["due_date"] is not None) == (v["type"] == "bill")
    assert {"bill", "payment", "late_fee", "payment_reversal", "theft_penalty", "adjustment"} <= set(by_type)
    payer = {cid: pop.payer_idx[i] for i, cid in enumerate(pop.customer_ids)}
    late_fee_payers = {payer[v["customer_id"]] for v in by_type["late_fee"]}
    assert late_fee_payers <= {1, 2}  # late payers, and bouncers paying again after the due date
    assert {payer[v["customer_id"]] for v in by_type["payment_reversal"]} == {2}
    assert {payer[v["customer_id"]] for v in by_type["theft_penalty"]} == {3}
    assert any(v["amount"] > 50_000 for v in by_type["theft_penalty"])
    # each bill is followed by payments, each payment comes after some bill of the customer
    bill_ts = {v["bill_id"]: v["ts"] for v in by_type["bill"]}
    for v in by_type["payment"]:
        if v["bill_id"]:
            assert epoch(v["ts"]) > epoch(bill_ts[v["bill_id"]])


# --- outages -----------------------------------------------------------------------------------


def test_outage_lifecycle_and_supply_loss():
    pop = make_population(600, 4)
    start = int(START.timestamp())
    end = start + 3 * 86400
    outages = plan_outages(pop, start, end, 4, SHANGHAI)
    assert len({o.outage_id for o in outages}) == len(outages)
    assert any(o.planned for o in outages) and any(not o.planned for o in outages)
    assert any(o.duration_s <= 300 for o in outages)  # momentary
    assert all(o.duration_s >= 120 for o in outages)
    for o in outages:
        msgs = o.messages(SHANGHAI, end + 10 * 86400)
        events = [v["event"] for _, v in msgs]
        assert events == (["notice", "start", "restore"] if o.planned else ["start", "restore"])
        assert [t for t, _ in msgs] == sorted(t for t, _ in msgs)
        if o.planned:
            assert msgs[0][1]["planned_start"] and msgs[0][1]["expected_restore"]
        else:
            assert msgs[0][1]["cause"] and msgs[0][1]["planned_start"] is None
    masks = supply_loss_masks(pop, outages)
    model = LoadModel(pop, 4, SHANGHAI, growth_ref=start, outages=outages, outage_masks=masks)
    long = max(outages, key=lambda o: o.duration_s)
    inside = (long.start // 900 + 1) * 900  # an interval wholly inside the outage
    assert inside + 900 <= long.restore
    r = model.step(inside)
    m = masks[outages.index(long)]
    assert m.any() and np.all(r.kwh[m] == 0) and np.all(r.power_fail[m])
    dual = np.array([len(f) > 1 for f in pop.feeders])
    if long.scope == "feeder":
        assert not np.any(m & dual)  # dual-circuit customers keep supply


# --- bad messages ------------------------------------------------------------------------------


def _independent_verdict(value: bytes, seen: set[tuple[str, str]], now: datetime) -> str:
    """What a pipeline should decide, written without the simulator's code."""
    try:
        r = orjson.loads(value)
    except orjson.JSONDecodeError:
        return "decode"
    if not all(k in r for k in ("meter_id", "customer_id", "ts", "kwh")):
        return "schema"
    if not isinstance(r["meter_id"], str) or not isinstance(r["customer_id"], str):
        return "schema"
    if not isinstance(r["kwh"], (int, float)) or not isinstance(r.get("interval_s", 900), int):
        return "schema"
    try:
        ts = datetime.fromisoformat(r["ts"])
    except (TypeError, ValueError):
        return "schema"
    if r["kwh"] < 0:
        return "negative_energy"
    if ts > now + timedelta(days=1):
        return "future_timestamp"
    if (r["meter_id"], r["ts"]) in seen:
        return "duplicate"
    seen.add((r["meter_id"], r["ts"]))
    return "valid"


def test_expected_outcomes_match_an_independent_check(stream):
    seen: set[tuple[str, str]] = set()
    now = START + timedelta(days=3)
    outcomes = Counter()
    for topic, _, value, outcome in stream:
        if topic != topics.METER_READINGS:
            continue
        assert _independent_verdict(value, seen, now) == outcome
        outcomes[outcome] += 1
    valid = outcomes["valid"]
    assert valid == 60 * 192
    assert outcomes["duplicate"] == pytest.approx(0.03 * valid, rel=0.25)
    assert sum(outcomes[k] for k in DLQ_KINDS) == pytest.approx(0.05 * valid, rel=0.2)
    assert all(outcomes[k] > 0 for k in DLQ_KINDS)


def test_late_delivery_is_bounded(stream):
    newest: dict[str, int] = {}
    lags = []
    for topic, _, value, outcome in stream:
        if topic == topics.METER_READINGS and outcome == "valid":
            r = orjson.loads(value)
            t = epoch(r["ts"])
            if t < newest.get(r["meter_id"], 0):
                lags.append(newest[r["meter_id"]] - t)
            newest[r["meter_id"]] = max(t, newest.get(r["meter_id"], 0))
    assert lags, "some readings arrive after newer ones"
    assert max(lags) <= 1800


def test_duplicates_are_exact_resends(stream):
    valid = {v for t, _, v, o in stream if t == topics.METER_READINGS and o == "valid"}
    dups = [v for t, _, v, o in stream if t == topics.METER_READINGS and o == "duplicate"]
    assert dups and all(v in valid for v in dups)


def test_no_bad_messages_when_shares_are_zero():
    sim = Simulation(opts(bad_share=0, duplicate_share=0, late_share=0, billing=False, outages=False))
    s = summarize(sim)
    assert s.outcomes[topics.METER_READINGS]["valid"] == 60 * 192
    assert s.messages[topics.METER_READINGS] == 60 * 192


@pytest.mark.parametrize("variant", sorted(BAD_VARIANTS))
def test_each_corruption_variant(variant):
    value = {
        "meter_id": "MTR-C000001-1",
        "customer_id": "C000001",
        "ts": "2026-03-02T00:15:00+08:00",
        "interval_s": 900,
        "kwh": 1.5,
        "kvarh": 0.5,
        "kvarh_export": None,
        "demand_kw": None,
        "quality": [],
    }
    rng = np.random.default_rng(0)
    for _ in range(10):
        raw = corrupt(value, orjson.dumps(value), variant, rng)
        assert _independent_verdict(raw, set(), START + timedelta(days=3)) == BAD_VARIANTS[variant]


def test_bad_config_is_validated():
    with pytest.raises(ValueError):
        BadConfig(bad_share=1.5)
    with pytest.raises(ValueError):
        BadConfig(weights={"gibberish": 1.0})
    d = ReadingDelivery(BadConfig(bad_share=0, duplicate_share=0, late_share=0), 1)
    assert d.push(0, []) == [] and d.flush() == []


# --- the whole stream --------------------------------------------------------------------------


def test_stream_order_and_summary(stream):
    assert [t for t, *_ in stream[:60]] == [topics.CUSTOMERS] * 60
    sim = Simulation(opts(bad_share=0.05, duplicate_share=0.03, late_share=0.05))
    summary = summarize(sim)
    counts = Counter(t for t, *_ in stream)
    assert summary.messages == {t: counts[t] for t in topics.INPUTS}
    for t in topics.INPUTS:
        assert sum(summary.outcomes[t].values()) == counts[t]
    assert summary.intervals == 192 and summary.customers == 60
    assert summary.start == "2026-03-02T00:00:00+08:00" and summary.end == "2026-03-04T00:00:00+08:00"
    # side events are merged by ts: none arrives after a reading stamped later than itself
    last_reading = 0
    for t, _, v, o in stream:
        if t == topics.METER_READINGS and o == "valid":
            last_reading = max(last_reading, epoch(orjson.loads(v)["ts"]))
        elif t in (topics.BILLING_EVENTS, topics.GRID_OUTAGES):
            assert epoch(orjson.loads(v)["ts"]) >= last_reading - 900


def test_topic_prefix_and_default_start_ends_now():
    sim = Simulation(
        opts(start=None, topic_prefix="simtest.", billing=False),
        now=datetime(2026, 5, 1, 10, 7, tzinfo=SHANGHAI),
    )
    assert sim.end == int(datetime(2026, 5, 1, 10, 0, tzinfo=SHANGHAI).timestamp())
    assert sim.end - sim.start == 2 * 86400
    assert {m.topic for m in sim.messages()} == {
        "simtest." + t
        for t in (topics.METER_READINGS, topics.GRID_OUTAGES, topics.CUSTOMERS, topics.CONSUMPTION_HISTORY)
    }


def test_consumption_history_covers_25_months_before_the_start():
    sim = Simulation(opts(customers=3, billing=False, outages=False))
    hist = [orjson.loads(m.value) for m in sim.messages() if m.topic == topics.CONSUMPTION_HISTORY]
    assert len(hist) == 3 * 25
    periods = sorted({h["period"] for h in hist})
    assert len(periods) == 25 and periods[-1] < datetime.fromtimestamp(sim.start, SHANGHAI).strftime("%Y-%m")
    assert all(h["kwh"] > 0 for h in hist)


def test_cli_parser_defaults():
    import argparse

    from simulator.cli import add_parser, options_from_args

    parser = argparse.ArgumentParser()
    add_parser(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["simulate", "--no-billing", "--seed", "3"])
    o = options_from_args(args)
    assert (o.customers, o.days, o.seed, o.bad_share, o.duplicate_share) == (200, 2.0, 3, 0.02, 0.01)
    assert not o.billing and o.outages and not o.replay_uci
    assert args.func.__name__ == "main"


def test_demand_peaks_stay_within_what_the_input_rules_accept() -> None:
    """A simulated valid reading's demand never exceeds contract kVA x DEMAND_MARGIN (the input
    rules dead-letter it as ``impossible_demand``). The load is pushed to its 0.98 x kVA cap
    in every interval, where the peak's random excess used to cross the margin about once in
    5,000 draws."""
    from schemas.validation import DEMAND_MARGIN

    pop = make_population(1000, seed=11)
    pop.base_kw[:] = pop.contract_kva * 5.0  # every interval at the cap
    tz = ZoneInfo("Asia/Shanghai")
    start = int(datetime(2028, 2, 28, tzinfo=tz).timestamp())
    model = LoadModel(pop, seed=11, tz=tz, growth_ref=start)
    limit = pop.contract_kva * DEMAND_MARGIN
    metered = 0
    for k in range(400):
        step = model.step(start + k * 900)
        has = ~np.isnan(step.demand_kw)
        metered += int(has.sum())
        assert not np.any(step.demand_kw[has] > limit[has]), f"interval {k}"
    assert metered > 50_000  # enough draws that the old model crossed the margin
