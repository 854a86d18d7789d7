"""streams.faust_patches.time_producer_waits: the worker's waits on faust's producer counted.

faust's own Producer and ProducerBuffer (never connected to a broker: with no aiokafka
producer started, ``Producer.flush`` is the buffer's flush); only the buffer's hand-over to the
Kafka client is replaced by a slow one, which is what the waits wait for.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import faust
import pytest

from streams.faust_patches import (
    complete_buffer_flush,
    shared_block_cache,
    take_events_adaptive,
    time_producer_waits,
    use_shared_block_caches,
)
from streams.worker import create_worker
from tests.unit.worker_harness import RecordingProducer

HANDOVER_S = 0.02


@pytest.fixture
async def producer() -> AsyncIterator[tuple[Any, list[Any], Counter[str]]]:
    app = faust.App("patches-test", broker="kafka://127.0.0.1:9")  # never connected
    prod = app.producer
    buf = prod.buffer
    handed: list[Any] = []

    async def slow_handover(fut: Any) -> None:
        await asyncio.sleep(HANDOVER_S)
        handed.append(fut)

    buf._send_pending = slow_handover
    complete_buffer_flush(buf)
    counters: Counter[str] = Counter()
    time_producer_waits(prod, counters)
    yield prod, handed, counters
    await buf.stop()


async def test_the_commit_flush_is_timed(producer: tuple[Any, list[Any], Counter[str]]) -> None:
    prod, handed, counters = producer
    await prod.buffer.start()
    for i in range(10):
        prod.buffer.put(f"m{i}")
    await prod.flush()
    assert len(handed) == 10 and prod.buffer.size == 0
    assert counters["producer_flushes"] == 1
    # ten hand-overs of 20 ms each were waited for (the clock's granularity aside)
    assert 10 * HANDOVER_S * 1000 * 0.9 <= counters["producer_flush_ms"] < 10_000


async def test_ebb_waits_only_when_the_buffer_is_over_its_limit(
    producer: tuple[Any, list[Any], Counter[str]],
) -> None:
    prod, handed, counters = producer
    buf = prod.buffer
    for i in range(buf.max_messages):  # at the limit: faust would not wait, nor do we count
        buf.put(i)
    await buf.wait_until_ebb()
    assert counters["producer_ebb_waits"] == 0 and handed == []
    buf.put("one more")
    await buf.start()
    # faust's own wait: until 100 messages were handed over, or until a hand-over took more
    # than 0.1 s (faust gives up then; a loaded machine's 20 ms sleep can: seen in CI, 22)
    await buf.wait_until_ebb()
    assert counters["producer_ebb_waits"] == 1
    assert 1 <= len(handed) <= buf.max_messages + 1
    # the wait counted is at least the hand-overs it waited for
    assert counters["producer_ebb_wait_ms"] >= len(handed) * HANDOVER_S * 1000 * 0.9
    await prod.flush()


def test_the_worker_counts_its_producer_waits() -> None:
    w = create_worker()
    assert "time_producer_waits" in w.app.producer.flush.__qualname__
    assert "time_producer_waits" in w.app.producer.buffer.wait_until_ebb.__qualname__
    # the commit flush still ends in the complete flush
    assert "complete_buffer_flush" in w.app.producer.buffer.flush.__qualname__


async def eventually(cond: Callable[[], bool], within_s: float = 10.0) -> None:
    for _ in range(int(within_s / 0.005)):
        if cond():
            return
        await asyncio.sleep(0.005)
    raise AssertionError("not within the time")


async def test_take_events_adaptive_asks_for_the_wait_before_each_batch() -> None:
    """faust's take_events with the wait asked anew: batches of at most max_, every event acked
    only after its batch was processed, and the wait each batch had is the one asked for it."""
    app = faust.App(
        "take-test",
        broker="kafka://127.0.0.1:9",
        store="memory://",
        web_enabled=False,
        loop=asyncio.get_running_loop(),
    )
    topic = app.topic("t", value_type=bytes, value_serializer="raw")
    app.producer = RecordingProducer(app)  # nothing sent; faust's own would start a client
    waits = iter([0.01, 0.01, 0.01, 1.0, 0.01])
    asked: list[float] = []
    batches: list[list[bytes]] = []
    acked_while_processed: list[bool] = []

    def within() -> float:
        asked.append(next(waits, 0.01))
        return asked[-1]

    @app.agent(topic)
    async def agent(stream: Any) -> None:
        async for events in take_events_adaptive(stream, 3, within):
            acked_while_processed.append(any(e.message.acked for e in events))
            batches.append([e.value for e in events])

    async with agent.test_context() as ctx:
        for i in range(7):
            await ctx.put(value=b"%d" % i, wait=False)
        await eventually(lambda: sum(map(len, batches)) >= 7)
        assert [v for b in batches for v in b] == [b"%d" % i for i in range(7)]
        assert all(len(b) <= 3 for b in batches) and not any(acked_while_processed)
        # the next batch waits what within() says: a lone message waits out the long wait
        await eventually(lambda: asked[-1] == 1.0)
        t0 = time.perf_counter()
        await ctx.put(value=b"late", wait=False)
        await eventually(lambda: batches[-1] == [b"late"])
        assert time.perf_counter() - t0 >= 0.5
    # the stream made faust's consumer, whose thread's event loop never started: close it
    app.consumer._thread.thread_loop.close()


def test_stores_given_the_shared_block_cache_fill_that_one_cache(tmp_path: Path) -> None:
    """Two faust RocksDB stores opened with the worker's options: blocks read from either land
    in the one shared cache (its usage grows with each); a store without the option keeps a
    cache of its own (the shared one does not grow)."""
    from faust.stores.rocksdb import RocksDBOptions

    use_shared_block_caches()
    cache = shared_block_cache(8 * 1024**2)
    assert shared_block_cache(8 * 1024**2) is cache  # one per process and size

    def filled(options: RocksDBOptions, name: str) -> Any:
        db = options.open(tmp_path / name)
        for i in range(5000):
            db[b"k%05d" % i] = b"v" * 200
        db.flush()  # to an SST file: reads go through the block cache
        return db

    def read_all(db: Any) -> None:
        for i in range(0, 5000, 7):
            assert db[b"k%05d" % i] == b"v" * 200

    dbs = [filled(RocksDBOptions(block_cache=cache), f"s{i}") for i in range(2)]
    usage = [cache.get_usage()]
    for db in dbs:
        read_all(db)
        usage.append(cache.get_usage())
    assert usage[0] < usage[1] < usage[2], usage
    own = filled(RocksDBOptions(), "own")
    read_all(own)
    assert cache.get_usage() == usage[2]
    for db in [*dbs, own]:
        db.close()


def test_the_worker_tables_share_one_block_cache(tmp_path: Path) -> None:
    from gridpulse.settings import Settings
    from streams.app import rocksdb_options

    s = Settings(data_dir=str(tmp_path), rocksdb_block_cache_mb=16)
    a, b = rocksdb_options(s), rocksdb_options(s)
    assert a is not b and a["block_cache"] is b["block_cache"] is shared_block_cache(16 * 1024**2)
