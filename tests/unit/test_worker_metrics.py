"""The worker's metrics (streams/metrics.py) and readiness checks (streams/agents/web.py)
without servers: lag, committed offset age and event age computed from a given consumer state,
the state sizes of a real RocksDB, the histograms observed once per batch by the real readings
agent (faust's test_context), and the Kafka check failing fast against a port nobody serves."""

from __future__ import annotations

import asyncio
import socket
import time
from pathlib import Path
from typing import Any

import pytest
from faust.types import TP
from prometheus_client import REGISTRY, generate_latest
from rocksdict import Rdict

from gridpulse.settings import Settings
from observability.metrics import lint_exposition
from streams.agents.web import KafkaProbe, readiness
from streams.metrics import CommitClock, WorkerMetrics, lag_of, position_of, store_size
from tests.unit.worker_harness import js, quarter_hours_ago, reading, worker_under_test

pytestmark = pytest.mark.timeout(60)


def value(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


# --- lag and committed offset age from the consumer's numbers -------------------------------------


def test_position_is_the_next_offset_to_process() -> None:
    assert position_of(None, None) is None
    assert position_of(None, 40) == 40  # sought to the committed offset, nothing read yet
    assert position_of(41, 40) == 42  # message 41 handed to the stream
    assert position_of(41, 45) == 45  # committed beyond what this process read (another worker's)
    assert position_of(9, None) == 10


def test_lag_is_highwater_minus_position_never_negative() -> None:
    assert lag_of(None, 10) is None  # end not fetched yet: unknown, not 0
    assert lag_of(100, 42) == 58
    assert lag_of(100, 100) == 0
    assert lag_of(100, 101) == 0  # a highwater older than the position (fetched earlier)
    assert lag_of(5, None) == 5


def test_committed_offset_age_counts_from_its_last_move_while_records_wait() -> None:
    clock = CommitClock()
    tp = TP("t", 0)
    assert clock.age(tp, 10, 20, now=100.0) == 0.0  # first look: moved now
    assert clock.age(tp, 10, 20, now=107.5) == 7.5  # stuck at 10 with 10 records beyond it
    assert clock.age(tp, 15, 20, now=108.0) == 0.0  # moved
    assert clock.age(tp, 15, 20, now=111.0) == 3.0
    assert clock.age(tp, 20, 20, now=130.0) == 0.0  # caught up: nothing waits, no age
    assert clock.age(tp, 20, 20, now=500.0) == 0.0  # an idle partition does not age
    assert clock.age(tp, 20, 25, now=501.0) == 1.0  # new records: from the last idle look
    assert clock.age(tp, 20, 25, now=530.0) == 30.0  # ... and not committed since
    clock.forget([])
    assert clock.age(tp, 20, 25, now=540.0) == 0.0  # revoked and assigned again: a fresh clock


class Consumer:
    """faust's consumer as WorkerMetrics reads it: assignment(), highwater(), and the
    _read_offset / _committed_offset maps (faust/transport/consumer.py)."""

    def __init__(self) -> None:
        self.assigned: set[TP] = set()
        self.highwaters: dict[TP, int | None] = {}
        self._read_offset: dict[TP, int | None] = {}
        self._committed_offset: dict[TP, int | None] = {}
        self.started = True

    def assignment(self) -> set[TP]:
        if not self.started:
            raise RuntimeError("Consumer thread not yet started")  # faust's ConsumerNotStarted
        return set(self.assigned)

    def highwater(self, tp: TP) -> int | None:
        return self.highwaters.get(tp)


class App:
    def __init__(self) -> None:
        self.consumer = Consumer()
        self.tables: dict[str, Any] = {}


def test_partitions_from_the_consumer_state_inputs_only() -> None:
    app = App()
    c = app.consumer
    r0, r1, changelog = (
        TP("p.meter.readings", 0),
        TP("p.meter.readings", 1),
        TP("app-load-state-changelog", 0),
    )
    c.assigned = {r0, r1, changelog}
    c.highwaters = {r0: 1_000, r1: None, changelog: 77}
    c._read_offset = {r0: 599}
    c._committed_offset = {r0: 500}
    m = WorkerMetrics(app, "app", ["p.meter.readings"])
    m.event_times("p.meter.readings", {0: 1_000_000.0})
    m.event_times("p.meter.readings", {0: 999_000.0})  # older than the newest: kept the newest
    states = m.partitions(now=10.0, wall=1_000_042.0)
    assert [(s.topic, s.partition) for s in states] == [("p.meter.readings", 0), ("p.meter.readings", 1)]
    s0, s1 = states
    assert s0.lag == 400 and s0.committed_age_s == 0.0 and s0.event_age_s == 42.0
    assert s1.lag is None and s1.event_age_s is None  # not fetched yet, nothing processed
    c._read_offset[r0] = 999
    c._committed_offset[r0] = 800
    s0 = m.partitions(now=12.0, wall=1_000_050.0)[0]
    assert s0.lag == 0 and s0.committed_age_s == 0.0  # moved
    s0 = m.partitions(now=16.0, wall=1_000_050.0)[0]
    assert s0.committed_age_s == 4.0  # 200 records processed, not committed, for 4 s
    c.started = False
    assert m.partitions() == []  # before the consumer started: nothing, no error


def test_refresh_exports_the_assigned_partitions_and_ends_revoked_ones() -> None:
    app = App()
    c = app.consumer
    a, b = TP("rf.billing.events", 0), TP("rf.billing.events", 1)
    c.assigned = {a, b}
    c.highwaters = {a: 10, b: 20}
    c._read_offset = {a: 4, b: 19}
    c._committed_offset = {a: 3, b: 20}
    m = WorkerMetrics(app, "rf-group", ["rf.billing.events"])
    m.refresh(now=1.0)
    lag = "gridpulse_consumer_lag_records"
    assert value(lag, consumer_group="rf-group", topic="rf.billing.events", partition="0") == 5
    assert value(lag, consumer_group="rf-group", topic="rf.billing.events", partition="1") == 0
    c.assigned = {a}  # b revoked (a rebalance)
    m.refresh(now=2.0)
    assert (
        REGISTRY.get_sample_value(
            lag, {"consumer_group": "rf-group", "topic": "rf.billing.events", "partition": "1"}
        )
        is None
    )
    assert (
        REGISTRY.get_sample_value(
            "gridpulse_committed_offset_age_seconds",
            {"consumer_group": "rf-group", "topic": "rf.billing.events", "partition": "1"},
        )
        is None
    )
    assert value(lag, consumer_group="rf-group", topic="rf.billing.events", partition="0") == 5


# --- state sizes ---------------------------------------------------------------------------------


class RocksStore:
    """faust's RocksDB store as store_size reads it: its open partition databases."""

    def __init__(self, dbs: dict[int, Rdict]) -> None:
        self._dbs = dbs


def test_state_size_from_rocksdb_properties(tmp_path: Path) -> None:
    dbs = {p: Rdict(str(tmp_path / f"p{p}")) for p in (0, 1)}
    try:
        for p, db in dbs.items():
            for i in range(500):
                db[f"c{p}-{i}".encode()] = b"x" * 100
        records, size = store_size(RocksStore(dbs))
        assert records == 1_000  # RocksDB's estimate: exact for fresh keys in memtables
        assert size is not None and size >= 1_000 * 100
        assert store_size(type("Memory", (), {"data": {b"a": b"1", b"b": b"2"}})()) == (2, None)
    finally:
        for db in dbs.values():
            db.close()


# --- the real readings agent: counted once per batch ----------------------------------------------


async def test_readings_batches_observed_per_batch(tmp_path: Path) -> None:
    async with worker_under_test(tmp_path) as w:
        topic = w.rt.topics.readings.get_topic_name()
        before_in = value("gridpulse_events_in_total", topic=topic)
        before_batches = value("gridpulse_batch_events_count", agent="readings")
        before_sum = value("gridpulse_batch_events_sum", agent="readings")
        before_dlq = value("gridpulse_dead_letters_total", topic=topic, error="decode")
        newest = quarter_hours_ago(1)
        messages = [(b"c1", js(reading("c1", quarter_hours_ago(n), 1.0))) for n in range(6, 0, -1)]
        messages.append((b"c1", b"not json"))
        async with w.agent("readings").test_context() as ctx:
            await w.put_many(ctx, messages)
        batches = w.rt.counters["readings_batches"]
        assert batches >= 1
        assert value("gridpulse_events_in_total", topic=topic) - before_in == 7
        assert value("gridpulse_batch_events_count", agent="readings") - before_batches == batches
        assert value("gridpulse_batch_events_sum", agent="readings") - before_sum == 7
        assert value("gridpulse_dead_letters_total", topic=topic, error="decode") - before_dlq == 1
        # the newest valid reading's time, per partition it came from
        assert max(w.rt.metrics.newest_event.values()) == newest.timestamp()
        assert {t for t, _ in w.rt.metrics.newest_event} == {topic}
        scrape = generate_latest(REGISTRY).decode()
        assert lint_exposition(scrape, forbidden_values=["c1"]) == []


# --- readiness: Kafka -----------------------------------------------------------------------------


async def test_kafka_check_fails_fast_without_a_broker_and_caches() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # bound, not listening: connections are refused
        probe = KafkaProbe(Settings(kafka_bootstrap=f"127.0.0.1:{port}"), cache_s=60.0, timeout_s=3.0)
        started = time.monotonic()
        check = await probe()
        assert not check.ok and "no metadata" in check.detail
        assert time.monotonic() - started < 4.0
        again = await asyncio.wait_for(probe(), 0.5)  # cached, not asked again
        assert again is check
        await probe.close()


# --- readiness: a worker whose consumer has not started ------------------------------------------


async def test_readiness_of_a_worker_not_started_is_503_not_an_error(tmp_path: Path) -> None:
    """faust's consumer before its start raises ConsumerNotStarted from assignment() (the old
    health page logged it as a traceback at every worker start): the checks say "not ready"."""
    async with worker_under_test(tmp_path) as w:
        health = readiness(w.rt)
        ok, body = await health.ready()
        checks = body["checks"]
        assert not ok and body["service"] == "worker"
        assert checks["assigned"] == {"ok": False, "detail": "0 input partitions assigned"}
        assert checks["caught_up"]["ok"]  # nothing assigned: nothing behind
        assert not checks["kafka"]["ok"] and not checks["redis"]["ok"]  # nobody at port 9
        assert value("gridpulse_dependency_up", dependency="kafka") == 0
        assert value("gridpulse_ready", service="worker") == 0
        live, _ = health.live()
        assert not live  # the heartbeat starts with the worker (an app task)
        health.start()
        assert health.live()[0]
        await health.stop()
