"""The Faust application: one App, its topics and tables, the agents registered on it.

``create_app(settings)`` builds a fresh app (tests build one per test with unique topic
prefixes and app ids); ``gridpulse worker`` runs one. Agents live in streams/agents/*.py and
are registered here, in one place.
"""

from __future__ import annotations

import ssl
from typing import Any

import faust
from faust.auth import SASLCredentials, SSLCredentials

from gridpulse.settings import Settings, get_settings
from schemas import topics as contract
from streams.app_types import Topics


def _credentials(s: Settings) -> Any:
    if s.kafka_sasl_mechanism:
        ctx = None
        if s.kafka_security_protocol == "SASL_SSL":
            ctx = ssl.create_default_context(cafile=s.kafka_ssl_cafile)
        return SASLCredentials(
            username=s.kafka_sasl_username,
            password=s.kafka_sasl_password.get_secret_value() if s.kafka_sasl_password else None,
            mechanism=s.kafka_sasl_mechanism,
            ssl_context=ctx,
        )
    if s.kafka_security_protocol == "SSL":
        ctx = ssl.create_default_context(cafile=s.kafka_ssl_cafile)
        if s.kafka_ssl_certfile:
            ctx.load_cert_chain(s.kafka_ssl_certfile, s.kafka_ssl_keyfile)
        return SSLCredentials(ctx)
    return None


def rocksdb_options(s: Settings) -> dict[str, Any]:
    """RocksDB tuned down for a 2-core, 24 GB machine: faust's defaults give every partition
    store a 2 GB block cache and 3 x 64 MB memtables. A fresh dict per table: faust's store
    pops keys out of the mapping it is given."""
    return {
        "driver": "rocksdict",
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
    )


def create_app(settings: Settings | None = None, **overrides: Any) -> faust.App:
    s = settings or get_settings()
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
        "producer_linger_ms": 10,
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
        "web_bind": "127.0.0.1",
        "table_cleanup_interval": 60.0,
        "timezone": s.tz,
    }
    conf.update(overrides)
    app = faust.App(s.app_id, **conf)
    app.gp_settings = s  # type: ignore[attr-defined]
    app.gp_topics = declare_topics(app, s)  # type: ignore[attr-defined]

    from streams.agents import register_all

    register_all(app, s, app.gp_topics)  # type: ignore[attr-defined]
    return app
