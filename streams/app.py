"""The Faust application itself: its configuration, its topics, and what the worker adds to
faust's producer and store (a complete buffer flush, RocksDB options, tracked metadata). What
replaces faust internals lives in ``streams.faust_patches``.

Nothing here knows the agents: ``streams.worker.create_worker`` builds the app with
:func:`make_app`, then the runtime and the stages on it (tests build one per test with unique
topic prefixes and app ids; ``gridpulse worker`` runs one).
"""

from __future__ import annotations

import asyncio
import gc
import logging
from typing import Any

import faust
from aiokafka.errors import KafkaError
from faust.auth import SASLCredentials, SSLCredentials

from gridpulse.settings import Settings
from schemas import topics as contract
from streams.app_types import Topics
from streams.faust_patches import complete_buffer_flush, shared_block_cache, use_shared_block_caches

log = logging.getLogger(__name__)


def _credentials(s: Settings) -> Any:
    """faust's credentials from the same settings as every other client (Settings: the password
    from kafka_sasl_password_file read now, the TLS context with the CA file and any client
    certificate). faust's SASLCredentials take SASL_SSL from the presence of a TLS context."""
    if s.kafka_sasl_mechanism:
        return SASLCredentials(
            username=s.kafka_sasl_username,
            password=s.kafka_password(),
            mechanism=s.kafka_sasl_mechanism,
            ssl_context=s.kafka_ssl_context() if s.kafka_security_protocol == "SASL_SSL" else None,
        )
    if s.kafka_security_protocol == "SSL":
        return SSLCredentials(s.kafka_ssl_context())
    return None


def rocksdb_options(s: Settings) -> dict[str, Any]:
    """RocksDB tuned down for a 2-core, 24 GB machine: faust's defaults give every partition
    store a 2 GB block cache and 3 x 64 MB memtables. One block cache of
    ``rocksdb_block_cache_mb`` for all the process's stores (streams.faust_patches: faust makes
    one per store). A fresh dict per table: faust's store pops keys out of the mapping it is
    given."""
    use_shared_block_caches()
    return {
        "driver": "rocksdict",
        "block_cache": shared_block_cache(s.rocksdb_block_cache_mb * 1024**2),
        "block_cache_size": s.rocksdb_block_cache_mb * 1024**2,
        "block_cache_compressed_size": 0,
        "write_buffer_size": s.rocksdb_write_buffer_mb * 1024**2,
        "max_write_buffer_number": 2,
        "target_file_size_base": 16 * 1024**2,
        "max_open_files": 256,
    }


def declare_topics(app: faust.App, s: Settings) -> Topics:
    def topic(name: str) -> faust.TopicT:
        return app.topic(
            s.topic(name),
            key_type=bytes,
            value_type=bytes,
            key_serializer="raw",
            value_serializer="raw",
            partitions=s.topic_partitions,
            internal=False,
        )

    return Topics(
        readings=topic(contract.METER_READINGS),
        billing=topic(contract.BILLING_EVENTS),
        outages=topic(contract.GRID_OUTAGES),
        customers=topic(contract.CUSTOMERS),
        history=topic(contract.CONSUMPTION_HISTORY),
        stats=topic(contract.STATS_CUSTOMER),
        scores=topic(contract.SCORES_CUSTOMER),
        alerts_credit=topic(contract.ALERTS_CREDIT),
        alerts_outage=topic(contract.ALERTS_OUTAGE),
        reliability=topic(contract.RELIABILITY_INDICES),
        dlq={t: topic(contract.dlq(t)) for t in contract.INPUTS},
        area_readings=topic(contract.AREA_READINGS),
        # internal: created by faust with the app's partitions, named after the app like the
        # changelogs (every worker of the app shares it); keyed by transformer_area
        area_energy=app.topic(
            area_energy_topic(s),
            key_type=bytes,
            value_type=bytes,
            key_serializer="raw",
            value_serializer="raw",
            partitions=s.topic_partitions,
            internal=True,
        ),
        stats_area=topic(contract.STATS_AREA),
        alerts_inspection=topic(contract.ALERTS_INSPECTION),
    )


def area_energy_topic(s: Settings) -> str:
    """The repartition topic of the inspection stage (streams/agents/areas.py)."""
    return f"{s.app_id}-area-energy"


def tune_gc(gen0_threshold: int) -> None:
    """Python's cyclic GC for a long-running worker: everything alive after start-up (modules,
    the app, its topics and tables) is frozen out of collection, and the young generation is
    collected every ``gen0_threshold`` allocations instead of 700. With the defaults, objects
    that live through one batch (events, documents) reach the old generation and trigger full
    collections over the whole heap; measured: rescoring 5,000 documents took 298 ms with the
    defaults and 57 ms tuned. 0 keeps Python's defaults."""
    if gen0_threshold <= 0:
        return
    gc.collect()
    gc.freeze()
    _, gen1, gen2 = gc.get_threshold()
    gc.set_threshold(gen0_threshold, gen1, gen2)


def written_topics(app: faust.App, t: Topics) -> list[str]:
    """Every topic the worker writes to: the tables' changelogs and the output topics."""
    outputs = [
        t.stats,
        t.scores,
        t.alerts_credit,
        t.alerts_outage,
        t.reliability,
        t.area_energy,
        t.stats_area,
        t.alerts_inspection,
        *t.dlq.values(),
    ]
    names = [table.changelog_topic.get_topic_name() for table in app.tables.values()]
    return names + [topic.get_topic_name() for topic in outputs]


async def track_written_topics(app: faust.App, topics: Topics, within_s: float = 60.0) -> None:
    """Make the producer's metadata hold every topic the worker writes to, and keep it so.

    A table write picks its changelog partition from the producer's metadata at once
    (faust's eager partitioning, no wait): a topic missing there raises TypeError inside the
    agent, faust restarts the agent and the batch is skipped without its offsets ever being
    committed. aiokafka's producer drops topics from its metadata: each refresh asks only for
    the topics it tracks (once it has sent to one it did not know) and replaces what it knew, and
    a changelog created moments before the first full refresh is not in it either. Tracking
    every written topic explicitly keeps them in every refresh.
    """
    producer = app.producer._ensure_producer()  # type: ignore[attr-defined]  # the aiokafka producer
    names = written_topics(app, topics)
    try:
        async with asyncio.timeout(within_s):
            await asyncio.gather(*[producer.client.add_topic(name) for name in names])
            for name in names:
                await producer.partitions_for(name)  # waits until the metadata has it
    except (TimeoutError, KafkaError) as exc:
        log.error("producer metadata still lacks some of %s after %.0f s: %r", names, within_s, exc)


def make_app(s: Settings, **overrides: Any) -> faust.App:
    """The faust App with the worker's configuration (``overrides`` replace entries), its
    producer buffer's flush made complete; no topics, tables or agents yet."""
    conf: dict[str, Any] = {
        "broker": [f"kafka://{h.strip()}" for h in s.kafka_bootstrap.split(",")],
        "broker_credentials": _credentials(s),
        "store": "rocksdb://",
        "datadir": s.data_dir,
        "topic_partitions": s.topic_partitions,
        "topic_replication_factor": s.topic_replication,
        "key_serializer": "raw",
        "value_serializer": "raw",
        "processing_guarantee": "at_least_once",
        "producer_acks": -1,
        # one produce request carries many documents and changelog records: with faust's 16 KB
        # batches every ~10 stats documents per partition cost a request of their own (issue 12:
        # 8.5 % of the worker's event loop was in socket writes of produce requests)
        "producer_linger_ms": 20,
        "producer_max_batch_size": 512 * 1024,
        "broker_commit_every": 10_000,
        "broker_commit_interval": 1.0,
        # a worker that dies without leaving the group (SIGKILL, OOM, power) holds its partitions
        # until this expires: faust's 60 s default made every crash a minute-long stall
        "broker_session_timeout": s.kafka_session_timeout_s,
        "broker_heartbeat_interval": min(3.0, s.kafka_session_timeout_s / 3),
        "consumer_auto_offset_reset": "earliest",
        "stream_buffer_maxsize": 8192,
        "web_enabled": True,
        "web_port": s.web_port,
        "web_bind": s.web_bind,
        "table_cleanup_interval": 60.0,
        "timezone": s.tz,
    }
    conf.update(overrides)
    app = faust.App(s.app_id, **conf)
    complete_buffer_flush(app.producer.buffer)  # streams.faust_patches
    return app
