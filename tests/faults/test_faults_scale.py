"""Fault scenario: scale out and back in mid-stream (issue 15, "Beyond one machine").

Worker 1 runs alone on a live stream of readings. A second worker process joins the same consumer
group (the same app id, its own data directory and web port) while readings keep coming: the
group rebalances, the second worker takes partitions and recovers their tables from the
changelogs, and applies readings. Later it is stopped with SIGTERM (graceful) while readings still
come: the group rebalances again and worker 1 takes its partitions back, recovering what the
second worker wrote to the changelogs on top of its own older local state.

The check is against what the scenario sent (the simulator's labels, not the workers): every
customer's final ``stats.customer`` has exactly its distinct intervals (none lost, none counted
twice), its kWh, and equals the numpy reference (tests/reference.py via tests/stats_check.py).
That the second worker did work is shown by its own counters (readings applied) and by the
partitions each worker held (``/gridpulse/health/``) before, during and after.
"""

from __future__ import annotations

import asyncio
import json
import time
import urllib.request
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from gridpulse.settings import Settings
from gridpulse.workerproc import WorkerProcess
from schemas import topics as contract
from simulator.run import Message
from tests.faults.helpers import (
    Scale,
    kwh_off,
    kwh_sent,
    pairs,
    reading_balance,
    settled_stats,
    split_readings,
    while_moving,
)
from tests.integration.fixtures import free_port
from tests.integration.helpers import produce
from tests.integration.population import (
    SHANGHAI,
    distinct_intervals,
    seeds_by_customer,
    send,
    simulate,
    valid_by_customer,
)
from tests.stats_check import assert_stats_match, computed_at

pytestmark = [pytest.mark.integration, pytest.mark.faults, pytest.mark.timeout(900)]

READINGS = contract.METER_READINGS


async def send_gated(
    settings: Settings,
    messages: Sequence[Message],
    pause_s: float,
    chunks: int,
    gates: dict[int, asyncio.Event],
) -> None:
    """Send ``messages`` to meter.readings in ``chunks`` equal parts, ``pause_s`` apart; before
    part ``i`` of ``gates``, wait for its event."""
    size = -(-len(messages) // chunks)
    for i, at in enumerate(range(0, len(messages), size)):
        if i in gates:
            await gates[i].wait()
        await produce(settings, READINGS, pairs(messages[at : at + size]))
        await asyncio.sleep(pause_s)


def health(settings: Settings) -> dict[str, Any]:
    """A worker's ``/gridpulse/health/``: ready, partitions assigned (all its topics), recovered."""
    url = f"http://127.0.0.1:{settings.web_port}/gridpulse/health/"
    with urllib.request.urlopen(url, timeout=15) as resp:
        data: dict[str, Any] = json.loads(resp.read())
        return data


class Applied:
    """The readings each worker has applied, as last seen: a worker that cannot answer now (deep
    in a batch, recovering, stopped) keeps its last count."""

    def __init__(self, *workers: WorkerProcess) -> None:
        self.workers = workers
        self.seen = [0] * len(workers)

    async def __call__(self) -> tuple[int, ...]:
        for i, worker in enumerate(self.workers):
            if not worker.running:
                continue
            try:
                self.seen[i] = int((await worker.counters())["counters"].get("readings_applied", 0))
            except OSError:
                pass
        return tuple(self.seen)


async def counters_of(worker: WorkerProcess, tries: int = 8) -> dict[str, Any]:
    """``/gridpulse/counters/``'s counters, asked again while the worker is too busy to answer."""
    for _ in range(tries - 1):
        try:
            return dict((await worker.counters())["counters"])
        except OSError:
            await asyncio.sleep(1.0)
    return dict((await worker.counters())["counters"])


async def wait_until(worker_counts: Any, done: Any, what: str) -> None:
    """Until ``done(counts)`` holds for the counts ``worker_counts()`` returns; fails only when
    they stand still for a long time (``helpers.while_moving``)."""

    async def check() -> tuple[bool, object]:
        counts = await worker_counts()
        return done(counts), counts

    await while_moving(check, what)


async def test_second_worker_joins_and_leaves_mid_stream_nothing_lost_or_counted_twice(
    topics, worker_factory, scale: Scale, fault_report, tmp_path: Path
):
    settings = topics.model_copy(update={"batch_max": 500, "batch_within_s": 0.2})
    # the second worker: same app id (consumer group), its own state directory and web port
    settings2 = settings.model_copy(update={"data_dir": str(tmp_path / "faust2"), "web_port": free_port()})
    since = datetime.now(UTC)
    messages = simulate(
        settings,
        customers=scale.customers,
        days=scale.intervals / 96,
        seed=31,
        bad_share=0.0,
        duplicate_share=0.02,
        late_share=0.03,
        billing_history_months=2,
    )
    reading_msgs, others = split_readings(messages)
    readings = valid_by_customer(messages, READINGS)
    billing = valid_by_customer(messages, contract.BILLING_EVENTS)
    seeds = seeds_by_customer(messages)
    expected = distinct_intervals(readings)
    total = sum(expected.values())

    await send(settings, others)  # profiles, consumption history and billing first
    w1 = worker_factory(settings).start()
    await w1.wait_ready()
    alone = await asyncio.to_thread(health, settings)
    # a live stream; it holds at half until worker 2 is in and at 80 % until worker 2 is leaving,
    # so both changes land in the middle of it on a machine of any speed
    span_s = max(36.0, total / 800)
    chunks = 60
    w2_in, w2_leaving = asyncio.Event(), asyncio.Event()
    gates = {chunks // 2: w2_in, chunks * 4 // 5: w2_leaving}
    producing = asyncio.create_task(send_gated(settings, reading_msgs, span_s / chunks, chunks, gates))
    t0 = time.monotonic()
    timeline: dict[str, float] = {}

    def mark(what: str) -> None:
        timeline[what] = round(time.monotonic() - t0, 1)

    w2 = worker_factory(settings2)
    both = Applied(w1, w2)
    # scale out: a quarter of the readings applied by worker 1 alone
    await wait_until(both, lambda c: c[0] >= total // 4, "worker 1 applies a quarter of the readings")
    joined = {"w1_applied": (await both())[0], "producing": not producing.done()}
    mark("w2_started")
    w2.start()
    await w2.wait_ready(within_s=180)
    mark("w2_ready")
    await w1.wait_ready(within_s=180)
    mark("w1_ready_shared")
    w2_in.set()
    shared = {
        "w1_partitions": (await asyncio.to_thread(health, settings))["partitions"],
        "w2_partitions": (await asyncio.to_thread(health, settings2))["partitions"],
    }
    # both workers apply readings (worker 2 from the partitions it took over), then scale in
    # with half of the readings applied between them
    await wait_until(
        both,
        lambda c: c[1] >= total // 20 and c[0] + c[1] >= total // 2,
        "both workers apply readings, half of them in all",
    )
    mark("w2_stopping")
    w2_counters = await counters_of(w2)
    left = {"applied": await both(), "producing": not producing.done()}
    w2_leaving.set()
    # SIGTERM: faust leaves the group, commits and closes its tables (the stream goes on meanwhile)
    await asyncio.to_thread(w2.stop, 60)
    assert w2.proc is not None
    w2_exit = w2.proc.returncode
    mark("w2_stopped")
    await w1.wait_ready(within_s=180)
    mark("w1_ready_alone")
    await producing
    mark("stream_sent")

    latest = await settled_stats(settings, expected)
    mark("settled")
    after = await asyncio.to_thread(health, settings)
    lost, duplicated = reading_balance(latest, expected)
    off = kwh_off(latest, kwh_sent(readings))
    w1_counters = await counters_of(w1)
    fault_report(
        sent=total,
        lost=lost,
        duplicated=duplicated,
        messages=len(reading_msgs),
        customers=len(expected),
        partitions={"w1_alone": alone["partitions"], **shared, "w1_after": after["partitions"]},
        joined_at=joined,
        left_at=left,
        w2_exit_code=w2_exit,
        timeline_s=timeline,
        w1_applied=w1_counters.get("readings_applied", 0),
        w1_duplicates=w1_counters.get("readings_duplicate", 0),
        w2_applied=w2_counters.get("readings_applied", 0),
        w2_duplicates=w2_counters.get("readings_duplicate", 0),
        kwh_mismatch=len(off),
    )
    assert lost == 0
    assert duplicated == 0
    assert not off, f"kWh differs from the readings sent for {off[:5]}"
    # the scenario happened as described: both changes mid-stream, the partitions shared and
    # handed back, the second worker did apply readings and left gracefully
    assert joined["producing"] and left["producing"], (joined, left)
    # (partitions of every topic: inputs, changelogs and, with two workers, standby replicas)
    assert shared["w2_partitions"] > 0
    assert shared["w1_partitions"] < alone["partitions"]
    assert after["partitions"] == alone["partitions"]
    assert w2_counters.get("readings_applied", 0) > 0
    assert w2_exit == 0, w2.log_tail()
    assert w1.running
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
