"""The worker's Prometheus metrics (issue 15): the families only the worker has, and
:class:`WorkerMetrics`, which counts what the agents do and reads faust's consumer at scrape time.

The shared consuming families (``observability.metrics``: events in, dead letters, consumer
lag, committed offset age, event age) are filled here for the worker; the worker-only
families are defined below. Conventions: ``gridpulse_*`` names in base units, bounded labels
only (``observability.metrics``); never a customer.

The hot path stays cheap: the batch agents count once per batch (events in, the histograms),
the one-message agents once per message (a cached child's ``inc``), the readings' event time is
the newest of the batch per partition, compared as it is decoded. Lag, committed offset age,
event age, state sizes and the Redis backlog are computed when ``/metrics`` is scraped (and
the committed offsets sampled once a second by a timer), from faust's consumer state, read
only: faust runs aiokafka in a thread of its own, and nothing here calls into it.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from prometheus_client import Counter, Gauge, Histogram

from observability.metrics import COMMIT_AGE, CONSUMER_LAG, DEAD_LETTERS, EVENT_AGE, EVENTS_IN

# --- worker-only families ----------------------------------------------------------------------

BATCH_SIZE_BUCKETS = (1, 5, 10, 25, 50, 100, 250, 500, 1_000, 2_000, 4_000, 8_000)
DURATION_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
PASS_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0)

BATCH_EVENTS = Histogram(
    "gridpulse_batch_events",
    "messages per batch a batch agent took (readings, customers, area_readings, area_energy)",
    ["agent"],
    buckets=BATCH_SIZE_BUCKETS,
)
BATCH_SECONDS = Histogram(
    "gridpulse_batch_duration_seconds",
    "time a batch agent spent processing one batch (decode to publish), seconds",
    ["agent"],
    buckets=DURATION_BUCKETS,
)
SCORING_PASS_SECONDS = Histogram(
    "gridpulse_scoring_pass_duration_seconds",
    "time of one scoring population pass (ranking, scoring, publishing the changed scores), seconds",
    buckets=PASS_BUCKETS,
)
ALERTS_PUBLISHED = Counter(
    "gridpulse_alerts_published",
    "alert messages the worker published, per kind (credit, outage, inspection) and severity",
    ["kind", "severity"],
)
STATE_RECORDS = Gauge(
    "gridpulse_state_records",
    "records in the table's local stores: RocksDB's estimate-num-keys summed over the partition "
    "stores (an estimate); an in-memory store's exact count",
    ["table"],
)
STATE_BYTES = Gauge(
    "gridpulse_state_bytes",
    "bytes of the table's local RocksDB stores: total SST file size plus memtables, summed over the "
    "partition stores (RocksDB's own properties); absent for an in-memory store",
    ["table"],
)
REDIS_BACKLOG = Gauge(
    "gridpulse_redis_backlog_entries",
    "snapshots waiting in a Redis sink for Redis (one per key at most; 0 while Redis keeps up)",
    ["stage"],
)


# --- consumer state -> lag, committed offset age ------------------------------------------------


def position_of(read_offset: int | None, committed: int | None) -> int | None:
    """The next offset the worker will process in a partition, from faust's consumer state:
    ``read_offset`` is the offset of the last message handed to a stream (after a seek: the
    offset sought to, the committed one), ``committed`` the group's committed offset (the next
    to process after a commit). None when neither is known. Right after a seek the position is
    over-counted by one until the first message is read (faust keeps one number for both)."""
    if read_offset is None:
        return committed
    position = read_offset + 1
    return position if committed is None else max(position, committed)


def lag_of(highwater: int | None, position: int | None) -> int | None:
    """Records between the position and the partition's end; None when the end is not known
    yet (no fetch for the partition since it was assigned)."""
    if highwater is None:
        return None
    return max(0, int(highwater) - (position or 0))


class CommitClock:
    """Per partition, when the committed offset last moved: the committed offset's age is the
    time since then while messages wait beyond it, 0 when nothing does. An idle partition's
    commit does not age: while nothing waits, the clock restarts at every look, so records
    arriving after a quiet hour count from their first look, not from the hour-old commit."""

    def __init__(self) -> None:
        self._seen: dict[Any, tuple[int | None, float]] = {}

    def observe(self, tp: Any, committed: int | None, now: float) -> None:
        seen = self._seen.get(tp)
        if seen is None or seen[0] != committed:
            self._seen[tp] = (committed, now)

    def age(self, tp: Any, committed: int | None, highwater: int | None, now: float) -> float:
        self.observe(tp, committed, now)
        if highwater is None or int(highwater) <= (committed or 0):
            self._seen[tp] = (committed, now)  # nothing waits: nothing to age
            return 0.0
        return max(0.0, now - self._seen[tp][1])

    def forget(self, keep: Iterable[Any]) -> None:
        keep = set(keep)
        for tp in [tp for tp in self._seen if tp not in keep]:
            del self._seen[tp]


@dataclass(frozen=True)
class PartitionState:
    """One input partition at a scrape: what :class:`WorkerMetrics` exports of it."""

    topic: str
    partition: int
    lag: int | None
    committed_age_s: float
    event_age_s: float | None


# --- state sizes ---------------------------------------------------------------------------------


def store_size(store: Any) -> tuple[int | None, int | None]:
    """(records, bytes) of a faust table's store: RocksDB's own estimates for a RocksDB store
    (``rocksdb.estimate-num-keys``; ``rocksdb.total-sst-files-size`` +
    ``rocksdb.cur-size-all-mem-tables``) summed over its open partition databases, an
    in-memory store's exact count and no bytes."""
    dbs = getattr(store, "_dbs", None)
    if dbs is not None:
        records = size = 0
        for db in list(dbs.values()):
            records += int(db.property_int_value("rocksdb.estimate-num-keys") or 0)
            size += int(db.property_int_value("rocksdb.total-sst-files-size") or 0)
            size += int(db.property_int_value("rocksdb.cur-size-all-mem-tables") or 0)
        return records, size
    data = getattr(store, "data", None)
    if isinstance(data, Mapping):
        return len(data), None
    return None, None


# --- the worker's metrics --------------------------------------------------------------------------


class WorkerMetrics:
    """What one worker counts and exports (``streams.runtime.Runtime.metrics``).

    ``input_topics``: the real names of the topics the worker's agents consume (lag, committed
    offset age and readiness look at their partitions only, not at the changelogs'). ``sinks``:
    the Redis sinks by stage (their backlog), set when the stages exist."""

    def __init__(self, app: Any, group: str, input_topics: Iterable[str]) -> None:
        self.app = app
        self.group = group
        self.input_topics = frozenset(input_topics)
        self.sinks: dict[str, Any] = {}
        self.commits = CommitClock()
        # (topic, partition) -> newest event time (epoch s) processed from it
        self.newest_event: dict[tuple[str, int], float] = {}
        self._events_in: dict[str, Any] = {}
        self._batch: dict[str, tuple[Any, Any]] = {}
        self._alerts: dict[tuple[str, str], Any] = {}
        self._series: set[tuple[str, str]] = set()  # (topic, partition) label sets exported

    # ---------------------------------------------------------------- hot path: counting

    def events_in(self, topic: str, n: int = 1) -> None:
        child = self._events_in.get(topic)
        if child is None:
            child = self._events_in[topic] = EVENTS_IN.labels(topic=topic)
        child.inc(n)

    def batch(self, agent: str, topic: str, n: int, seconds: float) -> None:
        """A batch agent's batch: ``n`` messages of ``topic`` processed in ``seconds``."""
        self.events_in(topic, n)
        pair = self._batch.get(agent)
        if pair is None:
            pair = self._batch[agent] = (BATCH_EVENTS.labels(agent=agent), BATCH_SECONDS.labels(agent=agent))
        pair[0].observe(n)
        pair[1].observe(seconds)

    def scoring_pass(self, seconds: float) -> None:
        SCORING_PASS_SECONDS.observe(seconds)

    def dead_letter(self, topic: str, error: str) -> None:
        DEAD_LETTERS.labels(topic=topic, error=error).inc()

    def event_times(self, topic: str, newest: Mapping[int, float]) -> None:
        """The newest event time (epoch s) processed per partition of ``topic`` in a batch."""
        for partition, ts in newest.items():
            key = (topic, partition)
            if ts > self.newest_event.get(key, float("-inf")):
                self.newest_event[key] = ts

    def alert(self, alert: Mapping[str, Any]) -> None:
        """An alert message published (its ``kind`` and ``severity``: bounded sets)."""
        key = (str(alert.get("kind")), str(alert.get("severity")))
        child = self._alerts.get(key)
        if child is None:
            child = self._alerts[key] = ALERTS_PUBLISHED.labels(kind=key[0], severity=key[1])
        child.inc()

    # ---------------------------------------------------------------- scrape time

    def partitions(self, now: float | None = None, wall: float | None = None) -> list[PartitionState]:
        """The assigned input partitions' lag, committed offset age and event age from faust's
        consumer (empty before the consumer started)."""
        now = time.monotonic() if now is None else now
        wall = time.time() if wall is None else wall
        consumer = self.app.consumer
        try:
            assigned = [tp for tp in consumer.assignment() if tp.topic in self.input_topics]
        except Exception:  # faust's ConsumerNotStarted (before start, between restarts)
            return []
        read = getattr(consumer, "_read_offset", {})
        committed_of = getattr(consumer, "_committed_offset", {})
        out = []
        for tp in sorted(assigned):
            try:
                high = consumer.highwater(tp)
            except Exception:
                high = None
            committed = committed_of.get(tp)
            lag = lag_of(high, position_of(read.get(tp), committed))
            ts = self.newest_event.get((tp.topic, tp.partition))
            out.append(
                PartitionState(
                    tp.topic,
                    tp.partition,
                    lag,
                    self.commits.age(tp, committed, high, now),
                    None if ts is None else max(0.0, wall - ts),
                )
            )
        self.commits.forget(assigned)
        return out

    def sample_commits(self, now: float | None = None) -> None:
        """Note the committed offsets (a timer, once a second): the age counts from the move."""
        self.partitions(now)

    def refresh(self, now: float | None = None, wall: float | None = None) -> list[PartitionState]:
        """Set the scrape-time gauges; returns the partitions (readiness uses them)."""
        states = self.partitions(now, wall)
        current = set()
        for p in states:
            labels = (p.topic, str(p.partition))
            current.add(labels)
            if p.lag is not None:
                CONSUMER_LAG.labels(self.group, *labels).set(p.lag)
            COMMIT_AGE.labels(self.group, *labels).set(p.committed_age_s)
            if p.event_age_s is not None:
                EVENT_AGE.labels(*labels).set(p.event_age_s)
        for labels in self._series - current:  # revoked: their series end
            for family, values in (
                (CONSUMER_LAG, (self.group, *labels)),
                (COMMIT_AGE, (self.group, *labels)),
                (EVENT_AGE, labels),
            ):
                try:
                    family.remove(*values)
                except KeyError:
                    pass
        self._series = current
        for table in list(self.app.tables.values()):
            try:
                records, size = store_size(table.data)
            except Exception:  # a store closing during a rebalance: next scrape
                continue
            if records is not None:
                STATE_RECORDS.labels(table=table.name).set(records)
            if size is not None:
                STATE_BYTES.labels(table=table.name).set(size)
        for stage, sink in self.sinks.items():
            REDIS_BACKLOG.labels(stage=stage).set(sink.backlog)
        return states
