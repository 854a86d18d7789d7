"""``/metrics``, ``/livez`` and ``/readyz`` on a small aiohttp server, for processes that have
no web server of their own (the alerts consumer). The worker serves the same three paths on
faust's web server, the dashboard on its FastAPI app; all three answer alike (observability.health).
"""

from __future__ import annotations

from aiohttp import web

from observability.health import Health
from observability.metrics import exposition


def routes(health: Health) -> list[web.RouteDef]:
    async def metrics(request: web.Request) -> web.Response:
        body, content_type = exposition()
        # aiohttp wants the charset apart from the type
        return web.Response(body=body, headers={"Content-Type": content_type})

    async def livez(request: web.Request) -> web.Response:
        ok, body = health.live()
        return web.json_response(body, status=200 if ok else 503)

    async def readyz(request: web.Request) -> web.Response:
        ok, body = await health.ready()
        return web.json_response(body, status=200 if ok else 503)

    return [web.get("/metrics", metrics), web.get("/livez", livez), web.get("/readyz", readyz)]


async def serve(health: Health, host: str, port: int) -> web.AppRunner:
    """Start serving (and the heartbeat); ``await runner.cleanup()`` stops. ``port=0``: any free
    port, read back with :func:`bound_port`."""
    app = web.Application()
    app.add_routes(routes(health))
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, host, port)
    await site.start()
    health.start()
    return runner


def bound_port(runner: web.AppRunner) -> int:
    for addr in runner.addresses:
        if isinstance(addr, tuple):
            return int(addr[1])
    raise RuntimeError("the ops server is not listening")
