"""The block form of meter.readings on the real stack: a collection run's daily curves
(`simulate(blocks=True)`: hours-late meters, retried blocks, partly missing days, overlapping
re-sends) through the worker give every customer the stats.customer the independent reference
computes from the same intervals as single readings; a bad interval is in meter.readings.dlq with
its interval_index and the block's bytes, the rest of its block applied."""

from __future__ import annotations

import base64
from datetime import UTC, datetime, timedelta

import orjson
import pytest

from schemas import topics as contract
from schemas.models import DeadLetter
from simulator.blocks import CollectionOptions
from streams.kafka import read_all
from tests.integration.helpers import eventually, js, produce
from tests.integration.population import (
    SHANGHAI,
    block_readings_by_customer,
    distinct_intervals,
    final_stats,
    seeds_by_customer,
    send,
    simulate,
    valid_by_customer,
)
from tests.stats_check import assert_stats_match, computed_at

pytestmark = [pytest.mark.integration, pytest.mark.timeout(420)]

SHARES = CollectionOptions(late_share=0.2, partial_share=0.15, retry_share=0.15, overlap_share=0.25)


async def test_daily_blocks_match_the_reference(topics, worker_factory):
    settings = topics
    since = datetime.now(UTC)
    messages = simulate(
        settings, customers=12, days=3, seed=13, blocks=True, collection=SHARES, billing_history_months=3
    )
    readings = block_readings_by_customer(messages)
    billing = valid_by_customer(messages, contract.BILLING_EVENTS)
    seeds = seeds_by_customer(messages)
    worker = worker_factory(settings).start()
    await worker.wait_ready()
    # the seeded months and the bills first: a customer's few blocks are applied within a second
    # or two, and the final document must have seen every seed and billing event the reference
    # takes (their agents publish as they go, in their own time)
    blocks = [m for m in messages if m.topic.endswith(contract.METER_READINGS)]
    await send(settings, [m for m in messages if not m.topic.endswith(contract.METER_READINGS)])
    months, events = sum(map(len, seeds.values())), sum(map(len, billing.values()))

    async def settled() -> bool:
        c = (await worker.counters())["counters"]
        billed = c.get("billing_applied", 0) + c.get("billing_duplicate", 0)
        return c.get("history_months_applied", 0) >= months and billed >= events

    await eventually(settled, 60, "every month of consumption.history and every billing event applied")
    await send(settings, blocks)

    latest = await final_stats(settings, distinct_intervals(readings), "d30", within_s=120)
    for cid, rows in readings.items():
        now = computed_at(latest[cid], since)
        assert_stats_match(
            latest[cid], rows, billing.get(cid, []), SHANGHAI, settings.lateness_s, seeds[cid], now=now
        )
    counters = (await worker.counters())["counters"]
    assert counters["reading_blocks"] == len(blocks)
    assert counters["readings_applied"] == sum(distinct_intervals(readings).values())
    assert counters["readings_duplicate"] == sum(map(len, readings.values())) - counters["readings_applied"]


async def test_a_bad_interval_is_dead_lettered_with_its_index(topics, worker_factory):
    settings = topics
    end = datetime.fromtimestamp(int(datetime.now(UTC).timestamp()) // 900 * 900, UTC)
    kwh: list[object] = [0.5] * 8
    kwh[3] = -2.0
    kwh[5] = None  # not read
    value = {
        "meter_id": "M-b1",
        "customer_id": "b1",
        "start": (end - timedelta(hours=2)).isoformat(),
        "interval_s": 900,
        "kwh": kwh,
    }
    worker = worker_factory(settings).start()
    await worker.wait_ready()
    await produce(settings, contract.METER_READINGS, [(b"b1", js(value))])

    latest = await final_stats(settings, {"b1": 6}, "d30", within_s=60)
    assert latest["b1"]["d30"]["kwh"] == pytest.approx(3.0)
    dead: list[dict[str, object]] = []

    async def dead_lettered() -> bool:
        nonlocal dead
        records = await read_all(settings, settings.topic(contract.dlq(contract.METER_READINGS)))
        dead = [orjson.loads(r.value) for r in records]
        return len(dead) >= 1

    await eventually(dead_lettered, 60, "the bad interval in meter.readings.dlq")
    (record,) = dead
    DeadLetter.model_validate(record)
    assert record["error"] == "negative_energy" and record["interval_index"] == 3
    assert base64.b64decode(str(record["raw"])) == js(value)
