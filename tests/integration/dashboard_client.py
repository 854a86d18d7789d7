"""Helpers of the dashboard's integration tests: the dashboard as its own process
(``gridpulse dashboard`` on a free port, the test's settings), its users, a signed-in client and
an SSE reader."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from dashboard.auth import hash_password
from gridpulse.settings import Settings
from gridpulse.workerproc import WorkerProcess
from tests.integration.fixtures import free_port

PASSWORD = "pw-for-tests"
_HASH = hash_password(PASSWORD, iterations=200_000)
USERS = [
    {"user": "sup", "password_hash": _HASH, "role": "supervisor"},
    {"user": "li", "password_hash": _HASH, "role": "manager", "manager_id": "M01"},
    {"user": "wang", "password_hash": _HASH, "role": "manager", "manager_id": "M02"},
    {"user": "view", "password_hash": _HASH, "role": "viewer"},
]


class DashboardProcess(WorkerProcess):
    """``gridpulse dashboard`` as a child process with the test's settings and USERS."""

    def __init__(self, settings: Settings, log_path: Path, **env: str) -> None:
        self.port = free_port()
        super().__init__(
            settings,
            log_path,
            GRIDPULSE_DASHBOARD_USERS=orjson.dumps(USERS).decode(),
            GRIDPULSE_DASHBOARD_PORT=str(self.port),
            GRIDPULSE_DASHBOARD_HOST="127.0.0.1",
            **env,
        )
        self.env.pop("GRIDPULSE_DASHBOARD_USERS_FILE", None)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start_dashboard(self) -> DashboardProcess:
        self.start(command=["dashboard", "--loglevel", "info"])
        return self

    async def wait_feed_ready(self, within_s: float = 60.0) -> None:
        """Until the dashboard has read the output topics to their end once."""
        deadline = time.monotonic() + within_s
        async with httpx.AsyncClient(base_url=self.url, timeout=5.0) as client:
            while time.monotonic() < deadline:
                if not self.running:
                    raise RuntimeError(f"dashboard exited:\n{self.log_tail()}")
                try:
                    if (await client.get("/healthz")).json().get("feed_ready"):
                        return
                except httpx.HTTPError:
                    pass
                await asyncio.sleep(0.2)
        raise TimeoutError(f"dashboard feed not ready after {within_s} s:\n{self.log_tail()}")


async def records_read(url: str) -> int:
    """How many output-topic records the dashboard has read (``/healthz``)."""
    async with httpx.AsyncClient(base_url=url, timeout=5.0) as client:
        return int((await client.get("/healthz")).json()["records"])


async def wait_records(url: str, at_least: int, within_s: float = 20.0) -> None:
    deadline = time.monotonic() + within_s
    while (n := await records_read(url)) < at_least:
        if time.monotonic() > deadline:
            raise AssertionError(f"the dashboard read {n} records, not {at_least}, within {within_s} s")
        await asyncio.sleep(0.2)


def start_dashboard(settings: Settings, tmp_path: Path, started: list[Any], **env: str) -> DashboardProcess:
    dash = DashboardProcess(settings, tmp_path / f"dashboard{len(started)}.log", **env).start_dashboard()
    started.append(dash)
    return dash


@asynccontextmanager
async def signed_in(url: str, user: str, timeout_s: float = 15.0) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=url, timeout=timeout_s) as client:
        resp = await client.post("/api/login", json={"user": user, "password": PASSWORD})
        assert resp.status_code == 200, resp.text
        yield client


async def sse_events(response: httpx.Response) -> AsyncIterator[tuple[str, Any]]:
    """(event name, parsed data) of an open text/event-stream response; comments skipped."""
    name, data = "message", []
    async for line in response.aiter_lines():
        if line == "":
            if data:
                yield name, orjson.loads("\n".join(data))
            name, data = "message", []
        elif line.startswith(":"):
            continue
        elif line.startswith("event:"):
            name = line[6:].strip()
        elif line.startswith("data:"):
            data.append(line[5:].strip())


async def wait_json(
    client: httpx.AsyncClient, path: str, check: Callable[[Any], bool], within_s: float, what: str
) -> Any:
    """GET ``path`` until ``check(body)``; the last body."""
    deadline = time.monotonic() + within_s
    body: Any = None
    while time.monotonic() < deadline:
        resp = await client.get(path)
        if resp.status_code == 200:
            body = resp.json()
            if check(body):
                return body
        await asyncio.sleep(0.3)
    raise AssertionError(f"not within {within_s} s: {what}; last {path}: {str(body)[:2000]}")


@pytest.fixture
def dashboards() -> Iterator[list[DashboardProcess]]:
    """Dashboards a test starts (append each); stopped at the end of the test."""
    started: list[DashboardProcess] = []
    yield started
    for d in started:
        d.stop()
