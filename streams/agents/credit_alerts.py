"""Credit warnings in the stream: stats.customer and scores.customer -> ``alerts.credit``.

Triggers. Billing events, statistics changes and the aging timer all end in
``Runtime.publish_stats``, so one ``Runtime.on_stats`` hook sees all three; it runs inside the
agent (or timer) that published, before offsets commit, and evaluates ``alerts.credit_rules``
on each document. Grade downgrades come from ``ScoringStage.on_scores`` (every published
score, after it is sent). Messages go out with ``send_soon`` (key alert_id), so they are flushed
with the stats before the input's offsets commit: a crash replays the input, and the replay
finds the same alert state and sends nothing new — or, at worst, sends the same transition
again, which the alert store's upsert absorbs (same alert_id, ts, status, severity).

State. What the rules compare with is the last message per alert_id: the open alerts, and the
last credit grade per customer. It is kept the way ``ScoringStage`` keeps its view: a plain
aiokafka consumer without a group reads the compacted ``alerts.credit`` and ``scores.customer``
from the beginning, forever. Why not a faust table: the alert topic IS the record of every
alert's state (compacted: one message per alert_id), so a table would be a second source of
truth with a changelog of its own that could disagree with what was published; rebuilding from
the topic cannot. Only open alerts are kept (a resolved one is dropped: absent and resolved
mean the same to the rules), so the memory is proportional to the open alerts, plus one grade
per customer.

- At start, the hooks wait (at most ``GRIDPULSE_CREDIT_STATE_WAIT_S``) until the reader has
  reached the end offsets the topics had when it started, so a restart re-evaluating every
  customer does not re-open what is already open.
- Afterwards, the worker's own transitions and grades update the state at once; the reader
  applies only records of customers this worker does not own (``streams.ownership``, as
  in scoring), which keeps them current for the day a rebalance hands them over. A record of an
  owned customer read back later than the worker's own newer update would take it backwards.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from typing import Any

import orjson

from alerts.credit_rules import (
    GRADE_DOWNGRADE,
    CreditThresholds,
    evaluate,
    evaluate_grade,
    family_of,
    is_open,
)
from gridpulse.settings import Settings
from schemas.topics import ALERTS_CREDIT, SCORES_CUSTOMER
from streams.agents.scoring import ScoringStage
from streams.follow import TopicFollower
from streams.runtime import Runtime

log = logging.getLogger(__name__)


def thresholds_from(settings: Settings) -> CreditThresholds:
    return CreditThresholds(
        overdue_major_days=settings.credit_overdue_major_days,
        overdue_critical_days=settings.credit_overdue_critical_days,
        late_fees_12m=settings.credit_late_fees_12m,
        reversals_12m=settings.credit_reversals_12m,
        theft_12m_cny=settings.credit_theft_12m_cny,
    )


class CreditAlertState:
    """Open alerts per customer and family, and the last credit grade per customer."""

    def __init__(self) -> None:
        self.open: dict[str, dict[str, dict[str, Any]]] = {}
        self.grades: dict[str, str] = {}

    def of(self, customer_id: str) -> Mapping[str, Mapping[str, Any]]:
        return self.open.get(customer_id, {})

    def apply(self, alert: Mapping[str, Any]) -> None:
        family = family_of(alert)
        if family is None:
            return
        cid = str(alert["customer_id"])
        if is_open(alert):
            self.open.setdefault(cid, {})[family] = dict(alert)
        else:
            held = self.open.get(cid)
            if held is not None:
                held.pop(family, None)
                if not held:
                    del self.open[cid]

    def forget(self, alert_id: str) -> None:
        """A tombstone: the alert is gone."""
        for cid, held in list(self.open.items()):
            for family, alert in list(held.items()):
                if alert["alert_id"] == alert_id:
                    del held[family]
            if not held:
                del self.open[cid]


class CreditAlertStage:
    def __init__(self, rt: Runtime) -> None:
        self.rt = rt
        self.thresholds = thresholds_from(rt.settings)
        self.state = CreditAlertState()
        s = rt.settings
        self.follower = TopicFollower(
            s,
            (s.topic(ALERTS_CREDIT), s.topic(SCORES_CUSTOMER)),
            lambda rec: self.apply_record(rec.topic, rec.key, rec.value),
            label="credit_alerts",
            counters=rt.counters,
        )
        self.ready = self.follower.ready  # open alerts and last grades read back

    # ----------------------------------------------------------------- the customer's manager

    def manager_of(self, customer_id: str) -> str | None:
        profile = self.rt.profile(customer_id)
        return profile.manager_id if profile is not None else None

    # ----------------------------------------------------------------- hooks

    async def wait_ready(self) -> None:
        if self.ready.is_set():
            return
        try:
            await asyncio.wait_for(self.ready.wait(), self.rt.settings.credit_state_wait_s)
        except TimeoutError:
            # better a repeated "open" than a stalled pipeline; the store absorbs repeats
            log.warning("credit alerts: open alerts not read back yet; evaluating without them")
            self.rt.counters["credit_alerts_state_not_ready"] += 1
            self.ready.set()

    def publish(self, alerts: list[dict[str, Any]]) -> None:
        for alert in alerts:
            self.state.apply(alert)
            self.rt.topics.alerts_credit.send_soon(key=alert["alert_id"].encode(), value=orjson.dumps(alert))
            self.rt.counters[f"credit_alerts_{alert['status']}"] += 1

    async def on_stats(self, docs: list[dict[str, Any]]) -> None:
        if not docs:
            return
        await self.wait_ready()
        out: list[dict[str, Any]] = []
        for doc in docs:
            cid = str(doc["customer_id"])
            out += evaluate(doc, self.state.of(cid), self.thresholds, self.manager_of(cid))
        self.publish(out)

    async def on_scores(self, scores: list[dict[str, Any]]) -> None:
        if not scores:
            return
        await self.wait_ready()
        out: list[dict[str, Any]] = []
        for score in scores:
            cid = str(score["customer_id"])
            grade = str(score["credit_grade"])
            previous_grade = self.state.grades.get(cid)
            self.state.grades[cid] = grade
            alert = evaluate_grade(
                cid,
                previous_grade,
                grade,
                self.state.of(cid).get(GRADE_DOWNGRADE),
                ts=str(score["ts"]),
                manager_id=self.manager_of(cid),
            )
            if alert is not None:
                out.append(alert)
        self.publish(out)

    # ----------------------------------------------------------------- the state's reader

    def apply_record(self, topic: str, key: bytes | None, value: bytes | None) -> None:
        is_alert = topic == self.rt.settings.topic(ALERTS_CREDIT)
        if value is None:
            if is_alert and key:
                self.state.forget(key.decode("utf-8", "replace"))
            return
        try:
            doc = orjson.loads(value)
            cid = str(doc["customer_id"])
        except (orjson.JSONDecodeError, KeyError, TypeError):
            return  # written by gridpulse only: nothing to dead-letter
        if self.ready.is_set() and self.rt.ownership.owns(cid):
            return  # this worker's own updates are newer than what it reads back
        if is_alert:
            self.state.apply(doc)
        elif isinstance(doc.get("credit_grade"), str):
            self.state.grades[cid] = doc["credit_grade"]


def register(rt: Runtime, scoring: ScoringStage) -> CreditAlertStage:
    stage = CreditAlertStage(rt)
    rt.on_stats.append(stage.on_stats)
    scoring.on_scores.append(stage.on_scores)
    rt.app.task(stage.follower.run_forever)
    return stage
