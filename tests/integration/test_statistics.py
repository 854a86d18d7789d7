"""Rolling statistics on the real stack, against the independent numpy reference.

1. A simulated population (bad, duplicate and late messages included) through the worker:
   every customer's final stats.customer equals the reference computed from the valid
   messages, and Redis holds the same snapshot.
2. A customer month with the worker killed by SIGKILL in the middle and restarted: the final
   stats.customer still equals the reference — nothing lost, nothing counted twice.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import orjson
import pytest
import redis.asyncio as aioredis

from schemas import topics as contract
from streams.kafka import read_all
from streams.sinks import flatten
from tests.integration.helpers import committed_offsets, eventually
from tests.integration.population import (
    SHANGHAI,
    distinct_intervals,
    final_stats,
    seeds_by_customer,
    send,
    simulate,
    valid_by_customer,
)
from tests.stats_check import assert_stats_match, computed_at

pytestmark = [pytest.mark.integration, pytest.mark.timeout(420)]


async def test_population_matches_reference_and_redis(topics, worker_factory):
    settings = topics
    since = datetime.now(UTC)
    messages = simulate(
        settings,
        customers=12,
        days=3,
        seed=7,
        bad_share=0.03,
        duplicate_share=0.02,
        late_share=0.05,
        billing_history_months=4,
    )
    readings = valid_by_customer(messages, contract.METER_READINGS)
    billing = valid_by_customer(messages, contract.BILLING_EVENTS)
    seeds = seeds_by_customer(messages)
    worker = worker_factory(settings).start()
    await worker.wait_ready()
    await send(settings, messages)

    latest = await final_stats(settings, distinct_intervals(readings), "d30", within_s=120)
    for cid, rows in readings.items():
        now = computed_at(latest[cid], since)
        assert_stats_match(
            latest[cid], rows, billing.get(cid, []), SHANGHAI, settings.lateness_s, seeds[cid], now=now
        )
        # 25 months of billing history: year-over-year growth is there from the first day
        assert latest[cid]["yoy_growth_rate"] is not None and latest[cid]["yoy_growth_kwh"] is not None

    # Redis holds the latest snapshot of every customer, field for field
    client = aioredis.from_url(settings.redis_url)
    try:
        for cid, doc in latest.items():
            stored = await client.hgetall(f"{settings.topic_prefix}gp:stats:{cid}")
            assert {k.decode(): v.decode() for k, v in stored.items()} == flatten(doc), cid
            assert orjson.loads(stored[b"doc"]) == doc
            await client.delete(f"{settings.topic_prefix}gp:stats:{cid}")
    finally:
        await client.aclose()


async def test_sigkill_mid_stream_loses_nothing_and_counts_nothing_twice(topics, worker_factory):
    settings = topics.model_copy(update={"batch_max": 500, "batch_within_s": 0.2})
    since = datetime.now(UTC)
    start = datetime(2026, 10, 1, tzinfo=SHANGHAI)  # one whole billing month
    messages = simulate(
        settings,
        customers=6,
        days=31,
        start=start,
        seed=11,
        bad_share=0.0,
        duplicate_share=0.02,
        late_share=0.03,
        billing_history_months=2,
    )
    readings = valid_by_customer(messages, contract.METER_READINGS)
    billing = valid_by_customer(messages, contract.BILLING_EVENTS)
    total = sum(distinct_intervals(readings).values())

    first = worker_factory(settings).start()
    await first.wait_ready()
    producing = asyncio.create_task(send(settings, messages))

    readings_topic = settings.topic(contract.METER_READINGS)
    reading_messages = sum(1 for m in messages if m.topic == readings_topic)

    # Killed once it has committed a quarter of the readings: offsets are committed only after
    # the changelog is flushed, so its state holds every reading before them (its in-memory
    # count is no such mark: its last applications may not have reached the changelog).
    async def midway() -> bool:
        return sum((await committed_offsets(settings, readings_topic)).values()) >= reading_messages // 4

    await eventually(midway, 120, "the worker has committed a quarter of the readings")
    first.kill()  # SIGKILL: no commit, no flush, no goodbye
    await producing
    # The second worker resumes after the first one's last commit: it can apply at most the
    # readings of the messages from those offsets on.
    resumed_at = await committed_offsets(settings, readings_topic)
    valid = {(r["meter_id"], r["ts"]) for rows in readings.values() for r in rows}
    after_commit = {
        key
        for rec in await read_all(settings, readings_topic)
        if rec.offset >= resumed_at.get(rec.partition, 0)
        and (key := reading_key(rec.value)) is not None
        and key in valid
    }
    assert len(after_commit) < total

    second = worker_factory(settings).start()
    await second.wait_ready(within_s=180)
    latest = await final_stats(settings, distinct_intervals(readings), "month", within_s=240)
    seeds = seeds_by_customer(messages)
    for cid, rows in readings.items():
        now = computed_at(latest[cid], since)
        assert_stats_match(
            latest[cid], rows, billing.get(cid, []), SHANGHAI, settings.lateness_s, seeds[cid], now=now
        )
        assert latest[cid]["month"]["period"] == "2026-10"
    counters = (await second.counters())["counters"]
    # the restarted worker saw the replayed tail as duplicates, and applied only the rest
    assert counters["readings_applied"] <= len(after_commit), (counters, len(after_commit), total)


def reading_key(value: bytes | None) -> tuple[str, str] | None:
    """(meter_id, ts) of a meter.readings message, None when it is not a reading's JSON."""
    try:
        doc = orjson.loads(value or b"")
        return (doc["meter_id"], doc["ts"])
    except (orjson.JSONDecodeError, KeyError, TypeError):
        return None
