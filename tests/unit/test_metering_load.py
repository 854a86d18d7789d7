"""LoadState: reading semantics, dedup, lateness, windows, projection, history, state size."""

from __future__ import annotations

import math
import random
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from metering.load import LoadState, Reading
from tests.reference import reference_load
from tests.stats_check import WINDOW_FIELDS, assert_hourly_match

SHANGHAI = ZoneInfo("Asia/Shanghai")
PARIS = ZoneInfo("Europe/Paris")


def at(text: str, tz: ZoneInfo = SHANGHAI) -> int:
    return int(datetime.fromisoformat(text).replace(tzinfo=tz).timestamp())


def reading(meter: str, end: int, kwh: float, **extra: Any) -> dict[str, Any]:
    return {"meter_id": meter, "ts": end, "interval_s": 900, "kwh": kwh, **extra}


def close(a: Any, b: Any) -> bool:
    if a is None or b is None:
        return a is b
    return math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-9)


# ------------------------------------------------------------------------------- by hand


def test_interval_belongs_to_the_day_and_month_it_starts_in() -> None:
    state = LoadState(SHANGHAI)
    state.apply([reading("m1", at("2026-11-01T00:00"), 2.0, kvarh=1.0)])  # October's last quarter
    snap = state.snapshot()
    assert snap["day"]["date"] == "2026-10-31"
    assert snap["month"]["period"] == "2026-10"
    day = snap["day"]
    assert day["kwh"] == 2.0 and day["hours"] == 0.25 and day["intervals"] == 1
    assert day["max_kw"] == 8.0  # 2 kWh * 3600 / 900 s
    assert day["avg_kw"] == 8.0 and day["load_factor"] == 1.0
    assert day["power_factor"] == pytest.approx(2 / math.sqrt(5))


def test_metered_demand_is_the_maximum_and_load_factor_follows() -> None:
    state = LoadState(SHANGHAI)
    t = at("2026-03-02T08:15")
    state.apply([reading("m1", t, 1.0, demand_kw=10.0), reading("m1", t + 900, 3.0)])
    day = state.snapshot()["day"]
    assert day["max_kw"] == 12.0  # second interval: 3 kWh in 15 min > metered 10 kW
    assert day["avg_kw"] == 8.0  # 4 kWh over 0.5 h
    assert day["load_factor"] == pytest.approx(8 / 12)


def test_reactive_energy_is_import_plus_export_and_pf_skips_meters_without_register() -> None:
    state = LoadState(SHANGHAI)
    t = at("2026-03-02T08:15")
    state.apply(
        [
            reading("m1", t, 3.0, kvarh=-1.0, kvarh_export=3.0),  # |import| + |export| = 4
            reading("m2", t, 100.0),  # no reactive register: must not pull PF towards 1
        ]
    )
    day = state.snapshot()["day"]
    assert day["kvarh"] == 4.0
    assert day["kwh"] == 103.0
    assert day["power_factor"] == pytest.approx(0.6)
    assert day["max_kw"] == 412.0  # coincident: the two meters' interval demands added
    assert day["hours"] == 0.25  # the quarter hour is covered once
    assert day["intervals"] == 2


def test_no_reactive_register_gives_null_pf_and_no_load_gives_null_lf() -> None:
    state = LoadState(SHANGHAI)
    state.apply([reading("m1", at("2026-03-02T08:15"), 0.0)])
    day = state.snapshot()["day"]
    assert day["power_factor"] is None
    assert day["load_factor"] is None
    assert day["max_kw"] == 0.0 and day["avg_kw"] == 0.0


def test_duplicates_never_count_twice_and_first_value_wins() -> None:
    state = LoadState(SHANGHAI)
    t = at("2026-03-02T08:15")
    result = state.apply([reading("m1", t, 1.0), reading("m1", t, 5.0), reading("m2", t, 1.0)])
    assert result.statuses == ["applied", "duplicate", "applied"]
    again = state.apply([reading("m1", t, 1.0)])
    assert again.statuses == ["duplicate"]
    assert state.snapshot()["day"]["kwh"] == 2.0


def test_late_readings_are_refused_and_within_lateness_go_to_their_own_day() -> None:
    state = LoadState(SHANGHAI, lateness_s=48 * 3600)
    newest = at("2026-03-03T12:00")
    state.apply([reading("m1", newest, 1.0)])
    within = reading("m1", newest - 47 * 3600, 2.0)  # 2026-03-01 12:45 local start
    edge = reading("m1", newest - 48 * 3600, 4.0)  # exactly at the cutoff: still accepted
    too_old = reading("m1", newest - 48 * 3600 - 900, 8.0)
    result = state.apply([within, edge, too_old])
    assert result.statuses == ["applied", "applied", "late"]
    assert result.indices("late") == [2]
    snap = state.snapshot()
    assert snap["day"]["kwh"] == 1.0  # the newest day is untouched
    assert snap["d30"]["kwh"] == 7.0
    assert snap["month"]["kwh"] == 7.0


def test_lateness_follows_arrival_order_not_batching() -> None:
    newest = at("2026-03-03T12:00")
    old = reading("m1", newest - 50 * 3600, 2.0)
    sequence = [old, reading("m1", newest, 1.0), reading("m1", newest - 60 * 3600, 4.0)]
    one_batch, single = LoadState(SHANGHAI), LoadState(SHANGHAI)
    assert one_batch.apply(sequence).statuses == ["applied", "applied", "late"]
    assert [single.apply([r]).statuses[0] for r in sequence] == ["applied", "applied", "late"]
    assert one_batch.snapshot() == single.snapshot()
    # a backlog delivered in order is accepted whole, even in one batch
    backlog = [reading("m2", newest + k * 900, 1.0) for k in range(1, 7 * 96)]
    assert one_batch.apply(backlog).count("applied") == len(backlog)


def test_invalid_readings_are_reported_with_a_dlq_kind() -> None:
    state = LoadState(SHANGHAI)
    t = at("2026-03-02T08:15")
    result = state.apply(
        [
            reading("m1", t, -1.0),
            reading("m1", t, float("nan")),
            {"meter_id": "m1", "ts": datetime(2026, 3, 2, 8, 15), "kwh": 1.0},  # naive
            {"meter_id": "m1", "kwh": 1.0},
            reading("m1", t, 1.0),
        ]
    )
    assert result.statuses == ["invalid"] * 4 + ["applied"]
    assert result.reasons == {0: "negative_energy", 1: "bad_value", 2: "bad_timestamp", 3: "schema"}


def test_readings_as_objects_with_aware_datetimes() -> None:
    state = LoadState(SHANGHAI)
    end = datetime(2026, 3, 2, 8, 15, tzinfo=SHANGHAI)
    state.apply(
        [
            Reading("m1", end, 1.0, kvarh=0.5),
            Reading.from_mapping({"meter_id": "m1", "ts": end.isoformat(), "kwh": 9}),
        ]
    )
    assert state.snapshot()["day"]["kwh"] == 1.0  # the second is a duplicate of the first


def test_gaps_per_meter_and_day_with_the_partial_newest_day() -> None:
    state = LoadState(SHANGHAI)
    day1 = at("2026-03-01T00:00")
    readings = [reading("m1", day1 + (k + 1) * 900, 1.0) for k in range(96) if k not in (10, 11)]
    readings += [reading("m1", day1 + 86400 + (k + 1) * 900, 1.0) for k in range(8)]  # to 02:00
    readings += [reading("m2", day1 + 86400 + (k + 1) * 900, 1.0) for k in range(4)]  # m2 to 01:00
    state.apply(readings)
    gaps = {(g.day, g.meter_id): (g.expected, g.found) for g in state.gaps(days=7)}
    assert gaps == {(date(2026, 3, 1), "m1"): (96, 94), (date(2026, 3, 2), "m2"): (8, 4)}


def test_dst_day_expects_23_hours_of_intervals() -> None:
    state = LoadState(PARIS)
    lo = at("2026-03-29T00:00", PARIS)  # clocks go forward: 23 h
    state.apply([reading("m1", lo + (k + 1) * 900, 1.0) for k in range(92)])
    state.apply([reading("m1", at("2026-03-30T00:15", PARIS), 1.0)])
    assert [g for g in state.gaps() if g.day == date(2026, 3, 29)] == []
    assert state.snapshot()["d30"]["hours"] == 23.25


def test_projection_by_hand() -> None:
    # 2026-02 in Shanghai; 7 full days (2..8 Feb) at 10 kW with 5 kvar (PF 0.894); month open.
    state = LoadState(SHANGHAI)
    start = at("2026-02-02T00:00")
    state.apply([reading("m1", start + (k + 1) * 900, 2.5, kvarh=1.25) for k in range(7 * 96)])
    snap = state.snapshot(now_ts=start + 7 * 86400, pf_standard=0.90, tariff_cny_per_kwh=0.5)
    month = snap["month"]
    assert month["kwh"] == pytest.approx(1680.0)
    assert month["power_factor"] == pytest.approx(2 / math.sqrt(5))
    assert month["pf_adjustment_pct"] == 0.5  # 0.894 -> 0.89 -> +0.5 %
    assert month["pf_adjustment_cny"] == 4.2  # 0.5 % of 1680 kWh x 0.5 CNY
    # remaining: 9 Feb 00:00 to 1 Mar 00:00 = 20 days = 480 h at 10 kW / 5 kvar
    assert month["projected_power_factor"] == pytest.approx(2 / math.sqrt(5))
    assert month["projected_pf_adjustment_pct"] == 0.5
    assert month["projected_pf_adjustment_cny"] == 16.2  # 0.5 % of (1680 + 480 h x 10 kW) x 0.5
    closed = state.snapshot(now_ts=at("2026-03-01T00:00"), pf_standard=0.90)["month"]
    assert closed["projected_power_factor"] is None
    assert closed["pf_adjustment_pct"] == 0.5


def test_month_ended_on_the_wall_clock_has_nothing_to_project() -> None:
    # Readings to 27 Nov 2026 (Shanghai), the last days still to come: the wall clock decides,
    # not the data. Before midnight of 30 Nov the month is projected; from 1 Dec 00:00 it is
    # closed, though its last intervals may still arrive within the lateness.
    start = at("2026-11-20T00:00")
    rows = [reading("m1", start + (k + 1) * 900, 2.5, kvarh=1.25 + (k % 7) * 0.1) for k in range(7 * 96)]
    state = LoadState(SHANGHAI)
    state.apply(rows)
    for now, is_open in (
        (at("2026-11-27T00:00"), True),
        (at("2026-11-30T23:55"), True),
        (at("2026-12-01T00:00"), False),
        (at("2026-12-01T00:05"), False),
        (at("2027-03-01T00:05"), False),
    ):
        month = state.snapshot(now_ts=now, pf_standard=0.90, tariff_cny_per_kwh=0.5)["month"]
        ref = reference_load([rows], SHANGHAI, now=now)
        assert month["period"] == ref["period"] == "2026-11"
        assert (month["projected_power_factor"] is not None) is is_open, now
        assert (month["projected_pf_adjustment_cny"] is not None) is is_open, now
        assert close(month["projected_power_factor"], ref["projected_power_factor"]), now
        assert month["pf_adjustment_pct"] is not None  # the actual figures stay either way


def test_not_assessed_customer_has_null_adjustment() -> None:
    state = LoadState(SHANGHAI)
    state.apply([reading("m1", at("2026-02-02T00:15"), 2.5, kvarh=1.25)])
    month = state.snapshot(pf_standard=None, tariff_cny_per_kwh=0.5)["month"]
    assert month["pf_standard"] is None
    assert month["pf_adjustment_pct"] is None and month["pf_adjustment_cny"] is None
    assert month["projected_pf_adjustment_pct"] is None


def _one_reading_per_month(state: LoadState, months: list[tuple[int, int]], kwh: float) -> None:
    for year, month in months:
        state.apply([reading("m1", at(f"{year:04d}-{month:02d}-15T00:15"), kwh)])


def _months(first: tuple[int, int], count: int) -> list[tuple[int, int]]:
    index = first[0] * 12 + first[1] - 1
    return [((index + k) // 12, (index + k) % 12 + 1) for k in range(count)]


def test_year_over_year_from_seeded_history() -> None:
    state = LoadState(SHANGHAI)
    for y, m in _months((2024, 1), 12):
        state.seed_history(f"{y}-{m:02d}", 100.0)
    for y, m in _months((2025, 1), 12):
        state.seed_history(f"{y}-{m:02d}", 110.0)
    state.seed_history("2024-06", 100.0)  # idempotent
    state.apply([reading("m1", at("2026-01-10T00:15"), 5.0)])
    snap = state.snapshot()
    assert snap["yoy_growth_rate"] == pytest.approx(0.1)
    assert snap["yoy_growth_kwh"] == pytest.approx(10.0)
    assert len(snap["consumption"]) == 25 and snap["consumption"]["2026-01"] == 5.0


def test_seed_never_overrides_metered_month_and_missing_month_gives_null() -> None:
    state = LoadState(SHANGHAI)
    _one_reading_per_month(state, _months((2024, 2), 23), 1.0)  # 2024-02 .. 2025-12
    state.seed_history("2025-12", 999.0)  # metered: ignored
    state.apply([reading("m1", at("2026-01-10T00:15"), 5.0)])
    snap = state.snapshot()
    assert snap["consumption"]["2025-12"] == 1.0
    assert snap["yoy_growth_rate"] is None  # 2024-01 missing: 23 complete months only
    assert snap["yoy_growth_kwh"] == 0.0
    state.seed_history("2024-01", 1.0)
    assert state.snapshot()["yoy_growth_rate"] == 0.0


def test_months_older_than_kept_are_dropped() -> None:
    state = LoadState(SHANGHAI)
    _one_reading_per_month(state, _months((2023, 1), 40), 1.0)
    assert len(state.snapshot()["consumption"]) == 26


# ------------------------------------------------------------------------------- serialisation


def _customer_35_days_26_months(meters: int = 1) -> LoadState:
    state = LoadState(SHANGHAI)
    rng = random.Random(3)
    _one_reading_per_month(state, _months((2024, 1), 26), 10.0)
    first = at("2026-01-28T00:00")
    for k in range(35 * 96):
        batch = [
            reading(f"m{j}", first + (k + 1) * 900, rng.random() * 5, kvarh=rng.random(), demand_kw=None)
            for j in range(meters)
        ]
        state.apply(batch)
    return state


def test_round_trip_keeps_every_window_and_dedup() -> None:
    state = _customer_35_days_26_months(meters=2)
    state.seed_history("2023-12", 5.0)
    restored = LoadState.from_bytes(state.to_bytes(), SHANGHAI)
    assert restored.snapshot(pf_standard=0.85) == state.snapshot(pf_standard=0.85)
    assert restored.gaps() == state.gaps()
    newest = state.data_end
    assert newest is not None
    assert restored.apply([reading("m0", newest, 1.0)]).statuses == ["duplicate"]
    assert restored.apply([reading("m1", newest + 900, 1.0)]).statuses == ["applied"]


def test_state_size_is_a_few_kilobytes() -> None:
    size = len(_customer_35_days_26_months().to_bytes())
    print(f"LoadState record, 35 days + 26 months, one meter: {size} bytes")
    # ~4.9 KB of windows, slots and months + 35 x 192 bytes of hour-of-day columns
    assert size < 12_000


def test_record_is_versioned_and_checked() -> None:
    raw = _customer_35_days_26_months(meters=2).to_bytes()
    assert raw[:4] == b"GPL\x03"
    assert LoadState.from_bytes(raw, SHANGHAI).to_bytes() == raw  # stable: nothing lost or added
    with pytest.raises(ValueError, match="version 1"):
        LoadState.from_bytes(b"GPL\x01" + raw[4:], SHANGHAI)  # the former JSON-header format
    with pytest.raises(ValueError, match=r"version 2 cannot be read.*hour-of-day"):
        LoadState.from_bytes(b"GPL\x02" + raw[4:], SHANGHAI)  # no hour-of-day columns
    with pytest.raises(ValueError, match="not a LoadState record"):
        LoadState.from_bytes(b'{"v": 1}', SHANGHAI)
    with pytest.raises(ValueError, match="truncated"):
        LoadState.from_bytes(raw[:-200], SHANGHAI)
    with pytest.raises(ValueError, match="trailing"):
        LoadState.from_bytes(raw + b"\0", SHANGHAI)
    empty = LoadState.from_bytes(LoadState(SHANGHAI, lateness_s=3600).to_bytes(), SHANGHAI)
    assert empty.watermark is None and empty.data_end is None and empty.lateness_s == 3600


def test_many_meters_and_any_meter_id_survive_the_record() -> None:
    # more meters than a 64-bit mask (the former format could not write them)
    state = LoadState(SHANGHAI)
    t = at("2026-03-02T08:15")
    meters = [f"电表-{j}" for j in range(70)]
    assert state.apply([reading(m, t, 1.0) for m in meters]).count("applied") == 70
    restored = LoadState.from_bytes(state.to_bytes(), SHANGHAI)
    assert restored.apply([reading(m, t, 9.0) for m in meters]).count("duplicate") == 70
    assert restored.apply([reading("new", t, 1.0)]).statuses == ["applied"]
    day = restored.snapshot()["day"]
    assert day["kwh"] == 71.0 and day["intervals"] == 71 and day["max_kw"] == 284.0
    assert {g.meter_id for g in restored.gaps()} == {*meters, "new"}  # 08:00 but not 00:00..07:45


def test_departed_meter_is_forgotten_and_dedup_kept_for_the_rest() -> None:
    state = LoadState(SHANGHAI)
    first = at("2026-01-01T00:00")
    state.apply([reading("old", first + 900, 1.0), reading("stays", first + 900, 1.0)])
    for day in range(1, 40):
        end = first + day * 86400 + 900
        state = LoadState.from_bytes(state.to_bytes(), SHANGHAI)
        assert state.apply([reading("stays", end, 1.0)]).statuses == ["applied"]
    raw = state.to_bytes()
    assert b"old" not in raw
    restored = LoadState.from_bytes(raw, SHANGHAI)
    assert restored.apply([reading("stays", end, 1.0)]).statuses == ["duplicate"]
    assert {g.meter_id for g in restored.gaps()} == {"stays"}  # one interval a day: gaps, but no "old"


def test_clock_jump_keeps_the_record_small() -> None:
    state = _customer_35_days_26_months()
    end = state.data_end
    assert end is not None
    jump = end + 10 * 365 * 86400  # e.g. a head-end clock error
    result = state.apply([reading("m0", jump, 1.0), reading("m0", end + 900, 1.0)])
    assert result.statuses == ["applied", "late"]
    restored = LoadState.from_bytes(state.to_bytes(), SHANGHAI)
    assert len(state.to_bytes()) < 500
    assert restored.snapshot()["d30"]["kwh"] == 1.0
    assert restored.apply([reading("m0", jump, 2.0)]).statuses == ["duplicate"]


# ------------------------------------------------------------------------------- vs reference


def _compare(state: LoadState, batches: list[list[dict[str, Any]]], tz: ZoneInfo, **kw: Any) -> None:
    """The snapshot against the reference at three wall clocks: the newest interval end (the month
    open unless that interval ended it), an hour later (maybe past the month end) and a month
    later (closed: nothing left to project)."""
    assert state.data_end is not None
    for now in (state.data_end, state.data_end + 3600, state.data_end + 32 * 86400):
        _compare_at(state, batches, tz, now, **kw)


def _compare_at(
    state: LoadState, batches: list[list[dict[str, Any]]], tz: ZoneInfo, now: int, **kw: Any
) -> None:
    ref = reference_load(batches, tz, state.lateness_s, seeds=kw.get("seeds"), now=now)
    snap = state.snapshot(now_ts=now)
    for window in ("day", "d30", "month"):
        for name in WINDOW_FIELDS:
            assert close(snap[window][name], ref[window][name]), (window, name, snap[window], ref[window])
    assert snap["month"]["period"] == ref["period"]
    assert close(snap["month"]["projected_power_factor"], ref["projected_power_factor"])
    assert snap["consumption"].keys() == ref["consumption"].keys()
    for period, kwh in ref["consumption"].items():
        assert close(snap["consumption"][period], kwh), period
    assert close(snap["yoy_growth_rate"], ref["yoy_growth_rate"])
    assert close(snap["yoy_growth_kwh"], ref["yoy_growth_kwh"])
    assert_hourly_match(snap["hourly_kw"], ref["hourly_kw"])


def _scenario(seed: int) -> tuple[ZoneInfo, list[list[dict[str, Any]]], dict[str, float]]:
    """Several meters, gaps, duplicates (with other values), readings shuffled within the
    lateness, a few truly late ones, crossing a month end and the local midnights."""
    rng = random.Random(seed)
    tz = rng.choice([SHANGHAI, PARIS, ZoneInfo("UTC")])
    interval = rng.choice([900, 1800])
    first = at("2026-03-27T00:00", tz) + rng.randrange(0, 86400, interval)  # Paris DST on 29 Mar
    span = rng.randrange(1, 10 * 86400 // interval)
    meters = [f"m{j}" for j in range(rng.randint(1, 3))]
    kinds = {m: rng.choice(["none", "import", "both"]) for m in meters}
    rows = []
    for k in range(span):
        for m in meters:
            if rng.random() < 0.1:
                continue  # gap
            row: dict[str, Any] = {"meter_id": m, "ts": first + (k + 1) * interval, "interval_s": interval}
            row["kwh"] = rng.choice([0.0, rng.random() * 20])
            if kinds[m] != "none":
                row["kvarh"] = rng.random() * 8
            if kinds[m] == "both":
                row["kvarh_export"] = rng.choice([None, rng.random() * 2])
            if rng.random() < 0.3:
                row["demand_kw"] = rng.random() * 100
            rows.append(row)
            if rng.random() < 0.08:
                rows.append({**row, "kwh": rng.random()})  # head-end retry, maybe altered
    # arrival: jitter within 40 h (inside the 48 h lateness), plus a few 3-day stragglers
    keyed = [
        (r["ts"] + rng.uniform(0, 40 * 3600) + (3 * 86400 if rng.random() < 0.02 else 0), r) for r in rows
    ]
    arrival = [r for _, r in sorted(keyed, key=lambda x: x[0])]
    batches, i = [], 0
    while i < len(arrival):
        n = rng.randint(1, 50)
        batches.append(arrival[i : i + n])
        i += n
    # billing history 2024-03 .. 2026-03 with a few holes (2026-03 also metered: seed ignored)
    seeds = {f"{y}-{m:02d}": rng.random() * 1000 for y, m in _months((2024, 3), 25) if rng.random() < 0.96}
    return tz, batches, seeds


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.integers(min_value=0, max_value=2**32))
def test_generated_readings_match_the_reference(seed: int) -> None:
    tz, batches, seeds = _scenario(seed)
    state = LoadState(tz)
    for period, kwh in seeds.items():
        state.seed_history(period, kwh)
    late = []
    for batch in batches:
        result = state.apply(batch)
        late += [s == "late" for s in result.statuses]
        state = LoadState.from_bytes(state.to_bytes(), tz)  # as the table stores it
    ref = reference_load(batches, tz, state.lateness_s, seeds=seeds, now=state.data_end or 0)
    _compare(state, batches, tz, seeds=seeds)
    assert ref["data_end"] == state.data_end
    from tests.reference import accepted_readings

    assert late == accepted_readings(batches, state.lateness_s)["late"].tolist()


# ------------------------------------------------------------------------------- real data


def _uci_quarter_hours(uci: Path) -> list[dict[str, Any]]:
    """One-minute kW/kvar of a house in Sceaux (Europe/Paris) as 15-minute readings."""
    lines = uci.read_text().splitlines()[1:]
    readings = []
    for q in range(0, len(lines), 15):
        block = [line.replace('"', "").split(";") for line in lines[q : q + 15]]
        begin = datetime.strptime(block[0][0] + " " + block[0][1], "%d/%m/%Y %H:%M:%S").replace(tzinfo=PARIS)
        end = begin + timedelta(minutes=15)
        readings.append(
            {
                "meter_id": "sceaux",
                "ts": int(end.timestamp()),
                "interval_s": 900,
                "kwh": sum(float(b[2]) for b in block) / 60,
                "kvarh": sum(float(b[3]) for b in block) / 60,
            }
        )
    return readings


def test_real_household_data_matches_reference_and_is_plausible(uci_path: Path) -> None:
    readings = _uci_quarter_hours(uci_path)
    assert len(readings) == 192
    batches = [readings[i : i + 4] for i in range(0, len(readings), 4)]
    state = LoadState(PARIS)
    for batch in batches:
        assert state.apply(batch).count("applied") == len(batch)
    _compare(state, batches, PARIS)
    snap = state.snapshot(pf_standard=0.85)
    day, d30 = snap["day"], snap["d30"]
    assert day["date"] == "2007-02-02" and day["hours"] == 24.0 and d30["hours"] == 48.0
    assert day["kwh"] == pytest.approx(27.7956, rel=1e-9)  # sum of the minute kW / 60
    assert d30["kwh"] == pytest.approx(58.2082667, rel=1e-7)
    assert 0.99 < d30["power_factor"] < 1.0  # a house: mostly resistive load (0.9966)
    assert 0.2 < day["load_factor"] < 0.4  # evening peak ~4.2 kW vs 1.16 kW average
    assert snap["month"]["pf_adjustment_pct"] == -1.1
    assert state.gaps() == []
