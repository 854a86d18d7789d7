"""The alerts consumer's own metric families (issue 15), beside the consuming families every
consumer shares (``observability.metrics``: events in, consumer lag, committed offset age).

Labels are bounded: ``outcome``, ``kind`` (credit, outage, inspection), ``severity`` (info ..
critical), ``topic``, ``error``. Never an alert id, a customer or a manager: those are in the
alert store and the logs, not in a time series.

:class:`PartitionProgress` turns the offsets the consumer committed and the partitions' ends into
``gridpulse_consumer_lag_records`` and ``gridpulse_committed_offset_age_seconds`` (pure
bookkeeping: the consumer feeds it what its own Kafka client answered).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from prometheus_client import Counter, Gauge, Histogram

from observability.metrics import COMMIT_AGE, CONSUMER_LAG

# the alert store: one transaction per batch (alerts.consumer._store)
STORE_TRANSACTIONS = Counter(
    "gridpulse_alert_store_transactions",
    "alert store transactions (one per batch): committed, or failed (the database unavailable; "
    "the batch is held and retried)",
    ["outcome"],
)
STORE_RETRIES = Counter(
    "gridpulse_alert_store_retries",
    "attempts on the alert store that found the database unavailable and were retried after a backoff",
)
STORE_TRANSACTION_SECONDS = Histogram(
    "gridpulse_alert_store_transaction_seconds",
    "duration of one alert store transaction (a batch: upserts, notice decisions, outbox rows)",
    ["outcome"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0),
)
ALERTS_STORED = Counter(
    "gridpulse_alerts_stored",
    "alert messages stored (upserted in a committed transaction; a redelivered one counts again)",
    ["kind", "severity"],
)
ALERTS_SKIPPED = Counter(
    "gridpulse_alerts_skipped",
    "alert messages skipped: undecodable or invalid (error tombstone, decode, schema) or refused "
    "by the database (error rejected); alert topics are outputs, there is no dead-letter topic",
    ["topic", "error"],
)

# notifications (alerts.notifier.NotificationDispatcher)
NOTIFICATIONS = Counter(
    "gridpulse_notifications",
    "notifications to customer managers: queued (an outbox row for a manager), sent (delivered), "
    "failed (given up after the notifier's retries; the row is stamped given up), suppressed (an "
    "alert state that is news but names no manager: nobody told)",
    ["outcome", "kind", "severity"],
)
NOTIFICATION_SECONDS = Histogram(
    "gridpulse_notification_seconds",
    "duration of one notification, the notifier's retries included",
    ["outcome"],
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0),
)
NOTIFICATIONS_IN_FLIGHT = Gauge(
    "gridpulse_notifications_in_flight", "notifications submitted and not yet delivered or given up"
)

NOTIFY_OUTCOMES = ("queued", "sent", "failed", "suppressed")
KINDS = ("credit", "outage", "inspection")
SEVERITIES = ("info", "minor", "major", "critical")


def bounded(value: object, allowed: Iterable[str], other: str = "other") -> str:
    """``value`` when it is one of ``allowed``, else ``other``: a label never takes a value
    from outside its set (a newer producer's kind, a typo), so the series stay bounded."""
    text = str(value)
    return text if text in allowed else other


class PartitionProgress:
    """Lag and committed-offset age of one consumer group's assigned partitions.

    ``committed(tp, offset, now)``: the group's committed offset of ``tp`` (read at assignment,
    then each commit). ``observe(ends, assigned, now)``: the partitions' end offsets (high
    watermarks) as the consumer's client answered; sets the two gauges of every assigned
    partition, removes those of partitions no longer assigned, and returns the total lag.

    Lag is end minus committed (an alert held while the database is away counts: it is not
    stored yet). The age is the time since the committed offset last moved, 0 while nothing
    waits (committed == end).
    """

    def __init__(self, consumer_group: str) -> None:
        self.consumer_group = consumer_group
        self.offsets: dict[tuple[str, int], int] = {}
        self.moved_at: dict[tuple[str, int], float] = {}
        self.lag: dict[tuple[str, int], int] = {}
        self.measured_at: float | None = None

    def committed(self, tp: tuple[str, int], offset: int, now: float) -> None:
        tp = (tp[0], tp[1])
        if self.offsets.get(tp) != offset:
            self.offsets[tp] = offset
            self.moved_at[tp] = now

    def known(self, tp: tuple[str, int]) -> bool:
        return (tp[0], tp[1]) in self.offsets

    def observe(
        self, ends: Mapping[tuple[str, int], int], assigned: Iterable[tuple[str, int]], now: float
    ) -> int:
        mine = {(tp[0], tp[1]) for tp in assigned}
        for tp in [tp for tp in self.lag if tp not in mine]:
            self._forget(tp)
        for tp in [tp for tp in self.offsets if tp not in mine]:
            self.offsets.pop(tp, None)
            self.moved_at.pop(tp, None)
        for tp_ in ends:
            tp = (tp_[0], tp_[1])
            if tp not in mine or tp not in self.offsets:
                continue
            lag = max(0, ends[tp_] - self.offsets[tp])
            age = 0.0 if lag == 0 else max(0.0, now - self.moved_at[tp])
            labels = {"consumer_group": self.consumer_group, "topic": tp[0], "partition": str(tp[1])}
            CONSUMER_LAG.labels(**labels).set(lag)
            COMMIT_AGE.labels(**labels).set(age)
            self.lag[tp] = lag
        self.measured_at = now
        return sum(self.lag.values())

    def total_lag(self) -> int:
        return sum(self.lag.values())

    def clear(self) -> None:
        """The consumer stopped: its partitions' series go (another member reports them)."""
        for tp in list(self.lag):
            self._forget(tp)
        self.offsets.clear()
        self.moved_at.clear()
        self.measured_at = None

    def _forget(self, tp: tuple[str, int]) -> None:
        self.lag.pop(tp, None)
        labels = (self.consumer_group, tp[0], str(tp[1]))
        for family in (CONSUMER_LAG, COMMIT_AGE):
            try:
                family.remove(*labels)
            except KeyError:
                pass
