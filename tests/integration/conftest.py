"""Integration tests run against the real Kafka, Redis and PostgreSQL that `make up` starts;
the fixtures (each test's own topic prefix, app id, state directory and database) are in
tests/integration/fixtures.py."""

from tests.integration.dashboard_client import dashboards  # noqa: F401  (the dashboards a test starts)
from tests.integration.fixtures import (  # noqa: F401  (registered here for tests/integration)
    alert_settings,
    pg_settings,
    redis_settings,
    settings,
    topics,
    worker_factory,
)
