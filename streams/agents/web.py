"""The worker's own web endpoints (next to faust's): health for orchestration and tests,
counters for operators. Bound to GRIDPULSE_WEB_PORT on 127.0.0.1."""

from __future__ import annotations

from typing import Any

from streams.runtime import Runtime


def register(rt: Runtime) -> None:
    app = rt.app

    @app.page("/gridpulse/health/")
    async def health(web: Any, request: Any) -> Any:
        assignment = app.consumer.assignment() if app.consumer else set()
        recovered = app.tables.recovery.completed.is_set()  # type: ignore[attr-defined]  # not in the stub
        ready = bool(assignment) and recovered and not app.rebalancing
        return web.json({"ready": ready, "partitions": len(assignment), "recovered": recovered})

    @app.page("/gridpulse/counters/")
    async def counters(web: Any, request: Any) -> Any:
        return web.json(
            {
                "counters": dict(rt.counters),
                "dead_letters": rt.dead_letters.as_dict(),
                "redis_backlog": rt.redis.backlog,
            }
        )
