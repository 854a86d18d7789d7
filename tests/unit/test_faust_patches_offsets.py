"""streams.faust_patches.OffsetGuard: faust's commits bounded by what the agent processed, holes
fetched again, offsets Kafka does not have skipped only when a fetch after our seek proves it.

faust's own App and Consumer (the aiokafka driver's, never connected): its ``ack``, its
``_filter_committable_offsets`` (what a commit would commit), its ``perform_seek``, its
``getmany`` and its ``_drain_messages`` run as in the worker, with the guard's hooks on that
consumer object. Only Kafka's side is replaced, at the edge where faust calls into aiokafka's
thread: :class:`OnePartitionLog` holds one partition's records, its committed offset and the
fetch position (``seek_to_committed`` seeks only offsets > 0, as aiokafka's does), and hands out
batches the way ``Consumer._getmany`` does. Downstream, the streams' queue is a real faust
``FlowControlQueue`` managed by the app's flow control (cleared when it resumes, as faust's
channel queues are); the "agent" takes from it, tells the guard what it processed (as
``take_events_adaptive`` does) and acks (as the stream does).
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, cast

import faust
import pytest
from aiokafka.structs import ConsumerRecord
from faust.events import Event
from faust.types.tuples import TP
from mode.utils.queues import FlowControlQueue

from streams.faust_patches import OffsetGuard, offset_guard_of, take_events_adaptive, unique_acked_offsets

TOPIC = "offsets-test.meter.readings"
TP0 = TP(TOPIC, 0)
STALL_S = 0.2


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
        consumer.assignment = lambda: {self.tp}

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


Factory = Callable[..., Awaitable[tuple[Any, OnePartitionLog, "OffsetGuard | None"]]]


@pytest.fixture
async def make() -> AsyncIterator[Factory]:
    """``await make(offsets, committed, guarded=True)``: faust's consumer of a fresh app over
    :class:`OnePartitionLog`, with an :class:`OffsetGuard` watching the topic's stream (or not)."""
    consumers: list[Any] = []

    async def factory(
        offsets: list[int], committed: int | None, guarded: bool = True, earliest: int = 0
    ) -> tuple[Any, OnePartitionLog, OffsetGuard | None]:
        app = faust.App(
            f"offsets-test-{len(consumers)}",
            broker="kafka://127.0.0.1:9",
            consumer_auto_offset_reset="earliest",
        )
        topic = app.topic(TOPIC)
        conductor: Any = app.topics
        conductor.add(topic)  # an acking topic, as an agent's is
        await conductor._update_indices()
        c: Any = app.consumer
        consumers.append(c)
        c._set_active_tps({TP0})
        log = OnePartitionLog(TP0, offsets, committed, earliest)
        log.install(c)  # Kafka's side first: the guard wraps what faust calls
        guard = None
        if guarded:
            guard = OffsetGuard(app, Counter(), stall_s=STALL_S, check_s=None)
            guard.watch(app.stream(topic))
        return c, log, guard

    yield factory
    for c in consumers:
        c._thread.thread_loop.close()  # the consumer thread's loop, never run


def message(consumer: Any, offset: int) -> Any:
    return consumer._to_message(TP0, record(TP0, offset))


def process(consumer: Any, guard: OffsetGuard | None, *offsets: int) -> None:
    """The agent applied these messages: it tells the guard (take_events_adaptive does, once the
    agent asks for its next batch) and the stream acks them."""
    events = [Event(consumer.app, b"k", b"v", {}, message(consumer, o)) for o in offsets]
    if guard is not None:
        guard.processed(events)
    for event in events:
        consumer.ack(event.message)


def ack_unprocessed(consumer: Any, *offsets: int) -> None:
    """faust acks without the agent: a stream skips (and acks) a message delivered while the
    flow was suspended or of an older generation."""
    for offset in offsets:
        consumer.ack(message(consumer, offset))


def commit(consumer: Any) -> int | None:
    """What faust's commit would commit for the partition now, recorded as committed as faust's
    ``_commit_offsets`` does; the partition's committed offset after it."""
    offsets = consumer._filter_committable_offsets([TP0])
    consumer._committed_offset.update(offsets)
    return consumer._committed_offset[TP0]


async def test_the_commit_never_passes_the_frontier(make: Factory) -> None:
    """faust's bookkeeping takes 105..119 for an offset gap (what its drain does when a seek
    resets its read offset under a batch) and 120..129 were acked without being processed (the
    stream skips them after a rebalance): faust alone commits 130, past 25 readings the agent
    never applied; with the guard the commit stops at the agent's frontier."""
    for guarded in (False, True):
        consumer, _, guard = await make(list(range(100, 200)), committed=100, guarded=guarded)
        await consumer.perform_seek()
        process(consumer, guard, *range(100, 105))
        await consumer._add_gap(TP0, 105, 119)
        ack_unprocessed(consumer, *range(120, 130))
        if guard is None:
            assert commit(consumer) == 130  # faust's own: the defect
            continue
        assert guard.frontier[TP0] == 105
        assert commit(consumer) == 105
        assert guard.counters["commit_held_back"] == 1
        process(consumer, guard, *range(105, 125))  # fetched again and applied
        assert commit(consumer) == 125
        process(consumer, guard, *range(125, 135))
        assert commit(consumer) == 135


async def test_processed_offsets_above_a_hole_wait_for_it(make: Factory) -> None:
    consumer, _, guard = await make(list(range(10, 60)), committed=10)
    assert guard is not None
    await consumer.perform_seek()
    process(consumer, guard, 10, 11, 14, 15)  # 12, 13 not processed
    assert commit(consumer) == 12
    process(consumer, guard, 16)
    assert commit(consumer) == 12
    process(consumer, guard, 13, 12)  # in any order
    assert guard.frontier[TP0] == 17 and not guard.done_above[TP0]
    assert commit(consumer) == 17


async def test_a_partition_never_committed_starts_at_its_earliest_offset(make: Factory) -> None:
    consumer, _, guard = await make(list(range(5, 40)), committed=None, earliest=5)
    assert guard is not None
    await consumer.perform_seek()
    assert guard.frontier[TP0] == 5
    ack_unprocessed(consumer, 5, 6, 7)
    assert commit(consumer) == 5  # nothing processed: not past the first offset
    process(consumer, guard, 5, 6)
    assert commit(consumer) == 7


async def test_a_hole_is_fetched_again_once_it_has_stalled(make: Factory) -> None:
    """105..109 were delivered and thrown away (flow control clears the streams' queues when
    it resumes) while faust's read offset moved past them: nothing would fetch them again."""
    consumer, log, guard = await make(list(range(100, 200)), committed=100)
    assert guard is not None
    app = consumer.app
    await consumer.perform_seek()
    process(consumer, guard, *range(100, 105), *range(110, 200))
    consumer._read_offset[TP0] = 199  # faust's drain: last delivered
    log.position = 200
    app.flow_control.resume()
    consumer.resume_flow()
    t0 = guard.progress_at[TP0]
    assert await guard.check(t0 + STALL_S / 2) == []  # not stalled long enough
    app.flow_control.suspend()
    assert await guard.check(t0 + 10 * STALL_S) == []  # faust is moving partitions
    app.flow_control.resume()
    t1 = guard.progress_at[TP0]
    # the message at the frontier taken by the stream and not yet processed: not a hole
    taken = message(consumer, 105)
    consumer.track_message(taken)
    assert await guard.check(t1 + 10 * STALL_S) == []
    consumer.ack(taken)  # acked without being processed (a skipped message)
    buffer = app.producer.buffer
    for i in range(buffer.max_messages + 1):  # the conductor waits for the producer to ebb
        buffer.put(f"m{i}")
    assert await guard.check(t1 + 20 * STALL_S) == []
    while buffer.size:
        buffer.pending.get_nowait()
    assert await guard.check(t1 + 20 * STALL_S) == [TP0]
    assert log.sought == [{TP0: 105}] and log.position == 105
    assert consumer._read_offset[TP0] == 105  # faust delivers from there again
    assert guard.counters["offsets_refetched"] == 1
    assert commit(consumer) == 105
    process(consumer, guard, *range(105, 110))
    assert guard.frontier[TP0] == 200 and commit(consumer) == 200
    assert await guard.check(t1 + 40 * STALL_S) == []  # caught up


async def drain_until(
    consumer: Any, done: Callable[[], bool], agent: Callable[[], Any], within_s: float = 10
) -> bool:
    """faust's real fetch loop (``_drain_messages``, ``getmany``) delivering to the app, with
    ``agent`` running, until ``done()`` (True) or ``within_s`` (False)."""
    drain = asyncio.create_task(consumer._drain_messages(consumer.app._fetcher))
    worker = asyncio.create_task(agent())
    try:
        for _ in range(int(within_s / 0.01)):
            if done():
                return True
            await asyncio.sleep(0.01)  # polls the fetch loop's effects
        return done()
    finally:
        drain.cancel()
        worker.cancel()
        await asyncio.gather(drain, worker, return_exceptions=True)


def queue_agent(
    consumer: Any, guard: OffsetGuard | None, queue: FlowControlQueue[Any], seen: list[int]
) -> Any:
    async def agent() -> None:  # takes, processes, tells the guard, acks
        while True:
            msg = await queue.get()
            consumer.track_message(msg)
            seen.append(msg.offset)
            process(consumer, guard, msg.offset)

    return agent


async def recovery_under_delivery(
    consumer: Any, log: OnePartitionLog, guard: OffsetGuard | None
) -> tuple[list[int], int | None, list[tuple[int | None, set[int]]]]:
    """faust's recovery seeking while the fetcher delivers; returns the offsets the agent
    processed, the final commit, and every commit with what was processed when it was made."""
    app = consumer.app
    log.batch = 20
    queue: FlowControlQueue[Any] = FlowControlQueue(flow_control=app.flow_control, clear_on_resume=True)
    recovered = asyncio.Event()
    started: list[asyncio.Task[None]] = []

    async def recovery() -> None:  # faust's Recovery._resume_streams: seek, then resume the flow
        await consumer.perform_seek()
        app.flow_control.resume()  # clears the queues
        consumer.resume_flow()
        recovered.set()

    async def callback(msg: Any) -> None:  # faust's conductor: flow control, then the queue
        await app.flow_control.acquire()
        queue.put_nowait(msg)
        if msg.offset == 370 and not started:
            started.append(asyncio.create_task(recovery()))

    consumer.callback = callback
    await consumer.perform_seek()
    app.flow_control.resume()
    consumer.resume_flow()
    seen: list[int] = []
    commits: list[tuple[int | None, set[int]]] = []

    async def committing() -> None:  # the worker's commit timer and the guard's, faster
        while True:
            await asyncio.sleep(0.05)
            if guard is not None:
                await guard.check()
            commits.append((commit(consumer), set(seen)))

    checker = asyncio.create_task(committing())
    try:
        await drain_until(
            consumer,
            lambda: recovered.is_set() and set(seen) >= set(log.offsets),
            queue_agent(consumer, guard, queue, seen),
            within_s=5,
        )
    finally:
        checker.cancel()
    return sorted(set(seen)), commit(consumer), commits


async def test_a_seek_under_a_delivering_batch_loses_nothing(make: Factory) -> None:
    """What faust's recovery does to a restarted worker (tests/faults/test_faults_worker.py):
    the fetcher delivers while the stream partitions are sought to their committed offsets, and
    flow control then resumes, clearing the streams' queues. With faust alone messages are
    committed unprocessed or never delivered again; with the guard every message reaches the
    agent (the hole fetched again after the stall) and no commit passes an unprocessed one."""
    every = list(range(356, 420))
    consumer, log, _ = await make(every, committed=356, guarded=False)
    seen, final, _ = await recovery_under_delivery(consumer, log, None)
    assert seen != every or final != 420  # faust alone: the defect guarded against

    consumer, log, guard = await make(every, committed=356)
    assert guard is not None
    seen, final, commits = await recovery_under_delivery(consumer, log, guard)
    assert (seen, final) == (every, 420)
    for committed, processed in commits:  # no commit passed a message not processed then
        assert committed is None or set(range(356, committed)) <= processed
    assert guard.counters["offsets_refetched"] >= 1


async def test_offsets_kafka_does_not_have_are_skipped_after_two_seeks(make: Factory) -> None:
    """105..109 do not exist (compaction, transaction markers, retention). faust's drain
    delivers 110 after 104 (its gap bookkeeping would commit past); the guard's frontier waits
    at 105, seeks back after the stall, and believes in the gap only when the first message
    fetched after its seek is 110 twice."""
    offsets = [*range(100, 105), *range(110, 130)]
    consumer, log, guard = await make(offsets, committed=100)
    assert guard is not None
    app = consumer.app
    queue: FlowControlQueue[Any] = FlowControlQueue(flow_control=app.flow_control, clear_on_resume=False)

    async def callback(msg: Any) -> None:
        await app.flow_control.acquire()
        queue.put_nowait(msg)

    consumer.callback = callback
    await consumer.perform_seek()
    app.flow_control.resume()
    consumer.resume_flow()
    seen: list[int] = []

    async def checking() -> None:
        while True:
            await asyncio.sleep(0.05)
            await guard.check()

    checker = asyncio.create_task(checking())
    try:
        await drain_until(
            consumer, lambda: guard.frontier[TP0] == 130, queue_agent(consumer, guard, queue, seen)
        )
    finally:
        checker.cancel()
    assert sorted(set(seen)) == offsets
    # after the stall, then once more to be sure (once more again when the fetch that brought
    # 110 was asked for while that seek was under way: it does not count)
    assert len(log.sought) >= 2 and all(s == {TP0: 105} for s in log.sought)
    assert guard.counters["offsets_gap_skipped"] == 5 and guard.counters["offsets_refetched"] == len(
        log.sought
    )
    assert commit(consumer) == 130 and not guard.proofs


async def test_the_first_message_of_a_batch_asked_before_our_seek_proves_nothing(make: Factory) -> None:
    """Only a fetch asked for after the guard's seek tells what the partition holds from the
    frontier on: a batch asked for before it may bring records of the old position."""
    consumer, log, guard = await make(list(range(100, 200)), committed=100)
    assert guard is not None
    await consumer.perform_seek()
    consumer.app.flow_control.resume()
    consumer.resume_flow()
    process(consumer, guard, *range(100, 105))
    t0 = guard.progress_at[TP0]
    assert await guard.check(t0 + 10 * STALL_S) == [TP0]
    fetched = [m.offset async for _, m in consumer.getmany(timeout=1.0)]
    assert fetched[0] == 105 and not guard.proofs  # the hole being filled
    guard.frontier[TP0] = 150  # another hole
    guard.progress_at[TP0] = t0
    assert await guard.check(t0 + 10 * STALL_S) == [TP0]
    old = consumer.getmany(timeout=1.0)  # asked for now (the drain holds it) ...
    guard.progress_at[TP0] = t0
    assert await guard.check(t0 + 10 * STALL_S) == [TP0]  # ... before this seek
    log.position = 160  # it brings records of another position
    stale = [m.offset async for _, m in old]
    assert stale[0] == 160 and guard.proofs[TP0].seen is None and guard.frontier[TP0] == 150
    log.position = 150
    fetched = [m.offset async for _, m in consumer.getmany(timeout=1.0)]
    assert fetched[0] == 150 and not guard.proofs


async def test_take_events_adaptive_reports_a_batch_once_the_agent_asks_for_the_next() -> None:
    """With a guard on the app, ``take_events_adaptive`` guards its stream's topic and tells the
    guard a batch was processed only when the agent comes back for the next one; a batch the
    generator is closed on (the agent left with an exception) is not reported."""
    app = faust.App("guard-take-test", broker="kafka://127.0.0.1:9", store="memory://", web_enabled=False)
    topic = app.topic(TOPIC, value_type=bytes, value_serializer="raw")
    guard = OffsetGuard(app, Counter(), check_s=None)
    assert offset_guard_of(app) is guard
    conductor: Any = app.topics
    conductor.add(topic)
    await conductor._update_indices()
    stream = app.stream(topic)
    consumer: Any = app.consumer
    app.flow_control.resume()
    batches = take_events_adaptive(stream, 3, lambda: 0.05)
    try:
        for offset in range(10, 17):
            await cast(Any, stream.channel).put(Event(app, b"k", b"v", {}, message(consumer, offset)))
        first = await batches.__anext__()
        assert TOPIC in guard.topics
        guard.frontier[TP0] = 10  # as the assignment's seek sets it
        assert [e.message.offset for e in first] == [10, 11, 12]
        assert guard.frontier[TP0] == 10  # being processed
        second = await batches.__anext__()
        assert guard.frontier[TP0] == 13  # the first batch is done
        assert [e.message.offset for e in second] == [13, 14, 15]
        await batches.aclose()  # the agent never came back for more
        assert guard.frontier[TP0] == 13
    finally:
        consumer._thread.thread_loop.close()


async def test_a_gap_over_acked_offsets_is_committed_at_once_not_one_offset_a_commit(
    make: Factory,
) -> None:
    """faust's commit crawl (streams.faust_patches.unique_acked_offsets): a gap range that covers
    offsets already acked puts them in faust's acked list twice, and each commit then stops at a
    duplicate: one offset per commit interval (a CI run: billing.events at 1 of 231 for minutes).
    Unguarded, as the agents that take one message at a time are."""
    for patched in (False, True):
        consumer, _, _ = await make(list(range(0, 300)), committed=1, guarded=False)
        if patched:
            unique_acked_offsets(consumer)
        await consumer.perform_seek()
        ack_unprocessed(consumer, *range(1, 231))  # delivered and acked by the stream
        await consumer._add_gap(TP0, 1, 230)  # faust's drain, after a seek under a batch
        if not patched:
            assert [commit(consumer) for _ in range(3)] == [3, 4, 5]  # faust's own: the crawl
            continue
        assert commit(consumer) == 231  # everything acked, in one commit
        assert commit(consumer) == 231 and consumer._acked[TP0] == []
        ack_unprocessed(consumer, 231, 232)
        assert commit(consumer) == 233  # and on from there as faust would
