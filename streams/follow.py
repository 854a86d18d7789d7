"""Following whole topics without a consumer group: the loop behind a worker's views.

A view (scoring's population view, the outage stage's topology) must hold *every* partition of
a few topics on *every* worker, so it cannot use a consumer group. ``TopicFollower`` is a plain
aiokafka consumer assigned every partition of the named topics, reading from the beginning,
forever, and handing each record to ``apply``:

- ``ready`` is set once it has read up to the end offsets the topics had when it started;
- ``sync()`` waits until it has read everything written before the call (an agent calls it
  before it decides, so its view holds every profile published before the event);
- ``run_forever()`` restarts the reader when Kafka fails it; the view keeps what it has, since
  re-reading from the beginning changes nothing.

A topic the worker writes itself (``own_topic``: ``stats.customer``, written per partition by
the partition's owner only, ``streams.ownership``) need not come back through Kafka: the
worker feeds its own documents to the view in-process (``Runtime.on_stats``). ``set_own`` tells
the follower which partitions the worker owns now (every assignment; none on revocation); once
the follower is ready and has read an owned partition up to the end offset it had after the
assignment (everything before it was written by earlier owners, everything after by this
worker), it pauses that partition (``pause_plan``). A revoked partition is resumed at once
from where it was paused: what follows is this worker's own documents (already held; the views
keep the newest by ``as_of``) and then the new owner's. ``sync`` ignores paused partitions.
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence, Set

from aiokafka import AIOKafkaConsumer, ConsumerRecord, TopicPartition

from gridpulse.settings import Settings
from streams.kafka import make_consumer

log = logging.getLogger(__name__)


def pause_plan(
    own: Set[TopicPartition],
    paused: Set[TopicPartition],
    positions: Mapping[TopicPartition, int],
    since: Mapping[TopicPartition, int],
) -> tuple[set[TopicPartition], set[TopicPartition]]:
    """(partitions to pause, partitions to resume) of the own topic: ``own`` are the partitions
    the worker owns now, ``paused`` those paused, ``positions`` the reader's next offsets and
    ``since`` per owned partition the end offset read after it was assigned (only this worker
    writes at and after it). A partition is paused once owned and read up to ``since`` (never
    without both), and resumed once no longer owned."""
    pause = {tp for tp in own - paused if tp in since and tp in positions and positions[tp] >= since[tp]}
    return pause, set(paused - own)


class TopicFollower:
    def __init__(
        self,
        settings: Settings,
        names: Sequence[str],
        apply: Callable[[ConsumerRecord], None],
        *,
        label: str,
        counters: Counter[str] | None = None,
        own_topic: str | None = None,
    ) -> None:
        self.settings = settings
        self.names = tuple(names)  # full topic names (prefix applied)
        self.apply = apply
        self.label = label
        self.counters = counters if counters is not None else Counter()
        self.ready = asyncio.Event()
        self._consumer: AIOKafkaConsumer | None = None
        self._tps: list[TopicPartition] = []
        self.own_topic = own_topic  # written by the partitions' owners, fed in-process
        self._own: frozenset[TopicPartition] = frozenset()
        self._since: dict[TopicPartition, int] = {}  # per owned partition: end after assignment
        self._own_gen = 0  # changes with every set_own

    def set_own(self, partitions: Iterable[int]) -> None:
        """The partitions of ``own_topic`` this worker owns from now on (none on revocation);
        those it no longer owns are resumed at once."""
        if self.own_topic is None:
            return
        own = frozenset(TopicPartition(self.own_topic, p) for p in partitions)
        self._since = {tp: o for tp, o in self._since.items() if tp in own and tp in self._own}
        self._own = own
        self._own_gen += 1
        if (consumer := self._consumer) is not None:
            _, resume = pause_plan(own, self._paused(consumer), {}, {})
            if resume:
                consumer.resume(*resume)

    def _paused(self, consumer: AIOKafkaConsumer) -> set[TopicPartition]:
        return {tp for tp in consumer.paused() if tp.topic == self.own_topic}

    async def _pause_own(self, consumer: AIOKafkaConsumer) -> None:
        """Pause the owned partitions read up to their end after the assignment (``pause_plan``)."""
        gen, own = self._own_gen, self._own
        if not own:
            return
        missing = [tp for tp in own if tp not in self._since]
        if missing:
            ends = await consumer.end_offsets(missing)
            if gen != self._own_gen:
                return
            self._since.update(ends)
        paused = self._paused(consumer)
        positions = {tp: await consumer.position(tp) for tp in own - paused}
        if gen != self._own_gen or id(self._consumer) != id(consumer):
            return  # ownership changed meanwhile: decide on the next round
        pause, resume = pause_plan(own, self._paused(consumer), positions, self._since)
        if resume:
            consumer.resume(*resume)
        if pause:
            consumer.pause(*pause)
            self.counters[f"{self.label}_own_partitions_paused"] += len(pause)

    async def _assign(self, consumer: AIOKafkaConsumer) -> list[TopicPartition]:
        while True:
            await consumer._client.force_metadata_update()
            tps = [
                TopicPartition(t, p)
                for t in self.names
                for p in sorted(consumer.partitions_for_topic(t) or ())
            ]
            if {tp.topic for tp in tps} == set(self.names):
                return tps
            log.warning("%s: waiting for topics %s to exist", self.label, self.names)
            await asyncio.sleep(5.0)

    async def _behind(self, consumer: AIOKafkaConsumer, end: dict[TopicPartition, int]) -> bool:
        paused = consumer.paused()  # own partitions: fed in-process
        for tp, offset in end.items():
            if tp not in paused and await consumer.position(tp) < offset:
                return True
        return False

    async def run(self) -> None:
        """Read the topics from the beginning, forever."""
        consumer = make_consumer(self.settings, group_id=None, max_poll_records=10_000)
        await consumer.start()
        try:
            tps = await self._assign(consumer)
            consumer.assign(tps)
            await consumer.seek_to_beginning(*tps)
            end = {tp: o for tp, o in (await consumer.end_offsets(tps)).items() if o > 0}
            self._consumer, self._tps = consumer, tps
            while True:
                for records in (await consumer.getmany(timeout_ms=500)).values():
                    for rec in records:
                        self.apply(rec)
                if not self.ready.is_set() and not (end and await self._behind(consumer, end)):
                    log.info("%s: view caught up", self.label)
                    self.ready.set()
                if self.ready.is_set():
                    await self._pause_own(consumer)
        finally:
            self._consumer = None
            await consumer.stop()

    async def run_forever(self) -> None:
        while True:
            try:
                await self.run()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("%s: view reader failed; restarting in 5 s", self.label)
                self.counters[f"{self.label}_view_restarts"] += 1
                await asyncio.sleep(5.0)

    async def sync(self, timeout_s: float) -> bool:
        """Wait until every record written before this call has been applied; False when that
        did not happen within ``timeout_s`` (the caller then decides on what it has)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        try:
            while (consumer := self._consumer) is None or not self.ready.is_set():
                if loop.time() > deadline:
                    return False
                await asyncio.sleep(0.05)
            end = await asyncio.wait_for(consumer.end_offsets(self._tps), max(0.1, deadline - loop.time()))
            while await self._behind(consumer, end):
                if loop.time() > deadline or self._consumer is not consumer:
                    return False
                await asyncio.sleep(0.02)
            return True
        except (TimeoutError, asyncio.TimeoutError):  # noqa: UP041  # both spellings on 3.11
            return False
