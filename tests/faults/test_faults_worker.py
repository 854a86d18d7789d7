"""Fault scenarios around the worker: SIGKILL mid-stream, Redis away, a 5 % mix of bad input.

1. The worker is killed with SIGKILL ``scale.kills`` times while readings stream in and is
   restarted each time with the same app id and data directory: every customer's final
   ``stats.customer`` equals the numpy reference, no reading lost or counted twice; the same
   with daily curves in the block form (1b).
2. Redis is stopped mid-stream: the pipeline keeps going (counters advance, ``stats.customer``
   keeps being published), and once Redis is back every customer's hash catches up with its
   last ``stats.customer`` document.
3. A 5 % mix of malformed, impossible and duplicate readings: every bad one is in
   ``meter.readings.dlq`` with its reason, every duplicate counted as one, every valid reading
   applied exactly once.

Each scenario counts what it sent itself (from the simulator's labels, not from the worker)
and records sent / lost / duplicated with ``fault_report`` before asserting both are 0.
"""

from __future__ import annotations

import asyncio
import base64
import time
from collections import Counter
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import orjson
import pytest
import redis.asyncio as aioredis

from gridpulse.settings import Settings
from schemas import topics as contract
from schemas.models import DeadLetter
from simulator.blocks import CollectionOptions
from streams.kafka import read_all, read_latest
from streams.sinks import flatten
from tests.faults.helpers import (
    Scale,
    committed,
    kwh_off,
    kwh_sent,
    pairs,
    reading_balance,
    send_paced,
    settled_stats,
    split_readings,
    stack,
    wait_applied,
    while_moving,
)
from tests.integration.helpers import eventually, produce
from tests.integration.population import (
    SHANGHAI,
    block_readings_by_customer,
    distinct_intervals,
    seeds_by_customer,
    send,
    simulate,
    valid_by_customer,
)
from tests.stats_check import assert_stats_match, computed_at

pytestmark = [pytest.mark.integration, pytest.mark.faults, pytest.mark.timeout(1800)]

READINGS = contract.METER_READINGS


# ---------------------------------------------------------------------------- 1. SIGKILL


async def test_worker_sigkilled_mid_stream_restarts_with_reference_stats(
    topics, worker_factory, scale: Scale, fault_report
):
    settings = topics.model_copy(update={"batch_max": 500, "batch_within_s": 0.2})
    since = datetime.now(UTC)
    messages = simulate(
        settings,
        customers=scale.customers,
        days=scale.intervals / 96,
        seed=21,
        bad_share=0.0,
        duplicate_share=0.02,
        late_share=0.03,
        billing_history_months=2,
    )
    reading_msgs, others = split_readings(messages)
    readings = valid_by_customer(messages, READINGS)
    billing = valid_by_customer(messages, contract.BILLING_EVENTS)
    expected = distinct_intervals(readings)
    total = sum(expected.values())

    await send(settings, others)  # profiles, consumption history and billing first
    worker = worker_factory(settings).start()
    await worker.wait_ready()
    # a live stream long enough for kills and restarts to land in the middle of it (at full
    # scale the worker is slower than 800 readings/s: the last kills land in its backlog)
    span_s = max(12.0 * (scale.kills + 1), total / 800)
    producing = asyncio.create_task(send_paced(settings, reading_msgs, span_s, chunks=20 * (scale.kills + 1)))

    seeds = seeds_by_customer(messages)
    await kill_while_streaming(
        settings,
        worker,
        worker_factory,
        scale,
        fault_report,
        producing,
        reading_msgs,
        readings,
        billing,
        seeds,
        since,
    )


async def kill_while_streaming(
    settings: Settings,
    worker: Any,
    worker_factory: Any,
    scale: Scale,
    fault_report: Any,
    producing: asyncio.Task[Any],
    reading_msgs: Sequence[Any],
    readings: dict[str, list[dict[str, Any]]],
    billing: dict[str, list[dict[str, Any]]],
    seeds: dict[str, Any],
    since: datetime,
) -> None:
    """SIGKILL the worker ``scale.kills`` times, evenly over the readings it applies, restarting
    it each time on the same app id and data dir; then every reading is counted once (none lost,
    none twice) and every customer's statistics equal the reference's."""
    expected = distinct_intervals(readings)
    total = sum(expected.values())
    applied_before = 0  # readings applied by the killed workers, as last seen
    kills: list[dict[str, Any]] = []
    for k in range(1, scale.kills + 1):
        target = total * k // (scale.kills + 1)
        what = f"kill {k}: {target} of {total} readings applied"
        seen = await wait_applied(worker, target - applied_before, what)
        worker.kill()  # SIGKILL, mid-batch or mid-block: no commit, no flush, no goodbye
        applied_before += seen
        kills.append({"at_applied": applied_before, "producing": not producing.done()})
        worker = worker_factory(settings).start()  # same app id, same data dir
        await worker.wait_ready(within_s=180)
    await producing

    latest = await settled_stats(settings, expected)
    lost, duplicated = reading_balance(latest, expected)
    off = kwh_off(latest, kwh_sent(readings))
    counters = (await worker.counters())["counters"]
    fault_report(
        sent=total,
        lost=lost,
        duplicated=duplicated,
        messages=len(reading_msgs),
        customers=len(expected),
        kills=kills,
        kwh_mismatch=len(off),
        last_worker_applied=counters.get("readings_applied", 0),
        last_worker_duplicates=counters.get("readings_duplicate", 0),
    )
    assert lost == 0
    assert duplicated == 0
    assert not off
    assert len(kills) == scale.kills
    for cid, rows in readings.items():
        now = computed_at(latest[cid], since)
        assert_stats_match(
            latest[cid], rows, billing.get(cid, []), SHANGHAI, settings.lateness_s, seeds[cid], now=now
        )


# ---------------------------------------------------------------------------- 1b. SIGKILL, blocks


async def test_worker_sigkilled_during_a_block_run_loses_nothing_and_counts_nothing_twice(
    topics, worker_factory, scale: Scale, fault_report
):
    """Scenario 1 with the block form: three days of daily curves (hours-late meters, retried
    blocks, partly missing days, overlapping re-sends) streamed while the worker is SIGKILLed
    ``scale.kills`` times in the middle of the run; a replayed block's intervals are duplicates."""
    settings = topics.model_copy(update={"batch_max": 50, "batch_within_s": 0.2})
    since = datetime.now(UTC)
    messages = simulate(
        settings,
        customers=scale.customers,
        days=3,
        seed=23,
        blocks=True,
        collection=CollectionOptions(late_share=0.1, partial_share=0.1, retry_share=0.1, overlap_share=0.2),
        billing_history_months=2,
    )
    reading_msgs, others = split_readings(messages)
    readings = block_readings_by_customer(messages)
    billing = valid_by_customer(messages, contract.BILLING_EVENTS)
    seeds = seeds_by_customer(messages)
    expected = distinct_intervals(readings)
    total = sum(expected.values())

    await send(settings, others)  # profiles, consumption history and billing first
    worker = worker_factory(settings).start()
    await worker.wait_ready()
    months, events = sum(map(len, seeds.values())), sum(map(len, billing.values()))

    async def settled() -> tuple[bool, object]:
        # a customer's blocks are applied within seconds: its seeds and bills must be in first
        c = (await worker.counters())["counters"]
        got = (
            c.get("history_months_applied", 0),
            c.get("billing_applied", 0) + c.get("billing_duplicate", 0),
        )
        return got[0] >= months and got[1] >= events, got

    await while_moving(settled, "every month of consumption.history and every billing event applied")
    span_s = max(12.0 * (scale.kills + 1), total / 4000)
    producing = asyncio.create_task(send_paced(settings, reading_msgs, span_s, chunks=20 * (scale.kills + 1)))

    await kill_while_streaming(
        settings,
        worker,
        worker_factory,
        scale,
        fault_report,
        producing,
        reading_msgs,
        readings,
        billing,
        seeds,
        since,
    )


# ---------------------------------------------------------------------------- 1c. SIGKILL, history

# 25 seeded months each: 10,000 consumption.history records, seconds of work for a worker (with
# 5,000 a restarted worker on a quiet machine applied and committed all of them before the test's
# first look at its counters: the kill then landed after the history)
HISTORY_CUSTOMERS = 400


def seeded_months_missing(doc: dict[str, Any], seeded: dict[str, float]) -> int:
    """Seeded months of the document's 26 (those ending with its month) missing from its
    consumption."""
    y, m = map(int, doc["month"]["period"].split("-"))
    newest = y * 12 + m - 1
    kept = {p for p in seeded if newest - 26 < int(p[:4]) * 12 + int(p[5:]) - 1 <= newest}
    return len(kept - doc["consumption"].keys())


async def test_worker_sigkilled_while_applying_history_keeps_every_seeded_month(
    topics, worker_factory, fault_report
):
    """SIGKILL the worker twice while it applies consumption.history (each time a third of the
    records into its run), then send an hour of readings: once every input is committed, every
    customer's stats.customer equals the reference's, its consumption with every seeded month of
    its 26 (a restarted worker re-applies what the killed one had not committed; read at
    "readings committed" alone, all customers lacked seeded months still being replayed)."""
    settings = topics.model_copy(update={"batch_max": 500, "batch_within_s": 0.2})
    since = datetime.now(UTC)
    messages = simulate(
        settings,
        customers=HISTORY_CUSTOMERS,
        days=4 / 96,
        seed=25,
        bad_share=0.0,
        duplicate_share=0.0,
        late_share=0.0,
        billing_history_months=2,
    )
    reading_msgs, others = split_readings(messages)
    readings = valid_by_customer(messages, READINGS)
    billing = valid_by_customer(messages, contract.BILLING_EVENTS)
    seeds = seeds_by_customer(messages)
    months = sum(map(len, seeds.values()))
    expected = distinct_intervals(readings)

    await send(settings, others)
    worker = worker_factory(settings).start()
    await worker.wait_ready()
    at_kill = []
    uncommitted_at_kill = []
    for k in (1, 2):
        seen = await wait_applied(
            worker, months // 3, f"kill {k}: a third of the history", "history_months_applied"
        )
        worker.kill()
        at_kill.append(seen)
        # what makes the scenario: the killed worker left history it had applied uncommitted
        all_committed, _ = await committed(settings, contract.CONSUMPTION_HISTORY)
        uncommitted_at_kill.append(not all_committed)
        worker = worker_factory(settings).start()  # same app id, same data dir
        await worker.wait_ready(within_s=180)
    await produce(settings, READINGS, pairs(reading_msgs))

    latest = await settled_stats(settings, expected)
    lost, duplicated = reading_balance(latest, expected)
    missing = {cid: seeded_months_missing(latest[cid], seeds[cid]) for cid in readings if cid in latest}
    fault_report(
        sent=sum(expected.values()),
        lost=lost,
        duplicated=duplicated,
        history_months=months,
        history_applied_at_kills=at_kill,
        history_uncommitted_at_kills=uncommitted_at_kill,
        customers_short_of_seeds=sum(1 for n in missing.values() if n),
        seeded_months_missing=sum(missing.values()),
    )
    assert all(uncommitted_at_kill), ("a kill landed after the whole history was committed", at_kill, months)
    assert (lost, duplicated) == (0, 0)
    for cid, rows in readings.items():
        assert_stats_match(
            latest[cid],
            rows,
            billing.get(cid, []),
            SHANGHAI,
            settings.lateness_s,
            seeds[cid],
            now=computed_at(latest[cid], since),
        )


# ---------------------------------------------------------------------------- 2. Redis away


async def redis_docs(settings: Settings, cids: Sequence[str]) -> dict[str, Any]:
    """Every customer's Redis hash (decoded), {} for a customer without one. A new connection
    each time: the scenario restarts Redis under it."""
    client = aioredis.from_url(settings.redis_url)
    try:
        async with client.pipeline(transaction=False) as pipe:
            for cid in cids:
                pipe.hgetall(f"{settings.topic_prefix}gp:stats:{cid}")
            got = await pipe.execute()
    finally:
        await client.aclose()
    return {cid: {k.decode(): v.decode() for k, v in h.items()} for cid, h in zip(cids, got, strict=True)}


async def test_redis_stopped_pipeline_keeps_going_and_snapshot_catches_up(
    topics, redis_settings, worker_factory, scale: Scale, fault_report
):
    settings = topics.model_copy(update={"batch_max": 500, "batch_within_s": 0.2})
    messages = simulate(
        settings,
        customers=scale.customers,
        days=scale.intervals / 96,
        seed=22,
        bad_share=0.0,
        duplicate_share=0.0,
        late_share=0.0,
        billing=False,
    )
    reading_msgs, others = split_readings(messages)
    readings = valid_by_customer(messages, READINGS)
    expected = distinct_intervals(readings)
    cids = sorted(expected)
    total = sum(expected.values())
    half = len(reading_msgs) // 2  # readings go out interval by interval: every customer in both

    worker = worker_factory(settings).start()
    try:
        await worker.wait_ready()
        await send(settings, others)
        await produce(settings, READINGS, pairs(reading_msgs[:half]))

        await wait_applied(worker, half, "the first half applied")

        async def redis_has_all() -> bool:
            return all(await redis_docs(settings, cids))

        await eventually(redis_has_all, 30, "Redis holds every customer before it is stopped")

        stack("down", "redis")  # no persistence: it comes back empty
        try:
            before = (await worker.counters())["counters"]
            await send_paced(settings, reading_msgs[half:], span_s=5.0, chunks=5)
            await wait_applied(worker, total, "every reading applied")
            during = await worker.counters()
            # the pipeline kept going: statistics published, to Kafka, while the sink waited
            assert during["counters"]["stats_published"] > before["stats_published"]
            assert during["redis_backlog"] > 0
            published = await settled_stats(settings, expected)
            assert reading_balance(published, expected) == (0, 0)
        finally:
            stack("up", "redis")

        redis_back = time.monotonic()

        async def caught_up() -> bool:
            stored = await redis_docs(settings, cids)
            return all(stored[c] == flatten(published[c]) for c in cids)

        try:
            await eventually(caught_up, 30, "every Redis hash equals its last stats.customer")
        except AssertionError:
            pass  # counted and reported below
        catch_up_s = round(time.monotonic() - redis_back, 1)
        # nothing was sent since: the last stats.customer documents are still those
        latest = await read_latest(settings, contract.STATS_CUSTOMER, "customer_id")
        stored = await redis_docs(settings, cids)
        snapshot = {c: orjson.loads(h["doc"]) for c, h in stored.items() if h}
        lost, duplicated = reading_balance(snapshot, expected)
        stale = [c for c in cids if stored[c] != flatten(latest.get(c, {}))]
        after = await worker.counters()
        fault_report(
            sent=total,
            lost=lost,
            duplicated=duplicated,
            customers=len(cids),
            sent_while_redis_down=len(reading_msgs) - half,
            backlog_while_down=during["redis_backlog"],
            redis_catch_up_s=catch_up_s,
            stale_hashes=len(stale),
        )
        assert lost == 0
        assert duplicated == 0
        assert not stale, f"{len(stale)} Redis hashes differ from their last stats.customer: {stale[:5]}"
        assert after["redis_backlog"] == 0
        assert worker.running
    finally:
        client = aioredis.from_url(settings.redis_url)
        await client.delete(*(f"{settings.topic_prefix}gp:stats:{c}" for c in cids))
        await client.aclose()


# ---------------------------------------------------------------------------- 3. bad input


async def test_five_percent_bad_input_in_dlq_or_deduplicated_valid_counted_once(
    topics, worker_factory, scale: Scale, fault_report
):
    settings = topics
    # per valid reading: 3.2 % corrupted copies (malformed JSON or UTF-8, wrong types, missing
    # fields, negative energy, clock years ahead) and 2.1 % head-end re-sends: ~5 % of messages
    messages = simulate(
        settings,
        customers=scale.customers,
        days=scale.intervals / 96,
        seed=23,
        bad_share=0.032,
        duplicate_share=0.021,
        late_share=0.02,
        billing=False,
    )
    reading_msgs, others = split_readings(messages)
    outcomes = Counter(m.outcome for m in reading_msgs)
    bad = Counter((m.outcome, m.value) for m in reading_msgs if m.outcome not in ("valid", "duplicate"))
    readings = valid_by_customer(messages, READINGS)
    expected = distinct_intervals(readings)
    assert sum(expected.values()) == outcomes["valid"]  # the simulator's labels are consistent
    bad_share = (len(reading_msgs) - outcomes["valid"]) / len(reading_msgs)

    worker = worker_factory(settings).start()
    await worker.wait_ready()
    await send(settings, others)
    await produce(settings, READINGS, pairs(reading_msgs))

    await while_moving(lambda: committed(settings, READINGS), "every message read")
    counters = await worker.counters()
    dlq = [orjson.loads(r.value) for r in await read_all(settings, settings.topic(contract.dlq(READINGS)))]
    in_dlq = Counter((d["error"], base64.b64decode(d["raw"])) for d in dlq)
    latest = await settled_stats(settings, expected)
    lost, duplicated = reading_balance(latest, expected)
    off = kwh_off(latest, kwh_sent(readings))
    fault_report(
        sent=len(reading_msgs),
        lost=lost + sum((bad - in_dlq).values()),  # valid readings not counted + bad ones not in the DLQ
        duplicated=duplicated + sum((in_dlq - bad).values()),  # counted twice + dead-lettered twice
        bad_share=round(bad_share, 4),
        outcomes=dict(outcomes),
        dead_letters=counters["dead_letters"].get(READINGS, {}),
        duplicates_counted=counters["counters"].get("readings_duplicate", 0),
        kwh_mismatch=len(off),
    )
    assert lost == 0 and in_dlq == bad
    assert duplicated == 0
    assert 0.045 < bad_share < 0.055
    # every bad message in the DLQ with its reason and context, byte for byte
    for d in dlq:
        DeadLetter.model_validate(d)
        assert d["detail"] and d["topic"] == settings.topic(READINGS) and d["offset"] >= 0
    dead = {k: n for k, n in outcomes.items() if k not in ("valid", "duplicate")}
    assert counters["dead_letters"].get(READINGS, {}) == dead
    # every duplicate recognised as one, every valid reading applied exactly once
    assert counters["counters"]["readings_duplicate"] == outcomes["duplicate"]
    assert counters["counters"]["readings_applied"] == outcomes["valid"]
    assert not off, f"kWh differs from the valid readings sent for {off[:5]}"
    assert worker.running
