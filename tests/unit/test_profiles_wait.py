"""The readings agent waits for the co-partitioned profiles (streams.agents.readings.wait_for_profiles,
Runtime.profiles_behind): faust reads ``customers`` and ``meter.readings`` in no order between them.

The worker runs with faust's real consumer object, not started: its fetch state (assignment, high
watermarks, read positions) is set here as a fetch would leave it."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from faust.types import TP

from streams.agents.readings import wait_for_profiles
from tests.unit.worker_harness import js, worker_under_test

pytestmark = pytest.mark.timeout(60)


class _Message:
    def __init__(self, key: bytes, partition: int) -> None:
        self.key, self.partition = key, partition


class _Event:
    def __init__(self, key: bytes, partition: int) -> None:
        self.message = _Message(key, partition)


def fetched(consumer: Any, tp: TP, high: int | None, read: int | None) -> None:
    consumer.assignment = lambda: {tp}
    consumer.highwater = lambda _tp: high
    consumer._read_offset[tp] = read


async def test_profiles_behind_follows_high_watermark_read_position_and_applied(tmp_path: Path) -> None:
    async with worker_under_test(tmp_path) as w:
        rt = w.rt
        tp = TP(rt.topics.customers.get_topic_name(), 2)
        assert rt.profiles_behind(2) is False  # not assigned here (no consumer running): never waits
        fetched(rt.app.consumer, tp, None, None)
        assert rt.profiles_behind(2) is True  # assigned, no fetch yet
        fetched(rt.app.consumer, tp, 40, 40)  # after the assignment's seek: committed 40, high 40
        assert rt.profiles_behind(2) is False
        fetched(rt.app.consumer, tp, 45, 40)  # 5 profiles not read yet
        assert rt.profiles_behind(2) is True
        fetched(rt.app.consumer, tp, 45, 44)  # read up to 44, not applied
        assert rt.profiles_behind(2) is True
        rt.profiles_applied[2] = 45
        assert rt.profiles_behind(2) is False


async def test_a_batch_waits_for_its_customers_profiles_and_a_known_gap_does_not(tmp_path: Path) -> None:
    async with worker_under_test(tmp_path) as w:
        rt = w.rt
        tp = TP(rt.topics.customers.get_topic_name(), 1)
        fetched(rt.app.consumer, tp, 10, 8)  # two profiles of partition 1 still to apply

        async def apply_later() -> None:
            await asyncio.sleep(0.3)
            async with w.agent("customers").test_context() as ctx:
                await w.put(ctx, b"c9", js({"customer_id": "c9", "transformer_area": "TA1"}))
            rt.profiles_applied[1] = 10

        later = asyncio.create_task(apply_later())
        t0 = asyncio.get_running_loop().time()
        await wait_for_profiles(rt, [_Event(b"c9", 1)], within_s=10)
        waited = asyncio.get_running_loop().time() - t0
        await later
        assert waited >= 0.3 and rt.counters["readings_waited_for_profiles"] == 1
        assert rt.profile("c9") is not None  # the readings now find it

        await wait_for_profiles(rt, [_Event(b"c9", 1), _Event(b"c3", 1)], within_s=10)
        assert rt.counters["readings_waited_for_profiles"] == 1  # caught up: c3 is just unknown

        fetched(rt.app.consumer, tp, 12, 10)  # behind again, and nobody applies them
        await wait_for_profiles(rt, [_Event(b"c4", 1)], within_s=0.2)
        assert rt.counters["readings_profile_wait_expired"] == 1  # bounded: the batch goes on
