"""A view's follower on the real Kafka (streams/follow.py): the stats.customer partitions the
worker owns are read up to their end after the assignment, then paused (the worker feeds its
own documents in-process); ``sync`` does not wait for them; a revoked partition is resumed from
where it was paused, so nothing written meanwhile is lost."""

from __future__ import annotations

import asyncio
import contextlib

import pytest
from aiokafka import ConsumerRecord, TopicPartition

from gridpulse.settings import Settings
from schemas.topics import STATS_CUSTOMER
from streams.follow import TopicFollower
from streams.kafka import make_producer
from tests.integration.helpers import eventually, js

pytestmark = pytest.mark.timeout(120)


async def send(settings: Settings, partition: int, *names: str) -> None:
    producer = make_producer(settings)
    await producer.start()
    try:
        for name in names:
            await producer.send_and_wait(
                settings.topic(STATS_CUSTOMER), key=name.encode(), value=js({"n": name}), partition=partition
            )
    finally:
        await producer.stop()


async def test_owned_partitions_are_paused_after_the_earlier_owners_documents(topics: Settings) -> None:
    stats = topics.topic(STATS_CUSTOMER)
    seen: list[tuple[int, str]] = []

    def apply(rec: ConsumerRecord) -> None:
        seen.append((rec.partition, rec.key.decode()))

    await send(topics, 0, "a0", "b0")  # an earlier owner's documents
    await send(topics, 1, "a1")
    follower = TopicFollower(topics, [stats], apply, label="t", own_topic=stats)
    follower.set_own({0})
    task = asyncio.create_task(follower.run_forever())
    try:

        async def paused() -> set[int]:
            consumer = follower._consumer
            return set() if consumer is None else {tp.partition for tp in consumer.paused()}

        async def p0_paused() -> bool:
            return await paused() == {0}

        await eventually(p0_paused, 30, "partition 0 paused")
        assert {(0, "a0"), (0, "b0"), (1, "a1")} <= set(seen)  # read before pausing

        await send(topics, 0, "c0")  # this worker's own (in-process) document
        await send(topics, 1, "d1")  # another worker's
        assert await follower.sync(5.0)  # not waiting for the paused partition
        assert (1, "d1") in seen and (0, "c0") not in seen

        follower.set_own(())  # revoked: resumed from where it was paused
        assert await paused() == set()

        async def c0_read() -> bool:
            return (0, "c0") in seen

        await eventually(c0_read, 30, "the paused partition's document after the revocation")
        assert await follower.sync(10.0)

        follower.set_own({1})  # a new assignment: paused once read to its end
        await send(topics, 2, "e2")

        async def p1_paused() -> bool:
            return await paused() == {1}

        await eventually(p1_paused, 30, "partition 1 paused")
        assert await follower.sync(10.0) and (2, "e2") in seen
        assert [key for _, key in seen].count("c0") == 1
        assert (
            await follower._consumer.position(TopicPartition(stats, 1))  # type: ignore[union-attr]
            == 2
        )
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
