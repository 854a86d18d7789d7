"""The browser tests' harness (conftest.py's fixtures use it, and so does matrix_render.py):
Chromium's path and flags, the dashboard stack of a run, a signed-in browser session. Modules
import from here, never from conftest.py (tests/unit/test_purity.py)."""

from __future__ import annotations

import asyncio
import secrets
import socket
import subprocess
import threading
import time
from collections.abc import Awaitable
from concurrent.futures import Future
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import asyncpg
import httpx
import orjson

from alerts.store import migrate, upsert_alert
from gridpulse.settings import Settings
from tests.browser.population import Population
from tests.environment import REPO

if TYPE_CHECKING:
    from playwright.sync_api import ViewportSize

ECHARTS = REPO / "dashboard" / "web" / "node_modules" / "echarts" / "dist" / "echarts.min.js"
GRIDPULSE = REPO / ".venv" / "bin" / "gridpulse"
SCREENSHOTS = REPO / "bench" / "out" / "screenshots"
CUSTOMERS = 300
VIEWPORT: ViewportSize = {"width": 1366, "height": 900}

T = TypeVar("T")


def reachable(hostport: str) -> bool:
    host, port = hostport.rsplit(":", 1)
    try:
        with socket.create_connection((host, int(port)), timeout=1.0):
            return True
    except OSError:
        return False


def free_port() -> int:
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


def dashboard_users() -> dict[str, User]:
    return {
        u.user: u
        for u in (
            User("li", secrets.token_urlsafe(12), "supervisor"),
            User("wang", secrets.token_urlsafe(12), "manager", "M01"),
            User("zhao", secrets.token_urlsafe(12), "viewer"),
        )
    }


async def create_database(admin_dsn: str, db: str) -> str:
    conn = await asyncpg.connect(admin_dsn)
    try:
        await conn.execute(f'CREATE DATABASE "{db}"')
    finally:
        await conn.close()
    return admin_dsn.rsplit("/", 1)[0] + f"/{db}"


async def drop_database(admin_dsn: str, db: str) -> None:
    conn = await asyncpg.connect(admin_dsn)
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{db}" WITH (FORCE)')
    finally:
        await conn.close()


async def store_alerts(dsn: str, alerts: list[dict[str, Any]]) -> None:
    """What `gridpulse alerts-consumer` does with each alert message: migrate, upsert."""
    conn = await asyncpg.connect(dsn)
    try:
        await migrate(conn)
        for alert in alerts:
            await upsert_alert(conn, alert)
    finally:
        await conn.close()


def wait_ready(stack: Stack, proc: subprocess.Popen[bytes], timeout_s: float = 90.0) -> None:
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
