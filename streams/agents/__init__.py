"""Every agent, timer and web view of the worker, registered in one place."""

from __future__ import annotations

import faust

from gridpulse.settings import Settings
from streams.app_types import Topics
from streams.runtime import Runtime


def register_all(app: faust.App, settings: Settings, topics: Topics) -> Runtime:
    from streams.agents import billing, credit_alerts, customers, history, outages, readings, scoring, web

    rt = Runtime(app, settings, topics)
    customers.register(rt)
    readings.register(rt)
    billing.register(rt)
    history.register(rt)
    stage = scoring.register(rt)
    credit_alerts.register(rt)
    outages.register(rt)
    web.register(rt)

    @app.timer(interval=1.0)
    async def redis_catch_up() -> None:
        # the sinks flush when an agent publishes: snapshots that waited while Redis was away
        # must not wait for their customer's next publication once it is back
        for sink in (rt.redis, stage.redis):
            if sink.backlog:
                await sink.flush()

    app.gp_runtime = rt  # type: ignore[attr-defined]
    return rt
