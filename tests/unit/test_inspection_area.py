"""AreaState (inspection/area.py): line loss per local day against an independent computation on
random data (membership changes, duplicates, overlapping re-deliveries, late data, missing
intervals, DST days in Europe/Berlin), the estimate, membership moves, sealing, the byte record."""

from __future__ import annotations

import math
import random
from collections import defaultdict
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np
import pytest

from inspection.area import (
    _HEAD,
    COMPLETE_COVERAGE,
    NOT_MEMBER,
    SUPPLY_HOLD_S,
    AreaState,
    DayFigures,
    _SealedDay,
)

BERLIN = ZoneInfo("Europe/Berlin")
SHANGHAI = ZoneInfo("Asia/Shanghai")
Q = 900
_HEAD_SIZE = _HEAD.size


def midnight(day: date, tz: ZoneInfo) -> int:
    return int(datetime(day.year, day.month, day.day, tzinfo=tz).timestamp())


def intervals_of(day: date, tz: ZoneInfo) -> int:
    return (midnight(day + timedelta(days=1), tz) - midnight(day, tz)) // Q


# ------------------------------------------------------------------ the independent computation


def reference(
    deliveries: list[tuple[Any, ...]],
    spans: dict[str, list[tuple[int, int]]],
    tz: ZoneInfo,
    lateness_s: int,
) -> tuple[dict[date, dict[str, Any]], dict[str, int]]:
    """Per local day: supplied, consumed, covered, expected, reported, customers,
    customers_reporting, complete, estimate; and the count of each status.

    ``deliveries``: ("supply", start, values) or ("customer", customer, meter, start, values),
    in arrival order; ``spans``: membership [since, until) per customer, fixed for the run.
    Written without the state's structures: a dict of first accepted values, then numpy sums.
    Lateness per side: an interval more than ``lateness_s`` behind its own side's newest.
    """
    statuses: dict[str, int] = defaultdict(int)
    supply: dict[int, float] = {}
    readings: dict[tuple[str, str, int], float] = {}
    marks: dict[str, int] = {}
    for delivery in deliveries:
        if delivery[0] == "supply":
            _, start, values = delivery
            customer, meter = None, None
        else:
            _, customer, meter, start, values = delivery
        for i, value in enumerate(values):
            if value is None:
                continue
            begin = start + i * Q
            side = delivery[0]
            if side in marks and begin < marks[side] - lateness_s:
                statuses["late"] += 1
                continue
            marks[side] = max(marks.get(side, begin), begin)
            if customer is None:
                if begin in supply:
                    statuses["duplicate"] += 1
                else:
                    supply[begin] = value
                    statuses["applied"] += 1
                continue
            assert meter is not None
            if not any(lo <= begin < hi for lo, hi in spans.get(customer, [])):
                statuses[NOT_MEMBER] += 1
            elif (customer, meter, begin) in readings:
                statuses["duplicate"] += 1
            else:
                readings[(customer, meter, begin)] = value
                statuses["applied"] += 1

    def day_of(begin: int) -> date:
        return datetime.fromtimestamp(begin, tz).date()

    days = sorted({day_of(b) for b in supply} | {day_of(b) for _, _, b in readings})
    customers = sorted(spans)
    out: dict[date, dict[str, Any]] = {}
    trail_kwh: dict[str, float] = defaultdict(float)
    trail_n: dict[str, int] = defaultdict(int)
    for day in days:
        lo = midnight(day, tz)
        n = intervals_of(day, tz)
        starts = np.array([lo + j * Q for j in range(n)])
        covered = np.array([s in supply for s in starts])
        supplied = float(np.sum([supply[s] for s in starts[covered]]))
        # customer x interval matrices, built from the dicts
        kwh = np.zeros((len(customers), n))
        got = np.zeros((len(customers), n), dtype=bool)
        member = np.zeros((len(customers), n), dtype=bool)
        for r, c in enumerate(customers):
            for j, s in enumerate(starts):
                member[r, j] = any(a <= s < b for a, b in spans[c])
        for (c, _m, b), value in readings.items():
            if day_of(b) == day:
                j = (b - lo) // Q
                kwh[customers.index(c), j] += value
                got[customers.index(c), j] = True
        expected = int(member[:, covered].sum())
        reported = int(got[:, covered].sum())
        coverage = reported / expected if expected else None
        complete = bool(covered.all()) and coverage is not None and coverage >= 0.98
        estimate = None
        if complete:
            estimate = 0.0
            for r, c in enumerate(customers):
                missing = int(member[r, covered].sum() - got[r, covered].sum())
                if missing == 0:
                    continue
                if got[r].any():
                    estimate += missing * kwh[r].sum() / got[r].sum()
                elif trail_n[c]:
                    estimate += missing * trail_kwh[c] / trail_n[c]
        for r, c in enumerate(customers):
            trail_kwh[c] += kwh[r].sum()
            trail_n[c] += int(got[r].sum())
        out[day] = {
            "intervals": n,
            "covered": int(covered.sum()),
            "supplied": supplied,
            "consumed": float(kwh[:, covered].sum()),
            "expected": expected,
            "reported": reported,
            "customers": int(member.any(axis=1).sum()),
            "customers_reporting": int(got.any(axis=1).sum()),
            "complete": complete,
            "estimate": estimate,
            "customer_kwh": {c: float(kwh[r].sum()) for r, c in enumerate(customers)},
        }
    return out, dict(statuses)


def apply_all(state: AreaState, deliveries: list[tuple[Any, ...]]) -> dict[str, int]:
    counts: dict[str, int] = defaultdict(int)
    for delivery in deliveries:
        if delivery[0] == "supply":
            result = state.apply_supply(delivery[1], delivery[2])
        else:
            _, customer, meter, start, values = delivery
            result = state.apply_customer(customer, meter, start, values)
        for status in result.statuses:
            counts[status] += 1
    return dict(counts)


def random_area(
    seed: int, tz: ZoneInfo, first: date, n_days: int
) -> tuple[list[tuple[Any, ...]], dict[str, list[tuple[int, int]]]]:
    """Deliveries and membership of an area of 12 customers over ``n_days`` local days: a
    customer with two meters, one moved out and one moved in mid-run, one joining late, 1 % of
    customer intervals missing, a summary-meter gap on one day, duplicate blocks with other
    values, re-deliveries with the previous day's last 6 hours in front, blocks within the
    lateness, blocks beyond it, single readings, readings of a non-member."""
    rng = random.Random(seed)
    days = [first + timedelta(days=k) for k in range(n_days)]
    t0 = midnight(days[0], tz)
    t_move = midnight(days[n_days // 2], tz) + 13 * Q  # mid-day, on the grid
    customers = [f"c{k}" for k in range(12)]
    spans = {c: [(t0 - 86400, 1 << 62)] for c in customers}
    spans["c7"] = [(t0 - 86400, t_move)]  # moved to another area
    spans["c8"] = [(t_move, 1 << 62)]  # moved in from another area
    spans["c9"] = [(midnight(days[1], tz) + 40 * Q, 1 << 62)]  # a new connection
    meters = {c: [f"m{c}"] for c in customers}
    meters["c0"] = ["mc0a", "mc0b"]
    gap_day = days[2]
    held: list[tuple[int, tuple[Any, ...]]] = []  # (deliver after day index, delivery)
    deliveries: list[tuple[Any, ...]] = []
    for k, day in enumerate(days):
        lo, n = midnight(day, tz), intervals_of(day, tz)
        today: list[tuple[Any, ...]] = []
        total = np.zeros(n)
        for c in customers:
            for m in meters[c]:
                values: list[float | None] = [
                    round(rng.uniform(0.05, 2.0), 4) if rng.random() > 0.01 else None for _ in range(n)
                ]
                total += [v or 0.0 for v in values]
                today.append(("customer", c, m, lo, values))
        supply: list[float | None] = [round(t * rng.uniform(1.02, 1.08), 4) for t in total]
        if day == gap_day:
            supply[30:34] = [None] * 4
        today.append(("supply", lo, supply))
        rng.shuffle(today)
        for delivery in today:
            r = rng.random()
            if r < 0.06:
                held.append((k + 1, delivery))  # arrives after the next day: within 48 h
            elif r < 0.08 and k + 4 < n_days:
                held.append((k + 4, delivery))  # arrives 4 days on: late, rejected
            elif r < 0.16:  # as single readings
                start, values = delivery[-2], delivery[-1]
                for j, v in enumerate(values):
                    if v is not None:
                        deliveries.append((*delivery[:-2], start + j * Q, [v]))
            else:
                deliveries.append(delivery)
            if rng.random() < 0.05:  # a head-end retry with other values: counted once
                values = [None if v is None else v + 1.0 for v in delivery[-1]]
                deliveries.append((*delivery[:-1], values))
            if k and rng.random() < 0.05:  # re-sent with the previous day's last 6 hours in front
                values = [rng.uniform(0, 3) for _ in range(24)] + list(delivery[-1])
                deliveries.append((*delivery[:-2], delivery[-2] - 24 * Q, values))
        deliveries.append(("customer", "c_other", "m_other", lo, [1.0] * 4))  # not a member
        deliveries += [d for due, d in held if due == k]
        held = [(due, d) for due, d in held if due != k]
    deliveries += [d for _, d in held]
    return deliveries, spans


def check_against_reference(state: AreaState, ref: dict[date, dict[str, Any]], tz: ZoneInfo) -> None:
    last = max(ref).toordinal()
    figures = {d.date: d for d in state.days(last, count=len(ref) + 2)}
    for day, want in ref.items():
        got: DayFigures = figures[day]
        assert got.intervals == want["intervals"], day
        assert got.covered_intervals == want["covered"], day
        assert got.supplied_kwh == pytest.approx(want["supplied"], rel=1e-12), day
        assert got.consumed_kwh == pytest.approx(want["consumed"], rel=1e-12), day
        assert got.loss_kwh == pytest.approx(want["supplied"] - want["consumed"], rel=1e-9, abs=1e-9)
        assert got.expected == want["expected"], day
        assert got.reported == want["reported"], day
        assert got.customers == want["customers"], day
        assert got.customers_reporting == want["customers_reporting"], day
        assert got.complete == want["complete"], day
        if want["estimate"] is None:
            assert got.estimated_missing_kwh is None, day
        else:  # sealed days keep per-customer totals in float32 (the trailing profile)
            assert got.estimated_missing_kwh == pytest.approx(want["estimate"], rel=1e-6), day
    per_customer = state.customer_days(last, count=len(ref))
    for customer, series in per_customer.items():
        for entry in series:
            want_kwh = ref[entry.date]["customer_kwh"].get(customer, 0.0) if entry.date in ref else 0.0
            assert entry.kwh == pytest.approx(want_kwh, rel=1e-6, abs=1e-9), (customer, entry.date)


@pytest.mark.parametrize(
    ("seed", "tz", "first"),
    [
        (1, BERLIN, date(2026, 10, 21)),  # 25 October 2026: 25 h, 100 quarter hours
        (2, BERLIN, date(2027, 3, 24)),  # 28 March 2027: 23 h, 92 quarter hours
        (3, SHANGHAI, date(2026, 11, 20)),
    ],
)
def test_loss_figures_match_an_independent_computation(seed: int, tz: ZoneInfo, first: date) -> None:
    n_days = 8
    deliveries, spans = random_area(seed, tz, first, n_days)
    state = AreaState(tz)
    for customer, periods in spans.items():
        for since, until in periods:
            state.join(customer, since)
            if until < 1 << 62:
                state.leave(customer, until)
    counts = apply_all(state, deliveries)
    ref, ref_counts = reference(deliveries, spans, tz, state.lateness_s)
    assert counts == ref_counts
    assert ref_counts["late"] > 0 and ref_counts["duplicate"] > 0 and ref_counts[NOT_MEMBER] > 0
    days = sorted(ref)
    assert {intervals_of(d, tz) for d in days} >= ({92, 96} if first.month == 3 else {96})
    assert any(not ref[d]["complete"] for d in days) and any(ref[d]["complete"] for d in days)
    check_against_reference(state, ref, tz)
    # the days behind the lateness were sealed; the figures survive the record
    restored = AreaState.from_bytes(state.to_bytes(), tz)
    assert restored.to_bytes() == state.to_bytes()
    check_against_reference(restored, ref, tz)
    assert restored.stats_document("A1") == state.stats_document("A1")


def test_the_berlin_fall_back_day_has_100_intervals_and_is_complete_with_them() -> None:
    day = date(2026, 10, 25)
    lo = midnight(day, BERLIN)
    state = AreaState(BERLIN)
    state.join("c1", lo - 86400)
    assert state.apply_supply(lo, [1.0] * 100).count("applied") == 100
    assert state.apply_customer("c1", "m1", lo, [0.9] * 100).count("applied") == 100
    (fig,) = state.days(day.toordinal(), 1)
    assert (fig.intervals, fig.covered_intervals, fig.complete) == (100, 100, True)
    assert fig.supplied_kwh == pytest.approx(100.0) and fig.loss_rate == pytest.approx(0.1)


# ------------------------------------------------------------------ by hand


def small_area(tz: ZoneInfo = SHANGHAI) -> tuple[AreaState, int]:
    lo = midnight(date(2026, 11, 2), tz)
    state = AreaState(tz)
    for c in ("c1", "c2"):
        state.join(c, lo - 86400)
    return state, lo


def test_duplicates_and_overlaps_count_once_and_the_first_value_wins() -> None:
    state, lo = small_area()
    state.apply_supply(lo, [10.0] * 96)
    state.apply_customer("c1", "m1", lo, [4.0] * 96)
    state.apply_customer("c2", "m2", lo, [5.0] * 96)
    before = state.days(count=1)[0]
    assert state.apply_customer("c1", "m1", lo + 90 * Q, [7.0] * 6).count("duplicate") == 6
    assert state.apply_supply(lo, [99.0]).statuses == ["duplicate"]
    assert state.days(count=1)[0] == before
    assert before.consumed_kwh == 96 * 9.0 and before.loss_rate == pytest.approx(0.1)
    # a second meter of c1 adds to the customer-interval without counting it twice
    assert state.apply_customer("c1", "m1b", lo, [1.0]).statuses == ["applied"]
    after = state.days(count=1)[0]
    assert after.consumed_kwh == 96 * 9.0 + 1.0 and after.reported == before.reported == 192


def test_a_day_is_complete_at_98_percent_coverage_and_not_below() -> None:
    state, lo = small_area()
    state.apply_supply(lo, [10.0] * 96)
    state.apply_customer("c1", "m1", lo, [4.0] * 96)
    # 192 customer-intervals expected: 189 reported = 98.44 %, 188 = 97.9 %
    values: list[float | None] = [5.0] * 96
    values[:4] = [None] * 4
    state.apply_customer("c2", "m2", lo, values)
    day = state.days(count=1)[0]
    assert day.reported == 188 and day.coverage == pytest.approx(188 / 192)
    assert day.coverage < COMPLETE_COVERAGE and not day.complete
    assert day.estimated_missing_kwh is None and day.loss_kwh_net is None
    state.apply_customer("c2", "m2", lo, [5.0])
    day = state.days(count=1)[0]
    assert day.reported == 189 and day.complete
    # the 3 missing intervals at c2's own mean of the day (5 kWh), apart from the metered sum
    assert day.consumed_kwh == 96 * 4.0 + 93 * 5.0
    assert day.estimated_missing_kwh == pytest.approx(15.0)
    assert day.loss_kwh_net == pytest.approx(day.loss_kwh - 15.0)


def test_only_intervals_covered_by_the_summary_meter_count() -> None:
    state, lo = small_area()
    state.apply_supply(lo, [10.0] * 48)  # half the day
    state.apply_customer("c1", "m1", lo, [4.0] * 96)
    state.apply_customer("c2", "m2", lo, [5.0] * 96)
    day = state.days(count=1)[0]
    assert day.covered_intervals == 48 and day.supplied_kwh == 480.0
    assert day.consumed_kwh == 48 * 9.0 and day.expected == day.reported == 96
    assert not day.complete  # the summary meter did not cover the day
    cust = state.customer_days(count=1)
    assert cust["c1"][0].kwh == 96 * 4.0 and cust["c1"][0].complete


def test_a_day_without_supply_has_no_loss_rate() -> None:
    state, lo = small_area()
    state.apply_customer("c1", "m1", lo, [4.0] * 96)
    day = state.days(count=1)[0]
    assert day.supplied_kwh == 0.0 and day.loss_rate is None and day.coverage is None
    assert not day.complete


def test_a_moved_customer_counts_in_the_new_area_from_the_change_on() -> None:
    lo = midnight(date(2026, 11, 2), SHANGHAI)
    move = lo + 48 * Q
    old, new = AreaState(SHANGHAI), AreaState(SHANGHAI)
    old.join("c1", lo - 86400)
    old.join("stay", lo - 86400)
    new.join("stay2", lo - 86400)
    for area in (old, new):
        area.apply_supply(lo, [10.0] * 96)
    old.apply_customer("stay", "ms", lo, [8.0] * 96)
    new.apply_customer("stay2", "ms2", lo, [9.0] * 96)
    old.apply_customer("c1", "m1", lo, [1.0] * 96)  # reached the old area before the move was known
    assert old.leave("c1", move) == 48  # removed from the change on
    new.join("c1", move)
    assert old.apply_customer("c1", "m1", move, [1.0]).statuses == [NOT_MEMBER]
    assert new.apply_customer("c1", "m1", lo, [1.0] * 96).count(NOT_MEMBER) == 48
    o, n = old.days(count=1)[0], new.days(count=1)[0]
    assert o.consumed_kwh == 96 * 8.0 + 48 * 1.0 and o.expected == 96 + 48 and o.complete
    assert n.consumed_kwh == 96 * 9.0 + 48 * 1.0 and n.expected == 96 + 48 and n.complete
    assert o.customers == n.customers == 2
    assert old.spans("c1") == [(lo - 86400, move)] and new.spans("c1") == [(move, None)]
    assert not old.is_member("c1", move) and new.is_member("c1", move)


def test_late_data_within_the_lateness_recomputes_the_day_older_is_rejected() -> None:
    state, lo = small_area()
    state.apply_supply(lo, [10.0] * 96)
    state.apply_customer("c1", "m1", lo, [4.0] * 96)
    # the summary meter 48 h past the day's end: late for the summary meter, not for the members,
    # whose newest interval is still in the day: the day stays open for their energy
    state.apply_supply(lo + 3 * 86400, [10.0])
    assert state.apply_supply(lo + 3 * 86400 - 48 * 3600 - Q, [10.0]).statuses == ["late"]
    assert state.apply_supply(lo + 3 * 86400 - 48 * 3600, [10.0]).statuses == ["applied"]
    assert state.apply_customer("c2", "m2", lo + 95 * Q, [5.0]).statuses == ["applied"]
    # the members 48 h past the day's end too: now it is sealed, for both sides
    state.apply_customer("c1", "m1", lo + 3 * 86400, [4.0])
    assert state.apply_customer("c2", "m2", lo + 94 * Q, [5.0]).statuses == ["late"]
    assert state.apply_customer("c2", "m2", lo + 3 * 86400 - 48 * 3600, [5.0]).statuses == ["applied"]
    (day,) = state.days(date(2026, 11, 2).toordinal(), 1)
    assert day.consumed_kwh == 96 * 4.0 + 5.0 and day.reported == 97
    state2, _ = small_area()
    state2.apply_supply(lo, [10.0] * 96)
    state2.apply_customer("c1", "m1", lo, [4.0] * 96)
    state2.apply_supply(lo + 86400 + 20 * 3600, [10.0])  # 44 h on: the day is still open
    assert state2.apply_customer("c2", "m2", lo, [5.0] * 96).count("applied") == 96
    day = state2.days(date(2026, 11, 2).toordinal(), 1)[0]
    assert day.consumed_kwh == 96 * 9.0 and day.complete


def test_invalid_entries_are_refused_with_a_reason() -> None:
    state, lo = small_area()
    result = state.apply_customer("c1", "m1", lo, [-1.0, math.inf, 1.0])
    assert result.statuses == ["invalid", "invalid", "applied"]
    assert result.reasons == {0: "negative_energy", 1: "bad_value"}
    assert state.apply_supply(lo + 60, [1.0]).reasons == {0: "off_grid"}
    assert state.apply_supply(lo, [1.0], interval_s=1800).reasons == {0: "interval_mismatch"}
    for k in range(2, 9):
        state.apply_customer("c1", f"m{k}", lo, [1.0])
    assert state.apply_customer("c1", "m9", lo, [1.0]).reasons == {0: "too_many_meters"}


def test_d30_and_daily_cover_30_days_oldest_first() -> None:
    state, lo = small_area()
    for k in range(32):
        start = lo + k * 86400
        state.apply_supply(start, [10.0] * 96)
        state.apply_customer("c1", "m1", start, [4.0] * 96)
        state.apply_customer("c2", "m2", start, [5.0 if k < 31 else 4.0] * 96)
    doc = state.stats_document("A1")
    assert doc["transformer_area"] == "A1"
    assert doc["daily"][0]["date"] == (date(2026, 11, 2) + timedelta(days=2)).isoformat()
    assert doc["daily"][-1]["date"] == doc["day"]["date"] == (date(2026, 11, 2) + timedelta(31)).isoformat()
    assert len(doc["daily"]) == 30 and all(d["complete"] for d in doc["daily"])
    assert doc["day"]["loss_rate"] == pytest.approx(0.2)
    d30 = doc["d30"]
    assert d30["supplied_kwh"] == pytest.approx(30 * 960.0)
    assert d30["consumed_kwh"] == pytest.approx(29 * 864.0 + 768.0)
    assert d30["loss_rate"] == pytest.approx(1 - (29 * 864.0 + 768.0) / (30 * 960.0))
    assert d30["complete"] and d30["coverage"] == 1.0 and d30["customers"] == 2
    assert doc["ts"] == datetime.fromtimestamp(lo + 32 * 86400, SHANGHAI).isoformat()


def test_the_record_round_trips_and_stays_small() -> None:
    state, lo = small_area()
    for c in range(3, 100):
        state.join(f"c{c}", lo - 86400)
    for k in range(35):
        start = lo + k * 86400
        state.apply_supply(start, [300.0] * 96)
        for c in range(1, 100):
            state.apply_customer(f"c{c}", f"m{c}", start, [2.9] * 96)
    data = state.to_bytes()
    assert data[:4] == b"GPA\x03"
    restored = AreaState.from_bytes(data, SHANGHAI)
    assert restored.to_bytes() == data
    assert restored.stats_document("A") == state.stats_document("A")
    assert restored.meters_last_end() == state.meters_last_end()
    # 99 customers of one meter: 3 open days of detail (int16 kWh and a mask bit a
    # customer-interval: 204 bytes and a group byte a customer-day, 4 for its row), 32 sealed
    # days (6 bytes a customer-day, 60 for the figures), ~50 bytes a customer's id, spans, meter
    open_days = 3 * (99 * (96 * 2 + 12 + 1 + 4) + 96 * 8 + 29)
    sealed = 32 * (99 * 6 + 60 + 13)
    assert len(data) <= _HEAD_SIZE + open_days + sealed + 99 * 50
    assert len(data) < 120_000
    with pytest.raises(ValueError, match="version"):
        AreaState.from_bytes(b"GPA\x01" + data[4:])
    with pytest.raises(ValueError, match="truncated"):
        AreaState.from_bytes(data[:-1])
    with pytest.raises(ValueError, match="not an AreaState"):
        AreaState.from_bytes(b"XYZ" + data[3:])


def test_departed_customers_leave_the_record_after_the_kept_days() -> None:
    state, lo = small_area()
    state.leave("c2", lo + 3600)
    state.apply_supply(lo, [1.0])
    assert "c2" in state.customers
    state.apply_supply(lo + 36 * 86400, [1.0])
    assert state.customers == ["c1"]


def test_a_reading_that_drops_a_departed_customer_lands_in_its_own_row() -> None:
    state, lo = small_area()  # c1 (row 0), c2 (row 1)
    state.leave("c1", lo + 3600)
    state.apply_supply(lo, [1.0])
    later = lo + 40 * 86400
    # c2's block moves the watermark 40 days on: c1 leaves the record, c2 becomes row 0
    assert state.apply_customer("c2", "m2", later, [2.0, 3.0]).statuses == ["applied", "applied"]
    assert state.customers == ["c2"]
    (day,) = state.customer_days(count=1)["c2"]
    assert (day.kwh, day.reported) == (5.0, 2)


def test_blocks_and_the_same_intervals_as_single_readings_give_the_same_record() -> None:
    deliveries, spans = random_area(5, SHANGHAI, date(2026, 12, 1), 3)
    singles: list[tuple[Any, ...]] = []
    for delivery in deliveries:
        start, values = delivery[-2], delivery[-1]
        singles += [(*delivery[:-2], start + j * Q, [v]) for j, v in enumerate(values) if v is not None]

    def fed(items: list[tuple[Any, ...]]) -> AreaState:
        state = AreaState(SHANGHAI)
        for customer, periods in spans.items():
            for since, until in periods:
                state.join(customer, since)
                if until < 1 << 62:
                    state.leave(customer, until)
        apply_all(state, items)
        return state

    assert fed(deliveries).to_bytes() == fed(singles).to_bytes()


def test_the_figures_do_not_depend_on_the_arrival_order_within_the_lateness() -> None:
    lo = midnight(date(2026, 12, 1), SHANGHAI)
    rng = random.Random(11)
    items: list[tuple[Any, ...]] = [("supply", lo + j * Q, [rng.uniform(5, 9)]) for j in range(192)]
    for c in ("c1", "c2", "c3"):
        for m in (f"{c}a", f"{c}b"):
            items += [
                ("customer", c, m, lo + j * Q, [rng.uniform(0, 2)]) for j in range(192) if rng.random() > 0.02
            ]
    results = []
    for seed in range(3):
        rng.seed(seed)
        shuffled = list(items)
        rng.shuffle(shuffled)
        state = AreaState(SHANGHAI)
        for c in ("c1", "c2", "c3"):
            state.join(c, lo)
        assert apply_all(state, shuffled) == {"applied": len(items)}
        last = date(2026, 12, 2).toordinal()
        results.append(
            [(d.supplied_kwh, d.consumed_kwh, d.reported, d.complete) for d in state.days(last, 2)]
        )
    for figures in results[1:]:
        for got, want in zip(figures, results[0], strict=True):
            assert got[2:] == want[2:]
            assert got[0] == pytest.approx(want[0], rel=1e-12) and got[1] == pytest.approx(want[1], rel=1e-12)


@pytest.mark.parametrize(
    ("values", "meters"),
    [
        ([1.2345] * 96, 1),  # 4 decimals, small: int16
        ([4321.5] * 96, 1),  # 4 decimals, large: int32
        ([1 / 3] * 96, 1),  # not 4 decimals: float64
        ([1e6 + 0.5] * 96, 1),  # beyond int32 at 0.1 Wh: float64
        ([0.1] * 96, 2),  # two meters: a mask byte a cell
    ],
)
def test_open_day_cells_round_trip_exactly_in_every_encoding(values: list[float], meters: int) -> None:
    state, lo = small_area()
    values = list(values)
    values[5] = 0.0
    for m in range(meters):
        state.apply_customer("c1", f"m{m}", lo, values[:50] + [None] * 46)
    state.apply_customer("c2", "mx", lo, [0.7] * 96)
    data = state.to_bytes()
    restored = AreaState.from_bytes(data)
    assert restored.to_bytes() == data
    assert restored.customer_days(count=1) == state.customer_days(count=1)
    assert restored.days(count=1) == state.days(count=1)
    # the restored state dedups as the original: every interval is already there
    assert restored.apply_customer("c1", "m0", lo, values[:50]).count("duplicate") == 50


# ------------------------------------------------------------------ a watermark per side


@pytest.mark.parametrize(  # a fixed start, never the wall clock: across a month end, a year end, 29 Feb
    "first", [date(2027, 1, 31), date(2027, 12, 30), date(2028, 2, 28)], ids=str
)
def test_a_multi_day_backlog_summary_meters_first_gives_the_day_by_day_figures(first: date) -> None:
    """The planned population (simulator/areas.py, every case) as one backlog: every area's
    summary meter for all the days, then all the customers' energy, day after day. The summary
    meters run days ahead of the customers' energy; judged against its own side, nothing is
    refused and every area's figures equal those of day-by-day delivery."""
    from dataclasses import replace

    from simulator.area_run import area_simulation
    from simulator.areas import plan_scenarios
    from simulator.run import SimulationOptions

    opts = SimulationOptions(
        bootstrap="unused:9",
        customers=200,
        days=12,
        seed=7,
        blocks=True,
        outages=False,
        start=datetime(first.year, first.month, first.day, tzinfo=SHANGHAI),
    )
    sim, _ = area_simulation(opts)
    assert datetime.fromtimestamp(sim.start, SHANGHAI).date() == first
    bare = replace(sim, scenarios=())
    sim = replace(bare, scenarios=plan_scenarios(bare, event_day=sim.days - 5))
    area_of = dict(zip(sim.pop.customer_ids, sim.topology, strict=True))

    def fresh() -> dict[str, AreaState]:
        states = {a: AreaState(SHANGHAI) for a in sim.areas}
        for customer, area in area_of.items():
            states[area].join(customer, 0)
        return states

    def supply(states: dict[str, AreaState], day: Any, counts: dict[str, int]) -> None:
        for k, area in enumerate(sim.areas):
            for status in states[area].apply_supply(day.start, day.summary_kwh[k].tolist()).statuses:
                counts[status] += 1

    def energy(states: dict[str, AreaState], day: Any, counts: dict[str, int]) -> None:
        for m, meter in enumerate(sim.meter_ids):
            customer = sim.pop.customer_ids[int(sim.meter_customer[m])]
            values = [None if np.isnan(v) else float(v) for v in day.kwh[m]]
            for status in (
                states[area_of[customer]].apply_customer(customer, meter, day.start, values).statuses
            ):
                counts[status] += 1

    days = list(sim.all_days())
    assert len(days) == sim.days >= 4  # a backlog of more than the 48 h lateness
    daily, daily_counts = fresh(), defaultdict(int)
    for day in days:
        supply(daily, day, daily_counts)
        energy(daily, day, daily_counts)
    backlog, backlog_counts = fresh(), defaultdict(int)
    for day in days:
        supply(backlog, day, backlog_counts)
    for day in days:
        energy(backlog, day, backlog_counts)
    assert dict(backlog_counts) == dict(daily_counts) == {"applied": daily_counts["applied"]}
    for area in sim.areas:
        assert backlog[area].stats_document(area) == daily[area].stats_document(area), area
        assert backlog[area].customer_days() == daily[area].customer_days(), area
        # both sides passed the old days: they are sealed as in day-by-day delivery
        assert backlog[area].to_bytes() == daily[area].to_bytes(), area


def test_a_day_stays_open_until_both_sides_passed_it() -> None:
    state, lo = small_area()
    state.apply_customer("c1", "m1", lo, [4.0] * 96)
    state.apply_supply(lo, [10.0] * 96)
    for k in range(1, 6):  # the summary meter 5 days on, the members' energy not yet
        state.apply_supply(lo + k * 86400, [10.0] * 96)
    assert state.seal_cutoff() == lo + 95 * Q - 48 * 3600
    assert state.apply_customer("c2", "m2", lo, [5.0] * 96).count("applied") == 96
    for k in range(1, 6):
        state.apply_customer("c1", "m1", lo + k * 86400, [4.0] * 96)
        state.apply_customer("c2", "m2", lo + k * 86400, [5.0] * 96)
    assert state.seal_cutoff() == lo + 6 * 86400 - Q - 48 * 3600
    assert state.apply_customer("c2", "m2", lo, [5.0]).statuses == ["late"]  # sealed now
    figures = state.days(count=6)
    assert [d.complete for d in figures] == [True] * 6
    assert all(d.loss_rate == pytest.approx(0.1) for d in figures)
    restored = AreaState.from_bytes(state.to_bytes(), SHANGHAI)
    assert (restored.supply_mark, restored.member_mark) == (state.supply_mark, state.member_mark)
    assert restored.to_bytes() == state.to_bytes()


def test_a_lagging_summary_meter_holds_the_members_days_open_for_7_days_at_most() -> None:
    state, lo = small_area()
    first = date(2026, 11, 2).toordinal()
    state.apply_supply(lo, [10.0] * 96)
    for k in range(12):  # the members 12 days on, the summary meter stopped after the first day
        state.apply_customer("c1", "m1", lo + k * 86400, [4.0] * 96)
    members_cut = lo + 12 * 86400 - Q - 48 * 3600
    assert state.seal_cutoff() == members_cut - SUPPLY_HOLD_S == lo + 3 * 86400 - Q
    sealed = sorted(o for o, d in state._days.items() if isinstance(d, _SealedDay))
    assert sealed == [first, first + 1]  # not only the summary meter's day 0: 7 days at most
    # the summary meter's backlog: the days still held open take it, the sealed ones refuse it
    assert state.apply_supply(lo + 86400, [10.0] * 96).count("late") == 96
    assert state.apply_supply(lo + 2 * 86400, [10.0] * 96).count("applied") == 96
    (day,) = state.days(first + 2, 1)
    assert day.loss_rate == pytest.approx(0.6) and day.covered_intervals == 96
    # without any summary-meter input the same bound applies
    fresh, lo = small_area()
    for k in range(12):
        fresh.apply_customer("c1", "m1", lo + k * 86400, [4.0] * 96)
    assert fresh.seal_cutoff() == members_cut - SUPPLY_HOLD_S
    assert fresh.apply_supply(lo + 2 * 86400, [10.0]).statuses == ["applied"]
    assert fresh.apply_supply(lo + 86400, [10.0]).statuses == ["late"]


def test_a_reading_of_a_day_no_longer_kept_is_late() -> None:
    state, lo = small_area()
    state.apply_supply(lo + 40 * 86400, [1.0])  # the members have no mark yet: nothing sealed
    assert state.apply_customer("c1", "m1", lo, [1.0]).statuses == ["late"]  # 40 days behind
    assert state.apply_customer("c1", "m1", lo + 10 * 86400, [1.0]).statuses == ["applied"]


# A version-2 record (one watermark for both sides), written by the code before the per-side
# watermarks: small_area's c1 (4 kWh) and c2 (5, 4.5 on the second day) a quarter hour and the
# summary meter 10 kWh, 2-5 November 2026 (the first day sealed). zlib, base64.
_V2_RECORD = (
    "eNpzD3BkYq9Z8iaLAQRWoNGLmcBUCzMDA4jFwgCiGRmSDRsEnkFUQIADIxNDriFMG1iJETYlRjAlQV7cYFFGkLEJUAwBfQ4Q"
    "utuBiQFi7QEoRgUHnBkYPjgnAEEw1DCGhs0vwKYnQDVCgIrDKD1Kj1SaEYhZWR3mAHPgKB4wfGL9KB5I/B8HCIFVHQysr0ar"
    "jlF6lB6tOgYZDjg8igcS46o6QuG9jrDXo1XHKD1Kj1Ydo1XHKCai6gAAZ+ovgQ=="
)


def test_a_version_2_record_still_decodes_with_its_watermark_for_both_sides() -> None:
    import base64
    import zlib

    data = zlib.decompress(base64.b64decode(_V2_RECORD))
    assert data[:4] == b"GPA\x02"
    old = AreaState.from_bytes(data, SHANGHAI)
    state, lo = small_area()
    for k in range(4):
        start = lo + k * 86400
        state.apply_supply(start, [10.0] * 96)
        state.apply_customer("c1", "m1", start, [4.0] * 96)
        state.apply_customer("c2", "m2", start, [5.0 if k != 1 else 4.5] * 96)
    assert old.watermark == old.supply_mark == old.member_mark == state.watermark
    assert old.days(count=4) == state.days(count=4)
    assert old.customer_days(count=4) == state.customer_days(count=4)
    assert old.stats_document("A") == state.stats_document("A")
    assert old.apply_customer("c2", "m2", lo, [1.0]).statuses == ["late"]  # its sealed day
    # written back as version 3, the same state as one fed from the start
    assert old.to_bytes() == state.to_bytes() and old.to_bytes()[:4] == b"GPA\x03"
