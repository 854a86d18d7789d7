"""The arrears block kept per customer (metering.stats.ArrearsBlock, streams.runtime.Runtime.arrears):
the block of a ledger is its snapshot at every instant it says it holds; the worker's documents
with the kept blocks equal the ones made from the ledger, and a billing event replaces it."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from metering.arrears import ArrearsLedger
from metering.load import LoadState
from metering.stats import NO_BILLING, arrears_block, stats_document
from tests.unit.worker_harness import js, quarter_hours_ago, reading, worker_under_test

SHANGHAI = ZoneInfo("Asia/Shanghai")
BERLIN = ZoneInfo("Europe/Berlin")  # a DST zone: days of 23 and 25 hours


def ledger_at(tz: ZoneInfo, t0: datetime) -> ArrearsLedger:
    """Bills overdue by 25 to 100 days, a payment, a late fee and a reversal, all before ``t0``."""
    led = ArrearsLedger(tz=tz)

    def ev(i: int, kind: str, amount: float, days_ago: float, **extra: Any) -> None:
        ts = t0 - timedelta(days=days_ago)
        led.apply({"event_id": f"e{i}", "ts": ts.isoformat(), "type": kind, "amount": amount, **extra})

    for i, (days_ago, due_ago) in enumerate([(130, 100), (70, 55), (40, 25)]):
        due = (t0 - timedelta(days=due_ago)).astimezone(tz).date()
        ev(i, "bill", 100.0 + i, days_ago, bill_id=f"b{i}", due_date=due.isoformat())
    ev(10, "payment", 30.0, 20)
    ev(11, "late_fee", 5.0, 10)
    ev(12, "payment_reversal", 30.0, 0.2)
    return led


CLOCKS = [
    (SHANGHAI, datetime(2027, 3, 1, 0, 5, tzinfo=SHANGHAI)),
    (SHANGHAI, datetime(2028, 2, 29, 12, 0, tzinfo=SHANGHAI)),
    (BERLIN, datetime(2027, 3, 28, 0, 30, tzinfo=BERLIN)),  # spring forward at 02:00 that day
    (BERLIN, datetime(2027, 10, 31, 0, 30, tzinfo=BERLIN)),  # fall back at 03:00 that day
    (ZoneInfo("UTC"), datetime(2027, 12, 31, 23, 0, tzinfo=UTC)),
]


@pytest.mark.parametrize(("tz", "t0"), CLOCKS)
def test_a_block_is_the_snapshot_wherever_it_holds_and_ends_with_the_local_day(
    tz: ZoneInfo, t0: datetime
) -> None:
    led = ledger_at(tz, t0)
    block = arrears_block(led, t0, tz)
    assert block.has_events and block.holds_at(t0) and block.block == led.snapshot(t0)
    local0 = t0.astimezone(tz)
    step = timedelta(minutes=7)
    t = t0
    checked = 0
    while (t + step).astimezone(tz).date() == local0.date():
        t += step
        assert block.holds_at(t), t
        assert block.block == led.snapshot(t), t
        checked += 1
    assert checked > 0
    midnight = datetime.combine(local0.date() + timedelta(days=1), datetime.min.time(), tzinfo=tz)
    assert not block.holds_at(midnight)
    assert not block.holds_at(midnight + timedelta(hours=30))
    # it begins with the local day (or the newest event), not before
    day_start = datetime.combine(local0.date(), datetime.min.time(), tzinfo=tz)
    assert block.valid_from == max(day_start.timestamp(), led.newest_ts or 0.0)
    assert not block.holds_at(datetime.fromtimestamp(block.valid_from - 1, UTC))
    # the next day's block is a different one (the ages moved)
    assert arrears_block(led, midnight, tz).block != block.block


def test_an_event_after_now_makes_a_block_of_that_instant_only() -> None:
    t0 = datetime(2027, 5, 10, 12, 0, tzinfo=SHANGHAI)
    led = ledger_at(SHANGHAI, t0)
    led.apply(
        {"event_id": "late", "ts": (t0 + timedelta(minutes=3)).isoformat(), "type": "late_fee", "amount": 2.0}
    )
    block = arrears_block(led, t0, SHANGHAI)
    assert block.holds_at(t0) and block.block == led.snapshot(t0)
    assert not block.holds_at(t0 + timedelta(seconds=1))
    later = t0 + timedelta(minutes=5)  # the fee counts from its own time on
    assert led.snapshot(later)["late_fees_12m"] == block.block["late_fees_12m"] + 1


@pytest.mark.parametrize(("tz", "t0"), CLOCKS)
def test_no_billing_is_the_empty_ledgers_block_at_every_instant(tz: ZoneInfo, t0: datetime) -> None:
    for t in (t0, t0 + timedelta(days=400), t0 - timedelta(days=3000)):
        assert NO_BILLING.holds_at(t)
        assert NO_BILLING.block == ArrearsLedger(tz=tz).snapshot(t)
        assert arrears_block(ArrearsLedger(tz=tz), t, tz) is NO_BILLING


@pytest.mark.parametrize(("tz", "t0"), CLOCKS)
def test_the_document_from_a_block_is_the_document_from_its_ledger(tz: ZoneInfo, t0: datetime) -> None:
    led = ledger_at(tz, t0)
    load = LoadState(tz=tz)
    end = int(t0.timestamp()) // 900 * 900
    load.apply([{"meter_id": "m", "ts": end - 900 * k, "interval_s": 900, "kwh": 1.0 + k} for k in range(6)])
    block = arrears_block(led, t0, tz)
    for t in (t0, t0 + timedelta(minutes=20)):
        if not block.holds_at(t):
            continue
        doc = stats_document("c1", load, block, None, t, tz, 7)
        assert doc == stats_document("c1", load, led, None, t, tz, 7)
        assert doc is not None
        doc["arrears"]["overdue_buckets"]["0_30"] = -1  # the document's own: the block is untouched
        assert block.block == led.snapshot(t)
    with pytest.raises(ValueError, match="does not hold"):
        stats_document("c1", load, block, None, t0 + timedelta(days=2), tz, 7)
    # a customer known to nobody: no document, from the block as from the ledger
    assert stats_document("c9", LoadState(tz=tz), NO_BILLING, None, t0, tz, 7) is None


async def test_the_worker_keeps_blocks_and_a_billing_event_replaces_its_customers(tmp_path: Path) -> None:
    today = datetime.now(UTC).date()

    def bill(i: int, amount: float, due: date) -> bytes:
        ts = datetime.combine(due, datetime.min.time(), tzinfo=UTC) - timedelta(days=20)
        return js(
            {"event_id": f"e{i}", "customer_id": "c1", "ts": ts.isoformat(), "type": "bill", "amount": amount}
            | {"bill_id": f"b{i}", "due_date": due.isoformat()}
        )

    async with worker_under_test(tmp_path) as w:
        rt = w.rt

        async def readings(n: int) -> dict[str, Any]:
            async with w.agent("readings").test_context() as ctx:
                for cid in ("c1", "c2"):
                    await w.put(ctx, cid.encode(), js(reading(cid, quarter_hours_ago(n), 1.0)))
            return {d["customer_id"]: d for d in w.stats()}

        def fresh(doc: dict[str, Any]) -> dict[str, Any]:
            """The document made again from the tables, at the instant it was made."""
            cid = doc["customer_id"]
            as_of = datetime.fromisoformat(doc["arrears"]["as_of"])
            want = stats_document(cid, rt.load_state(cid), rt.ledger(cid), None, as_of, rt.tz, 7)
            assert want is not None
            return want

        docs = await readings(3)
        assert docs["c1"] == fresh(docs["c1"]) and docs["c2"] == fresh(docs["c2"])
        assert rt.arrears("c1", datetime.now(UTC)) is NO_BILLING  # known: nothing read again

        async with w.agent("billing").test_context() as ctx:
            await w.put(ctx, b"c1", bill(1, 200.0, today - timedelta(days=40)))
        assert not w.dead_letters("billing.events"), w.dead_letters("billing.events")
        docs = await readings(2)
        assert docs["c1"]["arrears"]["outstanding"] == pytest.approx(200.0)
        assert docs["c1"] == fresh(docs["c1"]) and docs["c2"] == fresh(docs["c2"])

        async with w.agent("billing").test_context() as ctx:
            await w.put(ctx, b"c1", bill(2, 50.0, today + timedelta(days=10)))
        docs = await readings(1)
        assert docs["c1"]["arrears"]["outstanding"] == pytest.approx(250.0)
        assert docs["c1"]["arrears"]["bills_open"] == 2
        assert docs["c1"] == fresh(docs["c1"])
        assert rt.arrears("c2", datetime.now(UTC)) is NO_BILLING
