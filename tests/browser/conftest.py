"""Browser tests of the dashboard: Debian's Chromium driven by Playwright (never a downloaded
browser) against a real ``gridpulse dashboard`` process on the real stack.

One session for the whole suite (a dashboard start, topics and a database per run, not per
test): its own topic prefix and PostgreSQL database; the documents of
``tests/browser/population.py`` put on the OUTPUT topics with aiokafka and the alerts stored
in PostgreSQL through ``alerts.store.upsert_alert`` (the alerts consumer's path), since those
are the dashboard's inputs. Tests that publish more keep ``Stack.population`` true.

Screenshots go to bench/out/screenshots/ (git-ignored test artifacts).
"""

from __future__ import annotations

import asyncio
import os
import secrets
import signal
import socket
import subprocess
import threading
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator
from concurrent.futures import Future
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import urlparse

import asyncpg
import httpx
import orjson
import pytest
from pydantic import SecretStr

from alerts.store import migrate, upsert_alert
from gridpulse.settings import Settings
from streams.kafka import create_contract_topics, delete_topics, make_producer
from tests.browser.population import Population, build
from tests.environment import REPO, missing

if TYPE_CHECKING:
    from playwright.sync_api import ViewportSize

CHROMIUM = Path("/usr/bin/chromium")
ECHARTS = REPO / "dashboard" / "web" / "node_modules" / "echarts" / "dist" / "echarts.min.js"
GRIDPULSE = REPO / ".venv" / "bin" / "gridpulse"
SCREENSHOTS = REPO / "bench" / "out" / "screenshots"
# the machine has no internet: without these Chromium keeps trying to reach Google's hosts
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
CUSTOMERS = 300
VIEWPORT: ViewportSize = {"width": 1366, "height": 900}

T = TypeVar("T")


def _reachable(hostport: str) -> bool:
    host, port = hostport.rsplit(":", 1)
    try:
        with socket.create_connection((host, int(port)), timeout=1.0):
            return True
    except OSError:
        return False


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class LoopThread:
    """An event loop in a thread of its own: the tests are synchronous (Playwright's sync API)
    and the Kafka producer and asyncpg need a loop that stays up between calls."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, name="browser-tests-io", daemon=True)
        self._thread.start()

    def run(self, coro: Awaitable[T], timeout: float = 60.0) -> T:
        fut: Future[T] = asyncio.run_coroutine_threadsafe(coro, self.loop)  # type: ignore[arg-type]
        return fut.result(timeout)

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(5)
        self.loop.close()


@dataclass
class User:
    user: str
    password: str
    role: str
    manager_id: str | None = None


@dataclass
class Stack:
    """The running dashboard and what was put on its inputs."""

    url: str
    settings: Settings
    io: LoopThread
    population: Population
    users: dict[str, User]
    producer: Any = None
    log_path: Path | None = None
    published: list[tuple[str, str]] = field(default_factory=list)

    def publish(self, topic: str, key: str, value: bytes | dict[str, Any]) -> None:
        raw = value if isinstance(value, bytes) else orjson.dumps(value)

        async def send() -> None:
            await self.producer.send_and_wait(self.settings.topic(topic), key=key.encode(), value=raw)

        self.io.run(send())
        self.published.append((topic, key))

    def sql(self, query: str, *args: Any) -> list[asyncpg.Record]:
        async def q() -> list[asyncpg.Record]:
            conn = await asyncpg.connect(self.settings.pg_dsn.get_secret_value())
            try:
                return list(await conn.fetch(query, *args))
            finally:
                await conn.close()

        return self.io.run(q())

    def api(self, user: str) -> httpx.Client:
        """An HTTP client signed in as ``user``."""
        u = self.users[user]
        client = httpx.Client(base_url=self.url, timeout=10.0)
        r = client.post("/api/login", json={"user": u.user, "password": u.password})
        r.raise_for_status()
        return client

    def log_tail(self, lines: int = 40) -> str:
        if self.log_path is None or not self.log_path.exists():
            return ""
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])


def _users() -> dict[str, User]:
    return {
        u.user: u
        for u in (
            User("li", secrets.token_urlsafe(12), "supervisor"),
            User("wang", secrets.token_urlsafe(12), "manager", "M01"),
            User("zhao", secrets.token_urlsafe(12), "viewer"),
        )
    }


async def _create_database(admin_dsn: str, db: str) -> str:
    conn = await asyncpg.connect(admin_dsn)
    try:
        await conn.execute(f'CREATE DATABASE "{db}"')
    finally:
        await conn.close()
    return admin_dsn.rsplit("/", 1)[0] + f"/{db}"


async def _drop_database(admin_dsn: str, db: str) -> None:
    conn = await asyncpg.connect(admin_dsn)
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{db}" WITH (FORCE)')
    finally:
        await conn.close()


async def _store_alerts(dsn: str, alerts: list[dict[str, Any]]) -> None:
    """What `gridpulse alerts-consumer` does with each alert message: migrate, upsert."""
    conn = await asyncpg.connect(dsn)
    try:
        await migrate(conn)
        for alert in alerts:
            await upsert_alert(conn, alert)
    finally:
        await conn.close()


def _wait_ready(stack: Stack, proc: subprocess.Popen[bytes], timeout_s: float = 90.0) -> None:
    """Until the dashboard has read everything put on the topics: every scored customer in the
    matrix with its 30-day kWh, the reliability and area documents, the outages."""
    pop = stack.population
    deadline = time.monotonic() + timeout_s
    last: Any = None
    client: httpx.Client | None = None
    try:
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise RuntimeError(f"gridpulse dashboard exited {proc.returncode}:\n{stack.log_tail()}")
            try:
                if client is None:
                    client = stack.api("li")
                matrix = client.get("/api/matrix").json()
                rel = client.get("/api/reliability").json()
                areas = client.get("/api/areas").json()
                outages = client.get("/api/outages").json()
                last = (len(matrix["ids"]), sum(k is not None for k in matrix["kwh30"]))
                if (
                    last == (len(pop.scores), len(pop.scores))
                    and len(rel["feeders"]) == len(pop.reliability) - 1
                    and len(areas["areas"]) == len(pop.areas)
                    and sum(len(v) for v in outages.values()) == 3
                ):
                    return
            except (httpx.HTTPError, KeyError, ValueError) as exc:
                last = repr(exc)
                if client is not None and isinstance(exc, httpx.HTTPStatusError):
                    client = None
            time.sleep(0.5)
    finally:
        if client is not None:
            client.close()
    raise RuntimeError(f"dashboard not ready in {timeout_s} s (last: {last}):\n{stack.log_tail()}")


@pytest.fixture(scope="session")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    if not CHROMIUM.exists():
        missing(f"{CHROMIUM} not found: scripts/bootstrap.sh installs Debian's chromium")
    if not ECHARTS.exists():
        missing(f"{ECHARTS} not found: scripts/bootstrap.sh runs npm ci in dashboard/web")
    base = Settings()
    if not _reachable(base.kafka_bootstrap.split(",")[0]):
        missing(f"Kafka is not reachable at {base.kafka_bootstrap}: run `make up`")
    admin_dsn = base.pg_dsn.get_secret_value()
    pg = urlparse(admin_dsn)
    if not _reachable(f"{pg.hostname}:{pg.port or 5432}"):
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
        dsn = io.run(_create_database(admin_dsn, db))
        settings = settings.model_copy(update={"pg_dsn": SecretStr(dsn)})
        population = build(CUSTOMERS)
        io.run(_store_alerts(dsn, population.alerts))
        users = _users()
        stack = Stack(url="", settings=settings, io=io, population=population, users=users)

        async def start_producer() -> Any:
            producer = make_producer(settings)  # aiokafka: made inside the loop that runs it
            await producer.start()
            return producer

        stack.producer = io.run(start_producer())
        for topic, key, value in population.messages:
            stack.publish(topic, key, value)

        from dashboard.auth import hash_password

        port = _free_port()
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
        _wait_ready(stack, proc)
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
        io.run(_drop_database(admin_dsn, db))
        io.close()


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS)
        yield b
        b.close()


@dataclass
class Session:
    """A browser context (its own cookies and localStorage) and its page, with the page's
    JavaScript errors collected."""

    stack: Stack
    context: Any
    page: Any
    errors: list[str]

    def goto(self, path: str) -> None:
        self.page.goto(self.stack.url + path)

    def wait_rendered(self, timeout_ms: float = 15_000) -> None:
        self.page.wait_for_selector("body[data-rendered=true]", state="attached", timeout=timeout_ms)

    def screenshot(self, name: str) -> Path:
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        path = SCREENSHOTS / f"{name}.png"
        self.page.screenshot(path=str(path), full_page=True)
        return path


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
