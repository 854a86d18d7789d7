"""Integration fixtures: the real Kafka, Redis and PostgreSQL that `make up` starts.

Every test gets its own topic prefix, consumer group / app id and state directory, so tests
never see each other's data. When a server is not reachable the tests are skipped on a
developer machine and fail in CI (CI=true), where `make test` has started the stack.

tests/integration/conftest.py and tests/faults/conftest.py both register them.
"""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import asyncpg
import pytest
import pytest_asyncio
from pydantic import SecretStr

from gridpulse.settings import Settings
from gridpulse.workerproc import WorkerProcess
from streams.kafka import create_contract_topics, delete_topics, delete_topics_with_prefix
from tests.environment import missing


def _reachable(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=1.0):
            return True
    except OSError:
        return False


def _require(name: str, hostport: str) -> None:
    host, port = hostport.rsplit(":", 1)
    if not _reachable(host, int(port)):
        missing(f"{name} is not reachable at {hostport}: run `make up`")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def settings(unique_id: str, tmp_path: Path) -> Settings:
    base = Settings()
    _require("Kafka", base.kafka_bootstrap.split(",")[0])
    return base.model_copy(
        update={
            "topic_prefix": f"t{unique_id}.",
            "app_id": f"gridpulse-test-{unique_id}",
            "data_dir": str(tmp_path / "faust"),
            "web_port": free_port(),
            "alerts_ops_port": 0,  # an in-process alerts consumer's ops server: any free port
            "topic_partitions": 4,
        }
    )


@pytest_asyncio.fixture
async def topics(settings: Settings) -> AsyncIterator[Settings]:
    """The contract topics under the test's own prefix, deleted afterwards (with the app's
    changelogs)."""
    outcome = await create_contract_topics(settings)
    yield settings
    await delete_topics(settings, list(outcome))
    await delete_app_topics(settings)


async def delete_app_topics(settings: Settings) -> None:
    """The changelog and assignor topics Faust created for the test's app id."""
    await delete_topics_with_prefix(settings, f"{settings.app_id}-")


@pytest.fixture
def worker_factory(tmp_path: Path) -> Iterator[object]:
    started: list[WorkerProcess] = []

    def make(settings: Settings, **env: str) -> WorkerProcess:
        w = WorkerProcess(settings, tmp_path / f"worker{len(started)}.log", **env)
        started.append(w)
        return w

    yield make
    for w in started:
        w.stop()


@pytest.fixture
def redis_settings(settings: Settings) -> Settings:
    from urllib.parse import urlparse

    u = urlparse(settings.redis_url)
    _require("Redis", f"{u.hostname}:{u.port or 6379}")
    return settings


@pytest.fixture
def pg_settings(settings: Settings) -> Settings:
    from urllib.parse import urlparse

    u = urlparse(settings.pg_dsn.get_secret_value())
    _require("PostgreSQL", f"{u.hostname}:{u.port or 5432}")
    return settings


@pytest_asyncio.fixture
async def alert_settings(topics: Settings, pg_settings: Settings, unique_id: str) -> AsyncIterator[Settings]:
    """The test's settings pointing at a database of its own, dropped afterwards."""
    admin_dsn = pg_settings.pg_dsn.get_secret_value()
    db = f"gridpulse_{unique_id}"
    conn = await asyncpg.connect(admin_dsn)
    try:
        await conn.execute(f'CREATE DATABASE "{db}"')
    finally:
        await conn.close()
    dsn = admin_dsn.rsplit("/", 1)[0] + f"/{db}"
    try:
        yield topics.model_copy(update={"pg_dsn": SecretStr(dsn)})
    finally:
        conn = await asyncpg.connect(admin_dsn)
        try:
            await conn.execute(f'DROP DATABASE IF EXISTS "{db}" WITH (FORCE)')
        finally:
            await conn.close()
