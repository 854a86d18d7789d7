"""``gridpulse alerts-consumer``: alerts.credit, alerts.outage, alerts.inspection -> PostgreSQL ->
customer managers.

One loop, in the order that makes a crash harmless:

1. ``getmany`` a batch from both alert topics (consumer group ``settings.alerts_group_id``,
   auto-commit off);
2. decode and validate every message; a malformed one is logged with its topic, partition and
   offset, counted and skipped (alert topics are outputs: there is no DLQ to send it to);
3. store the batch in ONE transaction: per message (in a savepoint) ``upsert_alert``, the
   notification decision (``alerts.notifier.notice_event``) and, when it is news, one outbox row
   per manager (``alert_notifications``; an inspection area alert whose suspects changed while
   it stayed open: one row per manager it names who has not heard of it, ``untold_managers``).
   One transaction per batch costs one commit for
   hundreds of alerts, and the offsets below then cover exactly what that commit stored;
4. commit the batch's offsets to Kafka. A crash before this redelivers the batch: the upsert is
   idempotent and the notice state makes a repeated message no news, so nothing doubles;
5. hand the new outbox rows to the dispatcher, which notifies in the background and stamps
   each row delivered or given up. Rows left unstamped (a crash, a stop) are sent again at the
   next start: notification is at least once, the store is the record.

When PostgreSQL is unreachable (refused, gone, shutting down) the batch stays in memory, no
offset is committed, and the store is retried with capped exponential backoff; meanwhile the
partitions are paused and polled so the consumer keeps its group membership. Nothing is
skipped: every alert is stored once the database is back.

Operations (issue 15): for its whole lifetime the consumer serves ``/metrics``, ``/livez`` and
``/readyz`` on ``settings.alerts_ops_bind``:``alerts_ops_port`` (``observability.http``; port 0:
any free port, logged). Metrics: ``alerts.metrics`` and the shared consuming families (events in
per topic, lag and committed offset age per partition of ``settings.alerts_group_id``).
``/readyz``: partitions assigned, PostgreSQL answers ``SELECT 1``, the consumer's Kafka client
answers a metadata request, and no more than ``alerts_ready_max_lag`` alert messages wait
(end offsets minus committed, measured every few seconds). ``/livez`` fails once the consume
loop has ended with an error.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import asyncpg
import orjson
from aiokafka import AIOKafkaConsumer, ConsumerRecord, TopicPartition
from aiokafka.errors import KafkaError
from pydantic import BaseModel, ValidationError

from alerts.metrics import (
    ALERTS_SKIPPED,
    ALERTS_STORED,
    KINDS,
    NOTIFICATIONS,
    SEVERITIES,
    STORE_RETRIES,
    STORE_TRANSACTION_SECONDS,
    STORE_TRANSACTIONS,
    PartitionProgress,
    bounded,
)
from alerts.notifier import (
    Notification,
    NotificationDispatcher,
    Notifier,
    backoff_delay,
    make_notifier,
    newcomer_event,
    notice_event,
)
from alerts.store import (
    finish_notification,
    migrate,
    notice_state,
    pending_notifications,
    queue_notifications,
    record_notice,
    untold_managers,
    upsert_alert,
)
from gridpulse.settings import Settings
from observability.checks import kafka_answers, postgres_answers
from observability.health import Check, Health
from observability.http import bound_port, serve
from observability.metrics import EVENTS_IN
from schemas import topics
from schemas.codec import describe_validation_error
from schemas.models import CreditAlert, InspectionAlert, OutageAlert
from streams.kafka import make_consumer

log = logging.getLogger(__name__)

# The database is not there (now): keep the batch, do not commit, retry.
DB_UNAVAILABLE: tuple[type[BaseException], ...] = (
    OSError,  # connection refused / reset
    TimeoutError,
    asyncpg.PostgresConnectionError,  # server gone, connection lost
    asyncpg.exceptions.OperatorInterventionError,  # shutting down, cannot connect now
    asyncpg.InterfaceError,  # a pooled connection closed underneath us
    # an idle pooled connection that has just read the server's shutdown notice (FATAL
    # admin_shutdown) is left in an error state; the next query on it fails with "cannot switch
    # to state ..; another operation (2) is in progress" before the closed socket is noticed
    asyncpg.InternalClientError,
)
# The database refuses this one alert: log, count, go on with the others.
ALERT_REJECTED: tuple[type[BaseException], ...] = (
    asyncpg.DataError,
    asyncpg.IntegrityConstraintViolationError,
)

_MODELS: dict[str, type[BaseModel]] = {
    "credit": CreditAlert,
    "outage": OutageAlert,
    "inspection": InspectionAlert,
}
_RESCAN_S = 30.0  # outbox rows not in flight (a stamp that failed, an overload) are picked up
_MAX_IN_FLIGHT = 10_000  # beyond this, new outbox rows wait for the rescan
_DB_BACKOFF_BASE_S = 0.5
_PROGRESS_S = 2.0  # how often lag and committed offset age are measured
_PROGRESS_STALE_S = 30.0  # /readyz: a lag measured longer ago than this is not known


class MalformedAlert(ValueError):
    def __init__(self, error: str, detail: str) -> None:
        super().__init__(f"{error}: {detail}")
        self.error = error
        self.detail = detail


def decode_alert(kind: str, value: bytes | None) -> dict[str, Any]:
    """An alert message as the dict ``upsert_alert`` stores; MalformedAlert when unusable.

    Validated against the contract model of its topic on the contract's fields only: a newer
    producer's added fields pass through into the stored payload.
    """
    if value is None:
        raise MalformedAlert("tombstone", "null value")
    try:
        doc = orjson.loads(value)
    except orjson.JSONDecodeError as exc:
        raise MalformedAlert("decode", str(exc)) from None
    if not isinstance(doc, dict):
        raise MalformedAlert("decode", f"a JSON {type(doc).__name__}, not an object")
    model = _MODELS[kind]
    try:
        alert = model.model_validate({k: v for k, v in doc.items() if k in model.model_fields})
    except ValidationError as exc:
        raise MalformedAlert("schema", describe_validation_error(exc)) from None
    return {**doc, "kind": alert.kind, "ts": alert.ts.isoformat()}  # type: ignore[attr-defined]


@dataclass
class ConsumerCounters:
    consumed: int = 0  # messages read (a redelivered one counts again)
    stored: int = 0  # alert messages the database has (upserted, committed)
    malformed: int = 0  # undecodable or invalid messages skipped
    rejected: int = 0  # valid messages the database refused (data errors), skipped
    batches: int = 0
    db_retries: int = 0  # store attempts that found the database unavailable
    commit_failures: int = 0  # offset commits that failed after a store (redelivery follows)
    notifications: int = 0  # outbox rows queued


@dataclass(frozen=True)
class _Item:
    tp: TopicPartition
    offset: int
    alert: dict[str, Any] | None  # None: malformed, skipped


class AlertsConsumer:
    """The alert store's writer and the managers' notifier; ``run`` until ``stop`` is set."""

    def __init__(
        self,
        settings: Settings,
        notifier: Notifier | None = None,
        *,
        rng: random.Random | None = None,
    ) -> None:
        self.settings = settings
        self.notifier = notifier if notifier is not None else make_notifier(settings)
        self.counters = ConsumerCounters()
        self.topics = {
            settings.topic(topics.ALERTS_CREDIT): "credit",
            settings.topic(topics.ALERTS_OUTAGE): "outage",
            settings.topic(topics.ALERTS_INSPECTION): "inspection",
        }
        self.dispatcher = NotificationDispatcher(
            self.notifier, self._finish, concurrency=settings.alerts_notify_concurrency
        )
        self._rng = rng or random.Random()
        self._pool: asyncpg.Pool | None = None
        self._stop = asyncio.Event()
        self.ready = asyncio.Event()  # set once the consumer has joined its group and started
        self._consumer: AIOKafkaConsumer | None = None
        self._events_in = {name: EVENTS_IN.labels(topic=name) for name in self.topics}
        self.progress = PartitionProgress(settings.alerts_group_id)
        self.health = Health("alerts-consumer")
        self.health.add_check("assigned", self._check_assigned, timeout_s=1.0)
        self.health.add_check("postgres", self._check_postgres, timeout_s=3.0, dependency=True)
        self.health.add_check("kafka", self._check_kafka, timeout_s=5.0, dependency=True)
        self.health.add_check("caught_up", self._check_caught_up, timeout_s=1.0)
        self.ops_port: int | None = None  # where /metrics /livez /readyz answer, once running

    # --- lifecycle -----------------------------------------------------------------------

    async def run(self, stop: asyncio.Event | None = None) -> None:
        if stop is not None:
            self._stop = stop
        # first, so that a probe sees why the consumer is not ready (the database away, say)
        ops = await serve(self.health, self.settings.alerts_ops_bind, self.settings.alerts_ops_port)
        self.ops_port = bound_port(ops)
        log.info(
            "alerts-consumer: /metrics /livez /readyz on http://%s:%d",
            self.settings.alerts_ops_bind,
            self.ops_port,
        )
        try:
            await self._run()
        except Exception as exc:
            self.health.fail(f"the consume loop ended: {type(exc).__name__}: {exc}"[:300])
            raise
        finally:
            self.progress.clear()
            await ops.cleanup()
            await self.health.stop()

    async def _run(self) -> None:
        self._pool = await self._until_db(self._open_pool, "connect to the alert store")
        if self._pool is None:
            return
        consumer: AIOKafkaConsumer | None = None
        watch: asyncio.Task[None] | None = None
        try:
            await self._until_db(self._migrate, "migrate the alert store")
            if self._stop.is_set():
                return
            await self._resend_pending()
            consumer = make_consumer(
                self.settings,
                *self.topics,
                group_id=self.settings.alerts_group_id,
                enable_auto_commit=False,
                auto_offset_reset="earliest",
            )
            await consumer.start()
            self._consumer = consumer
            watch = asyncio.create_task(self._watch_progress(consumer), name="alerts-progress")
            self.ready.set()
            log.info(
                "alerts-consumer: group %s reading %s", self.settings.alerts_group_id, ", ".join(self.topics)
            )
            next_rescan = time.monotonic() + _RESCAN_S
            while not self._stop.is_set():
                batch = await consumer.getmany(timeout_ms=500, max_records=self.settings.alerts_batch_max)
                if batch:
                    await self._handle(consumer, batch)
                if time.monotonic() >= next_rescan:
                    next_rescan = time.monotonic() + _RESCAN_S
                    try:
                        await self._resend_pending()
                    except DB_UNAVAILABLE as exc:
                        log.warning("alerts-consumer: outbox rescan skipped, database unavailable: %r", exc)
        finally:
            if watch is not None:
                watch.cancel()
                await asyncio.gather(watch, return_exceptions=True)
            self._consumer = None
            if consumer is not None:
                await consumer.stop()
            await self.dispatcher.close(timeout_s=self.settings.alerts_webhook_timeout_s)
            await self._pool.close()
            log.info("alerts-consumer stopped: %s", asdict(self.counters))

    def stop(self) -> None:
        self._stop.set()

    async def _open_pool(self) -> asyncpg.Pool:
        return await asyncpg.create_pool(
            self.settings.pg_connect_dsn(), min_size=1, max_size=4, command_timeout=30
        )

    async def _migrate(self) -> None:
        assert self._pool is not None
        async with self._pool.acquire() as conn:
            applied = await migrate(conn)
        if applied:
            log.info("alert store: applied migrations %s", ", ".join(applied))

    async def _until_db(self, step: Any, what: str) -> Any:
        """Run ``step`` until the database lets it (capped exponential backoff); None on stop."""
        attempt = 0
        while not self._stop.is_set():
            try:
                return await step()
            except DB_UNAVAILABLE as exc:
                attempt += 1
                self.counters.db_retries += 1
                STORE_RETRIES.inc()
                delay = self._db_delay(attempt)
                log.warning("alerts-consumer: cannot %s (%r); retry in %.1f s", what, exc, delay)
                await self._sleep(delay)
        return None

    def _db_delay(self, attempt: int) -> float:
        return backoff_delay(attempt, _DB_BACKOFF_BASE_S, self.settings.alerts_db_backoff_max_s, self._rng)

    async def _sleep(self, seconds: float) -> None:
        """Sleep, waking early on stop."""
        try:
            await asyncio.wait_for(self._stop.wait(), timeout=seconds)
        except TimeoutError:
            pass

    # --- one batch -----------------------------------------------------------------------

    def _decode(self, records: dict[TopicPartition, list[ConsumerRecord]]) -> list[_Item]:
        items: list[_Item] = []
        for tp, recs in records.items():
            kind = self.topics[tp.topic]
            self._events_in[tp.topic].inc(len(recs))
            for rec in recs:
                self.counters.consumed += 1
                try:
                    alert: dict[str, Any] | None = decode_alert(kind, rec.value)
                except MalformedAlert as exc:
                    self.counters.malformed += 1
                    ALERTS_SKIPPED.labels(topic=tp.topic, error=exc.error).inc()
                    alert = None
                    log.error(
                        "alerts-consumer: skipped malformed alert at %s[%d]@%d (%s): %s",
                        tp.topic,
                        tp.partition,
                        rec.offset,
                        exc.error,
                        exc.detail,
                    )
                items.append(_Item(tp, rec.offset, alert))
        return items

    async def _handle(
        self, consumer: AIOKafkaConsumer, records: dict[TopicPartition, list[ConsumerRecord]]
    ) -> None:
        items = self._decode(records)
        attempt = 0
        while True:
            try:
                notifications = await self._store(items)
                break
            except DB_UNAVAILABLE as exc:
                attempt += 1
                self.counters.db_retries += 1
                STORE_RETRIES.inc()
                delay = self._db_delay(attempt)
                log.warning(
                    "alerts-consumer: alert store unavailable (%r); %d alerts held, offsets not "
                    "committed, retry %d in %.1f s",
                    exc,
                    len(items),
                    attempt,
                    delay,
                )
                more = await self._keepalive(consumer, delay)
                if self._stop.is_set():
                    return  # uncommitted: the next start reads the batch again
                items.extend(self._decode(more))
        if attempt:
            log.info("alerts-consumer: alert store back after %d retries", attempt)
        await self._commit(consumer, items)
        self.counters.batches += 1
        self._submit(notifications)
        if attempt:
            try:
                await self._resend_pending()  # stamps that failed during the outage
            except DB_UNAVAILABLE as exc:  # gone again: the periodic rescan will do it
                log.warning("alerts-consumer: outbox rescan skipped, database unavailable: %r", exc)

    async def _keepalive(
        self, consumer: AIOKafkaConsumer, seconds: float
    ) -> dict[TopicPartition, list[ConsumerRecord]]:
        """Wait ``seconds`` while still polling (paused partitions), so the group does not
        evict us for exceeding max_poll_interval_ms. Records that do arrive (a partition newly
        assigned by a rebalance) join the held batch."""
        assigned = consumer.assignment()
        consumer.pause(*assigned)
        deadline = time.monotonic() + seconds
        more: dict[TopicPartition, list[ConsumerRecord]] = {}
        try:
            while not self._stop.is_set() and (left := deadline - time.monotonic()) > 0:
                got = await consumer.getmany(timeout_ms=int(min(left, 1.0) * 1000) + 1)
                for tp, recs in got.items():
                    more.setdefault(tp, []).extend(recs)
                if not got:
                    await self._sleep(min(0.2, max(0.0, deadline - time.monotonic())))
        finally:
            consumer.resume(*[tp for tp in assigned if tp in consumer.assignment()])
        return more

    async def _store(self, items: Sequence[_Item]) -> list[Notification]:
        """Everything decodable in ``items``, in one transaction; the outbox rows it queued."""
        assert self._pool is not None
        notifications: list[Notification] = []
        stored: list[tuple[str, str]] = []  # (kind, severity) of each alert stored
        rejected: list[str] = []  # the topic of each alert refused
        unaddressed: list[tuple[str, str]] = []  # (kind, severity) of news that names no manager
        t0 = time.perf_counter()
        try:
            async with self._pool.acquire() as conn, conn.transaction():
                for item in items:
                    if item.alert is None:
                        continue
                    try:
                        notifications.extend(await self._store_one(conn, item.alert, unaddressed))
                        stored.append((str(item.alert.get("kind")), str(item.alert.get("severity"))))
                    except ALERT_REJECTED as exc:
                        rejected.append(item.tp.topic)
                        log.error(
                            "alerts-consumer: alert store refused %s[%d]@%d (alert %s): %r",
                            item.tp.topic,
                            item.tp.partition,
                            item.offset,
                            item.alert.get("alert_id"),
                            exc,
                        )
        except BaseException:
            STORE_TRANSACTIONS.labels(outcome="failed").inc()
            STORE_TRANSACTION_SECONDS.labels(outcome="failed").observe(time.perf_counter() - t0)
            raise
        STORE_TRANSACTIONS.labels(outcome="committed").inc()
        STORE_TRANSACTION_SECONDS.labels(outcome="committed").observe(time.perf_counter() - t0)
        for kind, severity in stored:
            ALERTS_STORED.labels(kind=bounded(kind, KINDS), severity=bounded(severity, SEVERITIES)).inc()
        for topic in rejected:
            ALERTS_SKIPPED.labels(topic=topic, error="rejected").inc()
        for n in notifications:
            NOTIFICATIONS.labels(
                outcome="queued",
                kind=bounded(n.alert.get("kind"), KINDS),
                severity=bounded(n.severity, SEVERITIES),
            ).inc()
        for kind, severity in unaddressed:
            NOTIFICATIONS.labels(
                outcome="suppressed", kind=bounded(kind, KINDS), severity=bounded(severity, SEVERITIES)
            ).inc()
        self.counters.stored += len(stored)
        self.counters.rejected += len(rejected)
        self.counters.notifications += len(notifications)
        return notifications

    async def _store_one(
        self, conn: asyncpg.Connection, alert: dict[str, Any], unaddressed: list[tuple[str, str]]
    ) -> list[Notification]:
        """Store one alert (a savepoint); its outbox rows. News that names no manager is
        recorded in ``unaddressed`` (counted as suppressed once the batch commits)."""
        alert_id = alert["alert_id"]
        async with conn.transaction():  # a savepoint: a refused alert leaves the batch intact
            await upsert_alert(conn, alert)
            state = await notice_state(conn, alert_id)
            assert state is not None
            event = notice_event(
                state.status,
                state.severity,
                state.notice_status,
                state.notice_severity,
                state.acknowledged_severity,
            )
            nobody = event is not None and not state.manager_ids
            if nobody:
                log.warning("alerts-consumer: alert %s has no manager to notify (%s)", alert_id, event)
            rows = await record_notice(conn, alert_id, state, event)
            if event is None and state.payload.get("kind") == "inspection":
                # an area alert's suspects changed while it stayed open: tell their new managers
                event = newcomer_event(state.status, state.severity, state.acknowledged_severity)
                untold = await untold_managers(conn, alert_id, state.manager_ids) if event else []
                if event and untold:
                    rows = await queue_notifications(conn, alert_id, state, event, untold)
        assert event is not None or not rows
        if nobody:
            unaddressed.append((str(alert.get("kind")), state.severity))
        return [
            Notification(
                id=r["id"],
                manager_id=r["manager_id"],
                alert_id=alert_id,
                event=event,  # type: ignore[arg-type]
                status=state.status,
                severity=state.severity,
                ts=state.ts,
                alert=state.payload,
            )
            for r in rows
        ]

    async def _commit(self, consumer: AIOKafkaConsumer, items: Sequence[_Item]) -> None:
        offsets: dict[TopicPartition, int] = {}
        for item in items:
            offsets[item.tp] = max(offsets.get(item.tp, 0), item.offset + 1)
        assigned = consumer.assignment()
        offsets = {tp: o for tp, o in offsets.items() if tp in assigned}
        if not offsets:
            return
        try:
            await consumer.commit(offsets)
        except KafkaError as exc:
            # stored but not committed: the batch comes again and is stored again, harmlessly
            self.counters.commit_failures += 1
            log.warning("alerts-consumer: offset commit failed (%r); the batch will be redelivered", exc)
            return
        now = time.monotonic()
        for tp, offset in offsets.items():
            self.progress.committed((tp.topic, tp.partition), offset, now)

    # --- operations: lag, committed offset age, readiness ----------------------------------

    async def _watch_progress(self, consumer: AIOKafkaConsumer) -> None:
        """Every few seconds: the committed offsets of newly assigned partitions, the ends of
        all assigned ones (the consumer's own client), lag and committed offset age."""
        failing = False
        while True:
            try:
                assigned = consumer.assignment()
                for tp in assigned:
                    if self.progress.known((tp.topic, tp.partition)):
                        continue
                    offset = await asyncio.wait_for(consumer.committed(tp), 10.0)
                    if offset is None:  # nothing committed yet: the group starts at the beginning
                        offset = (await asyncio.wait_for(consumer.beginning_offsets([tp]), 10.0))[tp]
                    if not self.progress.known((tp.topic, tp.partition)):  # no commit meanwhile
                        self.progress.committed((tp.topic, tp.partition), offset, time.monotonic())
                ends = await asyncio.wait_for(consumer.end_offsets(list(assigned)), 10.0) if assigned else {}
                self.progress.observe(
                    {(tp.topic, tp.partition): o for tp, o in ends.items()},
                    [(tp.topic, tp.partition) for tp in consumer.assignment()],
                    time.monotonic(),
                )
                failing = False
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # Kafka away: the lag stays unknown, /readyz says so
                if not failing:
                    log.warning("alerts-consumer: lag not measured (%s: %s)", type(exc).__name__, exc)
                failing = True
            await asyncio.sleep(_PROGRESS_S)

    async def _check_assigned(self) -> Check:
        consumer = self._consumer
        if consumer is None:
            return Check(False, "not consuming yet (the alert store first)")
        assigned = consumer.assignment()
        if not assigned:
            return Check(False, f"no partition assigned in group {self.settings.alerts_group_id} yet")
        return Check(True, f"{len(assigned)} partitions")

    async def _check_postgres(self) -> Check:
        return await postgres_answers(self.settings)

    async def _check_kafka(self) -> Check:
        # the consumer's own client once consuming; before that, one of the same settings
        return await kafka_answers(self.settings, self._consumer)

    async def _check_caught_up(self) -> Check:
        at = self.progress.measured_at
        if at is None:
            return Check(False, "lag not measured yet")
        age = time.monotonic() - at
        if age > _PROGRESS_STALE_S:
            return Check(False, f"lag last measured {age:.0f} s ago")
        lag, bound = self.progress.total_lag(), self.settings.alerts_ready_max_lag
        return Check(lag <= bound, f"{lag} alert messages wait (bound {bound})")

    # --- notifications -------------------------------------------------------------------

    def _submit(self, notifications: Sequence[Notification]) -> None:
        for n in notifications:
            if len(self.dispatcher.in_flight) >= _MAX_IN_FLIGHT:
                log.warning("alerts-consumer: %d notifications in flight; the rest wait", _MAX_IN_FLIGHT)
                return
            self.dispatcher.submit(n)

    async def _resend_pending(self) -> None:
        """Submit the outbox rows neither delivered nor given up that are not in flight."""
        assert self._pool is not None
        room = _MAX_IN_FLIGHT - len(self.dispatcher.in_flight)
        if room <= 0:
            return
        async with self._pool.acquire() as conn:
            rows = await pending_notifications(conn, exclude=sorted(self.dispatcher.in_flight), limit=room)
        if rows:
            log.info("alerts-consumer: sending %d pending notifications", len(rows))
        self._submit(
            [
                Notification(
                    id=r["id"],
                    manager_id=r["manager_id"],
                    alert_id=r["alert_id"],
                    event=r["event"],
                    status=r["status"],
                    severity=r["severity"],
                    ts=r["ts"],
                    alert=orjson.loads(r["payload"]),
                )
                for r in rows
            ]
        )

    async def _finish(
        self, notification: Notification, delivered: bool, attempts: int, error: str | None
    ) -> None:
        """Stamp the outbox row. While the database is away the stamp is retried with the
        store's backoff and the notification stays in flight, so the outbox rescan does not
        send it again: a notification delivered during an outage is stamped once the database
        is back, not delivered twice. Only a stop in the meantime leaves the row pending (it is
        sent again at the next start: at least once)."""
        assert self._pool is not None
        attempt = 0
        while True:
            try:
                async with self._pool.acquire(timeout=10) as conn:
                    await finish_notification(
                        conn, notification.id, delivered=delivered, attempts=attempts, error=error
                    )
                return
            except DB_UNAVAILABLE as exc:
                if self._stop.is_set():
                    raise
                attempt += 1
                delay = self._db_delay(attempt)
                log.log(
                    logging.WARNING if attempt == 1 else logging.DEBUG,  # one line per notification
                    "alerts-consumer: cannot stamp notification %s (%r); retry %d in %.1f s",
                    notification.id,
                    exc,
                    attempt,
                    delay,
                )
                await self._sleep(delay)


async def run_alerts_consumer(settings: Settings, stop: asyncio.Event | None = None) -> ConsumerCounters:
    consumer = AlertsConsumer(settings)
    await consumer.run(stop)
    return consumer.counters
