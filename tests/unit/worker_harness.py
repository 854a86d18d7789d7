"""A whole worker without servers, for the agent-flow tests (tests/unit/test_agent_*.py).

``streams.worker.create_worker`` builds the real app, runtime, stages and agents with tables in
memory (``store="memory://"``); each agent runs in faust's ``Agent.test_context()``, so the
agent function itself reads the messages a test puts, exactly as it reads a topic. Only the two
servers are replaced at the edge: Kafka by :class:`RecordingProducer` (every message faust
produces — topic sends, ``send_soon``, changelog writes — is kept in order, partitioned as
Kafka's default partitioner would), Redis by an address nobody listens on (the sinks keep their
snapshots pending, as they do while Redis is away).
"""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import faust
import orjson
from aiokafka.partitioner import DefaultPartitioner
from faust.sensors import Sensor
from faust.transport.producer import Producer
from faust.types import EventT, StreamT
from faust.types.tuples import TP, RecordMetadata

from gridpulse.settings import Settings
from schemas import topics as contract
from streams.faust_patches import complete_buffer_flush
from streams.worker import Worker, create_worker
from tests.samples import reading as reading  # re-exported: one way of writing a reading

PARTITIONS = 4
PROCESSED_WITHIN_S = 10.0


@dataclass(frozen=True)
class Sent:
    topic: str
    key: bytes | None
    value: bytes | None
    partition: int


class RecordingProducer(Producer):
    """Kafka's side of the worker: what faust's producer would have sent, in send order."""

    def __init__(self, app: faust.App, partitions: int = PARTITIONS) -> None:
        super().__init__(app.transport, loop=asyncio.get_running_loop())
        self.partitions = list(range(partitions))
        self.sent: list[Sent] = []
        self._offsets = itertools.count()
        self._partitioner = DefaultPartitioner()

    def partition_of(self, key: bytes | None) -> int:
        return int(self._partitioner(key, self.partitions, self.partitions))

    def key_partition(self, topic: str, key: bytes) -> TP:
        return TP(topic, self.partition_of(key))

    async def send(
        self,
        topic: str,
        key: bytes | None,
        value: bytes | None,
        partition: int | None,
        timestamp: float | None,
        headers: Any,
        *,
        transactional_id: str | None = None,
    ) -> asyncio.Future[RecordMetadata]:
        p = partition if partition is not None else self.partition_of(key)
        self.sent.append(Sent(topic, key, value, p))
        acked: asyncio.Future[RecordMetadata] = asyncio.get_running_loop().create_future()
        acked.set_result(
            RecordMetadata(topic, p, TP(topic, p), next(self._offsets), timestamp or time.time(), 0)
        )
        return acked

    async def send_and_wait(self, *args: Any, **kwargs: Any) -> RecordMetadata:
        return await (await self.send(*args, **kwargs))

    async def flush(self) -> None:
        await self.buffer.flush()

    async def create_topic(self, *args: Any, **kwargs: Any) -> None:
        return None

    def supports_headers(self) -> bool:
        return True


class AckSensor(Sensor):
    """Wakes a test when a stream acks an event: faust calls ``on_stream_event_out`` once the
    agent is done with it (``stream.events()``: when the agent asks for the next one;
    ``take_events``: after the batch), on its pure-Python and its Cython stream paths alike."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.event_out = asyncio.Event()

    def on_stream_event_out(
        self, tp: TP, offset: int, stream: StreamT, event: EventT, state: dict[str, Any] | None = None
    ) -> None:
        self.event_out.set()


class WorkerUnderTest:
    def __init__(self, worker: Worker, producer: RecordingProducer) -> None:
        self.worker = worker
        self.producer = producer
        self.acks = AckSensor()
        worker.app.sensors.add(self.acks)
        self.settings = worker.settings
        self.rt = worker.runtime

    def agent(self, name: str) -> Any:
        """The agent as registered (``@app.agent(..., name=name)``)."""
        (agent,) = [a for a in self.worker.app.agents.values() if a.name.rsplit(".", 1)[-1] == name]
        return agent

    async def put(self, ctx: Any, key: bytes | None, value: bytes | None, partition: int = 0) -> faust.EventT:
        """Put one message on the agent's stream and wait until the agent has processed it."""
        (event,) = await self.put_many(ctx, [(key, value)], partition)
        return event

    async def put_many(
        self,
        ctx: Any,
        messages: Sequence[tuple[bytes | None, bytes | None]],
        partition: int = 0,
        timestamp: float | None = None,
    ) -> list[faust.EventT]:
        """Put the messages at once (a batching agent may take them in one batch) and wait until
        the agent is done with every one (acked; ``put(wait=True)`` returns when the stream has
        received a value, before the agent body ran), then until the producer's buffer is sent."""
        events = [
            await ctx.put(value=v, key=k, partition=partition, timestamp=timestamp, wait=False)
            for k, v in messages
        ]
        async with asyncio.timeout(PROCESSED_WITHIN_S):
            while not all(e.message.acked for e in events):
                self.acks.event_out.clear()
                await self.acks.event_out.wait()
        await self.producer.flush()
        return events

    # ------------------------------------------------------------------ what came out

    def sent_to(self, topic: str) -> list[Sent]:
        name = self.settings.topic(topic)
        return [s for s in self.producer.sent if s.topic == name]

    def dead_letters(self, topic: str) -> list[dict[str, Any]]:
        return [orjson.loads(s.value) for s in self.sent_to(contract.dlq(topic)) if s.value is not None]

    def dead_letter_kinds(self, topic: str) -> list[str]:
        return [d["error"] for d in self.dead_letters(topic)]

    def stats(self) -> list[dict[str, Any]]:
        return [orjson.loads(s.value) for s in self.sent_to(contract.STATS_CUSTOMER) if s.value is not None]

    def changelog(self, table: Any) -> list[Sent]:
        name = table.changelog_topic.get_topic_name()
        return [s for s in self.producer.sent if s.topic == name]


@asynccontextmanager
async def worker_under_test(tmp_path: Path, **settings: Any) -> AsyncIterator[WorkerUnderTest]:
    """A fresh worker: tables in memory, Kafka recorded, Redis away, credit alerts with an empty
    read-back (a new deployment)."""
    s = Settings(
        topic_prefix="unit-",
        app_id="unit-worker",
        data_dir=str(tmp_path),
        topic_partitions=PARTITIONS,
        kafka_bootstrap="127.0.0.1:9",  # never contacted: the producer records, no reader runs
        redis_url="redis://127.0.0.1:9/0",  # discard port: nobody answers
        batch_within_s=0.01,
        **settings,
    )
    worker = create_worker(s, store="memory://", web_enabled=False)
    app = worker.app
    producer = RecordingProducer(app)
    complete_buffer_flush(producer.buffer)  # the worker's own flush: waits for every buffered message
    app.producer = producer
    worker.credit_alerts.ready.set()  # nothing published before: nothing to read back
    worker.areas.ready.set()
    await producer.start()
    try:
        yield WorkerUnderTest(worker, producer)
    finally:
        await producer.stop()
        for sink in (worker.runtime.redis, worker.scoring.redis, worker.areas.redis, worker.areas.redis_days):
            await sink.close()


# ---------------------------------------------------------------------- messages


def js(obj: Any) -> bytes:
    return orjson.dumps(obj)


def quarter_hours_ago(n: int) -> datetime:
    """The end of the 15-minute interval ``n`` quarter hours before the current one (UTC): input
    a test can send at any time of any day without it being in the future."""
    now = int(time.time()) // 900 * 900
    return datetime.fromtimestamp(now - n * 900, UTC)
