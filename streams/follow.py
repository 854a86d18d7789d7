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
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from collections.abc import Callable, Sequence

from aiokafka import AIOKafkaConsumer, ConsumerRecord, TopicPartition

from gridpulse.settings import Settings
from streams.kafka import make_consumer

log = logging.getLogger(__name__)


class TopicFollower:
    def __init__(
        self,
        settings: Settings,
        names: Sequence[str],
        apply: Callable[[ConsumerRecord], None],
        *,
        label: str,
        counters: Counter[str] | None = None,
    ) -> None:
        self.settings = settings
        self.names = tuple(names)  # full topic names (prefix applied)
        self.apply = apply
        self.label = label
        self.counters = counters if counters is not None else Counter()
        self.ready = asyncio.Event()
        self._consumer: AIOKafkaConsumer | None = None
        self._tps: list[TopicPartition] = []

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
        for tp, offset in end.items():
            if await consumer.position(tp) < offset:
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
