"""Plain aiokafka clients configured from Settings (topic admin, tests, benchmarks, tools).

The Faust worker builds its own clients from the same settings (streams/app.py); everything
else that talks to Kafka goes through these factories so SASL/SSL options apply everywhere.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRecord, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import KafkaError

from gridpulse.settings import Settings
from schemas.topics import CONTRACT_TOPICS

log = logging.getLogger(__name__)

# CreateTopics error codes that mean "nothing to do".
_TOPIC_ALREADY_EXISTS = 36


class TopicAdminError(RuntimeError):
    """The broker refused to create a topic (other than: it exists already)."""


def client_kwargs(settings: Settings) -> dict[str, Any]:
    return {"bootstrap_servers": settings.kafka_bootstrap, **settings.aiokafka_security()}


def make_producer(settings: Settings, **kw: Any) -> AIOKafkaProducer:
    opts: dict[str, Any] = {"acks": "all", "enable_idempotence": True, "linger_ms": 20}
    opts.update(kw)
    return AIOKafkaProducer(**client_kwargs(settings), **opts)


def make_consumer(settings: Settings, *topics: str, **kw: Any) -> AIOKafkaConsumer:
    opts: dict[str, Any] = {"enable_auto_commit": False, "auto_offset_reset": "earliest"}
    opts.update(kw)
    return AIOKafkaConsumer(*topics, **client_kwargs(settings), **opts)


def make_admin(settings: Settings) -> AIOKafkaAdminClient:
    return AIOKafkaAdminClient(**client_kwargs(settings))


async def create_contract_topics(settings: Settings, partitions: int | None = None) -> dict[str, str]:
    """Create every topic of CONTRACT.md that does not exist yet; returns {topic: created|exists}.

    Idempotent: an existing topic is left as it is (its partition count is reported, never
    changed, because changing it would break the co-partitioning of customer-keyed tables).
    """
    n = partitions or settings.topic_partitions
    return await create_missing_topics(
        settings,
        [
            NewTopic(
                name=settings.topic(spec.name),
                num_partitions=n,
                replication_factor=settings.topic_replication,
                topic_configs=dict(spec.config),
            )
            for spec in CONTRACT_TOPICS
        ],
    )


async def create_internal_topics(settings: Settings) -> dict[str, str]:
    """The worker's own repartition topic (``<app_id>-area-energy``, the inspection stage's), with
    the app's partitions, before the worker starts: faust creates an internal topic only after
    its first rebalance, and a group assigned before the topic existed ignores it ("Ignoring
    missing topic") until the next rebalance -- its agent would read nothing. Idempotent."""
    from streams.app import area_energy_topic

    return await create_missing_topics(
        settings,
        [
            NewTopic(
                name=area_energy_topic(settings),
                num_partitions=settings.topic_partitions,
                replication_factor=settings.topic_replication,
            )
        ],
    )


async def create_missing_topics(settings: Settings, wanted: list[NewTopic]) -> dict[str, str]:
    """Create the topics of ``wanted`` that do not exist yet; returns {topic: created|exists}."""
    admin = make_admin(settings)
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        todo = [t for t in wanted if t.name not in existing]
        outcome = {t.name: "exists" for t in wanted if t.name in existing}
        if todo:
            resp = await admin.create_topics(todo)
            for topic_error in resp.topic_errors:
                name, code = topic_error[0], topic_error[1]
                if code == 0:
                    outcome[name] = "created"
                elif code == _TOPIC_ALREADY_EXISTS:
                    outcome[name] = "exists"
                else:
                    msg = topic_error[2] if len(topic_error) > 2 else ""
                    raise TopicAdminError(f"cannot create topic {name}: error code {code} {msg}")
        return outcome
    except KafkaError as exc:
        raise TopicAdminError(
            f"Kafka at {settings.kafka_bootstrap} did not answer ({exc!r}); is it running? (make up)"
        ) from exc
    finally:
        await admin.close()


async def delete_topics(settings: Settings, names: list[str]) -> None:
    admin = make_admin(settings)
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        gone = [n for n in names if n in existing]
        if gone:
            await admin.delete_topics(gone)
    finally:
        await admin.close()


async def delete_topics_with_prefix(settings: Settings, *prefixes: str) -> list[str]:
    """Delete every topic whose name starts with one of ``prefixes`` (an app's changelog and
    assignor topics, a run's own topics); the names deleted."""
    admin = make_admin(settings)
    await admin.start()
    try:
        names = [t for t in await admin.list_topics() if t.startswith(prefixes)]
        if names:
            await admin.delete_topics(names)
        return names
    finally:
        await admin.close()


async def read_all(settings: Settings, topic: str, *, within_s: float = 60.0) -> list[ConsumerRecord]:
    """Every record of a topic (full name) from the beginning to its current end, without a
    consumer group: what a dashboard or a test reads back."""
    consumer = make_consumer(settings)
    await consumer.start()
    try:
        # a consumer without a subscription knows no topic's partitions until asked
        await consumer._client.force_metadata_update()
        parts = consumer.partitions_for_topic(topic) or set()
        tps = [TopicPartition(topic, p) for p in sorted(parts)]
        if not tps:
            return []
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        end = await consumer.end_offsets(tps)
        records: list[ConsumerRecord] = []
        deadline = asyncio.get_running_loop().time() + within_s
        while [tp for tp in tps if await consumer.position(tp) < end[tp]]:
            if asyncio.get_running_loop().time() > deadline:
                raise TimeoutError(f"reading {topic} took longer than {within_s} s")
            for batch in (await consumer.getmany(timeout_ms=500, max_records=10_000)).values():
                records.extend(batch)
        return records
    finally:
        await consumer.stop()


async def read_latest(settings: Settings, topic: str, key_field: str) -> dict[str, dict[str, Any]]:
    """The latest JSON value per ``key_field`` of a contract topic (prefix applied)."""
    latest: dict[str, dict[str, Any]] = {}
    for rec in await read_all(settings, settings.topic(topic)):
        if rec.value is not None:
            doc = orjson.loads(rec.value)
            latest[doc[key_field]] = doc
    return latest
