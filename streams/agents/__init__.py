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
    scoring.register(rt)
    credit_alerts.register(rt)
    outages.register(rt)
    web.register(rt)
    app.gp_runtime = rt  # type: ignore[attr-defined]
    return rt
