"""Suspects (inspection/suspects.py): the score's parts, and the ranking on hand-built series and
on an AreaState fed with readings: the thief first, the holiday customer not first."""

from __future__ import annotations

import random
from datetime import date, datetime, timedelta

import numpy as np
import pytest

from inspection.area import AreaState, CustomerDay, DayFigures
from inspection.rules import HIGH_LOSS, InspectionThresholds, area_conditions
from inspection.suspects import SuspectWeights, rank, rank_area, suspect_score
from metering.load import DEFAULT_TZ

FIRST = date(2027, 1, 1)
DAYS = 30


def area_days(supplied: list[float], consumed: list[float]) -> list[DayFigures]:
    return [
        DayFigures(FIRST + timedelta(days=k), 96, 96, s, c, 10, 10, 960, 960, 0.0, 0)
        for k, (s, c) in enumerate(zip(supplied, consumed, strict=True))
    ]


def days_of(kwh: list[float]) -> list[CustomerDay]:
    return [CustomerDay(FIRST + timedelta(days=k), v, 96, 96) for k, v in enumerate(kwh)]


def village(seed: int) -> tuple[dict[str, list[float]], dict[str, list[float]]]:
    """True and metered daily kWh of 10 customers over 30 days: C_thief meters half of its load
    from day 20 on; C_holiday is away (10 % of its load) from day 24 on; the rest are honest."""
    rng = random.Random(seed)
    true: dict[str, list[float]] = {}
    for k in range(8):
        base = rng.uniform(8, 25)
        true[f"C{k}"] = [base * rng.uniform(0.85, 1.15) for _ in range(DAYS)]
    true["C_thief"] = [20 * rng.uniform(0.9, 1.1) for _ in range(DAYS)]
    true["C_holiday"] = [18 * rng.uniform(0.9, 1.1) * (0.1 if d >= 24 else 1.0) for d in range(DAYS)]
    metered = {c: list(v) for c, v in true.items()}
    metered["C_thief"] = [v * (0.5 if d >= 20 else 1.0) for d, v in enumerate(true["C_thief"])]
    return true, metered


def village_area(seed: int) -> tuple[dict[str, list[CustomerDay]], list[DayFigures]]:
    rng = random.Random(seed + 1000)
    true, metered = village(seed)
    supplied = [sum(v[d] for v in true.values()) * rng.uniform(1.03, 1.05) for d in range(DAYS)]
    consumed = [sum(v[d] for v in metered.values()) for d in range(DAYS)]
    return {c: days_of(v) for c, v in metered.items()}, area_days(supplied, consumed)


@pytest.mark.parametrize("seed", range(8))
def test_the_thief_ranks_first_and_the_holiday_customer_below_it(seed: int) -> None:
    customers, area = village_area(seed)
    flags = {"C_thief": {"consumption_drop"}, "C_holiday": {"consumption_drop"}}
    ranked = rank_area(customers, area, flags, {"C_thief": "mgr-1"})
    order = [s.customer_id for s in ranked]
    assert order[0] == "C_thief", [(s.customer_id, s.score) for s in ranked]
    assert order.index("C_holiday") > 0
    thief, holiday = ranked[0], ranked[order.index("C_holiday")]
    assert thief.score > holiday.score + 0.1
    assert thief.evidence["correlation"] < -0.5 and "negative_loss_correlation" in thief.reasons
    assert holiday.evidence["drop"] > 0.8 > thief.evidence["drop"]  # the holiday drop is the deeper one
    assert holiday.evidence["coincidence"] < 0.3 < 0.7 < thief.evidence["coincidence"]
    assert thief.evidence["onset"] == (FIRST + timedelta(days=20)).isoformat()
    assert holiday.evidence["onset"] == (FIRST + timedelta(days=24)).isoformat()
    assert thief.manager_id == "mgr-1" and all(0.0 <= s.score <= 1.0 for s in ranked)


def test_the_parts_of_the_score_and_their_evidence() -> None:
    kwh = [10.0 + (k % 5) for k in range(27)] + [3.0, 3.0, 3.0]
    loss = [40.0 - (k % 5) for k in range(27)] + [48.0, 48.0, 48.0]  # moves against the customer
    area = area_days([1000.0] * DAYS, [1000.0 - v for v in loss])
    s = suspect_score("C1", days_of(kwh), area, ["tamper_flag", "unknown_flag"])
    r = float(np.corrcoef(kwh, loss)[0, 1])
    median = float(np.median(kwh[:27]))
    drop = 1 - 3.0 / median
    assert s.evidence["correlation"] == pytest.approx(r, abs=1e-4) and r < -0.9
    assert s.evidence["correlation_part"] == pytest.approx(-r, abs=1e-4)
    assert s.evidence["trailing_median_kwh"] == median
    assert s.evidence["drop"] == pytest.approx(drop, abs=1e-4)
    # the drop began on day 27: kWh 11.67 -> 3 over the 3 days either side, the loss 38.33 -> 48
    assert s.evidence["onset"] == (FIRST + timedelta(days=27)).isoformat()
    assert s.evidence["onset_kwh_step"] == pytest.approx(35 / 3 - 3.0)
    assert s.evidence["onset_loss_step"] == pytest.approx(48.0 - 115 / 3)
    coincidence = (35 / 3 - 3.0) / (48.0 - 115 / 3)  # the loss rose a little more than the drop
    assert s.evidence["coincidence"] == pytest.approx(coincidence, abs=1e-4)
    assert s.evidence["drop_part"] == pytest.approx(drop * coincidence, abs=1e-4)
    assert s.evidence["flags"] == ["tamper_flag"] and s.evidence["flags_part"] == 1.0
    assert s.score == pytest.approx(0.35 * -r + 0.45 * drop * coincidence + 0.2 * 1.0, abs=1e-4)
    assert s.reasons == ("negative_loss_correlation", "drop_with_loss_rise", "tamper_flag")
    # the same drop with the area's loss flat: no coincidence, no drop part
    flat = area_days([1000.0] * DAYS, [960.0 + (k % 5) for k in range(DAYS)])
    holiday = suspect_score("C1", days_of(kwh), flat)
    assert holiday.evidence["drop"] == s.evidence["drop"] and holiday.evidence["drop_part"] < 0.05
    assert s.to_dict() == {
        "customer_id": "C1",
        "score": s.score,
        "reasons": list(s.reasons),
        "evidence": s.evidence,
    }


def test_too_few_days_a_flat_series_or_a_small_median_score_nothing() -> None:
    area = area_days([1000.0] * DAYS, [960.0 + k for k in range(DAYS)])
    few = suspect_score("C1", days_of([10.0] * 6), area[:6])
    assert few.evidence["correlation"] is None and few.score == 0.0
    flat = suspect_score("C1", days_of([10.0] * DAYS), area)
    assert flat.evidence["correlation"] is None and flat.score == 0.0
    tiny = suspect_score("C1", days_of([1.0] * 27 + [0.0] * 3), area)
    assert tiny.evidence["drop_part"] == 0.0  # median at the 1 kWh floor
    stopped = suspect_score("C1", days_of([10.0] * DAYS), area, ["stopped_reporting"])
    assert stopped.score == pytest.approx(0.2 * 0.7) and stopped.reasons == ("stopped_reporting",)


def test_incomplete_days_stay_out_of_the_score() -> None:
    kwh = [10.0 + (k % 5) for k in range(DAYS)]
    area = area_days([1000.0] * DAYS, [960.0 + (k % 5) for k in range(DAYS)])
    whole = suspect_score("C1", days_of(kwh), area)
    partial = [CustomerDay(d.date, d.kwh, 50 if k % 2 else 96, 96) for k, d in enumerate(days_of(kwh))]
    half = suspect_score("C1", partial, area)
    assert whole.evidence["correlation_days"] == DAYS and half.evidence["correlation_days"] == DAYS // 2


def test_rank_orders_by_score_then_customer_id() -> None:
    area = area_days([1000.0] * DAYS, [960.0] * DAYS)
    a = suspect_score("B", days_of([10.0] * DAYS), area, ["tamper_flag"])
    b = suspect_score("A", days_of([10.0] * DAYS), area, ["tamper_flag"])
    c = suspect_score("C", days_of([10.0] * DAYS), area)
    assert [s.customer_id for s in rank([c, a, b])] == ["A", "B", "C"]
    custom = SuspectWeights(correlation=0.0, drop=0.0, flags=1.0)
    assert suspect_score("A", days_of([10.0] * DAYS), area, ["tamper_flag"], weights=custom).score == 1.0


def test_the_ranking_from_an_area_state_fed_with_readings() -> None:
    """The same village through AreaState: quarter-hour readings, a summary meter with 6 %
    technical loss; the area's high-loss day lists the thief first."""
    tz = DEFAULT_TZ
    true, metered = village(3)
    state = AreaState(tz)
    t0 = int(datetime(FIRST.year, FIRST.month, FIRST.day, tzinfo=tz).timestamp())
    for c in true:
        state.join(c, t0)
    for d in range(DAYS):
        lo = t0 + d * 86400
        for c, series in metered.items():
            state.apply_customer(c, f"m-{c}", lo, [series[d] / 96] * 96)
        supply = sum(v[d] for v in true.values()) * 1.06
        state.apply_supply(lo, [supply / 96] * 96)
    last = (FIRST + timedelta(days=DAYS - 1)).toordinal()
    days = state.days(last)
    assert all(d.complete for d in days)
    assert days[-1].loss_rate is not None and days[-1].loss_rate > 0.10  # the theft shows
    assert area_conditions(days, InspectionThresholds())[HIGH_LOSS][0] is not None
    ranked = rank_area(state.customer_days(last), days)
    order = [s.customer_id for s in ranked]
    assert order[0] == "C_thief" and order.index("C_holiday") > 0
