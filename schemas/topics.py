"""Topic names of the wire contract (CONTRACT.md). Other systems depend on them: never rename."""

from __future__ import annotations

from dataclasses import dataclass, field

METER_READINGS = "meter.readings"
BILLING_EVENTS = "billing.events"
GRID_OUTAGES = "grid.outages"
CUSTOMERS = "customers"
# gridpulse's own addition to the contract: past monthly consumption from billing history, so
# year-over-year growth (B41/B42) works from the first day of a deployment.
CONSUMPTION_HISTORY = "consumption.history"
# Inspection (issue 13): the summary meters of the transformer areas, key transformer_area.
AREA_READINGS = "area.readings"

STATS_CUSTOMER = "stats.customer"
SCORES_CUSTOMER = "scores.customer"
ALERTS_CREDIT = "alerts.credit"
ALERTS_OUTAGE = "alerts.outage"
RELIABILITY_INDICES = "reliability.indices"
# Inspection (issue 13): line loss per transformer area (key transformer_area) and its alerts.
STATS_AREA = "stats.area"
ALERTS_INSPECTION = "alerts.inspection"

INPUTS = (METER_READINGS, BILLING_EVENTS, GRID_OUTAGES, CUSTOMERS, CONSUMPTION_HISTORY, AREA_READINGS)
OUTPUTS = (
    STATS_CUSTOMER,
    SCORES_CUSTOMER,
    ALERTS_CREDIT,
    ALERTS_OUTAGE,
    RELIABILITY_INDICES,
    STATS_AREA,
    ALERTS_INSPECTION,
)


def dlq(topic: str) -> str:
    """The dead-letter topic of an input topic."""
    return f"{topic}.dlq"


@dataclass(frozen=True)
class TopicSpec:
    name: str
    config: dict[str, str] = field(default_factory=dict)


_COMPACT = {"cleanup.policy": "compact"}
# Latest-value topics are compacted so a new consumer reads one record per key; event topics
# and dead-letter topics keep a week (DLQ: 30 days, for the people who replay them).
_WEEK = {"cleanup.policy": "delete", "retention.ms": str(7 * 24 * 3600 * 1000)}
_MONTH = {"cleanup.policy": "delete", "retention.ms": str(30 * 24 * 3600 * 1000)}
# Outage events are few and the reliability indices are year to date, rebuilt from the topic:
# keep them over a year.
_OUTAGE_RETENTION = {"cleanup.policy": "delete", "retention.ms": str(400 * 24 * 3600 * 1000)}

CONTRACT_TOPICS: tuple[TopicSpec, ...] = (
    TopicSpec(METER_READINGS, _WEEK),
    TopicSpec(BILLING_EVENTS, _WEEK),
    TopicSpec(GRID_OUTAGES, _OUTAGE_RETENTION),
    TopicSpec(CUSTOMERS, _COMPACT),
    TopicSpec(CONSUMPTION_HISTORY, _WEEK),
    TopicSpec(AREA_READINGS, _WEEK),
    TopicSpec(STATS_CUSTOMER, _COMPACT),
    TopicSpec(SCORES_CUSTOMER, _COMPACT),
    TopicSpec(ALERTS_CREDIT, _COMPACT),
    TopicSpec(ALERTS_OUTAGE, _COMPACT),
    TopicSpec(RELIABILITY_INDICES, _COMPACT),
    TopicSpec(STATS_AREA, _COMPACT),
    TopicSpec(ALERTS_INSPECTION, _COMPACT),
    *(TopicSpec(dlq(t), _MONTH) for t in INPUTS),
)
