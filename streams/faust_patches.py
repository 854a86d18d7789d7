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
- :func:`exact_offset_commits`: faust's consumer commits an offset only past messages its
  agents acked, and never drops or skips a message it did not deliver (faust's seek, gap and
  head-of-queue bookkeeping lost readings of a worker restarted after SIGKILL). NOT applied
  (2026-12-01): with it the SIGKILL fault test still lost or stalled readings in 3 of ~43 runs
  under load (README, known problem).
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import AsyncGenerator, Callable, Sequence
from typing import TYPE_CHECKING, Any

from mode.utils.aiter import aiter
from mode.utils.futures import notify

if TYPE_CHECKING:
    from faust.types.tuples import TP


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


def exact_offset_commits() -> None:
    """Make faust's consumer (faust/transport/consumer.py, faust-streaming 0.15.3) commit a
    partition's offset only past messages its streams acked, and never drop, skip or mark as
    read a message it did not deliver. Patches ``Consumer`` (every faust app of the process);
    idempotent.

    What faust does wrong, and what each replacement does instead:

    - ``perform_seek`` (seek every assigned partition to its committed offset) runs while the
      fetcher keeps delivering: faust's recovery resumes the flow before it seeks the stream
      partitions (``Recovery._resume_streams``), and a batch fetched before the seek is
      iterated after it. The seek resets ``_read_offset`` to the committed offset under the
      batch, so the batch's next message looks like a gap: the offsets in between, delivered
      but not yet processed, are added to ``_gap`` and committed as done. The caller then
      resumes flow control, which clears the streams' queues (``FlowControlEvent.resume``):
      messages delivered after the seek are thrown away, and the refetch that would bring
      them back is dropped as already read. A worker SIGKILLed after such a commit loses them
      (seen: 2 and 166 readings, tests/faults/test_faults_worker.py). faust also stores a
      committed offset of 0 as "none" and does not reposition a partition that has none
      (aiokafka's ``seek_to_committed`` seeks only offsets > 0).
      Here: flow control is suspended for the seek (deliveries wait; every caller resumes it
      once done, which clears the queues of what came before), a seek starts a new epoch
      (a jump in a batch asked for before it is always refetched), committed 0 is 0, and a
      partition with no committed offset is sought to its earliest offset
      (``consumer_auto_offset_reset="earliest"``, the worker's), which is then its head.
    - ``_drain_messages`` sets ``_read_offset`` to a message even when ``wait_first`` returned
      because the flow was suspended (the message was never delivered), reads it as "last
      read" where a seek stores "next to read", and adds a gap from ``read + 1`` to the
      delivered message itself. Here ``_read_offset`` is the next offset expected since the
      last seek, advanced only for a message actually handed to the streams; a message below
      it was delivered already (a refetch); on a jump above it the partition is sought back
      to it and fetched anew, and only the same jump seen again in a batch asked for after
      that seek is a gap (offsets Kafka does not have: compaction, transaction markers). Even
      after faust's seek aiokafka handed out records of the old position (seen under load),
      which faust, and a first version of this patch, committed as a gap.
    - ``_new_offset`` commits past a hole at the head of the acked offsets when the hole is
      one message (``min(acked) - committed > 1``: the committed offset is the next one to
      read, so ``min(acked) == committed + 1`` means ``committed`` was never acked), skips the
      check when the committed offset is unknown or 0, and stops at duplicates (a gap merged
      over acked offsets) instead of behind them. Here: the offset committed is the end of
      the run of acked (or gap) offsets that starts exactly at the committed offset; nothing
      while that offset is not acked, nor while it is unknown (between a revocation and the
      next seek; with another ``consumer_auto_offset_reset`` faust's own rule applies then).
    - ``_add_gap`` clamps a gap to ``committed + 1``, so a gap starting at the committed
      offset never fills the head; here it is clamped to the committed offset.
    """
    from faust.transport import consumer as faust_consumer
    from faust.transport.consumer import Consumer, ensure_TP

    if getattr(Consumer._new_offset, "_gridpulse_exact", False):
        return
    faust_new_offset = Consumer._new_offset

    def epoch(self: Any) -> int:
        return int(self.__dict__.get("_gridpulse_seek_epoch", 0))

    def new_epoch(self: Any) -> None:
        self.__dict__["_gridpulse_seek_epoch"] = epoch(self) + 1

    def jumps_seen(self: Any) -> dict[Any, tuple[int, int]]:
        return self.__dict__.setdefault("_gridpulse_jumps", {})

    def exact_head(self: Any) -> bool:
        return str(self.app.conf.consumer_auto_offset_reset) == "earliest"

    async def perform_seek(self: Any) -> None:
        self.app.flow_control.suspend()  # resumed by the caller (faust's recovery) when done
        committed = {ensure_TP(tp): offset for tp, offset in (await self.seek_to_committed()).items()}
        acking = self.app.topics.acks_enabled_for
        unset = [
            tp
            for tp, offset in committed.items()
            if not offset and acking(tp.topic) and not self._is_changelog_tp(tp)
        ]
        starts: dict[TP, int] = {}
        if unset and exact_head(self):
            never = [tp for tp in unset if committed[tp] is None]
            earliest = await self.earliest_offsets(*never) if never else {}
            starts = {tp: int(earliest[tp]) if tp in earliest else 0 for tp in unset}
            await self.seek_wait(starts)
        new_epoch(self)  # batches asked for before this point may hold the old position's records
        for tp, offset in committed.items():
            start = starts.get(tp, offset)
            if start is not None and start >= 0:
                self._read_offset[tp] = start
                self._committed_offset[tp] = start
            else:
                self._read_offset[tp] = None

    async def seek(self: Any, partition: Any, offset: int) -> None:
        tp = ensure_TP(partition)
        await self._seek(partition, offset)
        new_epoch(self)
        self._read_offset[tp] = offset

    async def _add_gap(self: Any, tp: TP, offset_from: int, offset_to: int) -> None:
        committed = self._committed_offset[tp]
        if committed is not None:
            offset_from = max(offset_from, committed)
        if offset_from <= offset_to:
            gap_for_tp = self._gap[tp]
            gap_for_tp.addi(offset_from, offset_to + 1)  # intervaltree: the end is excluded
            await asyncio.sleep(0)
            gap_for_tp.merge_overlaps()

    def _new_offset(self: Any, tp: TP) -> int | None:
        acked = self._acked[tp]
        if not acked:
            return None
        committed = self._committed_offset[tp]
        if committed is None:
            return None if exact_head(self) else faust_new_offset(self, tp)
        done = set(acked)
        gap_for_tp = self._gap[tp]
        if gap_for_tp:  # faust's merge: the gaps below the highest acked offset count as acked
            merged = gap_for_tp.overlap(0, max(acked))
            if merged:
                for entry in merged:
                    done.update(range(entry.begin, entry.end))
                gap_for_tp.chop(0, max(entry.end for entry in merged))
        end = committed
        while end in done:
            end += 1
        acked[:] = sorted(offset for offset in done if offset >= end)
        index = self._acked_index[tp]
        index.clear()
        index.update(acked)
        return end if end > committed else None

    async def _drain_messages(self: Any, fetcher: Any) -> None:
        # faust's Consumer._drain_messages (0.15.3) with the delivery of each message in
        # ``deliver`` below; the fetch loop, its flags and its exception handling are faust's
        getmany = self.getmany
        consumer_should_stop = self._stopped.is_set
        fetcher_should_stop = fetcher._stopped.is_set
        set_flag = self.diag.set_flag
        unset_flag = self.diag.unset_flag
        yield_every = 100
        num_since_yield = 0
        try:
            while not (consumer_should_stop() or fetcher_should_stop()):
                set_flag(faust_consumer.CONSUMER_FETCHING)
                batch_epoch = epoch(self)
                ait = getmany(timeout=1.0)
                await self.sleep(0)
                if not self.should_stop:
                    async for tp, message in ait:
                        num_since_yield += 1
                        if num_since_yield > yield_every:
                            await asyncio.sleep(0)
                            num_since_yield = 0
                        if not await deliver(self, tp, message, batch_epoch):
                            await ait.aclose()  # the rest is fetched again after the seek
                            break
                    unset_flag(faust_consumer.CONSUMER_FETCHING)
        except self.consumer_stopped_errors:
            if self.transport.app.should_stop:
                self.log.info("Broker stopped consumer, shutting down...")
                return
            raise
        except asyncio.CancelledError:
            if self.transport.app.should_stop:
                self.log.info("Consumer shutting down for user cancel.")
                return
            raise
        except Exception as exc:
            self.log.exception("Drain messages raised: %r", exc)
            raise
        finally:
            unset_flag(faust_consumer.CONSUMER_FETCHING)

    async def deliver(self: Any, tp: TP, message: Any, batch_epoch: int) -> bool:
        """Hand one fetched message to the streams (faust's ``callback``) if it is the next one
        expected; False when the rest of its batch must not be delivered."""
        offset = message.offset
        expected = self._read_offset[tp]
        if expected is not None and offset < expected:
            return True  # delivered since the last seek already: a refetch
        if expected is not None and offset > expected:
            jumps = jumps_seen(self)
            if jumps.get(tp) != (expected, offset) or batch_epoch != epoch(self):
                # records may be of a position before a seek, or follow a message that did not
                # get through: fetch again from the one expected before believing in a gap
                jumps[tp] = (expected, offset)
                try:
                    await self.seek_wait({tp: expected})  # in the consumer's thread, as faust's
                except Exception as exc:  # revoked meanwhile: the rebalance seeks it
                    self.log.warning("Seek %r -> %r for a refetch failed: %r", tp, expected, exc)
                else:
                    new_epoch(self)
                    self._read_offset[tp] = expected
                return False
            del jumps[tp]  # the same jump fetched anew: offsets Kafka does not have
            if self.app.topics.acks_enabled_for(message.topic):
                await self._add_gap(tp, expected, offset - 1)
        commit_every = self._commit_every
        if commit_every is not None and self._n_acked >= commit_every:
            self._n_acked = 0
            await self.commit()
        handler = self.callback(message)
        result = await self.wait_first(handler, self.suspend_flow.wait())
        if handler not in result.done:
            return False  # not delivered (the flow was suspended): the next jump fetches it again
        if self._read_offset[tp] == expected:  # else a seek came meanwhile: it is fetched again
            self._read_offset[tp] = offset + 1
        return True

    for name, fn in (
        ("perform_seek", perform_seek),
        ("seek", seek),
        ("_add_gap", _add_gap),
        ("_new_offset", _new_offset),
        ("_drain_messages", _drain_messages),
    ):
        setattr(Consumer, name, fn)
    _new_offset._gridpulse_exact = True  # type: ignore[attr-defined]
