"""Inspection rules (inspection/rules.py): every rule just below, at and above its threshold, an
incomplete day firing no loss rule, and the credit alerts' life cycle on inspection alerts."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest

from alerts.credit_rules import CreditTiming, CustomerAlerts
from inspection.area import CustomerDay, DayFigures
from inspection.rules import (
    CONSUMPTION_DROP,
    HIGH_LOSS,
    LOSS_JUMP,
    NEGATIVE_LOSS,
    STOPPED_REPORTING,
    TAMPER_FLAG,
    CustomerInputs,
    InspectionThresholds,
    TamperSeen,
    area_conditions,
    consumption_drop,
    evaluate_area,
    evaluate_customer,
    stopped_reporting,
    tamper_codes,
    tamper_flag,
)
from inspection.suspects import Suspect
from metering.load import DEFAULT_TZ

T = InspectionThresholds()
LAST = date(2027, 2, 10)


def area_day(day: date, supplied: float, consumed: float, complete: bool = True) -> DayFigures:
    """A day of an area of 10 customers; an incomplete one misses 10 % of its intervals."""
    reported = 960 if complete else 860
    return DayFigures(day, 96, 96, supplied, consumed, 10, 10, 960, reported, 0.0 if complete else None, 0)


def area_series(rates: list[float], last: date = LAST, supplied: float = 1000.0) -> list[DayFigures]:
    """Complete days with these loss rates, oldest first, the last on ``last``."""
    first = last - timedelta(days=len(rates) - 1)
    return [area_day(first + timedelta(days=k), supplied, supplied * (1 - r)) for k, r in enumerate(rates)]


def fired(conditions: dict[str, Any], rule: str) -> str | None:
    firing, _ = conditions[rule]
    return None if firing is None else firing.severity


# ------------------------------------------------------------------ area rules at their thresholds


@pytest.mark.parametrize(
    ("consumed", "severity"),
    [
        (900.1, None),  # 9.99 %
        (900.0, None),  # 10 %: not above
        (899.9, "major"),  # 10.01 %
        (800.0, "major"),  # 20 %: not above
        (799.9, "critical"),
    ],
)
def test_high_loss_above_10_percent_major_above_20_critical(consumed: float, severity: str | None) -> None:
    days = [area_day(LAST, 1000.0, consumed)]
    assert fired(area_conditions(days, T), HIGH_LOSS) == severity


@pytest.mark.parametrize(("consumed", "severity"), [(10_099.0, None), (10_100.0, None), (10_101.0, "minor")])
def test_negative_loss_below_minus_1_percent_minor(consumed: float, severity: str | None) -> None:
    days = [area_day(LAST, 10_000.0, consumed)]
    assert fired(area_conditions(days, T), NEGATIVE_LOSS) == severity


@pytest.mark.parametrize(("consumed", "severity"), [(910.1, None), (910.0, None), (909.9, "major")])
def test_loss_jump_more_than_5_points_above_the_trailing_median(
    consumed: float, severity: str | None
) -> None:
    days = [*area_series([0.04] * 30, LAST - timedelta(days=1)), area_day(LAST, 1000.0, consumed)]
    conditions = area_conditions(days, T)
    assert fired(conditions, LOSS_JUMP) == severity
    assert conditions[LOSS_JUMP][1]["trailing_median"] == pytest.approx(0.04)


def test_loss_jump_needs_a_trailing_median_of_enough_complete_days() -> None:
    days = [*area_series([0.04] * 6, LAST - timedelta(days=1)), area_day(LAST, 1000.0, 800.0)]
    assert fired(area_conditions(days, T), LOSS_JUMP) is None
    days = [*area_series([0.04] * 7, LAST - timedelta(days=1)), area_day(LAST, 1000.0, 800.0)]
    assert fired(area_conditions(days, T), LOSS_JUMP) == "major"


def test_an_incomplete_day_fires_no_loss_rule() -> None:
    only = [area_day(LAST, 1000.0, 500.0, complete=False)]
    assert not only[0].complete
    assert all(firing is None for firing, _ in area_conditions(only, T).values())
    # the newest complete day is judged instead: the incomplete high-loss day is not
    days = [area_day(LAST - timedelta(days=1), 1000.0, 960.0), *only]
    conditions = area_conditions(days, T)
    assert fired(conditions, HIGH_LOSS) is None
    assert conditions[HIGH_LOSS][1]["date"] == (LAST - timedelta(days=1)).isoformat()


def test_the_judged_rate_is_after_the_estimate_of_missing_intervals() -> None:
    # 10.5 % metered, 9.5 % once 10 kWh of missing customer-intervals are estimated
    day = DayFigures(LAST, 96, 96, 1000.0, 895.0, 10, 10, 960, 955, 10.0, 0)
    assert day.complete
    conditions = area_conditions([day], T)
    assert fired(conditions, HIGH_LOSS) is None
    assert conditions[HIGH_LOSS][1]["loss_rate_metered"] == pytest.approx(0.105)
    metered = InspectionThresholds(judge_with_estimate=False)
    assert fired(area_conditions([day], metered), HIGH_LOSS) == "major"


# ------------------------------------------------------------------ consumption_drop


def customer_series(kwh: list[float], last: date = LAST) -> list[CustomerDay]:
    first = last - timedelta(days=len(kwh) - 1)
    return [CustomerDay(first + timedelta(days=k), v, 96, 96) for k, v in enumerate(kwh)]


@pytest.mark.parametrize(
    ("recent", "severity"),
    [
        ([4.01, 4.01, 4.01], None),  # 40.1 % of the median
        ([4.0, 4.0, 4.0], None),  # 40 %: not below
        ([3.99, 3.99, 3.99], "minor"),
        ([3.99, 4.0, 3.99], None),  # only 2 of the 3 days below
    ],
)
def test_consumption_drop_below_40_percent_of_the_median_for_3_days(
    recent: list[float], severity: str | None
) -> None:
    series = customer_series([10.0] * 30 + recent)
    area = area_series([0.04] * 33)
    firing, evidence = consumption_drop(series, area, T)
    assert (firing.severity if firing else None) == severity
    assert evidence["trailing_median_kwh"] == 10.0


def test_consumption_drop_is_major_when_the_area_loss_rose_over_the_same_days() -> None:
    series = customer_series([10.0] * 30 + [3.0] * 3)
    # the area's loss over the drop days 1 point above its median (4 %): rose; 0.9 points: not
    rose = area_series([0.04] * 30 + [0.05] * 3)
    firing, evidence = consumption_drop(series, rose, T)
    assert firing is not None and firing.severity == "major" and evidence["area_loss_rose"]
    flat = area_series([0.04] * 30 + [0.049] * 3)
    firing, evidence = consumption_drop(series, flat, T)
    assert firing is not None and firing.severity == "minor" and not evidence["area_loss_rose"]


def test_consumption_drop_needs_a_median_above_the_floor_and_complete_days() -> None:
    area = area_series([0.04] * 33)
    low = customer_series([1.0] * 30 + [0.1] * 3)  # median 1 kWh: at the floor
    assert consumption_drop(low, area, T)[0] is None
    above = customer_series([1.01] * 30 + [0.1] * 3)
    assert consumption_drop(above, area, T)[0] is not None
    # the middle drop day is incomplete for the area: the 3 days are not consecutive complete days
    broken = [*area[:31], area_day(area[31].date, 1000.0, 960.0, complete=False), area[32]]
    assert consumption_drop(customer_series([10.0] * 30 + [3.0] * 3), broken, T)[0] is None
    # ... or for the customer itself (a silent meter is not a drop)
    series = customer_series([10.0] * 30 + [3.0] * 3)
    series[31] = CustomerDay(series[31].date, 3.0, 90, 96)
    assert consumption_drop(series, area, T)[0] is None


# ------------------------------------------------------------------ stopped_reporting

NOW = datetime(2027, 2, 10, 12, 0, tzinfo=DEFAULT_TZ).timestamp()  # the area's data time
H4 = 4 * 3600


def stopped(
    own: dict[str, int], reporting: int = 10, silent_others: int = 0, **kw: Any
) -> tuple[str | None, dict[str, Any]]:
    """The rule with ``reporting`` other meters ending at NOW, ``silent_others`` 10 h before,
    and the summary meter at NOW (``supply_end``): the area's data time is NOW."""
    others = [int(NOW)] * reporting + [int(NOW) - 10 * 3600] * silent_others
    args: dict[str, Any] = {"importance": None, "tariff_class": "residential", "already_open": False}
    args.update(kw)
    supply_end = args.pop("supply_end", int(NOW))
    firing, evidence = stopped_reporting(own, others, supply_end, t=T, **args)
    return (firing.severity if firing else None), evidence


def test_stopped_reporting_after_more_than_4_hours() -> None:
    assert stopped({"m1": int(NOW) - H4})[0] is None  # 4 h: not more
    assert stopped({"m1": int(NOW) - H4 - 1})[0] == "minor"


def test_stopped_reporting_needs_80_percent_of_the_other_meters_and_the_summary_meter() -> None:
    silent = {"m1": int(NOW) - 5 * 3600}
    assert stopped(silent, reporting=8, silent_others=2)[0] == "minor"  # 80 %
    assert stopped(silent, reporting=7, silent_others=3)[0] is None  # 70 %: an area problem
    assert stopped(silent, supply_end=int(NOW) - H4 - 1)[0] is None  # summary meter silent too
    assert stopped(silent, supply_end=None)[0] is None
    # once open, it stays open until the meter reports, whatever the neighbours do
    assert stopped(silent, reporting=0, silent_others=10, already_open=True)[0] == "minor"
    assert stopped({"m1": int(NOW) - 900}, already_open=True)[0] is None


@pytest.mark.parametrize(
    ("importance", "tariff", "severity"),
    [
        ("special", "commercial", "major"),
        ("level1", "commercial", "major"),
        ("none", "large_industrial", "major"),
        ("level2", "commercial", "minor"),
        (None, "residential", "minor"),
    ],
)
def test_stopped_reporting_severity_by_importance_and_tariff(
    importance: str | None, tariff: str, severity: str
) -> None:
    assert stopped({"m1": int(NOW) - 5 * 3600}, importance=importance, tariff_class=tariff)[0] == severity


@pytest.mark.parametrize(
    ("supply_end", "others_end", "severity"),
    [
        (int(NOW), int(NOW), "minor"),  # the area's data time is NOW: the meter 5 h behind it
        (int(NOW) - H4 - 1, int(NOW), None),  # the summary meter more than 4 h behind the others
        (int(NOW) - H4, int(NOW), "minor"),  # ... exactly 4 h: it still reports
        (int(NOW), int(NOW) - H4 - 1, None),  # the other meters more than 4 h behind the supply
        (int(NOW), int(NOW) - H4, "minor"),
        (int(NOW) - 5 * 3600 + 60, int(NOW) - 5 * 3600 + 60, None),  # all stopped together: no data
    ],
)
def test_stopped_reporting_judges_silence_at_the_areas_data_time(
    supply_end: int, others_end: int, severity: str | None
) -> None:
    own = {"m1": int(NOW) - 5 * 3600}
    firing, evidence = stopped_reporting(
        own,
        [others_end] * 10,
        supply_end,
        importance=None,
        tariff_class="residential",
        already_open=False,
        t=T,
    )
    assert (firing.severity if firing else None) == severity
    assert evidence["area_data_end"] == datetime.fromtimestamp(max(supply_end, others_end), UTC).isoformat()


def test_whole_days_delivered_after_midnight_are_judged_whenever_they_arrive() -> None:
    """Daily curves: the area's data ends at a local midnight; the white screen's meter stopped
    at 08:00 that day. Judged against the data, it fires however long after midnight the worker
    looks (within the 7-day horizon); nothing fires from data older than the horizon."""
    midnight = int(datetime(2027, 2, 11, 0, 0, tzinfo=DEFAULT_TZ).timestamp())
    inputs = CustomerInputs(
        days=customer_series([10.0] * 33), meters={"m1": midnight - 16 * 3600}, manager_id="mgr-a"
    )
    area = area_series([0.04] * 33)
    others = [midnight] * 9

    def opened(now: float) -> list[str]:
        held = CustomerAlerts()
        messages: list[dict[str, Any]] = []
        for t in (now, now + 30):
            evaluation = evaluate_customer(
                "C1", inputs, area, others, midnight, held, t, ts="t", thresholds=T, timing=TIMING
            )
            publish(held, evaluation.messages)
            messages += evaluation.messages
        return [m["rule"] for m in messages]

    for later in (60, 5 * 3600, 20 * 3600, 3 * 86400):
        assert opened(midnight + later) == [STOPPED_REPORTING], later
    silent_since = midnight - 16 * 3600
    assert opened(silent_since + TIMING.recent_s - 60) == [STOPPED_REPORTING]
    assert opened(silent_since + TIMING.recent_s + 1) == []  # history: older than the horizon


def test_meters_of_one_customer_stopping_together_are_evidence_of_one_alert() -> None:
    own = {"m1": int(NOW) - 5 * 3600, "m2": int(NOW) - 5 * 3600 - 900, "m3": int(NOW) - 900}
    severity, evidence = stopped(own)
    assert severity == "minor"
    assert [m["meter_id"] for m in evidence["silent_meters"]] == ["m1", "m2"]
    assert evidence["stopped_together"] and evidence["meters"] == 3


# ------------------------------------------------------------------ tamper_flag


def test_tamper_codes_and_flag() -> None:
    assert tamper_codes(["estimated", "magnetic", "cover_open"], T) == ["cover_open", "magnetic"]
    assert tamper_codes(["estimated", "power_fail"], T) == [] and tamper_codes(None, T) == []
    seen = TamperSeen("m1", int(NOW) - 3600, ("magnetic",))
    firing, evidence = tamper_flag(seen, NOW, T)
    assert firing is not None and firing.severity == "major" and evidence["codes"] == ["magnetic"]
    assert tamper_flag(seen, seen.interval_end + T.tamper_keep_s, T)[0] is not None
    assert tamper_flag(seen, seen.interval_end + T.tamper_keep_s + 1, T)[0] is None
    assert tamper_flag(None, NOW, T)[0] is None


# ------------------------------------------------------------------ the life cycle

TIMING = CreditTiming()
NOON = datetime(2027, 2, 11, 12, 0, tzinfo=DEFAULT_TZ).timestamp()  # the day after LAST
SUSPECTS = [
    Suspect("C7", 0.81, ("negative_loss_correlation",), {"correlation": -0.9}, "mgr-a"),
    Suspect("C2", 0.30, (), {"correlation": -0.2}, "mgr-b"),
    Suspect("C3", 0.10, (), {"correlation": 0.1}, None),
]


def publish(held: CustomerAlerts, messages: list[dict[str, Any]]) -> None:
    for message in messages:
        family = message["alert_id"].rsplit(":", 1)[1]
        if message["status"] == "resolved":
            held.published.pop(family, None)
        else:
            held.published[family] = message


def run_area(days: list[DayFigures], held: CustomerAlerts, now: float) -> list[dict[str, Any]]:
    evaluation = evaluate_area(
        "A1", days, SUSPECTS, held, now, ts="2027-02-11T00:00:00+08:00", thresholds=T, timing=TIMING
    )
    publish(held, evaluation.messages)
    return evaluation.messages


def test_an_area_alert_opens_after_the_hold_escalates_resolves_and_does_not_storm() -> None:
    held = CustomerAlerts()
    history = area_series([0.04] * 30, LAST - timedelta(days=1))
    high = [*history, area_day(LAST, 1000.0, 850.0)]  # 15 %: high loss and a jump
    assert run_area(high, held, NOON) == []  # held for open_hold_s
    messages = {m["rule"]: m for m in run_area(high, held, NOON + 30)}
    assert set(messages) == {HIGH_LOSS, LOSS_JUMP}
    alert = messages[HIGH_LOSS]
    assert alert["alert_id"] == "inspection:A1:area_high_loss" and alert["kind"] == "inspection"
    assert (alert["scope"], alert["transformer_area"]) == ("transformer_area", "A1")
    assert (alert["status"], alert["severity"]) == ("open", "major")
    assert [s["customer_id"] for s in alert["suspects"]] == ["C7", "C2", "C3"]
    assert alert["suspects"][0] == {
        "customer_id": "C7",
        "score": 0.81,
        "reasons": ["negative_loss_correlation"],
        "evidence": {"correlation": -0.9},
    }
    assert alert["manager_ids"] == ["mgr-a", "mgr-b"] and "manager_id" not in alert
    assert "customer_id" not in alert
    # re-evaluated on the same figures, or a tenth of a point worse: nothing new
    assert run_area(high, held, NOON + 60) == []
    assert run_area([*history, area_day(LAST, 1000.0, 849.0)], held, NOON + 90) == []
    # worse than 20 %: escalated after the hold
    worse = [*history, area_day(LAST, 1000.0, 750.0)]
    (refreshed,) = run_area(worse, held, NOON + 120)  # the jump's rate moved 10 points: news
    assert (refreshed["rule"], refreshed["status"]) == (LOSS_JUMP, "open")
    assert refreshed["evidence"]["loss_rate"] == pytest.approx(0.25)
    escalated = {m["rule"]: m for m in run_area(worse, held, NOON + 150)}
    assert (escalated[HIGH_LOSS]["status"], escalated[HIGH_LOSS]["severity"]) == ("escalated", "critical")
    # back to 4 %: resolved after the resolve hold, with the reason
    fine = [*history, area_day(LAST, 1000.0, 960.0)]
    assert run_area(fine, held, NOON + 200) == []
    resolved = {m["rule"]: m for m in run_area(fine, held, NOON + 200 + 3600)}
    assert {m["status"] for m in resolved.values()} == {"resolved"} and set(resolved) == {
        HIGH_LOSS,
        LOSS_JUMP,
    }
    assert resolved[HIGH_LOSS]["reason"].startswith("resolved: line loss 4.0 %")
    assert resolved[HIGH_LOSS]["suspects"] == [] and resolved[HIGH_LOSS]["manager_ids"] == []


def test_a_negative_loss_alert_lists_no_suspects() -> None:
    held = CustomerAlerts()
    days = [area_day(LAST, 1000.0, 1030.0)]
    run_area(days, held, NOON)
    (alert,) = run_area(days, held, NOON + 30)
    assert alert["rule"] == NEGATIVE_LOSS and alert["severity"] == "minor" and alert["suspects"] == []


def test_history_older_than_the_horizon_opens_no_alert() -> None:
    held = CustomerAlerts()
    days = [area_day(LAST, 1000.0, 700.0)]
    late = datetime(2027, 2, 11, 0, 0, tzinfo=DEFAULT_TZ).timestamp() + TIMING.recent_s
    assert run_area(days, held, late + 1) == [] and run_area(days, held, late + 60) == []
    assert run_area(days, held, late - 60) == [] and len(run_area(days, held, late - 30)) == 1


def test_customer_alerts_carry_the_customer_and_its_manager() -> None:
    held = CustomerAlerts()
    inputs = CustomerInputs(
        days=customer_series([10.0] * 30 + [2.0] * 3),
        meters={"m1": int(NOON) - 5 * 3600},
        tamper=TamperSeen("m1", int(NOON) - 3600, ("magnetic",)),
        importance="level1",
        tariff_class="commercial",
        manager_id="mgr-a",
    )
    area = area_series([0.04] * 30 + [0.10] * 3)
    others = [int(NOON) - 900] * 9

    def run(now: float) -> list[dict[str, Any]]:
        evaluation = evaluate_customer(
            "C7", inputs, area, others, int(NOON) - 900, held, now, ts="t", thresholds=T, timing=TIMING
        )
        publish(held, evaluation.messages)
        return evaluation.messages

    assert run(NOON) == []
    messages = {m["rule"]: m for m in run(NOON + 30)}
    assert set(messages) == {CONSUMPTION_DROP, STOPPED_REPORTING, TAMPER_FLAG}
    assert {m["severity"] for m in messages.values()} == {"major"}
    for rule, message in messages.items():
        assert message["alert_id"] == f"inspection:C7:{rule}"
        assert (message["scope"], message["customer_id"], message["manager_id"]) == (
            "customer",
            "C7",
            "mgr-a",
        )
    assert run(NOON + 60) == []  # no storm


def test_no_loss_jump_on_a_negative_loss_day() -> None:
    # a mis-mapped customer's area swings by many points around -20 %: a mapping error, not a jump
    days = [*area_series([-0.20] * 10, LAST - timedelta(days=1)), area_day(LAST, 1000.0, 1100.0)]
    conditions = area_conditions(days, T)
    assert fired(conditions, LOSS_JUMP) is None and fired(conditions, NEGATIVE_LOSS) == "minor"
    # a day back at 0 % after negative days is judged (-1 % is not below the threshold)
    days = [*area_series([-0.20] * 10, LAST - timedelta(days=1)), area_day(LAST, 1000.0, 1010.0)]
    assert fired(area_conditions(days, T), LOSS_JUMP) == "major"


@pytest.mark.parametrize(("silent_s", "severity"), [(H4 - 1, None), (H4, None), (H4 + 1, "minor")])
def test_stopped_reporting_at_4_hours(silent_s: int, severity: str | None) -> None:
    assert stopped({"m1": int(NOW) - silent_s})[0] == severity


@pytest.mark.parametrize(("reporting", "severity"), [(79, None), (80, "minor"), (81, "minor")])
def test_stopped_reporting_at_80_percent_of_the_other_meters(reporting: int, severity: str | None) -> None:
    severity_now, evidence = stopped(
        {"m1": int(NOW) - 5 * 3600}, reporting=reporting, silent_others=100 - reporting
    )
    assert severity_now == severity and evidence["neighbours_reporting_share"] == reporting / 100


def test_a_silent_meter_or_a_tamper_code_from_before_the_horizon_opens_nothing() -> None:
    held = CustomerAlerts()
    old = int(NOON - TIMING.recent_s) - 900
    inputs = CustomerInputs(
        days=customer_series([10.0] * 33),
        meters={"m1": old, "m2": int(NOON) - 900},
        tamper=TamperSeen("m1", old, ("tamper",)),
        manager_id="mgr-a",
    )
    area = area_series([0.04] * 33)
    others = [int(NOON) - 900] * 9
    for now in (NOON, NOON + 30, NOON + 60):
        evaluation = evaluate_customer(
            "C1", inputs, area, others, int(NOON) - 900, held, now, ts="t", thresholds=T, timing=TIMING
        )
        assert evaluation.messages == []
    # the same inputs within the horizon open both
    recent = CustomerInputs(
        days=inputs.days,
        meters={"m1": int(NOON) - 5 * 3600},
        tamper=TamperSeen("m1", int(NOON) - 5 * 3600, ("tamper",)),
    )
    for now in (NOON, NOON + 30):
        evaluation = evaluate_customer(
            "C1", recent, area, others, int(NOON) - 900, held, now, ts="t", thresholds=T, timing=TIMING
        )
    assert {m["rule"] for m in evaluation.messages} == {STOPPED_REPORTING, TAMPER_FLAG}


def test_a_consumption_drop_that_ended_before_the_horizon_opens_nothing() -> None:
    inputs = CustomerInputs(days=customer_series([10.0] * 30 + [2.0] * 3), meters={})
    area = area_series([0.04] * 33)
    end_of_last = datetime(2027, 2, 11, 0, 0, tzinfo=DEFAULT_TZ).timestamp()

    def opened(now: float) -> list[str]:
        held = CustomerAlerts()
        messages: list[dict[str, Any]] = []
        for t in (now, now + 30):
            messages += evaluate_customer(
                "C1", inputs, area, [], None, held, t, ts="t", thresholds=T, timing=TIMING
            ).messages
        return [m["rule"] for m in messages]

    assert opened(end_of_last + TIMING.recent_s - 30) == [CONSUMPTION_DROP]
    assert opened(end_of_last + TIMING.recent_s + 1) == []


def test_an_open_area_alert_is_published_again_when_a_new_first_suspect_clearly_leads() -> None:
    held = CustomerAlerts()
    days = [area_day(LAST, 1000.0, 850.0)]

    def run(suspects: list[Suspect], now: float) -> list[dict[str, Any]]:
        evaluation = evaluate_area(
            "A1", days, suspects, held, now, ts="2027-02-11T00:00:00+08:00", thresholds=T, timing=TIMING
        )
        publish(held, evaluation.messages)
        return evaluation.messages

    def scored(cid: str, score: float) -> Suspect:
        base = next(x for x in SUSPECTS if x.customer_id == cid)
        return Suspect(cid, score, base.reasons, base.evidence, base.manager_id)

    def listed() -> list[str]:
        return [x["customer_id"] for x in held.published[HIGH_LOSS]["suspects"]]

    run(SUSPECTS, NOON)
    assert [m["status"] for m in run(SUSPECTS, NOON + 30)] == ["open"]  # C7 0.81 leads C2 0.30
    assert held.published[HIGH_LOSS]["evidence"]["lead"] == pytest.approx(0.51)
    near = [scored("C2", 0.83), scored("C7", 0.81), SUSPECTS[2]]  # a new first by 0.02: a near tie
    assert run(near, NOON + 60) == [] and listed() == ["C7", "C2", "C3"]  # not news
    ahead = [scored("C2", 0.81 + T.lead_margin), scored("C7", 0.81), SUSPECTS[2]]  # by the margin
    assert [m["status"] for m in run(ahead, NOON + 90)] == ["open"]
    assert listed() == ["C2", "C7", "C3"]
    halved = [scored(x.customer_id, x.score / 2) for x in ahead]
    assert run(halved, NOON + 120) == []  # same first suspect, other scores: not news
    behind = [ahead[0], ahead[2], ahead[1]]  # C2 still first, C3 and C7 swap
    assert run(behind, NOON + 150) == []  # the order behind the first suspect moves daily: not news
    assert listed() == ["C2", "C7", "C3"]
