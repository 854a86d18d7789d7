"""What the agents share on one worker: tables, caches, the dead-letter path, the stats
publisher, the Redis sink and who owns which customer. Built once per worker in
``streams.worker.create_worker``.

Tables (RocksDB via rocksdict, each with a changelog topic) all hold one compact record per
customer, keyed by customer_id bytes and created with ``use_partitioner=True``: the input
topics are keyed by customer_id, so a customer's readings, bills, profile and state all live
in the same partition number and on the same worker.
"""

from __future__ import annotations

import logging
import os
import traceback
from collections import Counter, OrderedDict
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, NoReturn, TypeVar

import faust
import orjson
from aiokafka.errors import KafkaError
from faust.types import TP
from pydantic import BaseModel, ValidationError
from redis.exceptions import RedisError

from gridpulse.settings import Settings
from metering.arrears import ArrearsLedger
from metering.load import LoadState
from metering.stats import NO_BILLING, ArrearsBlock, arrears_block, stats_document
from schemas.codec import DeadLetterCounter, DecodeError, dead_letter, decode_keyed, describe_validation_error
from schemas.models import CustomerProfile
from schemas.shared import shared
from streams.app import rocksdb_options
from streams.app_types import Topics
from streams.context import event_context
from streams.faust_patches import OffsetGuard, delivered_offset, time_producer_waits
from streams.metrics import WorkerMetrics
from streams.ownership import Ownership
from streams.sinks import RedisHashSink

log = logging.getLogger(__name__)
M = TypeVar("M", bound=BaseModel)

# failures of the Kafka client, Redis, PostgreSQL or the network, not of the message
ENVIRONMENT_ERRORS: tuple[type[BaseException], ...] = (KafkaError, RedisError, OSError, TimeoutError)
FATAL_EXIT_CODE = 70  # EX_SOFTWARE: the worker's supervisor restarts it
# arrears blocks kept for customers with billing state (~1.5 KB each; the most recently used)
ARREARS_BLOCKS_KEPT = 20_000


@dataclass(frozen=True, slots=True)
class ProfileFacts:
    """What the worker's agents read of a customer's profile, kept per customer in
    :attr:`Runtime._profiles` instead of the ``CustomerProfile`` (a pydantic object of ~1.5 KB):
    the statistics document's terms (``metering.stats.ProfileTerms``), the reading checks'
    ``contract_kva``, the credit alerts' ``manager_id`` and what scoring reads
    (:meth:`scoring_terms`). Repeated values are shared between customers (``schemas.shared``).
    The name and the other fields stay in the profile table (JSON)."""

    tariff_class: str
    contract_kva: float | None
    voltage_kv: float | None
    pf_standard: float | None
    tariff_cny_per_kwh: float | None
    manager_id: str | None
    feeders: tuple[str, ...]
    emergency_generator: bool
    # the inspection stage (streams/agents/areas.py): the area whose summary meter the
    # customer's energy is counted against, and what its customer rules read
    transformer_area: str | None = None
    importance: str = "none"

    @classmethod
    def of(cls, p: CustomerProfile) -> ProfileFacts:
        return cls(
            shared(p.tariff_class),
            shared(p.contract_kva),
            shared(p.voltage_kv),
            shared(p.pf_standard),
            shared(p.tariff_cny_per_kwh),
            shared(p.manager_id),
            shared(tuple(shared(f) for f in p.feeders)),
            p.emergency_generator,
            shared(p.transformer_area),
            shared(p.importance),
        )

    def scoring_terms(self, customer_id: str) -> dict[str, Any]:
        """The profile as scoring reads it (``streams.agents.scoring.trim_profile``'s fields)."""
        return {
            "customer_id": customer_id,
            "voltage_kv": self.voltage_kv,
            "feeders": list(self.feeders),
            "emergency_generator": self.emergency_generator,
        }


def describe(exc: BaseException) -> str:
    """An exception for a log line or a dead letter's detail: its type and message, within the
    field's limit. A validation error is told by field and reason only
    (``schemas.codec.describe_validation_error``): its own message quotes the input, which may be
    a profile with the customer's name."""
    what = describe_validation_error(exc) if isinstance(exc, ValidationError) else str(exc)
    return f"{type(exc).__name__}: {what}"[:1000]


def message_fields(event: faust.EventT) -> dict[str, Any]:
    """Where a message is, as a log record's ``extra`` (fields of a JSON log line:
    observability.logs)."""
    msg = event.message
    return {"topic": msg.topic, "partition": msg.partition, "offset": msg.offset}


def log_failure(what: str, exc: BaseException, extra: dict[str, Any] | None = None) -> None:
    """Log an exception with its traceback's frames, not exc_info: the last line of a formatted
    exception repeats its message, which :func:`describe` has already made safe to log."""
    frames = "".join(traceback.format_tb(exc.__traceback__))
    log.error("%s: %s\n%s", what, describe(exc), frames, extra=extra)


def fatal(where: str, exc: BaseException, extra: dict[str, Any] | None = None) -> NoReturn:
    """Exit the worker at once, without acking or committing anything more.

    Used where an agent cannot go on without skipping messages. Nothing after the last commit
    is lost: a restarted worker reads on from there (the recovery the SIGKILL scenarios check).
    """
    log.critical(
        "fatal: %s: %s; the worker exits now and resumes from its last commit",
        where,
        describe(exc),
        extra=extra,
    )
    logging.shutdown()
    os._exit(FATAL_EXIT_CODE)


class Runtime:
    def __init__(self, app: faust.App, settings: Settings, topics: Topics) -> None:
        self.app = app
        self.settings = settings
        self.topics = topics
        self.tz = settings.tz
        self.dead_letters = DeadLetterCounter()
        self.counters: Counter[str] = Counter()
        self.ownership = Ownership(app, settings)
        time_producer_waits(app.producer, self.counters)  # producer_flush_ms, producer_ebb_wait_ms
        # the batch agents' input offsets: commits bounded by what they processed, holes
        # fetched again (offsets_refetched, commit_held_back, offsets_gap_skipped)
        self.offset_guard = OffsetGuard(app, self.counters)
        # Prometheus: events in, dead letters, batches, lag, ... (streams.metrics, /metrics)
        inputs = [topics.readings, topics.billing, topics.outages, topics.customers, topics.history]
        inputs += [topics.area_readings, topics.area_energy]
        self.metrics = WorkerMetrics(app, settings.app_id, [t.get_topic_name() for t in inputs])

        def table(name: str, help_: str) -> Any:
            return app.Table(
                name,
                key_type=bytes,  # bytes -> faust's "raw" codec: we serialise ourselves
                value_type=bytes,
                partitions=settings.topic_partitions,
                use_partitioner=True,
                options=rocksdb_options(settings),
                help=help_,
            )

        self.load_table = table("load-state", "per-customer load/energy aggregates (metering.load)")
        self.arrears_table = table("arrears-state", "per-customer arrears ledger (metering.arrears)")
        self.profile_table = table("customer-profiles", "latest valid customer profile, JSON")
        # inspection: the transformer areas of a customer over time, [[area, since], ...] JSON,
        # only for customers that moved (the others: their profile's area, from the beginning)
        self.area_table = table("customer-areas", "transformer areas of customers that moved, JSON")
        self._moved: dict[str, tuple[tuple[str, int], ...]] = {}
        # inspection: the energy of customers read before any profile of theirs, held for the
        # area their first profile names (streams.agents.areas.hold_energy), JSON
        self.held_energy_table = table("area-held-energy", "energy of customers without a profile yet, JSON")
        # per partition of `customers`: the offset after the last profile the customers agent applied
        self.profiles_applied: dict[int, int] = {}
        # what the agents read of the profiles (ProfileFacts), None for a customer without
        # one: a reading looks its customer up on the hot path
        self._profiles: dict[str, ProfileFacts | None] = {}
        self.redis = RedisHashSink(settings.redis_url, key_prefix=f"{settings.topic_prefix}gp:stats:")
        # what the aging timer last published per customer (ages change once a day)
        self.published_aging: dict[str, Any] = {}  # see billing.aging_changes
        # the arrears block of the document (metering.stats.ArrearsBlock): customers known to
        # have no billing state (most readings: no table read, no ledger), and the latest
        # blocks of those with one, each good until its local day ends; a billing event
        # replaces its customer's (set_ledger)
        self._no_billing: set[str] = set()
        self._arrears_blocks: OrderedDict[str, ArrearsBlock] = OrderedDict()

        # called with every batch of published stats documents, after they are sent
        self.on_stats: list[Callable[[list[dict[str, Any]]], Awaitable[None]]] = []

        app.on_partitions_revoked.connect(self._on_revoked)

    async def _on_revoked(self, sender: Any, /, *args: Any, signal: Any, **kwargs: Any) -> None:
        # partitions may come back with state changed by another worker: drop the caches
        self._profiles.clear()
        self._moved.clear()
        self.published_aging.clear()
        self._no_billing.clear()
        self._arrears_blocks.clear()

    def profiles_behind(self, partition: int) -> bool:
        """Whether ``customers``' partition ``partition`` (co-partitioned with the readings) has
        profiles this worker has not applied yet: its high watermark beyond both the last applied
        and the consumer's read position (the committed offset after the assignment's seek).
        Assigned but not fetched yet: behind; not assigned here: not."""
        tp = TP(self.topics.customers.get_topic_name(), partition)
        try:
            if tp not in self.app.consumer.assignment():
                return False  # not this worker's: nothing to wait for
            high = self.app.consumer.highwater(tp)
        except Exception:  # no consumer running (an agent test): nothing to wait for
            return False
        if high is None:
            return True
        done = max(self.profiles_applied.get(partition, 0), delivered_offset(self.app.consumer, tp) or 0)
        return int(high) > done

    # ------------------------------------------------------------------ state access

    def profile(self, customer_id: str) -> ProfileFacts | None:
        """What the agents read of the customer's latest valid profile (cached; from the profile
        table on a miss), None without one."""
        try:
            return self._profiles[customer_id]
        except KeyError:
            raw = self.profile_table.get(customer_id.encode())
            p = ProfileFacts.of(CustomerProfile.model_validate_json(raw)) if raw else None
            self._profiles[shared(customer_id)] = p
            if p is not None and p.transformer_area is not None:
                self.area_history(customer_id)  # a moved customer's areas, cached with its profile
            return p

    def areas_of(self, customer_id: str) -> tuple[tuple[str, int], ...]:
        """The customer's transformer areas over time, oldest first: ``(area, since)`` (epoch s;
        the first from 0). Empty without a known area. Cached: on the readings' hot path."""
        moved = self._moved.get(customer_id)
        if moved is not None:
            return moved
        p = self.profile(customer_id)
        moved = self._moved.get(customer_id)  # the profile's miss reads it too
        if moved is not None:
            return moved
        return () if p is None or p.transformer_area is None else ((p.transformer_area, 0),)

    def area_history(self, customer_id: str) -> tuple[tuple[str, int], ...]:
        """The customer's recorded areas (customers that moved), from the table; empty without."""
        raw = self.area_table.get(customer_id.encode())
        if not raw:
            self._moved.pop(customer_id, None)
            return ()
        history = tuple((shared(str(a)), int(since)) for a, since in orjson.loads(raw))
        self._moved[shared(customer_id)] = history
        return history

    def set_area_history(
        self, event: faust.EventT, customer_id: str, history: tuple[tuple[str, int], ...]
    ) -> None:
        with event_context(event):
            self.area_table[customer_id.encode()] = orjson.dumps([list(h) for h in history])
        self._moved[shared(customer_id)] = history

    def set_profile(self, event: faust.EventT, customer_id: str, profile: CustomerProfile | None) -> None:
        key = customer_id.encode()
        with event_context(event):
            if profile is None:
                self.profile_table.pop(key, None)
            else:
                self.profile_table[key] = profile.model_dump_json().encode()
        self._profiles[shared(customer_id)] = None if profile is None else ProfileFacts.of(profile)

    def load_state(self, customer_id: str) -> LoadState:
        return self._load_state(self.load_table.get(customer_id.encode()))

    def _load_state(self, raw: bytes | None) -> LoadState:
        if raw is None:
            return LoadState(tz=self.tz, lateness_s=self.settings.lateness_s)
        return LoadState.from_bytes(raw, tz=self.tz, lateness_s=self.settings.lateness_s)

    def ledger(self, customer_id: str) -> ArrearsLedger:
        raw = self.arrears_table.get(customer_id.encode())
        return ArrearsLedger(tz=self.tz) if raw is None else ArrearsLedger.from_bytes(raw, tz=self.tz)

    def set_ledger(self, customer_id: str, ledger: ArrearsLedger) -> None:
        """Write the customer's ledger (the only writer of the arrears table) and forget its
        cached arrears block."""
        self.arrears_table[customer_id.encode()] = ledger.to_bytes()
        self._no_billing.discard(customer_id)
        self._arrears_blocks.pop(customer_id, None)

    def arrears(self, customer_id: str, now: datetime) -> ArrearsBlock:
        """The customer's arrears block at ``now``: from the caches while it holds, else from
        the ledger in the table (then kept)."""
        if customer_id in self._no_billing:
            return NO_BILLING
        block = self._arrears_blocks.get(customer_id)
        if block is not None and block.holds_at(now):
            self._arrears_blocks.move_to_end(customer_id)
            return block
        return self._keep_arrears(customer_id, arrears_block(self.ledger(customer_id), now, self.tz))

    def _keep_arrears(self, customer_id: str, block: ArrearsBlock) -> ArrearsBlock:
        if not block.has_events:
            self._no_billing.add(shared(customer_id))
            self._arrears_blocks.pop(customer_id, None)
            return block
        self._arrears_blocks[customer_id] = block
        self._arrears_blocks.move_to_end(customer_id)
        if len(self._arrears_blocks) > ARREARS_BLOCKS_KEPT:
            self._arrears_blocks.popitem(last=False)
        return block

    # ------------------------------------------------------------------ dead letters

    async def guarded(self, topic: str, event: faust.EventT, process: Callable[[], Awaitable[None]]) -> None:
        """Process one message so that no agent dies on it and none is skipped silently.

        An exception must never leave an agent: faust then acks the message (its offset is
        committed) and restarts the agent, and the message is lost. Instead:

        - the Kafka client or a server failed (:data:`ENVIRONMENT_ERRORS`): the message was
          fine, so the worker exits at once (:func:`fatal`, as if SIGKILLed) and, restarted,
          reads on from the last committed offset; the state's dedup makes the replay exact;
        - anything else is a defect that this message meets: the message goes to the topic's
          DLQ as ``processing_failed`` with the exception, and the agent goes on.
        """
        self.metrics.events_in(event.message.topic)
        try:
            await process()
        except ENVIRONMENT_ERRORS as exc:
            fatal(
                f"{topic} partition {event.message.partition} offset {event.message.offset}",
                exc,
                message_fields(event),
            )
        except Exception as exc:
            await self.processing_failed(topic, [event], exc)

    async def processing_failed(self, topic: str, events: Iterable[faust.EventT], exc: BaseException) -> None:
        """Dead-letter messages whose processing raised (a defect, not bad input)."""
        events = list(events)
        # one message: its place; a batch: each message's dead-letter line has its own
        where = message_fields(events[0]) if len(events) == 1 else {"messages": len(events)}
        log_failure(f"{topic}: processing failed, to the DLQ", exc, where)
        for event in events:
            self.counters["processing_failed"] += 1
            await self.dead_letter(topic, event, "processing_failed", describe(exc))

    async def dead_letter(
        self, topic: str, event: faust.EventT, kind: str, detail: str, interval_index: int | None = None
    ) -> None:
        """Send an unusable message to ``<topic>.dlq`` with its context; it is then acked like
        any other, so its offset is committed after the dead letter is flushed.
        ``interval_index``: only that interval of a block is unusable (the record says which)."""
        msg = event.message
        record = dead_letter(
            msg.value,
            msg.key,
            msg.topic,
            msg.partition,
            msg.offset,
            kind,
            detail,
            datetime.now(UTC),
            interval_index,
        )
        self.dead_letters.add(topic, kind)
        self.metrics.dead_letter(msg.topic, kind)
        # the kind and the place only: the detail may quote the input (it is in the DLQ record)
        log.warning(
            "dead letter: %s[%d] offset %d to the DLQ (%s)",
            msg.topic,
            msg.partition,
            msg.offset,
            kind,
            extra={**message_fields(event), "error": kind, "interval_index": interval_index},
        )
        await self.topics.dlq[topic].send(key=msg.key, value=record)

    async def decode_input(
        self, topic: str, event: faust.EventT, model: type[M], key_field: str = "customer_id"
    ) -> M | None:
        """The message as ``model``, or None after dead-lettering it: undecodable, invalid, or
        keyed by something else than its ``key_field`` (it would land in another partition's
        state; ``schemas.codec.decode_keyed``)."""
        msg = event.message
        try:
            return decode_keyed(model, msg.key, msg.value, key_field)
        except DecodeError as exc:
            await self.dead_letter(topic, event, exc.kind, exc.detail)
            return None

    # ------------------------------------------------------------------ stats

    def stats_snapshot(
        self,
        customer_id: str,
        now: datetime,
        load: LoadState | None = None,
        ledger: ArrearsLedger | None = None,
    ) -> dict[str, Any] | None:
        """The customer's ``stats.customer`` document (``metering.stats.stats_document``) from
        its state in the tables, or ``load`` / ``ledger`` when the caller has just changed them;
        None while nothing is known of the customer. The arrears come from :meth:`arrears`
        unless ``ledger`` is given (its block is then kept)."""
        if ledger is not None:
            self._no_billing.discard(customer_id)
            self._arrears_blocks.pop(customer_id, None)
            block = self._keep_arrears(customer_id, arrears_block(ledger, now, self.tz))
        else:
            block = self.arrears(customer_id, now)
        if load is None:
            raw = self.load_table.get(customer_id.encode())
            if raw is None and not block.has_events:
                return None  # no reading, no billing event: stats_document's None, without a state
            load = self._load_state(raw)
        return stats_document(
            customer_id,
            load,
            block,
            self.profile(customer_id),
            now,
            self.tz,
            self.settings.gap_report_days,
        )

    async def publish_stats(self, docs: Iterable[dict[str, Any]]) -> int:
        published = []
        for doc in docs:
            cid = doc["customer_id"]
            raw = orjson.dumps(doc)
            # buffered, not awaited one by one: faust flushes its producer before it commits
            # offsets, exactly as for the changelog writes (faust.transport.consumer; the
            # buffer's flush waits for every message: streams.faust_patches.complete_buffer_flush)
            self.topics.stats.send_soon(key=cid.encode(), value=raw)
            self.redis.add(cid, doc, raw)
            published.append(doc)
        self.counters["stats_published"] += len(published)
        await self.redis.flush()
        for hook in self.on_stats:  # e.g. rescoring (streams/agents/scoring.py)
            try:
                await hook(published)
            except ENVIRONMENT_ERRORS:
                raise  # the agent's guard: the worker exits and replays (streams.runtime.fatal)
            except Exception as exc:
                # A defect in a derived stage must not stop the statistics (nor crash-loop the
                # worker on replay): its outputs for these documents are skipped and catch up
                # on its next pass (scores) or the customer's next statistics (credit alerts).
                self.counters["on_stats_failed"] += 1
                log_failure(f"{hook.__qualname__} failed on {len(published)} statistics", exc)
        return len(published)
