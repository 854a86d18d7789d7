"""Every change the worker makes to faust's internals, in one place, each tested
(tests/unit/test_producer_flush.py, tests/unit/test_faust_patches.py) and explained here.

faust-streaming 0.15.3 is pinned (pyproject.toml): these replace attributes of faust objects
that are not public API, so a new faust version must be checked against each of them.

- :func:`complete_buffer_flush`: faust's producer-buffer flush gives up after 0.1 s without
  progress; the worker's must wait for every buffered message (offsets are committed after it).
- :func:`time_producer_waits`: counts how long the worker waits on faust's producer (the
  commit's flush, and the conductor's back-pressure wait when the buffer is over 100 messages)
  into the worker's counters, so a benchmark can tell waiting from computing.
- :func:`take_events_adaptive`: faust's ``Stream.take_events`` with a wait asked anew before
  each batch (the readings agent's batch window adapts to its lag).
- :func:`use_shared_block_caches` / :func:`shared_block_cache`: one RocksDB block cache for all
  of a worker's stores instead of one per table partition.
- :func:`delivered_offset`: reads (never writes) the consumer's per-partition read position.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import AsyncGenerator, Callable, Sequence
from typing import Any

from mode.utils.aiter import aiter
from mode.utils.futures import notify


def complete_buffer_flush(buffer: Any) -> None:
    """Make ``buffer.flush()`` of faust's producer buffer return only once it is empty.

    Table writes (changelog records) and ``send_soon`` messages wait in faust's ProducerBuffer
    until its background task hands them to aiokafka. Before it commits offsets faust awaits
    ``producer.flush()``, which flushes this buffer and then aiokafka. But the buffer's flush
    (``flush_atmost(None)``, faust/transport/producer.py) returns as soon as 0.1 s pass without
    a message handed over — during a broker hiccup, a leader change or a metadata refresh —
    with records still in it. The offsets were then committed past state changes that never
    reached their changelog: a worker SIGKILLed right after loses them for whichever worker
    rebuilds that partition from the changelog. This flush keeps waiting while messages are
    queued or one is being handed over; a stopped buffer with messages left still raises.

    Call it on ``app.producer.buffer`` before the producer starts (its task binds the send).
    """
    inflight = 0
    send_pending = buffer._send_pending
    flush_atmost = buffer.flush_atmost

    async def tracked_send(fut: Any) -> None:
        nonlocal inflight
        inflight += 1
        try:
            await send_pending(fut)
        finally:
            inflight -= 1

    async def flush() -> None:
        while buffer.size or inflight:
            if buffer.size:
                await flush_atmost(None)  # waits up to 0.1 s per message handed over
            else:  # the last one is being handed over (metadata wait, leader change)
                await asyncio.sleep(0.005)

    buffer._send_pending = tracked_send
    buffer.flush = flush


def time_producer_waits(producer: Any, counters: Counter[str]) -> None:
    """Count the worker's waits on faust's ``producer`` into ``counters`` (milliseconds, and
    how many):

    - ``producer_flush_ms`` / ``producer_flushes``: ``producer.flush()``, which faust's consumer
      awaits before every offset commit (faust/transport/consumer.py): buffer, then aiokafka;
    - ``producer_ebb_wait_ms`` / ``producer_ebb_waits``: the buffer's ``wait_until_ebb``, which
      faust's conductor awaits before delivering each message to a stream; it waits only when
      more than ``max_messages`` (100) are buffered, and only those waits are counted.

    Call before the app starts: the conductor binds ``wait_until_ebb`` when it compiles its
    message handler, and the consumer looks ``producer.flush`` up at each commit.
    """
    flush = producer.flush
    buffer = producer.buffer
    wait_until_ebb = buffer.wait_until_ebb

    async def timed_flush() -> None:
        t0 = time.perf_counter()
        try:
            await flush()
        finally:
            counters["producer_flush_ms"] += round((time.perf_counter() - t0) * 1000)
            counters["producer_flushes"] += 1

    async def timed_wait_until_ebb() -> None:
        if buffer.size <= buffer.max_messages:
            return  # faust's own test, without its coroutine: nothing to wait for
        t0 = time.perf_counter()
        await wait_until_ebb()
        counters["producer_ebb_wait_ms"] += round((time.perf_counter() - t0) * 1000)
        counters["producer_ebb_waits"] += 1

    producer.flush = timed_flush
    buffer.wait_until_ebb = timed_wait_until_ebb


def take_events_adaptive(
    stream: Any, max_: int, within: Callable[[], float]
) -> AsyncGenerator[Sequence[Any], None]:
    """faust's ``Stream.take_events(max_, within)`` (faust/streams.py, 0.15.3), except that the
    time to wait for a batch to fill is asked of ``within()`` before each batch instead of being
    fixed when the generator starts: the readings agent waits briefly while it is caught up
    (latency) and longer while it is behind (bigger batches, a customer's readings coalesce).

    The rest is faust's code, unchanged in what it does: a processor fills the buffer from the
    stream consumed passively, a batch is yielded when ``max_`` events are buffered or the wait
    ends, and its events are acked only after the consumer of the batch resumes the generator
    (so offsets are committed after the batch's work); the buffer is not written while a batch
    is out. Registered in the stream's ``_active_agens`` as faust's buffering generators are.
    """
    agen = _take_events_adaptive(stream, max_, within)
    stream._active_agens.add(agen)
    return agen


async def _take_events_adaptive(
    stream: Any, max_: int, within: Callable[[], float]
) -> AsyncGenerator[Sequence[Any], None]:
    buffer: list[Any] = []
    events: list[Any] = []
    buffer_add = buffer.append
    event_add = events.append
    buffer_size = buffer.__len__
    buffer_full = asyncio.Event()
    buffer_consumed = asyncio.Event()
    stream_enable_acks: bool = stream.enable_acks
    buffer_consuming: asyncio.Future[Any] | None = None
    channel_it = aiter(stream.channel)

    async def add_to_buffer(value: Any) -> Any:
        try:
            nonlocal buffer_consuming
            if buffer_consuming is not None:
                try:
                    await buffer_consuming
                finally:
                    buffer_consuming = None
            buffer_add(value)
            event = stream.current_event
            if event is None:
                raise RuntimeError("Take buffer found current_event is None")
            event_add(event)
            if buffer_size() >= max_:
                buffer_full.set()
                buffer_consumed.clear()
                await stream.wait(buffer_consumed)
        except asyncio.CancelledError:  # pragma: no cover
            raise
        except Exception as exc:
            stream.log.exception("Error adding to take buffer: %r", exc)
            await stream.crash(exc)
        return value

    stream.enable_acks = False
    stream.add_processor(add_to_buffer)
    stream._enable_passive(channel_it)
    try:
        while not stream.should_stop:
            await stream.wait_for_stopped(buffer_full, timeout=within())
            if buffer:
                buffer_consuming = stream.loop.create_future()
                try:
                    yield list(events)
                finally:
                    buffer.clear()
                    for event in events:
                        await stream.ack(event)
                    events.clear()
                    notify(buffer_consuming)
                    buffer_full.clear()
                    buffer_consumed.set()
    finally:
        stream.enable_acks = stream_enable_acks
        stream._processors.remove(add_to_buffer)


_SHARED_CACHES: dict[int, Any] = {}


def shared_block_cache(size_bytes: int) -> Any:
    """One RocksDB block cache of ``size_bytes`` for every store of this process that is given
    it (``options={"block_cache": ...}`` of a table; :func:`use_shared_block_caches`).

    faust opens each table partition's store with a block cache of its own
    (``RocksDBOptions.as_options``: ``rocksdict.Cache(block_cache_size)`` per store, and
    ``open`` builds its options twice): a worker's 3 tables x 4 partitions had 12 caches of
    ``rocksdb_block_cache_mb`` each. A shared cache bounds them all together."""
    import rocksdict

    cache = _SHARED_CACHES.get(size_bytes)
    if cache is None:
        cache = _SHARED_CACHES[size_bytes] = rocksdict.Cache(size_bytes)
    return cache


def use_shared_block_caches() -> None:
    """Make faust's ``RocksDBOptions.as_options`` (faust/stores/rocksdb.py, rocksdict driver)
    use the cache given as the ``block_cache`` option (in its ``extra_options``) instead of a
    new one; every other option is faust's. Stores given no ``block_cache`` are unchanged.
    Idempotent; affects every faust app of the process."""
    import rocksdict
    from faust.stores import rocksdb as faust_rocksdb

    cls = faust_rocksdb.RocksDBOptions
    if getattr(cls.as_options, "_gridpulse_shared_cache", False):
        return
    original = cls.as_options

    def as_options(self: Any) -> Any:
        db_options = original(self)
        cache = self.extra_options.get("block_cache")
        if cache is None or not self.use_rocksdict:
            return db_options
        # faust's table factory again (bloom filter, binary-search index), with the shared cache
        table = rocksdict.BlockBasedOptions()
        table.set_bloom_filter(self.bloom_filter_size, block_based=True)
        table.set_block_cache(cache)
        table.set_index_type(rocksdict.BlockBasedIndexType.binary_search())
        db_options.set_block_based_table_factory(table)
        return db_options

    as_options._gridpulse_shared_cache = True  # type: ignore[attr-defined]
    cls.as_options = as_options  # type: ignore[method-assign]


def delivered_offset(consumer: Any, tp: Any) -> int | None:
    """The offset faust's consumer last handed to a stream for ``tp`` (after its seek at
    assignment: the committed offset, i.e. the next one to read), None when unknown:
    ``Consumer._read_offset`` of faust/transport/consumer.py (0.15.3), read only."""
    value = getattr(consumer, "_read_offset", {}).get(tp)
    return None if value is None else int(value)
