"""Overdue ages advance with time alone: the aging timer's decision, on real ledgers."""

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from metering.arrears import ArrearsLedger
from streams.agents.billing import aging_changes

SHANGHAI = ZoneInfo("Asia/Shanghai")


def ledger_with_bill(due: str) -> bytes:
    ledger = ArrearsLedger(tz=SHANGHAI)
    ledger.apply(
        {
            "event_id": "b1",
            "customer_id": "C1",
            "ts": datetime(2026, 9, 1, 9, tzinfo=SHANGHAI),
            "type": "bill",
            "amount": 500.0,
            "bill_id": "B1",
            "due_date": due,
            "period": "2026-08",
        }
    )
    return ledger.to_bytes()


def test_a_bill_turns_31_days_overdue_on_its_own() -> None:
    ledgers = [(b"C1", ledger_with_bill("2026-09-20")), (b"C2", ArrearsLedger(tz=SHANGHAI).to_bytes())]
    last: dict = {}
    day30 = datetime(2026, 10, 20, 12, tzinfo=SHANGHAI)  # 30 days past due
    assert aging_changes(ledgers, day30, SHANGHAI, last) == ["C1", "C2"]  # first look: everyone
    assert last["C1"] == (30, (500.0, 0.0, 0.0, 0.0), (0, 0, 0.0))
    # later the same day: nothing moved, nothing to publish (no storm of snapshots)
    assert aging_changes(ledgers, day30 + timedelta(hours=6), SHANGHAI, last) == []
    # the next local day the bill is 31 days past due and moves to the 31_60 bucket
    assert aging_changes(ledgers, day30 + timedelta(days=1), SHANGHAI, last) == ["C1"]
    assert last["C1"] == (31, (0.0, 500.0, 0.0, 0.0), (0, 0, 0.0))


def test_a_late_fee_ageing_out_of_12_months_is_a_change() -> None:
    ledger = ArrearsLedger(tz=SHANGHAI)
    ledger.apply(
        {
            "event_id": "f1",
            "customer_id": "C1",
            "ts": datetime(2025, 11, 10, 9, tzinfo=SHANGHAI),
            "type": "late_fee",
            "amount": 12.0,
        }
    )
    ledger.apply(
        {
            "event_id": "p1",
            "customer_id": "C1",
            "ts": datetime(2025, 11, 11, 9, tzinfo=SHANGHAI),
            "type": "payment",
            "amount": 12.0,
        }
    )
    ledgers = [(b"C1", ledger.to_bytes())]
    last: dict = {}
    before = datetime(2026, 11, 9, 12, tzinfo=SHANGHAI)  # the fee is 364 days old
    assert aging_changes(ledgers, before, SHANGHAI, last) == ["C1"]
    assert last["C1"][2] == (1, 0, 0.0)
    assert aging_changes(ledgers, before + timedelta(days=1), SHANGHAI, last) == ["C1"]
    assert last["C1"][2] == (0, 0, 0.0)
