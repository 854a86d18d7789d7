"""streams.faust_patches.exact_offset_commits: faust's consumer commits only past what was acked.

faust's own App and Consumer (the aiokafka driver's, never connected): its ``ack``, its
``_filter_committable_offsets`` (what a commit would commit), its ``perform_seek`` and its
``_drain_messages`` with faust's ``getmany`` run as in the worker. Only Kafka's side is replaced,
at the edge where faust calls into aiokafka's thread: :class:`OnePartitionLog` holds one
partition's records, its committed offset and the fetch position (``seek_to_committed`` seeks only
offsets > 0, as aiokafka's does), and hands out batches the way ``Consumer._getmany`` does.
Downstream of the consumer, the streams' queue is a real faust ``FlowControlQueue`` managed by the
app's flow control (cleared when it resumes, as faust's channel queues are), and the "agent" acks
what it takes from it.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import faust
import pytest
from aiokafka.structs import ConsumerRecord
from faust.types.tuples import TP
from mode.utils.queues import FlowControlQueue

from streams.faust_patches import exact_offset_commits

TOPIC = "offsets-test.meter.readings"


class OnePartitionLog:
    """Kafka's side of one partition as faust's consumer sees it through aiokafka."""

    def __init__(self, tp: TP, offsets: list[int], committed: int | None, earliest: int = 0) -> None:
        self.tp = tp
        self.offsets = offsets
        self.committed = committed
        self.earliest = earliest
        self.position = committed if committed else earliest
        self.sought: list[dict[Any, int]] = []
        self.batch = 50

    def install(self, consumer: Any) -> None:
        consumer.seek_to_committed = self.seek_to_committed
        consumer.earliest_offsets = self.earliest_offsets
        consumer.seek_wait = self.seek_wait
        consumer._getmany = self.getmany
        consumer.highwater = lambda tp: self.offsets[-1] + 1

    async def seek_to_committed(self) -> dict[TP, int | None]:
        for _ in range(3):  # a round trip to the consumer thread and the broker
            await asyncio.sleep(0)
        if self.committed and self.committed > 0:  # aiokafka: only offsets > 0 are sought
            self.position = self.committed
        return {self.tp: self.committed}

    async def earliest_offsets(self, *tps: TP) -> dict[TP, int]:
        await asyncio.sleep(0)
        return {tp: self.earliest for tp in tps}

    async def seek_wait(self, partitions: dict[Any, int]) -> None:
        await asyncio.sleep(0)
        self.sought.append(dict(partitions))
        self.position = partitions[self.tp]

    async def getmany(  # faust calls it with these keywords
        self,
        active_partitions: Any,
        timeout: float,  # noqa: ASYNC109
    ) -> dict[TP, list[Any]]:
        await asyncio.sleep(0)
        batch = [o for o in self.offsets if o >= self.position][: self.batch]
        if not batch:
            await asyncio.sleep(0.01)
            return {}
        self.position = batch[-1] + 1
        return {self.tp: [record(self.tp, o) for o in batch]}


def record(tp: TP, offset: int) -> ConsumerRecord[bytes, bytes]:
    return ConsumerRecord(
        topic=tp.topic,
        partition=tp.partition,
        offset=offset,
        timestamp=1_700_000_000_000,
        timestamp_type=0,
        key=b"k",
        value=b"v",
        checksum=None,
        serialized_key_size=1,
        serialized_value_size=1,
        headers=(),
    )


@pytest.fixture
async def consumer() -> AsyncIterator[Any]:
    exact_offset_commits()
    app = faust.App("offsets-test", broker="kafka://127.0.0.1:9", consumer_auto_offset_reset="earliest")
    conductor: Any = app.topics
    conductor.add(app.topic(TOPIC))  # an acking topic, as an agent's is
    await conductor._update_indices()
    c: Any = app.consumer
    c._set_active_tps({TP(TOPIC, 0)})
    yield c
    c._thread.thread_loop.close()  # the consumer thread's loop, never run


def ack(consumer: Any, tp: TP, *offsets: int) -> None:
    for offset in offsets:
        consumer.ack(consumer._to_message(tp, record(tp, offset)))


def commit(consumer: Any, tp: TP) -> int | None:
    """What faust's commit would commit for ``tp`` now, recorded as committed as faust's
    ``_commit_offsets`` does; the partition's committed offset after it."""
    offsets = consumer._filter_committable_offsets([tp])
    consumer._committed_offset.update(offsets)
    return consumer._committed_offset[tp]


async def test_a_one_message_hole_at_the_head_is_not_committed_past(consumer: Any) -> None:
    tp = TP(TOPIC, 0)
    OnePartitionLog(tp, list(range(40)), committed=10).install(consumer)
    await consumer.perform_seek()
    ack(consumer, tp, 11, 12)  # 10, the next offset to read, is not acked
    assert commit(consumer, tp) == 10
    ack(consumer, tp, 10)
    assert commit(consumer, tp) == 13


async def test_a_committed_offset_of_zero_is_the_head(consumer: Any) -> None:
    tp = TP(TOPIC, 0)
    log = OnePartitionLog(tp, list(range(40)), committed=0)
    log.install(consumer)
    await consumer.perform_seek()
    assert log.sought == [{tp: 0}]  # aiokafka does not seek 0: the patch does
    ack(consumer, tp, 1, 2)
    assert commit(consumer, tp) == 0
    ack(consumer, tp, 0)
    assert commit(consumer, tp) == 3


async def test_a_partition_never_committed_starts_at_its_earliest_offset(consumer: Any) -> None:
    tp = TP(TOPIC, 0)
    log = OnePartitionLog(tp, list(range(5, 40)), committed=None, earliest=5)
    log.install(consumer)
    log.position = 20  # where the fetcher had got to before the seek
    await consumer.perform_seek()
    assert log.position == 5
    ack(consumer, tp, 6, 7)
    assert commit(consumer, tp) == 5
    ack(consumer, tp, 5)
    assert commit(consumer, tp) == 8


async def test_offsets_kafka_did_not_return_are_a_gap_from_the_head(consumer: Any) -> None:
    """A compacted partition: 10 and 11 are gone, 12 is the first record after the seek."""
    tp = TP(TOPIC, 0)
    log = OnePartitionLog(tp, [12, 13, 16, 17], committed=10)
    log.install(consumer)
    delivered: list[int] = []
    all_delivered = asyncio.Event()

    async def callback(message: Any) -> None:
        delivered.append(message.offset)
        if len(delivered) == 4:
            all_delivered.set()

    consumer.callback = callback
    await consumer.perform_seek()
    consumer.app.flow_control.resume()
    drain = asyncio.create_task(consumer._drain_messages(consumer.app._fetcher))
    try:
        async with asyncio.timeout(5):
            await all_delivered.wait()
    finally:
        drain.cancel()
    assert delivered == [12, 13, 16, 17]
    ack(consumer, tp, 12, 13, 16)
    assert commit(consumer, tp) == 17
    ack(consumer, tp, 17)
    assert commit(consumer, tp) == 18


async def test_a_seek_under_a_delivering_batch_loses_nothing(consumer: Any) -> None:
    """What faust's recovery does to a restarted worker (tests/faults/test_faults_worker.py):
    the flow is already resumed when it seeks the stream partitions to their committed offsets,
    the fetcher delivers the batch it has meanwhile, and after the seek flow control resumes,
    clearing the streams' queues. Every message must still reach the agent, and the committed
    offset move only past what it acked."""
    tp = TP(TOPIC, 0)
    app = consumer.app
    log = OnePartitionLog(tp, list(range(356, 420)), committed=356)
    log.install(consumer)
    queue: FlowControlQueue[Any] = FlowControlQueue(flow_control=app.flow_control, clear_on_resume=True)
    recovered = asyncio.Event()

    async def recovery() -> None:  # faust's Recovery._resume_streams, in order
        await consumer.perform_seek()
        app.flow_control.resume()  # clears the queues
        consumer.resume_flow()
        recovered.set()

    started: list[asyncio.Task[None]] = []

    async def callback(message: Any) -> None:  # faust's conductor: flow control, then the queue
        await app.flow_control.acquire()
        queue.put_nowait(message)
        if message.offset == 360 and not started:
            started.append(asyncio.create_task(recovery()))

    consumer.callback = callback
    app.flow_control.resume()
    consumer.resume_flow()
    drain = asyncio.create_task(consumer._drain_messages(app._fetcher))
    processed: set[int] = set()
    try:
        async with asyncio.timeout(5):
            await recovered.wait()
            while len(processed) < len(log.offsets):  # the agent: takes, processes, acks
                try:
                    message = await asyncio.wait_for(queue.get(), 0.5)
                except TimeoutError:
                    break
                processed.add(message.offset)
                consumer.ack(message)
    finally:
        drain.cancel()
    assert sorted(processed) == log.offsets
    assert commit(consumer, tp) == 420
