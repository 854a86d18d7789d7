"""The readings agent publishes no document older than one another agent published meanwhile.

The agent computes each customer's document from the tables as they are, then publishes the
batch's documents. If it awaited anything in between (a dead letter), the billing agent could
apply a bill and publish the customer's newer document first, and the readings agent's older one
would then be the customer's latest (no arrears until its next event): the integration suite saw
it (test_processing_failures, C1's bill missing from its latest document). Here the billing agent
runs, for real, at the first dead letter of the readings batch.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from metering.stats import stats_document
from tests.unit.worker_harness import js, quarter_hours_ago, reading, worker_under_test

pytestmark = pytest.mark.timeout(60)


def bill(cid: str, amount: float) -> dict[str, Any]:
    now = datetime.now(UTC)
    return {
        "event_id": f"e-{cid}",
        "customer_id": cid,
        "ts": (now - timedelta(days=1)).isoformat(),
        "type": "bill",
        "amount": amount,
        "bill_id": f"b-{cid}",
        "due_date": (now + timedelta(days=20)).date().isoformat(),
    }


async def test_a_bill_applied_during_a_readings_batch_stays_in_the_latest_document(tmp_path: Path) -> None:
    async with worker_under_test(tmp_path, lateness_s=3600) as w:
        async with (
            w.agent("readings").test_context() as readings,
            w.agent("billing").test_context() as billing,
        ):
            await w.put(readings, b"c2", js(reading("c2", quarter_hours_ago(1), 1.0)))

            dead_letter = w.rt.dead_letter
            interleaved: list[bool] = []

            async def billing_runs_meanwhile(*args: Any, **kwargs: Any) -> None:
                if not interleaved:  # another agent's turn at this await: c1's bill arrives
                    interleaved.append(True)
                    await w.put(billing, b"c1", js(bill("c1", 500.0)))
                await dead_letter(*args, **kwargs)

            w.rt.dead_letter = billing_runs_meanwhile  # type: ignore[method-assign]
            # one batch: c1's document is computed first, then c2's late reading is dead-lettered
            await w.put_many(
                readings,
                [
                    (b"c1", js(reading("c1", quarter_hours_ago(1), 2.0))),
                    (b"c2", js(reading("c2", quarter_hours_ago(8), 9.0))),  # 1.75 h behind: late
                ],
            )

        assert interleaved, "the batch dead-lettered nothing: no interleaving tested"
        assert [d["error"] for d in w.dead_letters("meter.readings")] == ["late"]
        latest = {doc["customer_id"]: doc for doc in w.stats()}
        c1 = latest["c1"]
        assert c1["arrears"]["outstanding"] == pytest.approx(500.0)  # the bill is in the latest
        assert c1["d30"]["kwh"] == pytest.approx(2.0)  # and so is the reading
        as_of = datetime.fromisoformat(c1["arrears"]["as_of"])
        want = stats_document(
            "c1", w.rt.load_state("c1"), w.rt.ledger("c1"), None, as_of, w.rt.tz, w.settings.gap_report_days
        )
        assert c1 == want  # the document of the tables as they are
