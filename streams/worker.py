"""One gridpulse worker, wired explicitly: the faust app, its topics, the runtime the agents
share, and the stages that keep state of their own.

``create_worker(settings)`` builds everything in one place, in dependency order, and returns a
typed :class:`Worker` (``gridpulse worker`` runs ``worker.app``; tests and benches reach the
stages through it, not through attributes hung on the faust app). Import order has no cycle:
``streams.app`` (faust configuration, topics) and ``streams.runtime`` (tables, dead letters,
publishing) know no agent; the agents import the runtime; this module imports them all.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import faust

from gridpulse.settings import Settings, get_settings
from schemas.topics import METER_READINGS
from streams.agents import areas, billing, credit_alerts, customers, history, outages, readings, scoring, web
from streams.agents.areas import AreaStage
from streams.agents.credit_alerts import CreditAlertStage
from streams.agents.outages import OutageStage
from streams.agents.scoring import ScoringStage
from streams.app import declare_topics, make_app, track_written_topics
from streams.app_types import Topics
from streams.runtime import Runtime


@dataclass(frozen=True)
class Worker:
    app: faust.App
    settings: Settings
    topics: Topics
    runtime: Runtime
    scoring: ScoringStage
    credit_alerts: CreditAlertStage
    outages: OutageStage
    areas: AreaStage


def create_worker(settings: Settings | None = None, **overrides: Any) -> Worker:
    """A fresh worker: the app with ``overrides`` of its faust configuration, every agent,
    timer, task and web page registered on it."""
    s = settings or get_settings()
    app = make_app(s, **overrides)
    topics = declare_topics(app, s)
    rt = Runtime(app, s, topics)

    customers.register(rt)
    readings.register(rt)
    billing.register(rt)
    history.register(rt)
    scoring_stage = scoring.register(rt)
    credit_stage = credit_alerts.register(rt, scoring_stage)
    outage_stage = outages.register(rt)
    area_stage = areas.register(rt)
    web.register(rt)
    # their backlog on /metrics (gridpulse_redis_backlog_entries{stage})
    rt.metrics.sinks.update(
        stats=rt.redis, scores=scoring_stage.redis, areas=area_stage.redis, area_days=area_stage.redis_days
    )

    @app.timer(interval=1.0)
    async def redis_catch_up() -> None:
        # the sinks flush when an agent publishes: snapshots that waited while Redis was away
        # must not wait for their customer's next publication once it is back
        for sink in (rt.redis, scoring_stage.redis, area_stage.redis, area_stage.redis_days):
            if sink.backlog:
                await sink.flush()

    async def track(sender: Any, /, *args: Any, signal: Any, **kwargs: Any) -> None:
        await track_written_topics(app, topics)

    # on every assignment: after the changelogs are created, before the streams resume
    app.on_partitions_assigned.connect(track)

    # the views' followers stop reading the stats.customer partitions this worker writes
    # (fed in-process by Runtime.on_stats) while it owns them: streams.follow.set_own
    own_followers = (scoring_stage.follower, outage_stage.follower)
    readings_topic = s.topic(METER_READINGS)

    async def own_assigned(sender: Any, /, *args: Any, signal: Any, **kwargs: Any) -> None:
        assigned = args[0]  # faust's on_partitions_assigned.send(assigned)
        owned = {tp.partition for tp in assigned if tp.topic == readings_topic}
        for follower in own_followers:
            follower.set_own(owned)

    async def own_revoked(sender: Any, /, *args: Any, signal: Any, **kwargs: Any) -> None:
        for follower in own_followers:
            follower.set_own(())

    app.on_partitions_assigned.connect(own_assigned)
    app.on_partitions_revoked.connect(own_revoked)
    return Worker(app, s, topics, rt, scoring_stage, credit_stage, outage_stage, area_stage)
