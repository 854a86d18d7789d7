"""The metric conventions every gridpulse process follows, and the exposition.

- Names: ``gridpulse_<what>_<unit>`` in base units (seconds, bytes), counters end in ``_total``
  (prometheus_client adds the suffix to a Counter's name), as the Prometheus naming guide asks.
- Labels: bounded sets only -- topic, partition, kind, severity, error, dependency, service,
  table, outcome, stage, consumer_group. Never a customer, meter, area or person: a label value
  is a time series for ever, and personal data must not reach the monitoring system.
  :func:`lint_exposition` checks a scrape against both rules (the tests use it on real scrapes).
- Each process exposes prometheus_client's default registry (its own metrics plus the process
  and Python collectors) on ``/metrics``.

The metrics shared by every process live here; each service defines its own next to its code.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    disable_created_metrics,
    generate_latest,
)
from prometheus_client.parser import text_string_to_metric_families

# no ``*_created`` series beside every counter and histogram: they double a scrape for nothing
disable_created_metrics()

DEPENDENCY_UP = Gauge(
    "gridpulse_dependency_up",
    "1 when the dependency (redis, postgres, kafka) answered the last readiness check, else 0",
    ["dependency"],
)
READY = Gauge("gridpulse_ready", "1 when the last /readyz check passed, else 0", ["service"])

# --- consuming, the same families in every consuming process (each process has its own group) ---
EVENTS_IN = Counter("gridpulse_events_in", "messages taken from an input topic", ["topic"])
DEAD_LETTERS = Counter(
    "gridpulse_dead_letters",
    "messages sent to a dead-letter topic, per input topic and error",
    ["topic", "error"],
)
CONSUMER_LAG = Gauge(
    "gridpulse_consumer_lag_records",
    "records between the group's position and the partition's end (high watermark)",
    ["consumer_group", "topic", "partition"],
)
COMMIT_AGE = Gauge(
    "gridpulse_committed_offset_age_seconds",
    "seconds since the group's committed offset of the partition last moved (0 while nothing waits)",
    ["consumer_group", "topic", "partition"],
)
EVENT_AGE = Gauge(
    "gridpulse_event_age_seconds",
    "wall clock minus the event time of the newest message processed from the partition",
    ["topic", "partition"],
)

ALLOWED_LABELS = frozenset(
    {
        "topic",
        "partition",
        "kind",
        "severity",
        "error",
        "dependency",
        "service",
        "table",
        "outcome",
        "stage",
        "consumer_group",
        "agent",
        "route",  # the dashboard's route template (/api/customers/{customer_id}), never a path
        "quantile",  # prometheus_client's own
        "le",  # histogram buckets
        # the process and platform collectors'
        "generation",
        "implementation",
        "major",
        "minor",
        "patchlevel",
        "version",
    }
)
# process_* and python_* come from prometheus_client's default collectors
_OWN_PREFIXES = ("gridpulse_", "process_", "python_")


def exposition(registry: CollectorRegistry = REGISTRY) -> tuple[bytes, str]:
    """The scrape body and its content type."""
    return generate_latest(registry), CONTENT_TYPE_LATEST


def lint_exposition(text: str, forbidden_values: Iterable[str] = ()) -> list[str]:
    """What in a scrape breaks the conventions above: a foreign name, a label outside the
    bounded set, or a label value that is one of ``forbidden_values`` (customer ids, names)."""
    forbidden = {v for v in forbidden_values if v}
    problems: list[str] = []
    for family in text_string_to_metric_families(text):
        if not family.name.startswith(_OWN_PREFIXES):
            problems.append(f"{family.name}: not a gridpulse_* name")
        if family.name.startswith("gridpulse_") and re.search(
            r"_(ms|milliseconds|kb|mb|minutes)$", family.name
        ):
            problems.append(f"{family.name}: not in base units (seconds, bytes)")
        for sample in family.samples:
            for label, value in sample.labels.items():
                if label not in ALLOWED_LABELS:
                    problems.append(f"{family.name}: label {label!r} is not in the bounded set")
                if value in forbidden:
                    problems.append(f"{family.name}: label {label}={value!r} names a customer")
    return sorted(set(problems))
