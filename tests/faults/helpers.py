"""What the fault scenarios share besides fixtures: their sizes, the stack's own script, and the
steps of a scenario (send a paced stream, wait while the pipeline moves, read the settled
statistics, count what was lost and what was counted twice)."""

from __future__ import annotations

import asyncio
import subprocess
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any

import pytest
from aiokafka import TopicPartition

from gridpulse.settings import Settings
from gridpulse.workerproc import ROOT, WorkerProcess
from schemas import topics as contract
from simulator.run import Message
from streams.kafka import make_admin, make_consumer, read_latest
from tests.integration.helpers import produce
from tests.integration.population import final_stats

READINGS = contract.METER_READINGS

STACK = ROOT / "scripts" / "stack.sh"


@dataclass(frozen=True)
class Scale:
    name: str
    customers: int
    intervals: int  # 15-minute readings per customer
    kills: int  # SIGKILLs in the kill scenario
    alerts: int  # alerts in the PostgreSQL burst

    @property
    def readings(self) -> int:
        return self.customers * self.intervals


SCALES = {
    "small": Scale("small", customers=40, intervals=96, kills=2, alerts=200),
    "full": Scale("full", customers=2_000, intervals=96, kills=4, alerts=5_000),
}


def stack(action: str, component: str, timeout_s: float = 180) -> None:
    """`scripts/stack.sh <action> <component>` (up, down, kill) on the stack the tests use."""
    proc = subprocess.run(
        ["bash", str(STACK), action, component],
        capture_output=True,
        text=True,
        timeout=timeout_s,
        check=False,
    )
    if proc.returncode != 0:
        raise AssertionError(f"stack.sh {action} {component} failed:\n{proc.stdout}\n{proc.stderr}")


# ---------------------------------------------------------------------------- scenario steps


def split_readings(messages: list[Message]) -> tuple[list[Message], list[Message]]:
    """(the meter readings in delivery order, everything else: profiles, history, billing)."""
    readings = [m for m in messages if m.topic.endswith(READINGS)]
    return readings, [m for m in messages if not m.topic.endswith(READINGS)]


def pairs(messages: Sequence[Message]) -> list[tuple[bytes | None, bytes | None]]:
    return [(m.key, m.value) for m in messages]


async def send_paced(settings: Settings, messages: Sequence[Message], span_s: float, chunks: int) -> None:
    """Send ``messages`` to meter.readings in ``chunks`` equal parts spread over ``span_s``: a live
    stream rather than one burst, so a fault lands in the middle of it."""
    t0 = time.monotonic()
    size = -(-len(messages) // chunks)
    for i, at in enumerate(range(0, len(messages), size)):
        await produce(settings, READINGS, pairs(messages[at : at + size]))
        await asyncio.sleep(max(0.0, t0 + span_s * (i + 1) / chunks - time.monotonic()))


STALL_S = 120.0  # a wait fails when nothing moved for this long, however long it took before


async def while_moving(check: Callable[[], Awaitable[tuple[bool, object]]], what: str) -> None:
    """``helpers.eventually`` for a pipeline whose speed the scale decides: ``check`` returns
    (done, a progress mark); give up only when the mark stood still for STALL_S (a stuck
    worker), not after a fixed time."""
    mark: object = None
    since = time.monotonic()
    while True:
        done, now = await check()
        if done:
            return
        if now != mark:
            mark, since = now, time.monotonic()
        elif time.monotonic() - since > STALL_S:
            raise AssertionError(f"no progress for {STALL_S:.0f} s: {what} (stuck at {mark})")
        await asyncio.sleep(0.3)


async def committed(settings: Settings, topic: str) -> tuple[bool, object]:
    """(has the worker's consumer group committed every offset of ``topic``, the offsets it
    has): everything in it processed and its output flushed (offsets are committed only after)."""
    admin = make_admin(settings)
    await admin.start()
    try:
        offsets = await admin.list_consumer_group_offsets(settings.app_id)
    finally:
        await admin.close()
    consumer = make_consumer(settings)
    await consumer.start()
    try:
        tps = [TopicPartition(settings.topic(topic), p) for p in range(settings.topic_partitions)]
        end = await consumer.end_offsets(tps)
    finally:
        await consumer.stop()
    at = {tp.partition: offsets[tp].offset for tp in tps if tp in offsets}
    return all(at.get(tp.partition, 0) >= end[tp] for tp in tps), at


SETTLED_INPUTS = (READINGS, contract.CONSUMPTION_HISTORY, contract.BILLING_EVENTS)


async def settled_stats(settings: Settings, expected: dict[str, int]) -> dict[str, Any]:
    """The latest stats.customer per customer once the worker has committed every reading, every
    consumption.history month and every billing event, and each customer has its ``expected`` d30
    intervals; what there is when that never comes (so a loss is counted and reported, not only
    timed out on).

    Not the readings alone: a worker restarted after SIGKILL replays what the killed one had not
    committed, history and billing too, and may finish the readings first; a document read then
    lacks the seeded months and bills still to be re-applied (they come with a later document)."""
    try:
        for topic in SETTLED_INPUTS:
            await while_moving(partial(committed, settings, topic), f"every {topic} offset committed")
        return await final_stats(settings, expected, "d30", within_s=30)
    except AssertionError:
        return await read_latest(settings, contract.STATS_CUSTOMER, "customer_id")


async def wait_applied(worker: WorkerProcess, n: int, what: str, counter: str = "readings_applied") -> int:
    """Until ``worker`` has applied ``n`` readings (or ``n`` of another ``counter``); how many it
    had when last seen."""
    seen = 0

    async def reached() -> tuple[bool, object]:
        nonlocal seen
        try:
            seen = (await worker.counters())["counters"].get(counter, 0)
        except OSError:  # deep in a batch: ask again
            pass
        return seen >= n, seen

    await while_moving(reached, what)
    return seen


def reading_balance(docs: dict[str, Any], expected: dict[str, int]) -> tuple[int, int]:
    """(lost, duplicated) readings: per customer, the intervals its d30 window is missing or has
    more than the distinct readings sent (a reading counted twice adds an interval)."""
    lost = duplicated = 0
    for cid, n in expected.items():
        got = docs[cid]["d30"]["intervals"] if cid in docs else 0
        lost += max(0, n - got)
        duplicated += max(0, got - n)
    return lost, duplicated


def kwh_sent(readings: dict[str, list[dict[str, Any]]]) -> dict[str, float]:
    """Per customer, the kWh of its distinct readings (first of each meter and interval)."""
    out: dict[str, float] = {}
    for cid, rows in readings.items():
        first = {(r["meter_id"], r["ts"]): r["kwh"] for r in reversed(rows)}
        out[cid] = sum(first.values())
    return out


def kwh_off(docs: dict[str, Any], want: dict[str, float]) -> list[str]:
    """The customers whose d30 kWh is not the kWh they were sent."""
    return [
        cid
        for cid, kwh in want.items()
        if cid not in docs or docs[cid]["d30"]["kwh"] != pytest.approx(kwh, rel=1e-9, abs=1e-6)
    ]
