"""The readings agent (streams/agents/readings.py), run by faust with tables in memory: batches,
duplicates, late data, the DLQ kinds, key mismatch, a state that cannot be read."""

from __future__ import annotations

import base64
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from metering.stats import stats_document
from schemas.topics import CUSTOMERS, METER_READINGS
from tests.samples import NAME, PROFILE
from tests.unit.worker_harness import js, quarter_hours_ago, reading, worker_under_test

pytestmark = pytest.mark.timeout(60)


async def test_a_batch_writes_and_publishes_each_customer_once(tmp_path: Path) -> None:
    async with worker_under_test(tmp_path) as w:
        messages = [
            (cid.encode(), js(reading(cid, quarter_hours_ago(n), kwh)))
            for n in range(8, 0, -1)
            for cid, kwh in (("c1", 2.0), ("c2", 3.5))
        ]
        async with w.agent("readings").test_context() as ctx:
            await w.put_many(ctx, messages)

        assert w.rt.counters["readings_applied"] == 16
        assert w.rt.counters["readings_unknown_customer"] == 16  # used and flagged, not dropped
        batches = w.rt.counters["readings_batches"]
        # one state write and one stats document per customer and batch, however many readings
        assert [s.key for s in w.changelog(w.rt.load_table)].count(b"c1") == batches
        assert len(w.stats()) == 2 * batches
        latest = {doc["customer_id"]: doc for doc in w.stats()}
        assert latest["c1"]["d30"]["kwh"] == pytest.approx(16.0)
        assert latest["c2"]["d30"]["kwh"] == pytest.approx(28.0)
        assert latest["c1"]["d30"]["intervals"] == 8 and latest["c1"]["profile_known"] is False
        # the published document is the pure function's on the state the table holds
        c1 = latest["c1"]
        as_of = datetime.fromisoformat(c1["arrears"]["as_of"])
        want = stats_document(
            "c1", w.rt.load_state("c1"), w.rt.ledger("c1"), None, as_of, w.rt.tz, w.settings.gap_report_days
        )
        assert c1 == want
        # keyed by customer, in the customer's own partition (co-partitioned with the input)
        for sent in w.sent_to("stats.customer"):
            assert sent.partition == w.producer.partition_of(sent.key)
        assert not w.dead_letters(METER_READINGS)


async def test_duplicates_count_once_and_publish_again(tmp_path: Path) -> None:
    async with worker_under_test(tmp_path) as w:
        first = (b"c1", js(reading("c1", quarter_hours_ago(2), 4.0)))
        second = (b"c1", js(reading("c1", quarter_hours_ago(1), 1.0)))
        async with w.agent("readings").test_context() as ctx:
            await w.put_many(ctx, [first, first, second])  # redelivered within a batch
            await w.put(ctx, *second)  # and in a later batch, as after a crash

        assert w.rt.counters["readings_applied"] == 2
        assert w.rt.counters["readings_duplicate"] == 2
        docs = w.stats()
        assert docs[-1]["d30"]["kwh"] == pytest.approx(5.0) and docs[-1]["d30"]["intervals"] == 2
        # the duplicate-only batch is written and published again (converges changelog and topic)
        assert docs[-1]["d30"] == docs[-2]["d30"]
        assert not w.dead_letters(METER_READINGS)


async def test_data_older_than_the_lateness_goes_to_the_dlq(tmp_path: Path) -> None:
    async with worker_under_test(tmp_path, lateness_s=3600) as w:
        async with w.agent("readings").test_context() as ctx:
            await w.put(ctx, b"c1", js(reading("c1", quarter_hours_ago(1), 1.0)))
            late = js(reading("c1", quarter_hours_ago(7), 9.0))  # 1.5 h behind the newest
            within = js(reading("c1", quarter_hours_ago(3), 2.0))  # out of order, within the hour
            await w.put_many(ctx, [(b"c1", late), (b"c1", within)])

        (dead,) = w.dead_letters(METER_READINGS)
        assert dead["error"] == "late" and "3600 s" in dead["detail"]
        assert base64.b64decode(dead["raw"]) == late and base64.b64decode(dead["key"]) == b"c1"
        assert dead["topic"] == w.settings.topic(METER_READINGS) and dead["offset"] == 1
        assert w.stats()[-1]["d30"]["kwh"] == pytest.approx(3.0)
        assert w.rt.dead_letters.get(METER_READINGS, "late") == 1


async def test_every_unusable_reading_goes_to_the_dlq_with_its_kind(tmp_path: Path) -> None:
    async with worker_under_test(tmp_path) as w:
        async with w.agent("customers").test_context() as customers:
            await w.put(customers, b"c1", js(PROFILE | {"contract_kva": 100.0}))  # 150 kW at most
        end = quarter_hours_ago(1)
        bad = {
            "decode": b"{not json",
            "schema": js({"customer_id": "c1"}),
            "negative_energy": js(reading("c1", end, -1.0)),
            "bad_timestamp": js(reading("c1", end, 1.0) | {"ts": "yesterday"}),
            "interval_length": js(reading("c1", end - timedelta(minutes=5), 1.0)),
            "future_timestamp": js(reading("c1", end + timedelta(hours=2), 1.0)),
            "impossible_demand": js(reading("c1", end, 50.0)),  # 200 kW in the quarter hour
            "key_mismatch": js(reading("c2", end, 1.0)),
        }
        async with w.agent("readings").test_context() as ctx:
            await w.put_many(ctx, [(b"c1", value) for value in bad.values()])

        assert w.dead_letter_kinds(METER_READINGS) == list(bad)
        for dead, raw in zip(w.dead_letters(METER_READINGS), bad.values(), strict=True):
            assert base64.b64decode(dead["raw"]) == raw
            assert NAME not in dead["detail"]
        assert w.rt.counters["readings_applied"] == 0
        assert not w.dead_letters(CUSTOMERS)


async def test_a_state_that_cannot_be_read_sends_its_readings_to_the_dlq_and_others_go_on(
    tmp_path: Path,
) -> None:
    async with worker_under_test(tmp_path) as w:
        async with w.agent("readings").test_context() as ctx:
            await w.put(ctx, b"c1", js(reading("c1", quarter_hours_ago(3), 1.0)))
            stored = w.rt.load_table[b"c1"]
            w.rt.load_table.data[b"c1"] = stored[:7]  # a truncated record in the store
            await w.put_many(
                ctx,
                [
                    (b"c1", js(reading("c1", quarter_hours_ago(2), 1.0))),
                    (b"c2", js(reading("c2", quarter_hours_ago(2), 1.0))),
                ],
            )

        (dead,) = w.dead_letters(METER_READINGS)
        assert dead["error"] == "processing_failed" and base64.b64decode(dead["key"]) == b"c1"
        assert w.stats()[-1]["customer_id"] == "c2"
        assert w.rt.counters["processing_failed"] == 1
