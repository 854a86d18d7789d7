"""What feeds the dashboard's state: the Redis snapshots, then the output topics, and the data
health figures (dead letters of the last hour, the worker group's lag).

- ``load_redis_snapshot``: every ``{prefix}gp:stats:<cid>``, ``gp:scores:<cid>`` and
  ``gp:areas:<area>`` hash's ``doc`` (fast: one pipeline per 1,000 keys). Redis down or empty
  changes nothing but the start-up time: the topics are complete.
- ``OutputFeed``: one aiokafka consumer without a group (``streams.follow.TopicFollower``:
  assign + seek to the beginning, restarted when Kafka fails it) over the seven output topics,
  each record merged into the state by event time and, when it changed something, published
  to the SSE hub. The ``customers`` topic (names) is never read.
- ``DataHealth``: every ``refresh_s`` the ``<input>.dlq`` messages since an hour ago
  (``offsets_for_times``) counted by input topic and ``error``, and the lag of the worker's
  consumer group (``settings.app_id``) on the input topics: end offsets against the committed
  ones (OffsetFetch through the admin client: the group is not joined).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter
from collections.abc import Callable
from typing import Any

import orjson
from aiokafka import AIOKafkaConsumer, ConsumerRecord, TopicPartition

from dashboard.hub import Hub
from dashboard.state import TOPIC_KINDS, Change, DashboardState, Malformed
from gridpulse.settings import Settings
from observability.metrics import EVENTS_IN
from schemas import topics as contract
from streams.follow import TopicFollower
from streams.kafka import make_admin, make_consumer

log = logging.getLogger(__name__)

REDIS_KINDS = (("stats", "gp:stats:"), ("scores", "gp:scores:"), ("area", "gp:areas:"))
REDIS_SKIP = frozenset({"gp:scores:by_value"})
_REDIS_TOPIC = {
    "stats": contract.STATS_CUSTOMER,
    "scores": contract.SCORES_CUSTOMER,
    "area": contract.STATS_AREA,
}


def _glob_escape(text: str) -> str:
    return "".join("\\" + c if c in "*?[]\\" else c for c in text)


def publish_change(hub: Hub, state: DashboardState, change: Change | None) -> None:
    """Tell the SSE clients what changed (with the customer it concerns, for filtered pages)."""
    if change is None:
        return
    customer: str | None = change.key if change.kind in ("stats", "scores") else None
    if change.kind == "alert":
        held = state.entries["alert"].get(change.key)
        doc = held.doc if held is not None else None
        customer = doc.get("customer_id") if doc else None
    hub.publish(change.kind, change.key, change.raw, customer)


async def load_redis_snapshot(
    settings: Settings, state: DashboardState, *, timeout_s: float = 2.0, batch: int = 1000
) -> dict[str, int]:
    """Apply the Redis snapshots to ``state``; documents applied per kind. Never raises for
    Redis being away (logged: the topics will fill the state)."""
    import redis.asyncio as aioredis
    from redis.exceptions import RedisError

    applied: Counter[str] = Counter()
    client = aioredis.from_url(settings.redis_url, socket_timeout=timeout_s, socket_connect_timeout=timeout_s)
    prefix = settings.topic_prefix
    try:
        for kind, infix in REDIS_KINDS:
            keys: list[bytes] = []
            skip = {f"{prefix}{k}".encode() for k in REDIS_SKIP}
            async for key in client.scan_iter(match=f"{_glob_escape(prefix + infix)}*", count=batch):
                if key not in skip:
                    keys.append(key)
                if len(keys) >= batch:
                    applied[kind] += await _apply_redis_batch(client, state, kind, keys)
                    keys = []
            if keys:
                applied[kind] += await _apply_redis_batch(client, state, kind, keys)
    except (RedisError, OSError) as exc:
        log.warning("dashboard: Redis snapshot not read (%s); starting from the topics", exc)
    finally:
        await client.aclose()
    return dict(applied)


async def _apply_redis_batch(client: Any, state: DashboardState, kind: str, keys: list[bytes]) -> int:
    async with client.pipeline(transaction=False) as pipe:
        for key in keys:
            pipe.hget(key, "doc")
        values = await pipe.execute(raise_on_error=False)
    n = 0
    for value in values:
        if isinstance(value, Exception) or value is None:
            continue  # another type under the prefix, or a hash without a doc
        try:
            doc = orjson.loads(value)
            if not isinstance(doc, dict):
                raise Malformed("not an object")
            if state.apply_doc(kind, doc, value) is not None:
                n += 1
        except (Malformed, orjson.JSONDecodeError):
            state.count_malformed(_REDIS_TOPIC[kind] + " (redis)")
    return n


class OutputFeed:
    """The output topics, read from their beginning and followed, merged into the state."""

    def __init__(self, settings: Settings, state: DashboardState, hub: Hub) -> None:
        self.settings = settings
        self.state = state
        self.hub = hub
        self._topic_of = {settings.topic(t): t for t in TOPIC_KINDS}
        self._events_in = {name: EVENTS_IN.labels(topic=name) for name in self._topic_of}
        self._malformed_seen: set[tuple[str, int, int]] = set()
        self.counters: Counter[str] = Counter()
        self.follower: TopicFollower | None = None
        self.ready = asyncio.Event()  # every output topic (that exists) read to its end once
        self.reading: list[str] = []  # the topics read (full names)
        self.recheck_s = 60.0
        self.records = 0

    def _apply(self, rec: ConsumerRecord) -> None:
        topic = self._topic_of[rec.topic]
        self.records += 1
        self._events_in[rec.topic].inc()
        before = self.state.malformed[topic]
        try:
            change = self.state.apply_raw(topic, rec.value, rec.key)
        except Exception:  # a defect must not stop the feed; the document is skipped and counted
            log.exception(
                "dashboard: %s partition %d offset %d not applied", topic, rec.partition, rec.offset
            )
            self.state.count_malformed(topic)
            return
        if self.state.malformed[topic] != before:
            # a reader restarted by Kafka reads the topic again: count a bad record once
            seen = (topic, rec.partition, rec.offset)
            if seen in self._malformed_seen:
                self.state.malformed[topic] -= 1
            else:
                self._malformed_seen.add(seen)
                if len(self._malformed_seen) <= 100 or len(self._malformed_seen) % 1000 == 0:
                    log.warning(
                        "dashboard: malformed document on %s partition %d offset %d skipped (%d so far)",
                        topic,
                        rec.partition,
                        rec.offset,
                        len(self._malformed_seen),
                    )
        publish_change(self.hub, self.state, change)

    def reader(self) -> tuple[AIOKafkaConsumer, list[TopicPartition]] | None:
        """The running reader's consumer and its partitions (None while none runs): for the
        feed's lag and the readiness check's Kafka request."""
        follower = self.follower
        consumer = follower._consumer if follower is not None else None
        if follower is None or consumer is None:
            return None
        return consumer, list(follower._tps)

    async def _existing(self) -> list[str]:
        admin = make_admin(self.settings)
        await admin.start()
        try:
            names = set(await admin.list_topics())
        finally:
            await admin.close()
        return [t for t in self._topic_of if t in names]

    async def run(self) -> None:
        """Follow the output topics that exist; a deployment without some of them (an older
        one without the inspection stage's) is read all the same, and the reader starts again
        with the full set once they appear (re-reading changes nothing: merge by event time)."""
        while True:
            try:
                names = await self._existing()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # Kafka away at start: the API serves what the state has
                log.warning("dashboard: cannot list the topics (%s); trying again in 5 s", exc)
                await asyncio.sleep(5.0)
                continue
            if not names:
                if not self.ready.is_set():
                    log.warning("dashboard: none of the output topics exists yet (gridpulse topics create)")
                self.ready.set()  # nothing to catch up with
                await asyncio.sleep(5.0)
                continue
            missing = sorted(set(self._topic_of) - set(names))
            if missing:
                log.warning("dashboard: output topics %s do not exist; reading the others", missing)
            self.reading = names
            self.follower = TopicFollower(
                self.settings, names, self._apply, label="dashboard", counters=self.counters
            )
            follow = asyncio.create_task(self.follower.run_forever(), name="dashboard-follow")
            ready = asyncio.create_task(self.follower.ready.wait())
            try:
                await asyncio.wait({follow, ready}, return_when=asyncio.FIRST_COMPLETED)
                if ready.done():
                    self.ready.set()
                if not missing:
                    await follow  # forever (run_forever restarts the reader itself)
                while True:
                    await asyncio.sleep(self.recheck_s)
                    try:
                        if len(await self._existing()) > len(names):
                            log.info("dashboard: more output topics exist now; reading them too")
                            break
                    except Exception as exc:
                        log.warning("dashboard: cannot list the topics (%s)", exc)
            finally:
                for task in (follow, ready):
                    task.cancel()
                await asyncio.gather(follow, ready, return_exceptions=True)


class DataHealth:
    """DLQ counts of the last hour and the worker group's lag, refreshed in the background."""

    def __init__(
        self, settings: Settings, *, refresh_s: float = 30.0, clock: Callable[[], float] = time.time
    ):
        self.settings = settings
        self.refresh_s = refresh_s
        self.clock = clock
        self.dlq: list[dict[str, Any]] = []
        self.consumer_lag: list[dict[str, Any]] = []
        self.error: str | None = None
        self.refreshed_at: float | None = None
        self.changed = asyncio.Event()

    async def run(self) -> None:
        while True:
            try:
                await self.refresh()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # Kafka away: keep the last figures, say so, try again
                self.error = f"{type(exc).__name__}: {exc}"
                log.warning("dashboard: data health not refreshed (%s)", self.error)
            await asyncio.sleep(self.refresh_s)

    async def refresh(self) -> None:
        dlq = await self.dlq_last_hour()
        lag = await self.group_lag()
        if (dlq, lag) != (self.dlq, self.consumer_lag):
            self.changed.set()
        self.dlq, self.consumer_lag = dlq, lag
        self.error = None
        self.refreshed_at = self.clock()

    async def dlq_last_hour(self) -> list[dict[str, Any]]:
        since_ms = int((self.clock() - 3600.0) * 1000)
        counts: Counter[tuple[str, str]] = Counter()
        names = {self.settings.topic(contract.dlq(t)): t for t in contract.INPUTS}
        consumer = make_consumer(self.settings, group_id=None, max_poll_records=5_000)
        await consumer.start()
        try:
            await consumer._client.force_metadata_update()
            tps = [
                TopicPartition(t, p) for t in names for p in sorted(consumer.partitions_for_topic(t) or ())
            ]
            if not tps:
                return []
            starts = await consumer.offsets_for_times({tp: since_ms for tp in tps})
            ends = await consumer.end_offsets(tps)
            todo = {
                tp: ends[tp] for tp, found in starts.items() if found is not None and found.offset < ends[tp]
            }
            if not todo:
                return []
            consumer.assign(list(todo))
            for tp in todo:
                found = starts[tp]
                assert found is not None
                consumer.seek(tp, found.offset)
            deadline = asyncio.get_running_loop().time() + 60.0
            while todo:
                if asyncio.get_running_loop().time() > deadline:
                    raise TimeoutError("reading the DLQ topics took longer than 60 s")
                for tp, records in (await consumer.getmany(*todo, timeout_ms=500)).items():
                    for rec in records:
                        if rec.offset >= todo.get(tp, 0) or rec.timestamp < since_ms:
                            continue
                        error = "unreadable"
                        try:
                            doc = orjson.loads(rec.value) if rec.value is not None else None
                            if isinstance(doc, dict) and isinstance(doc.get("error"), str):
                                error = doc["error"]
                        except orjson.JSONDecodeError:
                            pass
                        counts[(names[tp.topic], error)] += 1
                for tp in list(todo):
                    if await consumer.position(tp) >= todo[tp]:
                        del todo[tp]
        finally:
            await consumer.stop()
        return [
            {"topic": topic, "error": error, "count_1h": n}
            for (topic, error), n in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
        ]

    async def group_lag(self) -> list[dict[str, Any]]:
        inputs = {self.settings.topic(t): t for t in contract.INPUTS}
        admin = make_admin(self.settings)
        await admin.start()
        try:
            committed = await admin.list_consumer_group_offsets(self.settings.app_id)
        finally:
            await admin.close()
        mine = {tp: meta.offset for tp, meta in committed.items() if tp.topic in inputs and meta.offset >= 0}
        if not mine:
            return []
        consumer = make_consumer(self.settings, group_id=None)
        await consumer.start()
        try:
            ends = await consumer.end_offsets(list(mine))
        finally:
            await consumer.stop()
        return [
            {"topic": inputs[tp.topic], "partition": tp.partition, "lag": max(0, ends[tp] - offset)}
            for tp, offset in sorted(mine.items(), key=lambda kv: (kv[0].topic, kv[0].partition))
        ]
