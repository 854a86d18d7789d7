"""Types shared by the app factory and the agents (kept apart to avoid an import cycle)."""

from __future__ import annotations

from dataclasses import dataclass

import faust


@dataclass
class Topics:
    """The contract topics as Faust topics, values kept raw: we decode ourselves so a bad
    message can go to the dead-letter topic with its partition and offset."""

    readings: faust.TopicT
    billing: faust.TopicT
    outages: faust.TopicT
    customers: faust.TopicT
    history: faust.TopicT
    stats: faust.TopicT
    scores: faust.TopicT
    alerts_credit: faust.TopicT
    alerts_outage: faust.TopicT
    reliability: faust.TopicT
    dlq: dict[str, faust.TopicT]
    # inspection (streams/agents/areas.py): the summary meters, the repartition of customers'
    # energy and membership by transformer area (internal), the area statistics and alerts
    area_readings: faust.TopicT
    area_energy: faust.TopicT
    stats_area: faust.TopicT
    alerts_inspection: faust.TopicT
