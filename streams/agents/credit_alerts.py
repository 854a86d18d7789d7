"""Credit warnings in the stream: stats.customer and scores.customer -> ``alerts.credit``.

The rules, the holds, flap detection and why the defaults are what they are:
``alerts.credit_rules`` (pure). This module decides *when* a customer is evaluated.

Triggers. Billing events, statistics changes and the aging timer all end in
``Runtime.publish_stats``, so one ``Runtime.on_stats`` hook sees all three; it runs inside the
agent (or timer) that published, before offsets commit. ``ScoringStage.on_scores`` (every
published score) comes first and only notes the customer's new credit grade; the statistics
document that follows judges it (a grade changed by a population pass alone is judged on the
next tick).

- **Recent inputs** (the newest billing event within ``GRIDPULSE_CREDIT_RECENT_DAYS``): the
  customer is evaluated at once on the document (as of the wall clock). Messages that need no
  hold go out with ``send_soon`` before the input's offsets commit.
- **Old inputs** (a history load, a backlog after an outage of the billing feed): nothing is
  published; the grade becomes the customer's baseline silently, and when the document shows
  anything that could change an alert (``credit_rules.observe_old_inputs``), the customer is
  evaluated once it has had no new billing input for ``GRIDPULSE_CREDIT_SETTLE_S`` (30 s, like
  Alertmanager's group_wait), on the wall clock, from its ledger: the alerts that describe it
  at the end, once. Every new billing input pushes that back, in event order or not; a
  readings or aging document (the same billing inputs, ``billing_inputs``) does not.
- **Holds and flapping**: a transition held by ``credit_rules.decide`` is evaluated again when
  its hold ends (``tick``, every second), from the ledger as of then.

Crash safety. Held transitions and settling customers live in memory only. A worker that
restarts (or takes over partitions) re-derives them: its aging timer re-publishes every
customer with a ledger on its first run (``billing.aging_changes`` starts empty), each is
evaluated as above against the alerts read back from the topic, so an alert that should open
opens (a hold later), and one already published is not published again. A message sent twice
anyway (a crash between send and commit) is the same transition, which the alert store's upsert
absorbs. Flap counts restart with the worker; an alert published as flapping stays held until
its condition is steady for ``GRIDPULSE_CREDIT_FLAP_QUIET_S`` after the restart.

State. What the rules compare with is the last message per alert_id: the open alerts, and the
last credit grade per customer. It is kept the way ``ScoringStage`` keeps its view: a plain
aiokafka consumer without a group reads the compacted ``alerts.credit`` and ``scores.customer``
from the beginning, forever. Why not a faust table: the alert topic IS the record of every
alert's state (compacted: one message per alert_id), so a table would be a second source of
truth with a changelog of its own that could disagree with what was published; rebuilding from
the topic cannot. Only open alerts are kept (a resolved one is dropped: absent and resolved
mean the same to the rules), so the memory is proportional to the open alerts, plus a grade and
a baseline per customer (shared objects: 8 possible baselines); a published grade read back is
an established baseline.

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
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson

from alerts.credit_rules import (
    Baseline,
    CreditThresholds,
    CreditTiming,
    CustomerAlerts,
    evaluate_customer,
    family_of,
    inputs_recent,
    is_open,
    observe_old_inputs,
)
from gridpulse.settings import Settings
from schemas.topics import ALERTS_CREDIT, SCORES_CUSTOMER
from streams.agents.scoring import ScoringStage
from streams.follow import TopicFollower
from streams.runtime import ENVIRONMENT_ERRORS, Runtime, log_failure

log = logging.getLogger(__name__)

TICK_S = 1.0  # how often held transitions and settled customers are looked at
_BASELINES = {(g, e): Baseline(g, e) for g in "ABCD" for e in (False, True)}


def thresholds_from(settings: Settings) -> CreditThresholds:
    return CreditThresholds(
        overdue_major_days=settings.credit_overdue_major_days,
        overdue_critical_days=settings.credit_overdue_critical_days,
        late_fees_12m=settings.credit_late_fees_12m,
        reversals_12m=settings.credit_reversals_12m,
        theft_12m_cny=settings.credit_theft_12m_cny,
        evidence_change=settings.credit_evidence_change,
    )


def timing_from(settings: Settings) -> CreditTiming:
    return CreditTiming(
        recent_s=settings.credit_recent_days * 86400.0,
        open_hold_s=settings.credit_open_hold_s,
        resolve_hold_s=settings.credit_resolve_hold_s,
        flap_window_s=settings.credit_flap_window_s,
        flap_transitions=settings.credit_flap_transitions,
        flap_quiet_s=settings.credit_flap_quiet_s,
    )


def shared_baseline(baseline: Baseline | None) -> Baseline | None:
    """The one shared object per (grade, established): a baseline per customer costs a pointer."""
    return None if baseline is None else _BASELINES.get((baseline.grade, baseline.established), baseline)


class CreditAlertState:
    """Open alerts and damping per customer (only customers that have any), the latest credit
    grade and the downgrade baseline of every customer."""

    def __init__(self) -> None:
        self.customers: dict[str, CustomerAlerts] = {}
        self.grades: dict[str, str] = {}
        self.baselines: dict[str, Baseline] = {}

    def held(self, customer_id: str) -> CustomerAlerts:
        held = self.customers.get(customer_id)
        if held is None:
            held = self.customers[customer_id] = CustomerAlerts(baseline=self.baselines.get(customer_id))
        return held

    def tidy(self, customer_id: str) -> None:
        """Keep the baseline; drop the customer's record when nothing is open or held."""
        held = self.customers.get(customer_id)
        if held is None:
            return
        baseline = shared_baseline(held.baseline)
        if baseline is not None:
            self.baselines[customer_id] = held.baseline = baseline
        if not held.published and not held.tracks:
            del self.customers[customer_id]

    def open_alerts(self, customer_id: str) -> dict[str, dict[str, Any]]:
        held = self.customers.get(customer_id)
        return dict(held.published) if held is not None else {}

    def apply(self, alert: Mapping[str, Any], *, own: bool = True) -> None:
        """An alert message this worker published (``own``) or read back. One read back is
        another worker's (or an earlier life's): what this worker held of it is stale."""
        family = family_of(alert)
        if family is None:
            return
        cid = str(alert["customer_id"])
        if not own and cid in self.customers:
            self.customers[cid].tracks.pop(family, None)
        if is_open(alert):
            self.held(cid).published[family] = dict(alert)
        else:
            held = self.customers.get(cid)
            if held is not None:
                held.published.pop(family, None)
                self.tidy(cid)

    def apply_grade(self, customer_id: str, grade: str) -> None:
        """A grade read back from scores.customer: published, so an established baseline."""
        self.grades[customer_id] = grade
        baseline = _BASELINES.get((grade, True))
        if baseline is not None:
            self.baselines[customer_id] = baseline
            held = self.customers.get(customer_id)
            if held is not None:
                held.baseline = baseline

    def forget(self, alert_id: str) -> None:
        """A tombstone: the alert is gone."""
        for cid, held in list(self.customers.items()):
            for family, alert in list(held.published.items()):
                if alert["alert_id"] == alert_id:
                    del held.published[family]
                    held.tracks.pop(family, None)
            self.tidy(cid)


Inputs = tuple[Any, Any, Any]


def billing_inputs(arrears: Mapping[str, Any]) -> Inputs:
    """What changes with every billing event and with nothing else (not with the clock, not
    with readings): the newest event's time, the open amount and the credit. Every event type
    moves the open amount or the credit, in or out of event order."""
    return (arrears.get("last_event_ts"), arrears.get("outstanding"), arrears.get("credit"))


@dataclass(slots=True)
class Pending:
    """A customer to evaluate at ``at`` (epoch s) without new input: settling after old
    inputs, a hold that ends, or a grade from a population pass."""

    at: float
    ts: str  # event time of the newest input seen: the messages' ts
    inputs: Inputs | None  # the billing inputs it has been settling on
    settling: bool


class CreditAlertStage:
    def __init__(self, rt: Runtime) -> None:
        self.rt = rt
        self.thresholds = thresholds_from(rt.settings)
        self.timing = timing_from(rt.settings)
        self.state = CreditAlertState()
        self.pending: dict[str, Pending] = {}
        self.graded: dict[str, str] = {}  # grade changed, statistics not seen yet: customer -> score ts
        self.clock: Callable[[], float] = time.time  # the wall clock (tests set it)
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
            self.rt.metrics.alert(alert)
            self.rt.counters[f"credit_alerts_{alert['status']}"] += 1
            if alert.get("flapping"):
                self.rt.counters["credit_alerts_flapping"] += 1

    def evaluate(self, customer_id: str, arrears: dict[str, Any], now: float, ts: str) -> None:
        """Evaluate one customer at ``now`` (``arrears`` as of then), publish, and note when a
        hold ends."""
        held = self.state.held(customer_id)
        result = evaluate_customer(
            customer_id,
            arrears,
            self.state.grades.get(customer_id),
            held,
            now,
            ts=ts,
            manager_id=self.manager_of(customer_id),
            thresholds=self.thresholds,
            timing=self.timing,
        )
        self.publish(result.messages)
        self.state.tidy(customer_id)
        if result.due is None:
            self.pending.pop(customer_id, None)
        else:
            self.pending[customer_id] = Pending(result.due, ts, billing_inputs(arrears), settling=False)

    async def on_stats(self, docs: list[dict[str, Any]]) -> None:
        if not docs:
            return
        await self.wait_ready()
        now = self.clock()
        for doc in docs:
            cid = str(doc["customer_id"])
            ts = str(doc["ts"])
            self.graded.pop(cid, None)
            arrears = doc.get("arrears") or {}
            last_event = arrears.get("last_event_ts")
            if inputs_recent(last_event, now, self.timing):
                self.evaluate(cid, arrears, now, ts)
                continue
            held = self.state.held(cid)
            needed = observe_old_inputs(arrears, self.state.grades.get(cid), held, self.thresholds)
            self.state.tidy(cid)
            pending = self.pending.get(cid)
            inputs = billing_inputs(arrears)
            if pending is not None and pending.settling and pending.inputs == inputs:
                pending.ts = ts  # a readings or aging document: the quiet time goes on
            elif needed or (pending is not None and pending.settling):
                # a new (old) billing input: wait until the customer's load has settled
                self.pending[cid] = Pending(now + self.rt.settings.credit_settle_s, ts, inputs, settling=True)
                self.rt.counters["credit_settle_started"] += 1
            elif pending is not None:
                pending.ts = ts

    async def on_scores(self, scores: list[dict[str, Any]]) -> None:
        """Note each new credit grade; the statistics document that follows judges it."""
        if not scores:
            return
        await self.wait_ready()
        for score in scores:
            cid = str(score["customer_id"])
            grade = str(score["credit_grade"])
            if self.state.grades.get(cid) != grade:
                self.state.grades[cid] = grade
                self.graded[cid] = str(score["ts"])

    # ----------------------------------------------------------------- without new input

    def due(self, now: float) -> list[tuple[str, Pending]]:
        """Customers to evaluate now: holds that ended, customers that settled, and grades a
        population pass changed (no statistics document followed)."""
        out = [(cid, p) for cid, p in self.pending.items() if p.at <= now]
        for cid, ts in self.graded.items():
            if cid not in self.pending:
                out.append((cid, Pending(now, ts, None, settling=False)))
        self.graded.clear()
        return out

    async def tick(self) -> None:
        app = self.rt.app
        recovered = app.tables.recovery.completed.is_set()  # type: ignore[attr-defined]  # not in the stub
        if not self.ready.is_set() or not recovered or app.rebalancing:
            return
        now = self.clock()
        settled = 0
        for cid, pending in self.due(now):
            self.pending.pop(cid, None)
            if not self.rt.ownership.owns(cid):
                continue  # handed over: its new owner re-derives it
            try:
                now_dt = datetime.fromtimestamp(now, self.rt.tz)
                arrears = self.rt.ledger(cid).snapshot(now_dt)
                arrears["as_of"] = now_dt.isoformat()
                self.evaluate(cid, arrears, now, pending.ts)
            except ENVIRONMENT_ERRORS:
                raise
            except Exception as exc:  # a defect: this customer waits for its next input
                self.rt.counters["credit_alerts_failed"] += 1
                why = "settled" if pending.settling else "held"
                log_failure(f"credit alerts: evaluating a settled or held customer failed ({why})", exc)
            settled += pending.settling
        self.rt.counters["credit_settled"] += settled
        self.rt.counters["credit_settling"] = sum(1 for p in self.pending.values() if p.settling)
        self.rt.counters["credit_held"] = len(self.pending) - self.rt.counters["credit_settling"]

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
            self.state.apply(doc, own=False)
        elif isinstance(doc.get("credit_grade"), str):
            self.state.apply_grade(cid, doc["credit_grade"])


def register(rt: Runtime, scoring: ScoringStage) -> CreditAlertStage:
    stage = CreditAlertStage(rt)
    rt.on_stats.append(stage.on_stats)
    scoring.on_scores.append(stage.on_scores)
    rt.app.task(stage.follower.run_forever)
    rt.app.timer(interval=TICK_S, name="credit_alerts.tick")(stage.tick)
    return stage
