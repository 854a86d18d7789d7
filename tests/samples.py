"""Example messages of every topic, valid as the contract defines them: one of each input as a
JSON-ready dict, one of each output as a model. Unit tests start from these and change a field."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from typing import Any

from schemas.models import (
    AffectedCustomer,
    Arrears,
    CreditAlert,
    D30Window,
    DayWindow,
    Indicators,
    IndicatorScores,
    MonthWindow,
    OutageAlert,
    OverdueBuckets,
    ReliabilityIndices,
    ScoresCustomer,
    StatsCustomer,
    Window,
)

CST = timezone(timedelta(hours=8))
NAME = "杭州某某钢铁有限公司"  # personal data in the profile example

READING = {
    "meter_id": "m1",
    "customer_id": "c1",
    "ts": "2026-03-01T10:15:00+08:00",
    "interval_s": 900,
    "kwh": 12.5,
    "kvarh": 3.0,
    "kvarh_export": None,
    "demand_kw": 51.0,
    "quality": ["estimated"],
}
BILL = {
    "event_id": "e1",
    "customer_id": "c1",
    "ts": "2026-03-05T09:00:00+08:00",
    "type": "bill",
    "amount": 1234.5,
    "bill_id": "b-2026-02",
    "due_date": "2026-03-25",
    "period": "2026-02",
}
OUTAGE = {
    "outage_id": "o1",
    "event": "notice",
    "ts": "2026-03-01T08:00:00+08:00",
    "scope": "feeder",
    "scope_id": "F101",
    "planned": True,
    "planned_start": "2026-03-03T09:00:00+08:00",
    "expected_restore": "2026-03-03T15:00:00+08:00",
    "cause": "maintenance",
}
PROFILE = {
    "customer_id": "c1",
    "name": NAME,
    "tariff_class": "large_industrial",
    "contract_kva": 5000.0,
    "voltage_kv": 10.0,
    "importance": "level1",
    "feeders": ["F101", "F202"],
    "transformer_area": "TA-9",
    "emergency_generator": True,
    "manager_id": "mgr7",
    "industry": "steel",
    "pf_standard": None,
    "tariff_cny_per_kwh": 0.65,
}


def window(**kw: object) -> Window:
    base: dict[str, object] = dict(
        kwh=10, kvarh=4, avg_kw=0.4, max_kw=1.2, load_factor=0.33, power_factor=0.93, intervals=96
    )
    return Window.model_validate(base | kw)


def stats_example() -> StatsCustomer:
    return StatsCustomer(
        customer_id="c1",
        ts=datetime(2026, 10, 31, 23, 45, tzinfo=CST),
        day=DayWindow(**window().model_dump(), date="2026-10-31"),
        d30=D30Window.model_validate(
            window(load_factor=None, power_factor=None).model_dump()
            | {"from": "2026-10-02", "to": "2026-10-31"}
        ),
        month=MonthWindow(
            **window().model_dump(), period="2026-10", pf_standard=0.9, pf_adjustment_pct=-0.45
        ),
        arrears=Arrears(
            outstanding=120.0,
            oldest_overdue_days=40,
            overdue_buckets=OverdueBuckets.model_validate({"0_30": 20, "31_60": 100}),
            late_fees_12m=1,
            reversals_12m=0,
            paid_36m=9000,
            due_36m=9120,
        ),
    )


def scores_example() -> ScoresCustomer:
    names = ("B11", "B12", "B21", "B22", "B31", "B32", "B41", "B42")
    return ScoresCustomer(
        customer_id="c1",
        ts=datetime(2026, 3, 1, tzinfo=UTC),
        indicators=Indicators.model_validate(dict.fromkeys(names, 0.5) | {"B42": None}),
        scores=IndicatorScores.model_validate(dict.fromkeys(names, 3)),
        current_value=2.638,
        potential_value=1.059,
        quadrant="maintenance",
        credit_grade="A",
        service_tier="level1",
        safety_grade="A",
        model_version="fuzzy-2026.1",
    )


def credit_alert_example() -> CreditAlert:
    return CreditAlert(
        alert_id="credit:c1:overdue_30",
        severity="major",
        status="open",
        ts=datetime(2026, 3, 1, tzinfo=CST),
        reason="oldest bill 40 days overdue",
        evidence={"oldest_overdue_days": 40, "outstanding": 120.0},
        customer_id="c1",
        rule="overdue_30",
        manager_id="mgr7",
    )


def outage_alert_example() -> OutageAlert:
    return OutageAlert(
        alert_id="outage:o1",
        severity="critical",
        status="open",
        ts=datetime(2026, 3, 1, 10, tzinfo=CST),
        reason="level1 customer loses supply",
        evidence={"customers": 1},
        outage_id="o1",
        scope="feeder",
        scope_id="F101",
        planned=False,
        manager_ids=["mgr7"],
        affected=[
            AffectedCustomer(
                customer_id="c1",
                importance="level1",
                safety_grade="D",
                impact="loss_of_supply",
                est_kw=830.5,
                revenue_at_risk_cny_per_h=540.0,
                manager_id="mgr7",
            )
        ],
    )


def reliability_example() -> ReliabilityIndices:
    return ReliabilityIndices(
        scope="system",
        scope_id="system",
        year=2026,
        customers_served=1000,
        customer_interruptions=250,
        customer_minutes=15000,
        SAIFI=0.25,
        SAIDI=15.0,
        CAIDI=60.0,
        momentary_interruptions=3,
    )


def reading(cid: str, end: datetime, kwh: float, **extra: object) -> dict[str, Any]:
    """A meter.readings document for the 15-minute interval ending at ``end`` (the agent-flow
    tests' and the integration tests' one way of writing a reading)."""
    return {
        "meter_id": f"M-{cid}",
        "customer_id": cid,
        "ts": end.isoformat(),
        "interval_s": 900,
        "kwh": kwh,
        "kvarh": kwh * 0.4,
        **extra,
    }
