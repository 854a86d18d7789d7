"""A real local HTTP server standing in for the customer managers' webhook (the notifier's unit
tests, the alerts consumer's integration test and the PostgreSQL fault scenario use it). It
records every JSON body it accepts; it can fail the first N requests (503), answer a status of
choice, or hang for chosen manager ids until released."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web
from aiohttp.test_utils import TestServer


@dataclass
class WebhookServer:
    fail_first: int = 0  # this many requests answer 503 first
    status: int = 200  # the answer after that
    hang_for: set[str] = field(default_factory=set)  # manager ids whose requests hang
    requests: int = 0
    received: list[dict[str, Any]] = field(default_factory=list)  # accepted bodies
    release: asyncio.Event = field(default_factory=asyncio.Event)
    _server: TestServer | None = None

    async def _hook(self, request: web.Request) -> web.Response:
        self.requests += 1
        body = await request.json()
        if body.get("manager_id") in self.hang_for:
            await self.release.wait()
        if self.requests <= self.fail_first:
            return web.Response(status=503, text="try later")
        if self.status >= 300:
            return web.Response(status=self.status)
        self.received.append(body)
        return web.json_response({"ok": True})

    async def start(self) -> str:
        app = web.Application()
        app.router.add_post("/hook", self._hook)
        self._server = TestServer(app, host="127.0.0.1", port=0)
        await self._server.start_server()
        return str(self._server.make_url("/hook"))

    async def close(self) -> None:
        self.release.set()
        if self._server is not None:
            await self._server.close()
