"""schemas.validation: every Issue kind at its threshold."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone

import pytest

from schemas.models import BillingEvent, CustomerProfile, MeterReading
from schemas.validation import (
    ALLOWED_INTERVALS,
    DEMAND_MARGIN,
    ISSUE_KINDS,
    Issue,
    check_billing,
    check_profile,
    check_reading,
)
from tests.samples import BILL, NAME, PROFILE, READING

CST = timezone(timedelta(hours=8))
TS = datetime(2026, 3, 1, 10, 15, tzinfo=CST)
NOW = TS + timedelta(minutes=5)
seen_kinds: set[str] = set()


def reading(**kw: object) -> MeterReading:
    return MeterReading.model_validate(READING | {"ts": TS, "kwh": 10.0, "demand_kw": None} | kw)


def issue(result: Issue | None) -> str | None:
    if result is not None:
        seen_kinds.add(result.kind)
        assert result.detail
    return None if result is None else result.kind


def check(
    r: MeterReading, *, now: datetime = NOW, contract_kva: float | None = None, **kw: object
) -> str | None:
    return issue(check_reading(r, now=now, contract_kva=contract_kva, **kw))  # type: ignore[arg-type]


def test_good_reading() -> None:
    assert check(reading(), contract_kva=100) is None
    assert check(reading(quality=["estimated", "power_fail"])) is None  # quality is carried, not an error


def test_negative_energy_when_schema_was_bypassed() -> None:
    for field in ("kwh", "kvarh", "kvarh_export", "demand_kw"):
        r = reading().model_copy(update={field: -0.001})  # model_copy skips validation
        assert check(r) == "negative_energy"
    assert check(reading(kwh=0.0, kvarh=0.0)) is None


@pytest.mark.parametrize("interval_s", ALLOWED_INTERVALS)
def test_allowed_intervals(interval_s: int) -> None:
    ts = datetime(2026, 3, 1, 10, 0, tzinfo=CST)
    assert check(reading(interval_s=interval_s, ts=ts), now=ts) is None


@pytest.mark.parametrize("interval_s", [1, 59, 61, 120, 901, 7200, 86400])
def test_interval_not_allowed(interval_s: int) -> None:
    # on the interval's own boundary, so only the length is wrong
    ts = datetime(1970, 1, 1, tzinfo=UTC) + timedelta(seconds=interval_s * (1_772_000_000 // interval_s))
    assert check(reading(interval_s=interval_s, ts=ts), now=ts) == "interval_length"
    assert check(reading(interval_s=interval_s, ts=ts), now=ts, allowed_intervals=(interval_s,)) is None


@pytest.mark.parametrize(
    ("ts", "aligned"),
    [
        (datetime(2026, 3, 1, 10, 15, tzinfo=CST), True),
        (datetime(2026, 3, 1, 10, 15, 1, tzinfo=CST), False),
        (datetime(2026, 3, 1, 10, 14, 59, tzinfo=CST), False),
        (datetime(2026, 3, 1, 10, 15, 0, 1, tzinfo=CST), False),
        (datetime(2026, 3, 1, 10, 20, tzinfo=CST), False),
        (datetime(2026, 3, 1, 2, 45, tzinfo=UTC), True),
        # alignment is in UTC seconds: a +05:30 quarter hour is still on the UTC grid
        (datetime(2026, 3, 1, 10, 15, tzinfo=timezone(timedelta(hours=5, minutes=30))), True),
        (datetime(2026, 3, 1, 10, 10, tzinfo=timezone(timedelta(hours=5, minutes=45))), False),
    ],
)
def test_interval_alignment(ts: datetime, aligned: bool) -> None:
    expected = None if aligned else "interval_length"
    assert check(reading(ts=ts), now=ts) == expected


def test_future_timestamp_threshold() -> None:
    r = reading()
    assert check(r, now=TS - timedelta(seconds=300)) is None  # exactly at the tolerance
    assert check(r, now=TS - timedelta(seconds=301)) == "future_timestamp"
    assert check(r, now=TS - timedelta(seconds=301), future_tolerance_s=301) is None
    assert check(r, now=(TS - timedelta(seconds=301)).astimezone(UTC)) == "future_timestamp"


def test_impossible_demand_threshold_from_energy() -> None:
    # 100 kVA x 1.5 = 150 kW; 15 minutes at 150 kW = 37.5 kWh
    assert DEMAND_MARGIN == 1.5
    assert check(reading(kwh=37.5), contract_kva=100) is None
    assert check(reading(kwh=37.51), contract_kva=100) == "impossible_demand"
    assert check(reading(kwh=37.51), contract_kva=100, demand_margin=2.0) is None
    # 5-minute interval: 12.5 kWh = 150 kW
    ts = datetime(2026, 3, 1, 10, 5, tzinfo=CST)
    assert check(reading(kwh=12.5, interval_s=300, ts=ts), now=ts, contract_kva=100) is None
    assert check(reading(kwh=12.6, interval_s=300, ts=ts), now=ts, contract_kva=100) == "impossible_demand"


def test_impossible_demand_threshold_from_demand_register() -> None:
    assert check(reading(kwh=1, demand_kw=150.0), contract_kva=100) is None
    assert check(reading(kwh=1, demand_kw=150.1), contract_kva=100) == "impossible_demand"


def test_demand_unchecked_without_profile() -> None:
    assert check(reading(kwh=1e6, demand_kw=1e6), contract_kva=None) is None
    assert check(reading(kwh=1e6), contract_kva=0) is None


# --- billing -----------------------------------------------------------------------------------


def bill(**kw: object) -> BillingEvent:
    return BillingEvent.model_validate(BILL | kw)


def test_good_billing_events() -> None:
    assert issue(check_billing(bill())) is None
    for kind in ("payment", "late_fee", "payment_reversal", "theft_penalty"):
        assert issue(check_billing(bill(type=kind, due_date=None, bill_id=None, period=None))) is None
    assert issue(check_billing(bill(type="adjustment", amount=-50))) is None
    assert issue(check_billing(bill(type="adjustment", amount=0.01))) is None


def test_bill_needs_due_date_and_id() -> None:
    assert issue(check_billing(bill(due_date=None))) == "incomplete_bill"
    assert issue(check_billing(bill(bill_id=None))) == "incomplete_bill"
    assert (
        "bill_id and due_date" in (check_billing(bill(bill_id=None, due_date=None)) or Issue("", "")).detail
    )


@pytest.mark.parametrize(
    ("kind", "amount"), [("bill", 0), ("payment", -1), ("late_fee", 0), ("adjustment", 0)]
)
def test_bad_amount(kind: str, amount: float) -> None:
    assert issue(check_billing(bill(type=kind, amount=amount))) == "bad_amount"


def test_due_date_margin() -> None:
    # the bill is dated 2026-03-05 (+08:00); 31 days earlier is 2026-02-02
    assert issue(check_billing(bill(due_date="2026-02-02"))) is None
    assert issue(check_billing(bill(due_date="2026-02-01"))) == "bad_due_date"
    assert issue(check_billing(bill(due_date="2026-02-01"), due_before_bill_days=40)) is None
    assert issue(check_billing(bill(due_date=date(2027, 3, 6)))) is None  # 366 days later
    assert issue(check_billing(bill(due_date=date(2027, 3, 7)))) == "bad_due_date"
    # a payment's due date is not checked
    assert issue(check_billing(bill(type="payment", due_date="2000-01-01"))) is None


# --- profiles ----------------------------------------------------------------------------------


def profile(**kw: object) -> CustomerProfile:
    return CustomerProfile.model_validate(PROFILE | kw)


def test_good_profiles() -> None:
    assert issue(check_profile(profile())) is None
    assert issue(check_profile(CustomerProfile(customer_id="c2"))) is None
    assert issue(check_profile(profile(contract_kva=0, voltage_kv=0, tariff_cny_per_kwh=0))) is None
    for pf in (0.8, 0.85, 0.9, 0.8500000001):
        assert issue(check_profile(profile(pf_standard=pf))) is None


@pytest.mark.parametrize(
    ("change", "kind"),
    [
        ({"contract_kva": -0.1}, "bad_contract_kva"),
        ({"voltage_kv": -10}, "bad_voltage"),
        ({"feeders": ["F1", "  "]}, "bad_feeders"),
        ({"feeders": ["F1", "F1"]}, "bad_feeders"),
        ({"pf_standard": 0.95}, "bad_pf_standard"),
        ({"pf_standard": 0.86}, "bad_pf_standard"),
        ({"pf_standard": 90}, "bad_pf_standard"),
        ({"tariff_cny_per_kwh": -0.5}, "bad_tariff"),
    ],
)
def test_bad_profiles(change: dict[str, object], kind: str) -> None:
    result = check_profile(profile(**change))
    assert issue(result) == kind
    assert result is not None and NAME not in result.detail


def test_blank_feeder_when_schema_was_bypassed() -> None:
    assert issue(check_profile(profile().model_copy(update={"feeders": ["F1", ""]}))) == "bad_feeders"


def test_zz_every_issue_kind_is_tested() -> None:
    # runs last in this module (pytest keeps file order); -p no:randomly if a plugin reorders
    assert seen_kinds == set(ISSUE_KINDS)
