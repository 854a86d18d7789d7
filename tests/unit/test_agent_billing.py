"""The billing agent (streams/agents/billing.py), run by faust with tables in memory: the ledger,
duplicates, the DLQ kinds, key mismatch."""

from __future__ import annotations

import base64
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from schemas.topics import BILLING_EVENTS
from tests.unit.worker_harness import js, worker_under_test

pytestmark = pytest.mark.timeout(60)


def event(event_id: str, kind: str, amount: float, days_ago: int, **extra: Any) -> dict[str, Any]:
    ts = datetime.now(UTC) - timedelta(days=days_ago)
    return {
        "event_id": event_id,
        "customer_id": "c1",
        "ts": ts.isoformat(),
        "type": kind,
        "amount": amount,
    } | extra


def bill(event_id: str, amount: float, days_ago: int, due: date) -> dict[str, Any]:
    return event(event_id, "bill", amount, days_ago, bill_id=f"b-{event_id}", due_date=due.isoformat())


async def test_bills_and_payments_make_the_arrears_and_a_duplicate_changes_nothing(tmp_path: Path) -> None:
    today = datetime.now(UTC).date()
    old_due, new_due = today - timedelta(days=40), today + timedelta(days=20)
    async with worker_under_test(tmp_path) as w:
        async with w.agent("billing").test_context() as ctx:
            await w.put(ctx, b"c1", js(bill("e1", 500.0, 60, old_due)))
            await w.put(ctx, b"c1", js(bill("e2", 300.0, 5, new_due)))
            payment = js(event("e3", "payment", 120.0, 1))
            await w.put(ctx, b"c1", payment)
            await w.put(ctx, b"c1", payment)  # delivered twice

        assert w.rt.counters["billing_applied"] == 3 and w.rt.counters["billing_duplicate"] == 1
        docs = w.stats()
        assert len(docs) == 4  # the duplicate is published again, unchanged
        arrears = docs[-1]["arrears"]
        assert {**docs[-2]["arrears"], "as_of": None} == {**arrears, "as_of": None}
        assert arrears["outstanding"] == pytest.approx(680.0) and arrears["bills_open"] == 2
        as_of = datetime.fromisoformat(arrears["as_of"]).date()  # the local day the ages are of
        assert arrears["oldest_overdue_days"] == (as_of - old_due).days
        assert arrears["overdue_buckets"]["31_60"] == pytest.approx(380.0)  # the oldest first
        assert docs[-1]["profile_known"] is False and docs[-1]["d30"]["intervals"] == 0
        # one ledger write per event, the duplicate's too (a replay converges the changelog)
        assert [s.key for s in w.changelog(w.rt.arrears_table)] == [b"c1"] * 4
        assert not w.dead_letters(BILLING_EVENTS)


async def test_every_unusable_billing_event_goes_to_the_dlq_with_its_kind(tmp_path: Path) -> None:
    today = datetime.now(UTC).date()
    bad = {
        "decode": b"[]",
        "schema": js({"event_id": "x", "customer_id": "c1"}),
        "unknown_code": js(event("e1", "gift", 10.0, 1)),
        "bad_date": js(bill("e2", 10.0, 1, today) | {"due_date": "soon"}),
        "incomplete_bill": js(event("e3", "bill", 10.0, 1)),  # no bill_id, no due date
        "bad_amount": js(event("e4", "payment", 0.0, 1)),
        "bad_due_date": js(bill("e5", 10.0, 1, today + timedelta(days=400))),
        "key_mismatch": js(event("e6", "payment", 10.0, 1) | {"customer_id": "c2"}),
    }
    async with worker_under_test(tmp_path) as w:
        async with w.agent("billing").test_context() as ctx:
            for value in bad.values():
                await w.put(ctx, b"c1", value)

        assert w.dead_letter_kinds(BILLING_EVENTS) == list(bad)
        for offset, (dead, raw) in enumerate(zip(w.dead_letters(BILLING_EVENTS), bad.values(), strict=True)):
            assert base64.b64decode(dead["raw"]) == raw and dead["offset"] == offset
        assert not w.stats() and w.rt.arrears_table.get(b"c1") is None
