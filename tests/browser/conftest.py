"""Browser tests of the dashboard: Debian's Chromium driven by Playwright (never a downloaded
browser) against a real ``gridpulse dashboard`` process on the real stack.

One stack for this package's tests (a dashboard start, topics and a database per run, not per
test; package-scoped, not session-scoped: Playwright's sync API runs an event loop in this
thread while it is open, and the asyncio tests that follow in the same pytest run cannot start
theirs then: "Runner.run() cannot be called from a running event loop"): its own topic prefix
and PostgreSQL database; the documents of ``tests/browser/population.py`` put on the OUTPUT
topics with aiokafka and the alerts stored in PostgreSQL through ``alerts.store.upsert_alert``
(the alerts consumer's path), since those are the dashboard's inputs. Tests that publish more
keep ``Stack.population`` true.

Screenshots go to bench/out/screenshots/ (git-ignored test artifacts).
"""

from __future__ import annotations

import os
import secrets
import signal
import subprocess
import uuid
from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import urlparse

import orjson
import pytest
from pydantic import SecretStr

from bench.machine import CHROMIUM, CHROMIUM_ARGS
from gridpulse.settings import Settings
from streams.kafka import create_contract_topics, delete_topics, make_producer
from tests.browser.harness import (
    CUSTOMERS,
    ECHARTS,
    GRIDPULSE,
    VIEWPORT,
    LoopThread,
    Session,
    Stack,
    create_database,
    dashboard_users,
    drop_database,
    free_port,
    reachable,
    store_alerts,
    wait_ready,
)
from tests.browser.population import build
from tests.environment import REPO, missing


@pytest.fixture(scope="package")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    if not CHROMIUM.exists():
        missing(f"{CHROMIUM} not found: scripts/bootstrap.sh installs Debian's chromium")
    if not ECHARTS.exists():
        missing(f"{ECHARTS} not found: scripts/bootstrap.sh runs npm ci in dashboard/web")
    base = Settings()
    if not reachable(base.kafka_bootstrap.split(",")[0]):
        missing(f"Kafka is not reachable at {base.kafka_bootstrap}: run `make up`")
    admin_dsn = base.pg_dsn.get_secret_value()
    pg = urlparse(admin_dsn)
    if not reachable(f"{pg.hostname}:{pg.port or 5432}"):
        missing(f"PostgreSQL is not reachable at {pg.hostname}:{pg.port}: run `make up`")

    tag = uuid.uuid4().hex[:10]
    db = f"gridpulse_b{tag}"
    io = LoopThread()
    tmp = tmp_path_factory.mktemp("dashboard")
    settings = base.model_copy(update={"topic_prefix": f"b{tag}.", "app_id": f"gridpulse-browser-{tag}"})
    topics: dict[str, str] = {}
    proc: subprocess.Popen[bytes] | None = None
    stack: Stack | None = None
    try:
        topics = io.run(create_contract_topics(settings, partitions=2))
        dsn = io.run(create_database(admin_dsn, db))
        settings = settings.model_copy(update={"pg_dsn": SecretStr(dsn)})
        population = build(CUSTOMERS)
        io.run(store_alerts(dsn, population.alerts))
        users = dashboard_users()
        stack = Stack(url="", settings=settings, io=io, population=population, users=users)

        async def start_producer() -> Any:
            producer = make_producer(settings)  # aiokafka: made inside the loop that runs it
            await producer.start()
            return producer

        stack.producer = io.run(start_producer())
        for topic, key, value in population.messages:
            stack.publish(topic, key, value)

        from dashboard.auth import hash_password

        port = free_port()
        env = {
            **os.environ,
            "GRIDPULSE_TOPIC_PREFIX": settings.topic_prefix,
            "GRIDPULSE_APP_ID": settings.app_id,
            "GRIDPULSE_PG_DSN": dsn,
            "GRIDPULSE_DASHBOARD_SECRET": secrets.token_urlsafe(32),
            "GRIDPULSE_DASHBOARD_USERS": orjson.dumps(
                [
                    {"user": u.user, "password_hash": hash_password(u.password), "role": u.role}
                    | ({"manager_id": u.manager_id} if u.manager_id else {})
                    for u in users.values()
                ]
            ).decode(),
        }
        stack.log_path = tmp / "dashboard.log"
        with stack.log_path.open("wb") as log:
            proc = subprocess.Popen(
                [str(GRIDPULSE), "dashboard", "--host", "127.0.0.1", "--port", str(port)],
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=REPO,
            )
        stack.url = f"http://127.0.0.1:{port}"
        wait_ready(stack, proc)
        yield stack
    finally:
        if proc is not None:
            proc.send_signal(signal.SIGINT)
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)
        if stack is not None and stack.producer is not None:
            io.run(stack.producer.stop())
        if topics:
            io.run(delete_topics(settings, list(topics)))
        io.run(drop_database(admin_dsn, db))
        io.close()


@pytest.fixture(scope="package")
def browser() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS)
        yield b
        b.close()


@pytest.fixture
def open_session(stack: Stack, browser: Any) -> Iterator[Callable[..., Session]]:
    """open_session(user=None, lang=None): a new context, signed in through the API as ``user``
    (None: signed out); ``lang`` preset in localStorage (None: the default, Chinese)."""
    opened: list[Session] = []

    def open_(user: str | None = None, lang: str | None = None) -> Session:
        context = browser.new_context(viewport=VIEWPORT, locale="zh-CN", timezone_id="Asia/Shanghai")
        if lang is not None:
            context.add_init_script(f"window.localStorage.setItem('gp_lang', '{lang}')")
        if user is not None:
            u = stack.users[user]
            r = context.request.post(f"{stack.url}/api/login", data={"user": u.user, "password": u.password})
            assert r.status == 200, r.text()
        page = context.new_page()
        errors: list[str] = []
        page.on("pageerror", lambda exc: errors.append(f"pageerror: {exc}"))
        page.on("console", lambda m: errors.append(f"console.error: {m.text}") if m.type == "error" else None)
        s = Session(stack, context, page, errors)
        opened.append(s)
        return s

    yield open_
    for s in opened:
        s.context.close()
