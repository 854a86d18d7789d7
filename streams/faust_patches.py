"""Every change the worker makes to faust's internals, in one place, each tested
(tests/unit/test_producer_flush.py, tests/unit/test_faust_patches.py,
tests/unit/test_faust_patches_offsets.py) and explained here.

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
- :class:`OffsetGuard`: for the topics of the agents that batch with :func:`take_events_adaptive`,
  gridpulse's own frontier of processed offsets per partition bounds what faust commits, and a
  partition stalled at a hole in it is fetched again (faust's read/gap bookkeeping lost readings
  of a worker restarted after SIGKILL: README, known problem).
"""

from __future__ import annotations

import asyncio
import logging
import time
import weakref
from collections import Counter
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Mapping, Sequence
from dataclasses import dataclass
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

    guard = offset_guard_of(stream.app)
    if guard is not None:
        guard.watch(stream)
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
                    # the agent asked for the next batch: it is done with these (not so when
                    # the generator is closed or an exception is thrown in at the yield)
                    if guard is not None:
                        guard.processed(events)
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


# ---------------------------------------------------------------------------------- offset guard

REFETCH_STALL_S = 5.0
"""How long a guarded partition's frontier may stay behind the messages Kafka has for it, with
nothing at the frontier being processed, before :class:`OffsetGuard` fetches it again."""
GUARD_CHECK_S = 1.0
"""How often the guard looks for such a hole (an app timer)."""

log = logging.getLogger(__name__)

_GUARDS: weakref.WeakKeyDictionary[Any, OffsetGuard] = weakref.WeakKeyDictionary()


def unique_acked_offsets(consumer: Any) -> None:
    """Stop faust's commit crawl (faust-streaming 0.15.3, ``Consumer._new_offset``); patches
    this consumer object, idempotent.

    What faust does: each commit merges the offset-gap ranges below the highest acked offset
    into the partition's acked list, sorts it and commits the first run of consecutive numbers.
    A gap range that covers offsets already acked puts them in the list twice, and the
    duplicates break the runs: ``[1, 1, 2, 2, 3, 3, ...]`` commits 2, then 3, then 4: one
    offset per commit interval. After a SIGKILL restart (redelivery, seeks) a CI run saw
    ``billing.events`` committed at 1 of 231 for about 4.5 minutes, the worker idle.

    Here, before faust's own computation: the gap ranges are merged as faust merges them, and
    the list is made unique and cleared of offsets below the committed one (done already). The
    rest (the check for a hole at the head, the run, the acked index) is faust's, unchanged:
    nothing is committed that faust would not commit, only not one offset at a time."""
    if getattr(consumer, "_gridpulse_unique_acked", False):
        return
    faust_new_offset = consumer._new_offset

    def _new_offset(tp: Any) -> int | None:
        acked = consumer._acked[tp]
        if acked:
            gap = consumer._gap[tp]
            if gap:
                highest = max(acked)
                ranges = sorted(gap.overlap(0, highest), key=lambda iv: iv.begin)
                if ranges:
                    added = [o for iv in ranges for o in range(iv.begin, iv.end)]
                    acked.extend(added)
                    gap.chop(0, max(added[-1], highest + 1))
            committed = consumer._committed_offset[tp]
            unique = sorted({o for o in acked if committed is None or o >= committed})
            if len(unique) != len(acked):
                acked[:] = unique
        result: int | None = faust_new_offset(tp)
        return result

    consumer._new_offset = _new_offset
    consumer._gridpulse_unique_acked = True


def offset_guard_of(app: Any) -> OffsetGuard | None:
    """The :class:`OffsetGuard` made for ``app``, if any."""
    try:
        return _GUARDS.get(app)
    except TypeError:  # an app that cannot be weakly referenced: never given a guard
        return None


@dataclass
class _Proof:
    """A refetch of ours waiting for the first message Kafka hands out after it."""

    offset: int  # the frontier we sought to
    after: int  # only batches asked for after the seek with this serial count
    seen: int | None = None  # the first offset a batch after our seek brought, when above
    reseek: bool = False  # seen once: seek once more before believing in a gap


class OffsetGuard:
    """gridpulse's own record of what its batch agents processed, and a bound on faust's commits.

    faust's consumer decides what it commits from its own read/gap bookkeeping
    (``Consumer._read_offset``, ``_gap``, ``_acked``; faust/transport/consumer.py, 0.15.3). After
    the rebalance that follows a SIGKILL restart that bookkeeping took messages the agents never
    processed for an offset gap (committed as done) or as already read (never fetched again):
    the README's known problem. This guard does not depend on it being right. For the input
    topics of the agents that take their events through :func:`take_events_adaptive` (each topic
    read by that one stream), it keeps per assigned partition a **frontier**: the offset up to
    which every message was processed by the agent (the agent asked for its next batch after
    it), starting at the committed offset each time faust seeks the partition to it.

    1. **Commit bound**: the offset faust commits for such a partition is the frontier (when it
       is above the committed offset), never an offset past a message the agent did not
       process, whatever faust's gap logic decided (``Consumer._new_offset``, per consumer
       object). Faust's own offset still runs, to keep its lists short; when it is above the
       frontier the commit is held back (counter ``commit_held_back``). Outputs are flushed
       before the commit as before (faust flushes its producer in ``_commit_offsets``).
    2. **Refetch on a hole**: when a partition's frontier stays below the end of its log for
       :data:`REFETCH_STALL_S` without moving, while the flow is active, no rebalance or
       recovery is running, the partition is not paused, faust's delivery is not held up (a
       full stream queue, the producer buffer over its limit), and the message at the frontier
       is neither waiting in the stream's queue nor taken by the stream and unprocessed, the
       partition is sought back to the frontier (``Consumer.seek_wait``; faust's read offset
       set to it), so the missing messages are fetched again (counter ``offsets_refetched``,
       a log line per refetch). The messages above the frontier that were processed come
       again too: gridpulse applies a redelivered message idempotently (as after a crash).
    3. **Offsets Kafka does not have** (compaction, transaction markers, retention): after a
       seek of ours to frontier F, the first message of the partition in a batch asked for
       after the seek has offset O >= F. O == F: the hole is being filled. O > F, seen the same
       after one more seek: [F, O) does not exist and the frontier moves to O (counter
       ``offsets_gap_skipped``, the offsets skipped). Batches asked for before the seek never
       count (faust may still be delivering one).

    Topics are guarded by :meth:`watch` (done by :func:`take_events_adaptive` when the app has
    a guard); a topic that a second stream reads is not guarded (the commit bound assumes the
    one stream's processing is all there is to wait for). :meth:`install` puts the hooks on
    the app's consumer before its fetcher starts.
    """

    def __init__(
        self,
        app: Any,
        counters: Counter[str],
        stall_s: float = REFETCH_STALL_S,
        check_s: float | None = GUARD_CHECK_S,
    ) -> None:
        self.app = app
        self.counters = counters
        self.stall_s = stall_s
        self.topics: set[str] = set()
        self._shared: set[str] = set()  # topics a second stream reads: not guarded
        self.streams: list[Any] = []
        self.frontier: dict[Any, int] = {}
        self.done_above: dict[Any, set[int]] = {}
        self.progress_at: dict[Any, float] = {}
        self.proofs: dict[Any, _Proof] = {}
        self._held_logged: dict[Any, int] = {}
        self.seek_serial = 0
        self.consumer: Any = None
        _GUARDS[app] = self
        app.on_partitions_revoked.connect(self._on_revoked)
        if check_s:
            app.timer(interval=check_s, name="gridpulse.offset_guard")(self._tick)

    # -------------------------------------------------------------- what is guarded

    def watch(self, stream: Any) -> None:
        """Guard the topics ``stream`` reads (its channel's topics), processed in batches by
        :func:`take_events_adaptive` (which calls :meth:`processed`)."""
        self.install()
        names = set(getattr(stream.channel, "topics", ()) or ())
        for name in names:
            if name in self.topics or name in self._shared:
                self.topics.discard(name)  # a second reader: faust's acks are not ours alone
                self._shared.add(name)
                for tp in [tp for tp in self.frontier if tp.topic == name]:
                    self._forget(tp)
            else:
                self.topics.add(name)
        self.streams.append(stream)

    def install(self) -> None:
        """Put the guard's hooks on the app's consumer object (idempotent): ``_new_offset``
        (the commit bound), ``seek_to_committed`` (frontiers start at the committed offsets)
        and ``getmany`` (the first message after a seek of ours). The fetcher binds
        ``getmany`` when it starts: install before."""
        consumer = self.app.consumer
        if self.consumer is consumer:
            return
        self.consumer = consumer
        unique_acked_offsets(consumer)  # every partition's, guarded or not: faust's commit crawl
        faust_new_offset = consumer._new_offset
        faust_seek_to_committed = consumer.seek_to_committed
        faust_getmany = consumer.getmany

        def _new_offset(tp: Any) -> int | None:
            return self.commit_offset(tp, faust_new_offset(tp))

        async def seek_to_committed() -> Mapping[Any, int]:
            committed = await faust_seek_to_committed()
            await self._start(committed)
            return committed

        def getmany(timeout: float) -> AsyncIterator[tuple[Any, Any]]:
            if not self.proofs:  # the usual case: faust's generator itself, nothing added
                return faust_getmany(timeout=timeout)
            return self._proving(faust_getmany(timeout=timeout), self.seek_serial)

        consumer._new_offset = _new_offset
        consumer.seek_to_committed = seek_to_committed
        consumer.getmany = getmany

    # -------------------------------------------------------------- frontiers

    async def _start(self, committed: Mapping[Any, int | None]) -> None:
        """Faust sought the assigned partitions to their committed offsets: frontiers start
        there. A partition never committed starts at its earliest offset (the worker's
        ``consumer_auto_offset_reset`` is "earliest"; with another reset it is not guarded
        until it is committed once)."""
        from faust.transport.consumer import ensure_TP

        starts: dict[Any, int] = {}
        unknown: list[Any] = []
        for key, offset in committed.items():
            tp = ensure_TP(key)
            if tp.topic not in self.topics:
                continue
            if offset is not None and offset >= 0:
                starts[tp] = int(offset)
            else:
                unknown.append(tp)
        if unknown and str(self.app.conf.consumer_auto_offset_reset) == "earliest":
            try:
                earliest = await self.consumer.earliest_offsets(*unknown)
            except Exception as exc:  # not guarded until the next seek
                log.warning("offset guard: earliest offsets of %d partitions unknown: %r", len(unknown), exc)
                earliest = {}
            for key, offset in earliest.items():
                if offset is not None:
                    starts[ensure_TP(key)] = int(offset)
        now = time.monotonic()
        for tp in [tp for tp in self.frontier if tp.topic in self.topics]:
            self._forget(tp)  # a partition not sought now is not assigned now
        for tp, offset in starts.items():
            self.frontier[tp] = offset
            self.progress_at[tp] = now

    def _forget(self, tp: Any) -> None:
        self.frontier.pop(tp, None)
        self.done_above.pop(tp, None)
        self.progress_at.pop(tp, None)
        self.proofs.pop(tp, None)
        self._held_logged.pop(tp, None)

    async def _on_revoked(self, sender: Any, /, *args: Any, **kwargs: Any) -> None:
        revoked = args[0] if args else kwargs.get("revoked", ())
        for tp in list(revoked or ()):
            self._forget(tp)

    def processed(self, events: Sequence[Any]) -> None:
        """The agent is done with ``events`` (applied or dead-lettered, outputs buffered):
        advance the frontiers of their partitions."""
        frontier = self.frontier
        if not frontier:
            return
        moved = False
        for event in events:
            msg = event.message
            tp = msg.tp
            at = frontier.get(tp)
            if at is None:
                continue
            offset = msg.offset
            if offset == at:
                at += 1
                above = self.done_above.get(tp)
                if above:
                    while at in above:
                        above.discard(at)
                        at += 1
                frontier[tp] = at
                self.progress_at[tp] = -1.0  # stamped below, once per batch
                moved = True
            elif offset > at:
                self.done_above.setdefault(tp, set()).add(offset)
        if moved:
            now = time.monotonic()
            for tp, stamp in self.progress_at.items():
                if stamp < 0:
                    self.progress_at[tp] = now
            if self.proofs:  # refetches whose hole the agent has filled meanwhile
                for tp, proof in list(self.proofs.items()):
                    if frontier.get(tp, proof.offset) > proof.offset:
                        del self.proofs[tp]

    def commit_offset(self, tp: Any, faust_offset: int | None) -> int | None:
        """The offset to commit for ``tp`` given faust's: the frontier for a guarded topic
        (None while it is unknown or not above the committed offset)."""
        if tp.topic not in self.topics:
            return faust_offset
        at = self.frontier.get(tp)
        if at is None:
            return None  # guarded, not sought yet (or revoked): nothing to commit
        if faust_offset is not None and faust_offset > at:
            self.counters["commit_held_back"] += 1
            if self._held_logged.get(tp) != at:  # once per frontier: visible, not a flood
                self._held_logged[tp] = at
                log.warning(
                    "offset guard: %s[%d] commit held at %d, faust's bookkeeping had %d",
                    tp.topic,
                    tp.partition,
                    at,
                    faust_offset,
                    extra={"topic": tp.topic, "partition": tp.partition, "offset": at},
                )
        committed = self.consumer._committed_offset[tp] if self.consumer is not None else None
        return at if committed is None or at > committed else None

    # -------------------------------------------------------------- holes

    async def _tick(self) -> None:
        try:
            await self.check()
        except Exception as exc:  # the guard must never stop the worker
            log.warning("offset guard: check failed: %r", exc)

    def _quiet(self) -> bool:
        """Whether faust is busy moving partitions (then nothing is judged)."""
        app = self.app
        consumer = self.consumer
        return bool(
            consumer is None
            or not app.flow_control.is_active()
            or not getattr(consumer, "flow_active", True)
            or app.rebalancing
            or getattr(app, "in_recovery", False)
        )

    async def check(self, now: float | None = None) -> list[Any]:
        """Seek back the guarded partitions with a hole at their frontier (see the class);
        returns those sought."""
        now = time.monotonic() if now is None else now
        if self._quiet():
            for tp in self.progress_at:
                self.progress_at[tp] = now
            return []
        consumer = self.consumer
        try:
            assigned = consumer.assignment()
        except Exception:
            return []
        paused = set(getattr(consumer, "_paused_partitions", ())) | set(
            getattr(consumer, "_buffered_partitions", ())
        )
        busy = self._delivery_blocked()
        sought: list[Any] = []
        in_flight: dict[Any, set[int]] | None = None
        for tp, at in list(self.frontier.items()):
            if tp not in assigned or tp in paused:
                self.progress_at[tp] = now
                continue
            proof = self.proofs.get(tp)
            if proof is not None and proof.reseek:  # a gap seen once: look again at once
                await self._seek(tp, at, f"offsets {at}..{proof.seen} not fetched after a seek, again")
                sought.append(tp)
                continue
            try:
                high = consumer.highwater(tp)
            except Exception:
                high = None
            behind = high is not None and int(high) > at
            if not behind and not self.done_above.get(tp):
                self.progress_at[tp] = now  # caught up: nothing missing
                continue
            since = self.progress_at.setdefault(tp, now)
            if now - since < self.stall_s or busy:
                continue  # (busy: judged once faust's delivery moves again; the stall counts on)
            if in_flight is None:
                in_flight = self._in_flight()
            flying = in_flight.get(tp, ())
            if at in flying:
                continue  # being processed, only slowly: not a hole
            await self._seek(
                tp,
                at,
                f"frontier still for {now - since:.1f} s, high water {high}, faust's read offset "
                f"{consumer._read_offset.get(tp)}, lowest offset in flight {min(flying, default=None)}",
            )
            self.progress_at[tp] = now
            sought.append(tp)
        return sought

    def _delivery_blocked(self) -> bool:
        """Whether faust's delivery to the streams may be waiting (then a frontier that does
        not move is no sign of a hole): a stream's queue is full or under pressure (faust then
        stops fetching the partition, ``Consumer._buffered_partitions``), or faust's producer
        buffer holds more than its limit (the conductor waits for it to ebb before delivering)."""
        if getattr(self.consumer, "_buffered_partitions", None):
            return True
        for stream in self.streams:
            queue = getattr(stream.channel, "queue", None)
            if queue is not None and queue.full():
                return True
        buffer = getattr(getattr(self.app, "producer", None), "buffer", None)
        try:
            return bool(buffer is not None and buffer.size > buffer.max_messages)
        except Exception:
            return False

    def _in_flight(self) -> dict[Any, set[int]]:
        """Offsets delivered to the guarded streams and not processed yet: in their channel
        queues, or taken by them (faust tracks those as unacked)."""
        out: dict[Any, set[int]] = {}
        messages = [m for m in list(self.consumer._unacked_messages) if not m.acked]
        for stream in self.streams:
            queue = getattr(stream.channel, "queue", None)
            for item in list(getattr(queue, "_queue", ()) or ()):
                msg = getattr(item, "message", None)
                if msg is not None:
                    messages.append(msg)
        for msg in messages:
            out.setdefault(msg.tp, set()).add(msg.offset)
        return out

    async def _seek(self, tp: Any, offset: int, why: str) -> None:
        consumer = self.consumer
        try:
            await consumer.seek_wait({tp: offset})
        except Exception as exc:  # revoked meanwhile (the rebalance seeks it) or a broker error
            self.counters["offsets_refetch_failed"] += 1
            log.warning(
                "offset guard: %s[%d] seek back to %d failed: %r",
                tp.topic,
                tp.partition,
                offset,
                exc,
                extra={"topic": tp.topic, "partition": tp.partition, "offset": offset},
            )
            return
        consumer._read_offset[tp] = offset  # faust delivers from here again
        self.seek_serial += 1
        proof = self.proofs.get(tp)
        if proof is not None and proof.offset == offset:
            proof.after, proof.reseek = self.seek_serial, False
        else:
            self.proofs[tp] = _Proof(offset, self.seek_serial)
        self.counters["offsets_refetched"] += 1
        log.warning(
            "offset guard: %s[%d] fetched again from %d (%s; committed %s)",
            tp.topic,
            tp.partition,
            offset,
            why,
            consumer._committed_offset.get(tp),
            extra={"topic": tp.topic, "partition": tp.partition, "offset": offset},
        )

    async def _proving(
        self, batch: AsyncIterator[tuple[Any, Any]], serial: int
    ) -> AsyncIterator[tuple[Any, Any]]:
        """faust's ``getmany`` batch, looked at for the first message of each partition with a
        refetch of ours pending (only a batch asked for after that seek counts)."""
        proofs = self.proofs
        firsts: set[Any] = set()
        async for tp, message in batch:
            proof = proofs.get(tp)
            if proof is not None and tp not in firsts and serial >= proof.after:
                firsts.add(tp)
                self._first_after_seek(tp, proof, message.offset)
            yield tp, message

    def _first_after_seek(self, tp: Any, proof: _Proof, offset: int) -> None:
        if offset < proof.offset:
            return  # not of the position we sought: wait for one that is
        if offset == proof.offset:
            del self.proofs[tp]  # the hole is being filled
            return
        if proof.seen != offset:
            proof.seen, proof.reseek = offset, True  # believed only if seen again
            return
        del self.proofs[tp]
        at = self.frontier.get(tp)
        if at != proof.offset:
            return  # moved meanwhile
        above = self.done_above.setdefault(tp, set())
        skipped = offset - at
        at = offset
        while at in above:
            above.discard(at)
            at += 1
        self.frontier[tp] = at
        self.progress_at[tp] = time.monotonic()
        self.counters["offsets_gap_skipped"] += skipped
        log.warning(
            "offset guard: %s[%d] has no offsets %d..%d (twice the first fetched after a seek): skipped",
            tp.topic,
            tp.partition,
            proof.offset,
            offset - 1,
            extra={"topic": tp.topic, "partition": tp.partition, "offset": proof.offset},
        )
