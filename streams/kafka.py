"""Plain aiokafka clients configured from Settings (topic admin, tests, benchmarks, tools).

The Faust worker builds its own clients from the same settings (streams/app.py); everything
else that talks to Kafka goes through these factories so SASL/SSL options apply everywhere.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
from typing import Any

import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRecord, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.conn import collect_hosts, create_conn
from aiokafka.errors import (
    AuthenticationFailedError,
    KafkaError,
    SaslAuthenticationFailed,
    UnsupportedSaslMechanismError,
)
from aiokafka.protocol.metadata import MetadataRequest

from gridpulse.settings import SecretFileError, Settings
from schemas.topics import CONTRACT_TOPICS

log = logging.getLogger(__name__)

# CreateTopics error codes that mean "nothing to do".
_TOPIC_ALREADY_EXISTS = 36


class TopicAdminError(RuntimeError):
    """The broker refused to create a topic (other than: it exists already)."""


class KafkaAccessError(RuntimeError):
    """The broker (or the client's own settings) refused this client: credentials, certificate,
    protocol. Retrying does not help; the text says what failed, never a password."""


class KafkaUnreachableError(RuntimeError):
    """No bootstrap server answered (down, starting, a wrong address): may pass by itself."""


# exit status of a command refused by the broker (sysexits' EX_CONFIG: a configuration error)
EXIT_KAFKA_ACCESS = 78


def client_kwargs(settings: Settings) -> dict[str, Any]:
    return {"bootstrap_servers": settings.kafka_bootstrap, **settings.aiokafka_security()}


def _tls_refusal(settings: Settings, where: str, exc: ssl.SSLCertVerificationError) -> str:
    why = exc.verify_message or exc.reason or str(exc)
    if exc.verify_code in (62, 64):  # X509_V_ERR_HOSTNAME_MISMATCH, X509_V_ERR_IP_ADDRESS_MISMATCH
        return (
            f"the broker's certificate at {where} is not valid for that name or address "
            f"(connect by a name in its subjectAltName): certificate verify failed: {why}"
        )
    cas = (
        f"GRIDPULSE_KAFKA_SSL_CAFILE={settings.kafka_ssl_cafile}"
        if settings.kafka_ssl_cafile
        else "the system's trust store (GRIDPULSE_KAFKA_SSL_CAFILE is not set)"
    )
    return (
        f"the broker's certificate at {where} is not signed by a CA in {cas}: "
        f"certificate verify failed: {why}"
    )


async def probe_broker(settings: Settings, timeout_s: float = 10.0) -> int:
    """Connect to the bootstrap servers the way every client does (TLS, SASL handshake) and ask
    one for metadata: the number of brokers it lists. Raises :class:`KafkaAccessError` when a
    broker refuses the client (wrong password, untrusted certificate, another protocol) and
    :class:`KafkaUnreachableError` when none answers within ``timeout_s`` each."""
    try:
        security = settings.aiokafka_security()
    except SecretFileError as exc:
        raise KafkaAccessError(str(exc)) from None
    protocol = settings.kafka_security_protocol
    last = "no bootstrap server given"
    for host, port, _ in collect_hosts(settings.kafka_bootstrap, randomize=False):
        where = f"{host}:{port}"
        try:
            conn = await asyncio.wait_for(
                create_conn(
                    host,
                    port,
                    client_id="gridpulse-preflight",
                    request_timeout_ms=int(timeout_s * 1000),
                    **security,
                ),
                timeout_s,
            )
        except ssl.SSLCertVerificationError as exc:
            raise KafkaAccessError(_tls_refusal(settings, where, exc)) from None
        except ssl.SSLError as exc:
            raise KafkaAccessError(
                f"the TLS handshake with {where} failed ({exc.reason or exc}): does the listener "
                f"speak GRIDPULSE_KAFKA_SECURITY_PROTOCOL={protocol}?"
            ) from None
        except (SaslAuthenticationFailed, AuthenticationFailedError):
            pw_var = "GRIDPULSE_KAFKA_SASL_PASSWORD" + ("_FILE" if settings.kafka_sasl_password_file else "")
            raise KafkaAccessError(
                f"the broker at {where} refused the {settings.kafka_sasl_mechanism} credentials of user "
                f"{settings.kafka_sasl_username!r} (GRIDPULSE_KAFKA_SASL_USERNAME, the password of "
                f"{pw_var})"
            ) from None
        except UnsupportedSaslMechanismError as exc:
            raise KafkaAccessError(f"the broker at {where}: {exc}") from None
        except (TimeoutError, OSError, KafkaError) as exc:
            last = f"{where}: {type(exc).__name__}: {exc}"
            continue
        try:
            metadata = await asyncio.wait_for(conn.send(MetadataRequest([])), timeout_s)
        except (TimeoutError, KafkaError) as exc:
            last = f"{where}: no metadata: {type(exc).__name__}: {exc}"
            continue
        finally:
            conn.close()
        return len(metadata.brokers)
    raise KafkaUnreachableError(
        f"no broker of GRIDPULSE_KAFKA_BOOTSTRAP={settings.kafka_bootstrap} answered ({last}); "
        f"if one is up, does it speak GRIDPULSE_KAFKA_SECURITY_PROTOCOL={protocol}?"
    )


async def check_broker(settings: Settings, timeout_s: float = 10.0) -> None:
    """The preflight of every command that talks to Kafka (worker, alerts consumer, dashboard,
    simulator, ``topics create``): :class:`KafkaAccessError` when the broker refuses this
    client's settings, at once instead of the clients' endless silent reconnects. A broker that
    does not answer is only logged: each service keeps its own way of waiting for one."""
    try:
        await probe_broker(settings, timeout_s)
    except KafkaUnreachableError as exc:
        log.warning("Kafka preflight: %s", exc)


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
