"""When the credit alert stage judges a customer (streams/agents/credit_alerts.py), on a set
clock, without a broker: the stage's own scheduling with the real rules, ledgers and
statistics documents; the runtime around it is a stand-in that records what is sent.

- a history load (old inputs) publishes nothing while it streams, then the end state once,
  ``credit_settle_s`` after the customer's last billing input (in event order or not) plus
  the open hold; readings and aging documents (the same billing inputs) do not push that back;
- recent inputs are judged at once (the open hold still applies);
- a grade noted by ``on_scores`` is judged with the statistics that follow, a grade changed by
  a population pass alone on the next tick;
- a restarted stage that read the alert back publishes nothing again.
"""

from __future__ import annotations

from collections import Counter
from datetime import datetime
from types import SimpleNamespace
from typing import Any
from zoneinfo import ZoneInfo

import orjson

from gridpulse.settings import Settings
from metering.arrears import ArrearsLedger
from schemas.topics import ALERTS_CREDIT
from streams.agents.credit_alerts import CreditAlertStage, register
from streams.metrics import WorkerMetrics

SHANGHAI = ZoneInfo("Asia/Shanghai")
T0 = datetime(2026, 12, 1, 10, 0, tzinfo=SHANGHAI).timestamp()
DAY = 86400.0


class Recorder:
    def __init__(self) -> None:
        self.sent: list[dict[str, Any]] = []

    def send_soon(self, key: bytes, value: bytes) -> None:
        doc = orjson.loads(value)
        assert key == doc["alert_id"].encode()
        self.sent.append(doc)


class Stand:
    """What the stage reads of the worker: settings, tables (ledgers), profiles, ownership."""

    def __init__(self) -> None:
        self.settings = Settings(_env_file=None, topic_prefix="t.")  # type: ignore[call-arg]
        self.tz = SHANGHAI
        self.counters: Counter[str] = Counter()
        self.ledgers: dict[str, ArrearsLedger] = {}
        self.out = Recorder()
        self.topics = SimpleNamespace(alerts_credit=self.out)
        self.app = SimpleNamespace(
            timer=lambda **kw: lambda fun: fun,
            tables=SimpleNamespace(recovery=SimpleNamespace(completed=SimpleNamespace(is_set=lambda: True))),
            rebalancing=False,
        )
        self.ownership = SimpleNamespace(owns=lambda cid: True)
        self.metrics = WorkerMetrics(self.app, "t", [])  # gridpulse_alerts_published_total

    def profile(self, customer_id: str) -> Any:
        return SimpleNamespace(manager_id="m-1")

    def ledger(self, customer_id: str) -> ArrearsLedger:
        return self.ledgers.setdefault(customer_id, ArrearsLedger(SHANGHAI))


def stage_on(stand: Stand) -> CreditAlertStage:
    stage = CreditAlertStage(stand)  # type: ignore[arg-type]
    stage.ready.set()
    return stage


def iso(t: float) -> str:
    return datetime.fromtimestamp(t, SHANGHAI).isoformat()


def doc(stand: Stand, cid: str, now: float) -> dict[str, Any]:
    """The statistics document's part the stage reads, as stats_document makes it."""
    ledger = stand.ledger(cid)
    arrears = ledger.snapshot(datetime.fromtimestamp(now, SHANGHAI))
    arrears["as_of"] = iso(now)
    ts = iso(ledger.newest_ts) if ledger.newest_ts is not None else iso(now - 3600)
    return {"customer_id": cid, "ts": max(ts, iso(now - 3600)), "arrears": arrears}


def apply(stand: Stand, cid: str, t: float, kind: str, amount: float, **extra: Any) -> None:
    n = len(stand.ledger(cid)._seen)
    stand.ledger(cid).apply({"event_id": f"{cid}-{n}", "ts": iso(t), "type": kind, "amount": amount, **extra})


async def at(stage: CreditAlertStage, t: float) -> None:
    stage.clock = lambda: t
    await stage.tick()


async def test_a_history_load_is_judged_once_it_settles() -> None:
    stand = Stand()
    stage = stage_on(stand)
    s = stand.settings
    now = T0
    stage.clock = lambda: now
    # twelve monthly bills, each paid 62-72 days after issue with a late fee: old inputs (the
    # last bill comes before the previous payment in event time: a load need not be in order)
    for k in range(12, 0, -1):
        issued = T0 - (30 * k + 60) * DAY
        due = datetime.fromtimestamp(issued + 20 * DAY, SHANGHAI).date().isoformat()
        apply(stand, "C1", issued, "bill", 500.0, bill_id=f"B{k}", due_date=due)
        await stage.on_stats([doc(stand, "C1", now)])
        if k > 1:  # the last bill stays unpaid
            paid = issued + (60 + k) * DAY
            apply(stand, "C1", paid - 1, "late_fee", 5.0)
            await stage.on_stats([doc(stand, "C1", now)])
            apply(stand, "C1", paid, "payment", 505.0)
            await stage.on_stats([doc(stand, "C1", now)])
        now += 0.2
    assert stand.out.sent == []  # mid-load states ("300 days overdue") never went out
    settles_at = stage.pending["C1"].at
    assert settles_at == now - 0.2 + s.credit_settle_s
    # a readings document and an aging document: same newest billing event, no push-back
    now += 10
    await stage.on_stats([doc(stand, "C1", now)])
    assert stage.pending["C1"].at == settles_at
    await at(stage, settles_at - 0.1)
    assert stand.out.sent == []
    await at(stage, settles_at)  # settled: judged, the open hold begins
    assert stand.out.sent == [] and stand.counters["credit_settled"] == 1
    await at(stage, settles_at + s.credit_open_hold_s)
    sent = {a["alert_id"]: a for a in stand.out.sent}
    assert len(stand.out.sent) == len(sent) == 2  # once each
    overdue = sent["credit:C1:overdue"]
    assert (overdue["status"], overdue["rule"], overdue["evidence"]["oldest_overdue_id"]) == (
        "open",
        "overdue_30",
        "B1",
    )
    assert overdue["evidence"]["oldest_overdue_days"] == 70
    assert sent["credit:C1:late_fees_12m"]["evidence"]["late_fees_12m"] >= 2
    assert "C1" not in stage.pending
    # nothing more, whatever the clock says
    await at(stage, settles_at + 2 * DAY)
    assert len(stand.out.sent) == 2


async def test_a_new_billing_input_during_the_load_pushes_the_settling_back() -> None:
    stand = Stand()
    stage = stage_on(stand)
    stage.clock = lambda: T0
    apply(stand, "C1", T0 - 300 * DAY, "bill", 500.0, bill_id="B1", due_date="2025-12-01")
    await stage.on_stats([doc(stand, "C1", T0)])
    first = stage.pending["C1"].at
    stage.clock = lambda: T0 + 20
    apply(stand, "C1", T0 - 290 * DAY, "payment", 500.0, bill_id="B1")
    await stage.on_stats([doc(stand, "C1", T0 + 20)])
    assert stage.pending["C1"].at == first + 20
    await at(stage, first + 20)
    await at(stage, first + 20 + 3600)
    assert stand.out.sent == []  # paid: nothing was ever overdue at the end


async def test_recent_inputs_are_judged_at_once_and_grades_with_them() -> None:
    stand = Stand()
    stage = stage_on(stand)
    hold = stand.settings.credit_open_hold_s
    stage.clock = lambda: T0
    # an established customer: history long ago, graded A on it
    apply(stand, "C1", T0 - 200 * DAY, "bill", 500.0, bill_id="B1", due_date="2026-06-01")
    apply(stand, "C1", T0 - 195 * DAY, "payment", 500.0, bill_id="B1")
    apply(stand, "C1", T0 - 150 * DAY, "late_fee", 5.0)
    apply(stand, "C1", T0 - 150 * DAY + 1, "payment", 5.0)
    await stage.on_scores([{"customer_id": "C1", "credit_grade": "A", "ts": iso(T0 - 150 * DAY)}])
    await stage.on_stats([doc(stand, "C1", T0)])
    await at(stage, T0 + 100)
    assert stand.out.sent == [] and stage.state.baselines["C1"].established
    # a new late fee today: its grade (noted first) and its statistics, judged at once
    t = T0 + 200
    stage.clock = lambda: t
    apply(stand, "C1", t - 1, "late_fee", 6.0)
    await stage.on_scores([{"customer_id": "C1", "credit_grade": "C", "ts": iso(t - 1)}])
    await stage.on_stats([doc(stand, "C1", t)])
    assert stage.pending["C1"].at == t + hold and not stage.pending["C1"].settling
    await at(stage, t + hold)
    assert {(a["alert_id"], a["status"]) for a in stand.out.sent} == {
        ("credit:C1:late_fees_12m", "open"),
        ("credit:C1:grade_downgrade", "open"),
    }
    downgrade = next(a for a in stand.out.sent if a["rule"] == "grade_downgrade")
    assert downgrade["evidence"] == {"from_grade": "A", "to_grade": "C"}


async def test_a_grade_changed_by_a_population_pass_is_judged_on_the_next_tick() -> None:
    stand = Stand()
    stage = stage_on(stand)
    stage.clock = lambda: T0
    apply(stand, "C1", T0 - DAY, "bill", 500.0, bill_id="B1", due_date="2026-12-20")
    await stage.on_scores([{"customer_id": "C1", "credit_grade": "A", "ts": iso(T0 - DAY)}])
    await stage.on_stats([doc(stand, "C1", T0)])
    await stage.on_scores([{"customer_id": "C1", "credit_grade": "B", "ts": iso(T0 - DAY)}])  # a pass
    assert stage.graded == {"C1": iso(T0 - DAY)}
    await at(stage, T0 + 1)
    assert stage.pending["C1"].at == T0 + 1 + stand.settings.credit_open_hold_s
    await at(stage, T0 + 1 + stand.settings.credit_open_hold_s)
    assert [(a["rule"], a["evidence"]["from_grade"]) for a in stand.out.sent] == [("grade_downgrade", "A")]


async def test_a_restarted_stage_does_not_publish_what_is_published() -> None:
    stand = Stand()
    stage = stage_on(stand)
    stage.clock = lambda: T0
    apply(stand, "C1", T0 - 2 * DAY, "bill", 500.0, bill_id="B1", due_date="2026-10-01")
    await stage.on_stats([doc(stand, "C1", T0)])
    await at(stage, T0 + stand.settings.credit_open_hold_s)
    (opened,) = stand.out.sent
    # a new life: the alert read back from alerts.credit, the aging timer re-publishes the customer
    again = Stand()
    again.ledgers = stand.ledgers
    restarted = CreditAlertStage(again)  # type: ignore[arg-type]
    restarted.apply_record(again.settings.topic(ALERTS_CREDIT), b"credit:C1:overdue", orjson.dumps(opened))
    restarted.ready.set()
    restarted.clock = lambda: T0 + 600
    await restarted.on_stats([doc(again, "C1", T0 + 600)])
    await at(restarted, T0 + 600 + 3600)
    assert again.out.sent == []
    # and what it had not published yet (lost in the crash) it re-derives
    lost = Stand()
    lost.ledgers = stand.ledgers
    fresh = stage_on(lost)
    fresh.clock = lambda: T0 + 600
    await fresh.on_stats([doc(lost, "C1", T0 + 600)])
    await at(fresh, T0 + 600 + lost.settings.credit_open_hold_s)
    assert [a["alert_id"] for a in lost.out.sent] == ["credit:C1:overdue"]


def test_register_wires_the_hooks_and_the_tick() -> None:
    stand = Stand()
    registered: list[Any] = []
    stand.app.timer = lambda **kw: lambda fun: registered.append((kw, fun)) or fun
    stand.app.task = lambda fun: fun
    stand.on_stats = []  # type: ignore[attr-defined]
    scoring = SimpleNamespace(on_scores=[])
    stage = register(stand, scoring)  # type: ignore[arg-type]
    assert stand.on_stats == [stage.on_stats]  # type: ignore[attr-defined]
    assert scoring.on_scores == [stage.on_scores]
    assert registered == [({"interval": 1.0, "name": "credit_alerts.tick"}, stage.tick)]
