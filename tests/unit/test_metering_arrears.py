"""ArrearsLedger: settlement order, credit, reversals, ageing buckets, trailing windows."""

from __future__ import annotations

import random
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from metering.arrears import ArrearsLedger
from tests.reference import reference_arrears

SHANGHAI = ZoneInfo("Asia/Shanghai")


def at(day: str, hour: int = 10) -> datetime:
    return datetime.fromisoformat(day).replace(hour=hour, tzinfo=SHANGHAI)


def bill(event_id: str, amount: float, due: str, ts: str, bill_id: str | None = None) -> dict[str, Any]:
    return {
        **event(event_id, "bill", amount, ts, bill_id or event_id),
        "due_date": due,
        "period": due[:7],
    }


def event(event_id: str, kind: str, amount: float, ts: str, bill_id: str | None = None) -> dict[str, Any]:
    return {"event_id": event_id, "ts": at(ts), "type": kind, "amount": amount, "bill_id": bill_id}


def ledger_of(*events: dict[str, Any]) -> ArrearsLedger:
    ledger = ArrearsLedger(SHANGHAI)
    for e in events:
        ledger.apply(e)
    return ledger


TWO_BILLS = (bill("b1", 100.0, "2026-01-25", "2026-01-05"), bill("b2", 200.0, "2026-02-25", "2026-02-05"))


def test_payment_settles_the_oldest_open_amount_first() -> None:
    snap = ledger_of(*TWO_BILLS, event("p1", "payment", 150.0, "2026-02-10")).snapshot(at("2026-03-01"))
    assert snap["outstanding"] == 150.0
    assert snap["bills_open"] == 1
    assert snap["oldest_overdue_days"] == 4  # due 25 Feb, overdue from 26 Feb: 1 Mar is day 4
    assert snap["overdue_buckets"] == {"0_30": 150.0, "31_60": 0.0, "61_90": 0.0, "over_90": 0.0}


def test_the_oldest_overdue_charge_is_named_with_what_does_not_age() -> None:
    ledger = ledger_of(*TWO_BILLS, bill("b0", 70.0, "2026-01-25", "2026-01-06"))
    snap = ledger.snapshot(at("2026-03-01"))
    # b1 and b0 are both due 25 Jan: the first to arrive is the oldest
    assert (snap["oldest_overdue_id"], snap["oldest_overdue_type"]) == ("b1", "bill")
    assert (snap["oldest_overdue_due_date"], snap["oldest_overdue_open"]) == ("2026-01-25", 100.0)
    assert snap["last_event_ts"] == "2026-02-05T10:00:00+08:00"
    ledger.apply(event("p1", "payment", 60.0, "2026-02-10", bill_id="b1"))
    assert ledger.snapshot(at("2026-03-01"))["oldest_overdue_open"] == 40.0  # partly paid: still b1
    ledger.apply(event("p2", "payment", 40.0, "2026-02-11", bill_id="b1"))
    snap = ledger.snapshot(at("2026-03-01"))
    assert (snap["oldest_overdue_id"], snap["oldest_overdue_open"]) == ("b0", 70.0)
    assert snap["last_event_ts"] == "2026-02-11T10:00:00+08:00"
    # nothing overdue yet, or nothing at all
    assert ledger_of(*TWO_BILLS).snapshot(at("2026-01-20"))["oldest_overdue_id"] is None
    empty = ArrearsLedger(SHANGHAI).snapshot(at("2026-01-20"))
    assert (empty["oldest_overdue_id"], empty["oldest_overdue_open"], empty["last_event_ts"]) == (
        None,
        0.0,
        None,
    )


def test_a_late_fee_can_be_the_oldest_overdue_charge_and_windows_carry_amounts() -> None:
    ledger = ledger_of(
        event("f1", "late_fee", 12.5, "2026-01-10"),
        bill("b1", 100.0, "2026-02-25", "2026-02-05"),
        event("r1", "payment_reversal", 30.0, "2026-02-06"),
    )
    snap = ledger.snapshot(at("2026-03-01"))
    assert (snap["oldest_overdue_id"], snap["oldest_overdue_type"]) == ("f1", "late_fee")
    assert (snap["late_fee_amount_12m"], snap["reversal_amount_12m"]) == (12.5, 30.0)
    assert ledger.snapshot(at("2027-01-11"))["late_fee_amount_12m"] == 0.0  # left the window


def test_payment_naming_a_bill_settles_it_first_and_the_excess_fifo() -> None:
    snap = ledger_of(*TWO_BILLS, event("p1", "payment", 250.0, "2026-02-10", bill_id="b2")).snapshot(
        at("2026-03-01")
    )
    assert snap["outstanding"] == 50.0
    assert snap["oldest_overdue_days"] == 35  # what is left is b1's, due 25 Jan
    assert snap["overdue_buckets"]["31_60"] == 50.0


def test_overpayment_is_credit_that_settles_the_next_charge() -> None:
    ledger = ledger_of(*TWO_BILLS, event("p1", "payment", 400.0, "2026-02-10"))
    assert ledger.snapshot(at("2026-02-11"))["credit"] == 100.0
    assert ledger.snapshot(at("2026-02-11"))["outstanding"] == 0.0
    ledger.apply(bill("b3", 150.0, "2026-03-25", "2026-03-05"))
    snap = ledger.snapshot(at("2026-03-06"))
    assert snap["credit"] == 0.0 and snap["outstanding"] == 50.0 and snap["oldest_overdue_days"] == 0


def test_negative_adjustment_is_credit_and_positive_is_a_charge() -> None:
    ledger = ledger_of(*TWO_BILLS, event("a1", "adjustment", -30.0, "2026-02-06"))
    assert ledger.snapshot(at("2026-02-06"))["outstanding"] == 270.0
    ledger.apply(event("a2", "adjustment", 12.5, "2026-02-07"))
    snap = ledger.snapshot(at("2026-02-09"))
    assert snap["outstanding"] == 282.5
    assert snap["overdue_buckets"]["0_30"] == 12.5 + 70.0  # a2 due 7 Feb; b1's 70 due 25 Jan


def test_reversal_reopens_the_most_recently_settled_with_original_due_dates() -> None:
    paid = (*TWO_BILLS, event("p1", "payment", 300.0, "2026-02-10"))
    snap = ledger_of(*paid, event("r1", "payment_reversal", 200.0, "2026-02-12")).snapshot(at("2026-03-01"))
    assert snap["outstanding"] == 200.0
    assert snap["oldest_overdue_days"] == 4  # b2 re-opened, due 25 Feb (not b1, due 25 Jan)
    snap = ledger_of(*paid, event("r1", "payment_reversal", 250.0, "2026-02-12")).snapshot(at("2026-03-01"))
    assert snap["outstanding"] == 250.0
    assert snap["oldest_overdue_days"] == 35  # 50 of b1 re-opened too
    assert snap["reversals_12m"] == 1
    assert snap["paid_36m"] == 50.0  # 300 paid - 250 bounced


def test_reversal_takes_unapplied_credit_first() -> None:
    ledger = ledger_of(*TWO_BILLS, event("p1", "payment", 400.0, "2026-02-10"))
    ledger.apply(event("r1", "payment_reversal", 150.0, "2026-02-12"))
    snap = ledger.snapshot(at("2026-02-13"))
    assert snap["credit"] == 0.0 and snap["outstanding"] == 50.0  # 100 credit gone, 50 of b2 open


def test_reversal_of_untraceable_money_is_owed_from_its_date() -> None:
    snap = ledger_of(event("r1", "payment_reversal", 80.0, "2026-02-12")).snapshot(at("2026-02-20"))
    assert snap["outstanding"] == 80.0 and snap["oldest_overdue_days"] == 8


def test_duplicate_delivery_changes_nothing() -> None:
    ledger = ledger_of(*TWO_BILLS)
    payment = event("p1", "payment", 150.0, "2026-02-10")
    assert ledger.apply(payment) is True
    before = ledger.to_bytes()
    assert ledger.apply(payment) is False
    assert ledger.apply(TWO_BILLS[0]) is False
    assert ledger.to_bytes() == before


@pytest.mark.parametrize(
    ("days_after_due", "bucket"),
    [(0, None), (1, "0_30"), (30, "0_30"), (31, "31_60"), (60, "31_60"), (61, "61_90"), (90, "61_90"),
     (91, "over_90"), (400, "over_90")],
)  # fmt: skip
def test_ageing_buckets_at_their_edges(days_after_due: int, bucket: str | None) -> None:
    ledger = ledger_of(bill("b1", 100.0, "2026-01-25", "2026-01-05"))
    as_of = at("2026-01-25", hour=23) + timedelta(days=days_after_due)
    snap = ledger.snapshot(as_of)
    assert snap["oldest_overdue_days"] == days_after_due
    assert snap["overdue_buckets"] == {k: (100.0 if k == bucket else 0.0) for k in snap["overdue_buckets"]}
    assert snap["outstanding"] == 100.0


def test_ages_use_the_local_date() -> None:
    ledger = ledger_of(bill("b1", 100.0, "2026-01-25", "2026-01-05"))
    # 2026-01-25T16:30Z is already 26 Jan 00:30 in Shanghai: one day past due
    assert ledger.snapshot(datetime.fromisoformat("2026-01-25T16:30:00+00:00"))["oldest_overdue_days"] == 1
    assert ledger.snapshot(datetime.fromisoformat("2026-01-25T15:30:00+00:00"))["oldest_overdue_days"] == 0


def test_trailing_12_month_counts() -> None:
    ledger = ledger_of(
        event("f1", "late_fee", 5.0, "2025-03-10"),
        event("f2", "late_fee", 7.0, "2025-09-10"),
        event("t1", "theft_penalty", 60_000.0, "2025-03-11"),
        event("r1", "payment_reversal", 10.0, "2025-03-12"),
    )
    snap = ledger.snapshot(at("2026-03-09"))
    assert (snap["late_fees_12m"], snap["theft_12m"], snap["reversals_12m"]) == (2, 60_000.0, 1)
    snap = ledger.snapshot(at("2026-03-10"))  # f1 is exactly a year old: out
    assert (snap["late_fees_12m"], snap["theft_12m"], snap["reversals_12m"]) == (1, 60_000.0, 1)
    snap = ledger.snapshot(at("2026-03-12"))
    assert (snap["late_fees_12m"], snap["theft_12m"], snap["reversals_12m"]) == (1, 0.0, 0)
    assert ledger.snapshot(at("2025-03-10", hour=9))["late_fees_12m"] == 0  # not yet happened


def test_36_month_sums_by_billing_month() -> None:
    ledger = ledger_of(
        bill("b1", 100.0, "2023-04-25", "2023-04-05"),
        event("p1", "payment", 100.0, "2023-04-20"),
        event("f1", "late_fee", 3.0, "2023-04-28"),
        bill("b2", 200.0, "2025-04-25", "2025-04-05"),
    )
    snap = ledger.snapshot(at("2026-03-31"))  # April 2023 is the 36th month back
    assert (snap["due_36m"], snap["paid_36m"], snap["late_fee_amount_36m"]) == (300.0, 100.0, 3.0)
    snap = ledger.snapshot(at("2026-04-01"))
    assert (snap["due_36m"], snap["paid_36m"], snap["late_fee_amount_36m"]) == (200.0, 0.0, 0.0)


def test_round_trip() -> None:
    ledger = ledger_of(
        *TWO_BILLS, event("p1", "payment", 400.0, "2026-02-10"), event("f1", "late_fee", 2, "2026-02-11")
    )
    restored = ArrearsLedger.from_bytes(ledger.to_bytes(), SHANGHAI)
    assert restored.snapshot(at("2026-04-01")) == ledger.snapshot(at("2026-04-01"))
    assert restored.apply(event("p1", "payment", 400.0, "2026-02-10")) is False


def test_reversal_cannot_reopen_a_bill_settled_over_36_months_ago() -> None:
    ledger = ledger_of(
        bill("b1", 100.0, "2022-01-25", "2022-01-05"), event("p1", "payment", 100.0, "2022-01-20")
    )
    ledger.apply(bill("b2", 50.0, "2025-06-25", "2025-06-05"))  # b1 (settled, due 2022-01) dropped
    ledger.apply(event("r1", "payment_reversal", 100.0, "2025-06-10"))
    snap = ledger.snapshot(at("2025-06-20"))
    assert snap["outstanding"] == 150.0 and snap["oldest_overdue_days"] == 10  # owed from 10 Jun


def test_old_settled_bills_and_ids_are_pruned() -> None:
    ledger = ArrearsLedger(SHANGHAI)
    day = date(2020, 1, 1)
    for k in range(72):  # six years of monthly bills, each paid
        due = (day + timedelta(days=31 * k)).isoformat()
        ledger.apply(bill(f"b{k}", 100.0, due, due))
        ledger.apply(event(f"p{k}", "payment", 100.0, due))
    size = len(ledger.to_bytes())
    assert size < 8_000
    assert ledger.snapshot(at("2026-02-01"))["due_36m"] == pytest.approx(3600.0, abs=200)


# ------------------------------------------------------------------------------- vs reference


def _random_events(seed: int) -> list[dict[str, Any]]:
    rng = random.Random(seed)
    t = datetime(2024, 1, 1, tzinfo=SHANGHAI)
    events: list[dict[str, Any]] = []
    bills: list[str] = []
    for k in range(rng.randint(5, 80)):
        # within 36 months in all, so nothing the reference keeps has been pruned by the ledger
        t += timedelta(hours=rng.randint(1, 24 * 12))
        kind = rng.choices(
            ["bill", "payment", "late_fee", "payment_reversal", "theft_penalty", "adjustment"],
            [5, 5, 1, 1, 0.3, 0.7],
        )[0]
        amount = round(rng.uniform(1, 500), 2)
        e: dict[str, Any] = {"event_id": f"e{k}", "ts": t, "type": kind, "amount": amount, "bill_id": None}
        if kind == "bill":
            e["bill_id"] = f"bill{k}"
            e["due_date"] = (t.date() + timedelta(days=rng.randint(0, 30))).isoformat()
            bills.append(e["bill_id"])
        elif kind == "payment" and bills and rng.random() < 0.3:
            e["bill_id"] = rng.choice(bills)
        elif kind == "adjustment" and rng.random() < 0.5:
            e["amount"] = -amount
        events.append(e)
        if rng.random() < 0.1:
            events.append(dict(e))  # redelivery
    return events


@settings(max_examples=60, deadline=None)
@given(st.integers(min_value=0, max_value=2**32), st.integers(min_value=0, max_value=900))
def test_generated_events_match_the_reference(seed: int, days_after: int) -> None:
    events = _random_events(seed)
    ledger = ArrearsLedger(SHANGHAI)
    for e in events:
        ledger.apply(e)
        ledger = ArrearsLedger.from_bytes(ledger.to_bytes(), SHANGHAI)
    as_of = max(e["ts"] for e in events) + timedelta(days=days_after)
    got, want = ledger.snapshot(as_of), reference_arrears(events, as_of, SHANGHAI)
    assert got.keys() == want.keys()
    for key, value in want.items():
        assert got[key] == pytest.approx(value, abs=1e-6), key
