"""Readiness checks more than one process makes: PostgreSQL and Kafka answering (the alerts
consumer and the dashboard; the worker keeps a cached probe of its own, streams.agents.web)."""

from __future__ import annotations

import asyncpg
from aiokafka import AIOKafkaConsumer

from gridpulse.settings import Settings
from observability.health import Check
from streams.kafka import make_admin


async def postgres_answers(settings: Settings) -> Check:
    """A connection with the configured DSN (the password file's password) and ``SELECT 1``."""
    conn = await asyncpg.connect(settings.pg_connect_dsn(), timeout=2.5)
    try:
        await conn.fetchval("SELECT 1")
    finally:
        await conn.close(timeout=1.0)
    return Check(True, "SELECT 1 answered")


async def kafka_answers(settings: Settings, consumer: AIOKafkaConsumer | None) -> Check:
    """A metadata request on the process's own consumer while it runs; else on an admin client
    of the same settings (SASL/SSL included)."""
    if consumer is not None:
        await consumer.topics()
        return Check(True, "metadata answered")
    admin = make_admin(settings)
    try:
        await admin.start()
        await admin.list_topics()
    finally:
        await admin.close()
    return Check(True, "metadata answered (admin client)")
