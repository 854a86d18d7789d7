"""The secured stack for real (issue 15, deliverable 3): a stack of its own started through
``GRIDPULSE_STACK_SECURE=1 scripts/stack.sh up`` (a temporary run dir, free ports; stopped and
wiped at the end): Kafka with only a SASL_SSL listener (SCRAM-SHA-512, certificates made by
scripts/make_certs.sh), PostgreSQL with scram-sha-256 passwords and no trust.

With the settings of its secure.env (password files, the stack's CA), ``gridpulse topics
create``, the worker, the alerts consumer, the simulator and the dashboard run as real
subprocesses; data flows through all of them: stats.customer for every simulated customer, the
alerts consumer ready (/readyz: assigned, PostgreSQL signed in with its password, caught up),
the dashboard serving a customer through its API after sign-in, the worker's and the
dashboard's /readyz 200. Then the refusals: a wrong password and a CA that did not sign the
broker's certificate each end the command at once with exit 78 and the clear line, and
PostgreSQL refuses a connection without a password. No password is in any log.
"""

from __future__ import annotations

import asyncio
import functools
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest

from gridpulse.settings import Settings
from gridpulse.workerproc import ROOT, WorkerProcess, worker_env
from schemas import topics as contract
from streams.kafka import EXIT_KAFKA_ACCESS, read_latest
from tests.integration.dashboard_client import DashboardProcess, signed_in
from tests.integration.fixtures import free_port
from tests.integration.helpers import eventually

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]

CUSTOMERS = 12
STACK = ROOT / "scripts" / "stack.sh"


@dataclass
class SecureStack:
    run_dir: Path
    env_file: Path
    values: dict[str, str]  # secure.env
    output: str  # what `stack.sh up` printed

    def settings(self, **update: Any) -> Settings:
        fields: dict[str, Any] = {k.removeprefix("GRIDPULSE_").lower(): v for k, v in self.values.items()}
        return Settings(**fields).model_copy(update=update)

    def secrets(self) -> list[str]:
        return [p.read_text().strip() for p in sorted((self.run_dir / "secrets").glob("*.password"))]


def _stack(env: dict[str, str], *args: str, timeout: float = 180) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(STACK), *args], env=env, cwd=ROOT, capture_output=True, text=True, timeout=timeout, check=False
    )


@pytest.fixture
def secure_stack(tmp_path: Path) -> Iterator[SecureStack]:
    run_dir = tmp_path / "stack"
    env = dict(os.environ)  # GRIDPULSE_KAFKA_VERSION passes: the secured stack on Kafka 4.x too
    env |= {
        "GRIDPULSE_RUN_DIR": str(run_dir),
        "GRIDPULSE_STACK_SECURE": "1",
        "GRIDPULSE_KAFKA_PORT": str(free_port()),
        "GRIDPULSE_KAFKA_CONTROLLER_PORT": str(free_port()),
        "GRIDPULSE_REDIS_PORT": str(free_port()),
        "GRIDPULSE_PG_PORT": str(free_port()),
    }
    try:
        up = _stack(env, "up")
        assert up.returncode == 0, f"stack.sh up failed:\n{up.stdout}\n{up.stderr}"
        env_file = run_dir / "secure.env"
        values = dict(
            line.split("=", 1)
            for line in env_file.read_text().splitlines()
            if line and not line.startswith("#")
        )
        yield SecureStack(run_dir, env_file, values, up.stdout + up.stderr)
    finally:
        wipe = _stack(env, "wipe")
        assert wipe.returncode == 0, f"stack.sh wipe failed:\n{wipe.stdout}\n{wipe.stderr}"


def _gridpulse(
    settings: Settings, *args: str, timeout: float = 60, **env: str
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "gridpulse.cli", *args],
        env=worker_env(settings, **env),
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


async def _ready(url: str) -> bool:
    async with httpx.AsyncClient(timeout=10.0) as client:
        try:
            return (await client.get(url)).status_code == 200
        except httpx.HTTPError:
            return False


def _refused(result: subprocess.CompletedProcess[str], elapsed: float, *expected: str) -> None:
    assert result.returncode == EXIT_KAFKA_ACCESS, (result.returncode, result.stdout, result.stderr)
    for text in expected:
        assert text in result.stderr, result.stderr
    assert "Traceback" not in result.stderr, result.stderr
    assert elapsed < 30, f"refused only after {elapsed:.1f} s"


async def test_secured_stack_end_to_end_and_its_refusals(secure_stack: SecureStack, tmp_path: Path) -> None:
    stack = secure_stack
    v = stack.values
    assert v["GRIDPULSE_KAFKA_SECURITY_PROTOCOL"] == "SASL_SSL"
    assert v["GRIDPULSE_KAFKA_SASL_MECHANISM"] == "SCRAM-SHA-512"
    if version := os.environ.get("GRIDPULSE_KAFKA_VERSION"):
        assert f"Kafka {version})" in stack.output, stack.output  # stack.sh's "kafka: started" line
    ops_port = free_port()
    settings = stack.settings(
        topic_prefix="sec.",
        app_id="gridpulse-secured",
        data_dir=str(tmp_path / "faust"),
        web_port=free_port(),
        alerts_ops_port=ops_port,
        topic_partitions=2,
        scoring_interval_s=2.0,
    )
    logs = tmp_path / "logs"
    started: list[WorkerProcess] = []
    try:
        created = _gridpulse(settings, "topics", "create")
        assert created.returncode == 0, created.stderr
        assert "created" in created.stdout

        worker = WorkerProcess(settings, logs / "worker.log").start()
        consumer = WorkerProcess(settings, logs / "alerts.log").start(command=["alerts-consumer"])
        dash = DashboardProcess(settings, logs / "dashboard.log").start_dashboard()
        started += [worker, consumer, dash]
        await worker.wait_ready(within_s=120)

        sim = await asyncio.to_thread(
            _gridpulse,
            settings,
            "simulate",
            "--customers",
            str(CUSTOMERS),
            "--days",
            "1",
            "--history-months",
            "2",
            "--no-outages",
            timeout=120,
        )
        assert sim.returncode == 0, sim.stderr
        (logs / "simulate.log").write_text(sim.stdout + sim.stderr)

        # read back over SASL_SSL by this process (streams.kafka's clients with the same settings)
        customers = {
            cid
            for cid, doc in (await read_latest(settings, contract.CUSTOMERS, "customer_id")).items()
            if doc
        }
        assert len(customers) == CUSTOMERS
        stats: dict[str, Any] = {}

        async def stats_for_every_customer() -> bool:
            stats.update(await read_latest(settings, contract.STATS_CUSTOMER, "customer_id"))
            return customers <= set(stats)

        await eventually(stats_for_every_customer, 90, "stats.customer for every simulated customer")

        # the alerts consumer: in its group, signed in to PostgreSQL with its password, caught up
        async def consumer_ready() -> bool:
            if not consumer.running:
                raise AssertionError(f"alerts consumer exited:\n{consumer.log_tail()}")
            async with httpx.AsyncClient(timeout=5.0) as client:
                try:
                    resp = await client.get(f"http://127.0.0.1:{ops_port}/readyz")
                except httpx.HTTPError:
                    return False
            return resp.status_code == 200 and resp.json()["checks"]["postgres"]["ok"] is True

        await eventually(consumer_ready, 60, "the alerts consumer's /readyz 200 with PostgreSQL ok")

        # the dashboard: a customer through its API after sign-in, equal to the topic's stats
        await dash.wait_feed_ready(within_s=60)
        one = sorted(customers)[0]
        async with signed_in(dash.url, "view") as client:
            seen: list[Any] = []

            async def customer_served() -> bool:
                resp = await client.get(f"/api/customers/{one}")
                latest = (await read_latest(settings, contract.STATS_CUSTOMER, "customer_id"))[one]
                seen[:] = [resp.status_code, resp.text[:1500], latest]
                return resp.status_code == 200 and resp.json().get("stats") == latest

            try:
                await eventually(customer_served, 60, f"/api/customers/{one} with its stats.customer")
            except AssertionError:
                raise AssertionError(f"last answer and stats.customer: {seen}\n{dash.log_tail()}") from None
        # the worker's and the dashboard's own readiness checks (Kafka metadata through their own
        # clients, Redis, PostgreSQL by password for the dashboard) pass on the secured stack too
        for name, url in (
            ("worker", f"http://127.0.0.1:{settings.web_port}/readyz"),
            ("dashboard", f"{dash.url}/readyz"),
        ):
            await eventually(functools.partial(_ready, url), 60, f"the {name}'s /readyz 200")
        for proc in started:
            assert proc.running, proc.log_tail()
    finally:
        for proc in started:
            proc.stop()

    # refusals, each at once with exit 78 and what failed (never the password)
    wrong = tmp_path / "wrong.password"
    wrong.write_text("not-the-password-4711\n")
    wrong.chmod(0o600)
    t0 = time.monotonic()
    bad_password = await asyncio.to_thread(
        _gridpulse, settings, "worker", GRIDPULSE_KAFKA_SASL_PASSWORD_FILE=str(wrong)
    )
    _refused(
        bad_password,
        time.monotonic() - t0,
        "gridpulse worker: Kafka refused this client:",
        "refused the SCRAM-SHA-512 credentials of user 'gridpulse'",
    )
    assert "not-the-password-4711" not in bad_password.stderr + bad_password.stdout

    other_ca = stack.run_dir / "tls" / "other-ca.crt"
    t0 = time.monotonic()
    untrusted = await asyncio.to_thread(
        _gridpulse, settings, "simulate", "--customers", "1", GRIDPULSE_KAFKA_SSL_CAFILE=str(other_ca)
    )
    _refused(
        untrusted,
        time.monotonic() - t0,
        "gridpulse simulate: Kafka refused this client:",
        f"the broker's certificate at 127.0.0.1:{v['GRIDPULSE_KAFKA_BOOTSTRAP'].rsplit(':', 1)[1]} is not "
        f"signed by a CA in GRIDPULSE_KAFKA_SSL_CAFILE={other_ca}: certificate verify failed",
    )

    # PostgreSQL: no password, no connection; with the file's password, gridpulse (no superuser)
    dsn = settings.pg_dsn.get_secret_value()
    with pytest.raises(asyncpg.PostgresError) as refused:
        await asyncpg.connect(dsn, password=None, passfile=str(tmp_path / "no-pgpass"), timeout=10)
    assert "password" in str(refused.value).lower()
    conn = await asyncpg.connect(settings.pg_connect_dsn(), timeout=10)
    try:
        assert await conn.fetchval("SELECT rolsuper FROM pg_roles WHERE rolname = current_user") is False
    finally:
        await conn.close()

    # no secret in anything the stack or a service wrote
    texts = [stack.output, created.stdout + created.stderr, bad_password.stderr, untrusted.stderr]
    texts += [p.read_text(errors="replace") for p in logs.glob("*.log")]
    for secret in stack.secrets():
        assert len(secret) >= 24
        assert not [t for t in texts if secret in t], "a password is in a log"
