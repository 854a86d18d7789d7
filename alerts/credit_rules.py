"""Credit warnings (``alerts.credit``) as pure functions: numbers and ``now`` in, messages out.

DOMAIN.md section 4 (the defaults, all configurable through ``CreditThresholds``):

| alert (family) | fires when | severity |
|---|---|---|
| ``overdue`` | oldest bill > 30 days overdue (``overdue_30``), > 90 (``overdue_90``) | major, critical |
| ``late_fees_12m`` | 2nd late fee within 12 months | major |
| ``reversals_12m`` | 2nd payment reversal within 12 months | major |
| ``theft_12m`` | theft penalties > 50,000 CNY within 12 months | critical |
| ``grade_downgrade`` | credit grade worse than the established grade | to B minor, C major, D critical |

One alert per (customer, family), ``alert_id = credit:<customer_id>:<family>``; status ``open``
(new, or reopened: same alert_id), ``escalated`` (severity rose), ``open`` again when it falls
while the condition holds, ``resolved`` when it clears. The overdue warning escalates from
``overdue_30`` to ``overdue_90`` as the bill ages.

**Only what is news is published** (every publication reaches a customer manager):

- *Recent inputs* (``inputs_recent``): a customer's billing history replayed in event order
  against the wall clock passes through states that never were (a bill of ten months ago is
  "300 days overdue" until its payment, replayed a moment later, arrives). While the newest
  billing event of a customer is older than ``CreditTiming.recent_s`` (7 days), its statistics
  change silently; the stage (``streams/agents/credit_alerts.py``) evaluates it once its load
  has settled, on the wall clock, and publishes the alerts that describe it at the end.
- *Grade baseline* (``grade_condition``): a customer's first grade is a baseline, not earned
  (A: no history yet), and so is a grade reached on old inputs. A downgrade is judged only
  against an *established* grade (one the customer held with billing history behind it) and
  only for a change on recent inputs. An open downgrade alert follows the grade either way.
- *Damping* (``decide``, Prometheus ``for`` / ``keep_firing_for``): a worse state (open,
  escalate) must hold ``open_hold_s`` (30 s) before it is published, a better one (resolve, a
  lower severity) ``resolve_hold_s`` (1 h). Why these defaults: 30 s is Alertmanager's
  group_wait, long enough to absorb the pairs a billing feed posts together (a late fee and the
  late payment it belongs to, a bill and its adjustment) and a backlog replaying within the
  horizon, and short enough that a new late fee today on an established customer raises its
  warning at once for any human purpose; a resolution is good news that can wait an hour, and
  a condition that comes back within that hour (a payment reversed, a replayed backlog) then
  neither resolves nor reopens.
- *Flapping* (Nagios flap detection): the holds absorb flips faster than themselves; an alert
  whose damped state still opens or resolves ``flap_transitions`` times (4) within
  ``flap_window_s`` (7 days) is flapping: instead of that transition it is published once
  held open with ``flapping: true`` (a reopening is still news; a suppressed resolve is not),
  escalations still go out, nothing else does until the condition has not changed for
  ``flap_quiet_s`` (1 day); then the alert takes its state with ``flapping: false``.
- *Evidence that does not go stale*: ``evidence`` names what does not age by itself (the oldest
  overdue bill's id, due date and open amount; counts and amounts in the 12-month window),
  plus ``as_of``, the instant ages were measured, so a reader computes the age at any time. An
  open alert is re-published (same alert_id and status) when that evidence changes materially
  (``evidence_changed``: another oldest overdue bill, a count, an amount moved by more than
  ``CreditThresholds.evidence_change`` of itself), never because a day passed. A resolution
  says why (``resolved: bill B123 settled by 2026-11-20; no bill more than 30 days overdue``).

``ts`` of a message is the event time of the newest input behind it (never earlier than the
alert's previous message, which the alert store orders by). Nothing here reads a clock: every
function that depends on time takes ``now`` (epoch seconds).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from functools import lru_cache
from typing import Any

SEVERITY_RANK = {"info": 0, "minor": 1, "major": 2, "critical": 3}
GRADE_RANK = {"A": 0, "B": 1, "C": 2, "D": 3}
GRADE_SEVERITY = {"B": "minor", "C": "major", "D": "critical"}

OVERDUE = "overdue"
LATE_FEES = "late_fees_12m"
REVERSALS = "reversals_12m"
THEFT = "theft_12m"
GRADE_DOWNGRADE = "grade_downgrade"
STATS_FAMILIES = (OVERDUE, LATE_FEES, REVERSALS, THEFT)
FAMILIES = (*STATS_FAMILIES, GRADE_DOWNGRADE)
CHARGE_WORDS = {
    "bill": "bill",
    "late_fee": "late fee",
    "theft_penalty": "theft penalty",
    "adjustment": "adjustment",
    "payment_reversal": "reversed payment",
}

Alert = dict[str, Any]
"""A ``CreditAlert`` message as a JSON-ready dict."""


@dataclass(frozen=True, slots=True)
class CreditThresholds:
    overdue_major_days: int = 30
    overdue_critical_days: int = 90
    late_fees_12m: int = 2
    reversals_12m: int = 2
    theft_12m_cny: float = 50_000.0
    evidence_change: float = 0.2  # an open alert is re-published when an amount moves by this share


@dataclass(frozen=True, slots=True)
class CreditTiming:
    """When conditions are judged and how long they must hold (module docstring)."""

    recent_s: float = 7 * 86400.0
    open_hold_s: float = 30.0
    resolve_hold_s: float = 3600.0
    flap_window_s: float = 7 * 86400.0
    flap_transitions: int = 4
    flap_quiet_s: float = 86400.0


@dataclass(frozen=True, slots=True)
class Firing:
    """A condition that holds: what its alert must say."""

    severity: str
    rule: str
    reason: str
    evidence: dict[str, Any]


def alert_id(customer_id: str, family: str) -> str:
    return f"credit:{customer_id}:{family}"


def family_of(alert: Mapping[str, Any]) -> str | None:
    """The family of an alert message (the last part of its id), None when not ours."""
    prefix = f"credit:{alert.get('customer_id')}:"
    aid = str(alert.get("alert_id", ""))
    family = aid[len(prefix) :] if aid.startswith(prefix) else None
    return family if family in FAMILIES else None


def is_open(alert: Mapping[str, Any] | None) -> bool:
    return alert is not None and alert.get("status") != "resolved"


def epoch(ts: str | None) -> float | None:
    return None if ts is None else datetime.fromisoformat(ts).timestamp()


def inputs_recent(last_event_ts: str | None, now: float, timing: CreditTiming) -> bool:
    """Whether the customer's newest billing event is within the horizon (inclusive): its
    statistics are judged at once. Without any billing event there is nothing recent."""
    last = epoch(last_event_ts)
    return last is not None and last >= now - timing.recent_s


def _day(ts: Any) -> str:
    return str(ts)[:10] if ts else "?"


# ---------------------------------------------------------------------- the conditions


def _overdue(arrears: Mapping[str, Any], t: CreditThresholds) -> tuple[Firing | None, dict[str, Any]]:
    days = int(arrears.get("oldest_overdue_days") or 0)
    buckets = arrears.get("overdue_buckets") or {}
    evidence: dict[str, Any] = {
        "oldest_overdue_id": arrears.get("oldest_overdue_id"),
        "oldest_overdue_type": arrears.get("oldest_overdue_type"),
        "oldest_overdue_due_date": arrears.get("oldest_overdue_due_date"),
        "oldest_overdue_open": arrears.get("oldest_overdue_open"),
        "oldest_overdue_days": days,  # as of as_of
        "overdue_amount": round(sum(float(v or 0.0) for v in buckets.values()), 2),
        "outstanding": arrears.get("outstanding"),
        "as_of": arrears.get("as_of"),
        "last_event_ts": arrears.get("last_event_ts"),
    }
    if days > t.overdue_critical_days:
        limit, severity, rule = t.overdue_critical_days, "critical", "overdue_90"
    elif days > t.overdue_major_days:
        limit, severity, rule = t.overdue_major_days, "major", "overdue_30"
    else:
        return None, evidence
    evidence["threshold_days"] = limit
    what = CHARGE_WORDS.get(str(arrears.get("oldest_overdue_type")), "bill")
    open_cny = float(arrears.get("oldest_overdue_open") or 0.0)
    charge = arrears.get("oldest_overdue_id") or "?"
    due = arrears.get("oldest_overdue_due_date") or "?"
    reason = (
        f"{what} {charge} (due {due}, {open_cny:,.2f} CNY open) {days} days overdue "
        f"on {_day(arrears.get('as_of'))} (more than {limit})"
    )
    return Firing(severity, rule, reason, evidence), evidence


def _count(
    arrears: Mapping[str, Any], field: str, amount_field: str, limit: int, what: str
) -> tuple[Firing | None, dict[str, Any]]:
    n = int(arrears.get(field) or 0)
    amount = float(arrears.get(amount_field) or 0.0)
    evidence: dict[str, Any] = {
        field: n,
        amount_field: amount,
        "threshold": limit,
        "as_of": arrears.get("as_of"),
        "last_event_ts": arrears.get("last_event_ts"),
    }
    if n < limit:
        return None, evidence
    reason = f"{n} {what} ({amount:,.2f} CNY) within 12 months (threshold {limit})"
    return Firing("major", field, reason, evidence), evidence


def _theft(arrears: Mapping[str, Any], t: CreditThresholds) -> tuple[Firing | None, dict[str, Any]]:
    amount = float(arrears.get("theft_12m") or 0.0)
    evidence: dict[str, Any] = {
        "theft_12m_cny": amount,
        "threshold_cny": t.theft_12m_cny,
        "as_of": arrears.get("as_of"),
        "last_event_ts": arrears.get("last_event_ts"),
    }
    if amount <= t.theft_12m_cny:
        return None, evidence
    reason = f"theft penalties of {amount:,.2f} CNY within 12 months (more than {t.theft_12m_cny:,.2f})"
    return Firing("critical", THEFT, reason, evidence), evidence


def stats_conditions(
    arrears: Mapping[str, Any], t: CreditThresholds
) -> dict[str, tuple[Firing | None, dict[str, Any]]]:
    """Per family: the firing (or None) and the current evidence, from an ``arrears`` object
    (``stats.customer``'s, or ``ArrearsLedger.snapshot`` with ``as_of``)."""
    return {
        OVERDUE: _overdue(arrears, t),
        LATE_FEES: _count(arrears, LATE_FEES, "late_fee_amount_12m", t.late_fees_12m, "late fees"),
        REVERSALS: _count(arrears, REVERSALS, "reversal_amount_12m", t.reversals_12m, "payment reversals"),
        THEFT: _theft(arrears, t),
    }


@dataclass(frozen=True, slots=True)
class Baseline:
    """The grade a downgrade is judged against; ``established``: the customer had billing
    history when it took this grade (a first grade without any is not earned)."""

    grade: str
    established: bool


def grade_condition(
    grade: str,
    baseline: Baseline | None,
    previous: Mapping[str, Any] | None,
    *,
    recent: bool,
) -> tuple[Firing | None, dict[str, Any]]:
    """The grade_downgrade condition for the customer's current ``grade``.

    Judged against the open alert's ``from_grade`` (an open alert follows the grade, recent
    inputs or not), else against an established ``baseline`` when the inputs are recent; in
    every other case there is no downgrade (the grade becomes the baseline: ``next_baseline``).
    """
    if is_open(previous):
        assert previous is not None
        from_grade: str | None = str(previous["evidence"]["from_grade"])
    elif baseline is not None and baseline.established and recent:
        from_grade = baseline.grade
    else:
        from_grade = None
    evidence: dict[str, Any] = {"from_grade": from_grade, "to_grade": grade}
    if from_grade is None or from_grade not in GRADE_RANK or grade not in GRADE_RANK:
        return None, evidence
    if GRADE_RANK[grade] <= GRADE_RANK[from_grade]:
        return None, evidence
    reason = f"credit grade downgraded from {from_grade} to {grade}"
    return Firing(GRADE_SEVERITY[grade], GRADE_DOWNGRADE, reason, evidence), evidence


def next_baseline(
    baseline: Baseline | None, grade: str, has_history: bool, *, alert_open: bool, downgrade_pending: bool
) -> Baseline | None:
    """The baseline after an evaluation: it stays while a downgrade is open or held, else it
    is the current grade (a grade reached on old inputs, an improvement, a first grade)."""
    if alert_open or downgrade_pending:
        return baseline
    return Baseline(grade, has_history)


# ---------------------------------------------------------------------- evidence and reasons


def _moved(old: Any, new: Any, share: float) -> bool:
    a, b = float(old or 0.0), float(new or 0.0)
    return abs(b - a) > share * max(abs(a), 0.01)


def evidence_changed(
    family: str, old: Mapping[str, Any], new: Mapping[str, Any], t: CreditThresholds
) -> bool:
    """Whether an open alert's evidence changed enough to publish it again: what a reader
    cannot work out from the old evidence and the clock."""
    if family == OVERDUE:
        return old.get("oldest_overdue_id") != new.get("oldest_overdue_id") or _moved(
            old.get("outstanding"), new.get("outstanding"), t.evidence_change
        )
    if family in (LATE_FEES, REVERSALS):
        amount = "late_fee_amount_12m" if family == LATE_FEES else "reversal_amount_12m"
        return old.get(family) != new.get(family) or _moved(
            old.get(amount), new.get(amount), t.evidence_change
        )
    if family == THEFT:
        return _moved(old.get("theft_12m_cny"), new.get("theft_12m_cny"), t.evidence_change)
    return old.get("to_grade") != new.get("to_grade")


def resolution_reason(
    family: str, previous: Mapping[str, Any], evidence: Mapping[str, Any], t: CreditThresholds
) -> str:
    """Why an alert resolved, from its last message and the evidence now."""
    before = previous.get("evidence") or {}
    as_of = _day(evidence.get("as_of"))
    if family == OVERDUE:
        now_days = int(evidence.get("oldest_overdue_days") or 0)
        rest = f"no bill more than {t.overdue_major_days} days overdue"
        if now_days:
            rest += f" (oldest now {now_days} days, {evidence.get('oldest_overdue_id')})"
        old_id = before.get("oldest_overdue_id")
        if old_id and old_id != evidence.get("oldest_overdue_id"):
            what = CHARGE_WORDS.get(str(before.get("oldest_overdue_type")), "bill")
            return f"resolved: {what} {old_id} settled by {_day(evidence.get('last_event_ts'))}; {rest}"
        return f"resolved: {rest} on {as_of}"
    if family in (LATE_FEES, REVERSALS):
        limit = t.late_fees_12m if family == LATE_FEES else t.reversals_12m
        what = "late fees" if family == LATE_FEES else "payment reversals"
        n = int(evidence.get(family) or 0)
        return (
            f"resolved: {n} {what} within 12 months on {as_of}, fewer than {limit} "
            "(older ones left the window)"
        )
    if family == THEFT:
        amount = float(evidence.get("theft_12m_cny") or 0.0)
        return (
            f"resolved: theft penalties within 12 months {amount:,.2f} CNY on {as_of}, "
            f"not more than {t.theft_12m_cny:,.2f}"
        )
    return f"resolved: credit grade {evidence.get('to_grade')}, back to {before.get('from_grade')} or better"


# ---------------------------------------------------------------------- transitions, damped


@dataclass(frozen=True, slots=True)
class AlertKind:
    """What differs between the alert kinds that share this life cycle (`decide`): the id and
    the fields that name the alert's scope, when an open alert's evidence is news, and why an
    alert resolved. Credit's is `credit_kind`; the inspection rules (``inspection/rules.py``)
    have their own."""

    kind: str
    alert_id: Callable[[str, str], str]  # (scope id, family) -> alert_id
    scope_fields: Callable[[str], dict[str, Any]]  # scope id -> the message's fields naming it
    evidence_changed: Callable[[str, Mapping[str, Any], Mapping[str, Any]], bool]  # family, old, new
    resolution_reason: Callable[[str, Mapping[str, Any], Mapping[str, Any]], str]  # family, last, now


@lru_cache(maxsize=16)
def credit_kind(thresholds: CreditThresholds) -> AlertKind:
    return AlertKind(
        kind="credit",
        alert_id=alert_id,
        scope_fields=lambda customer_id: {"customer_id": customer_id},
        evidence_changed=lambda family, old, new: evidence_changed(family, old, new, thresholds),
        resolution_reason=lambda family, last, now: resolution_reason(family, last, now, thresholds),
    )


def manager_moved(previous: Mapping[str, Any], manager_id: str | None) -> bool:
    """The open alert names another manager than the customer's profile now does (the profile
    arrived after the alert, or the customer was reassigned). A profile without a manager
    does not take the alert away from the one it has."""
    return manager_id is not None and previous.get("manager_id") != manager_id


State = tuple[str, str] | None
"""What an alert says: (severity, rule) while open, None when resolved or absent."""


def state_of(alert: Mapping[str, Any] | None) -> State:
    if not is_open(alert):
        return None
    assert alert is not None
    return (str(alert["severity"]), str(alert["rule"]))


def _rank(state: State) -> int:
    return 0 if state is None else 1 + SEVERITY_RANK[state[0]]


@dataclass(slots=True)
class AlertTrack:
    """What the damping remembers of one alert between evaluations (in memory only: a
    restarted worker starts each at the alert's last message, which it reads back).

    ``damped``: the state the condition has held long enough for (what would be published
    without flap suppression); ``target`` / ``since``: the condition now and since when;
    ``changes``: when ``damped`` opened or resolved, within the flap window; ``quiet_since``:
    the last such change (or when the track began)."""

    damped: State
    target: State
    since: float
    quiet_since: float
    changes: list[float] = field(default_factory=list)

    @classmethod
    def start(cls, previous: Mapping[str, Any] | None, now: float) -> AlertTrack:
        state = state_of(previous)
        return cls(damped=state, target=state, since=now, quiet_since=now)

    def idle(self, now: float, timing: CreditTiming) -> bool:
        """Nothing held and nothing to remember: the track can be dropped."""
        recent = [c for c in self.changes if c > now - timing.flap_window_s]
        return self.damped == self.target and not recent


@dataclass(frozen=True, slots=True)
class Decision:
    message: Alert | None
    due: float | None  # when the alert must be evaluated again without new input (a hold ends)


def decide(
    customer_id: str,
    family: str,
    previous: Mapping[str, Any] | None,
    firing: Firing | None,
    evidence: Mapping[str, Any],
    track: AlertTrack,
    now: float,
    *,
    ts: str,
    manager_id: str | None,
    thresholds: CreditThresholds,
    timing: CreditTiming,
    kind: AlertKind | None = None,
) -> Decision:
    """The message (if any) that the condition ``firing`` causes at ``now`` for an alert whose
    last message is ``previous``, with the holds and flap detection of ``track`` (updated).

    ``customer_id`` is the alert's scope id: a customer's for credit; ``kind`` (default: credit's
    with ``thresholds``) makes the message's id and scope fields, and says when evidence is news
    and why an alert resolved."""
    kind = kind if kind is not None else credit_kind(thresholds)
    target: State = None if firing is None else (firing.severity, firing.rule)
    if target != track.target:
        track.target, track.since = target, now
    due: float | None = None
    if target != track.damped:
        hold = timing.open_hold_s if _rank(target) > _rank(track.damped) else timing.resolve_hold_s
        if now - track.since >= hold:
            if (target is None) != (track.damped is None):
                track.changes.append(now)
                track.quiet_since = now
            track.damped = target
        else:
            due = track.since + hold
    track.changes = [c for c in track.changes if c > now - timing.flap_window_s]

    settled = track.target == track.damped  # nothing held
    published = state_of(previous)
    was_flapping = bool(previous and previous.get("flapping")) and published is not None
    damped = track.damped

    def message(
        status: str, state: tuple[str, str], reason: str, ev: Mapping[str, Any], flapping: bool
    ) -> Alert:
        prev_ts = previous.get("ts") if previous else None
        stamp = ts if prev_ts is None or epoch(ts) >= epoch(str(prev_ts)) else str(prev_ts)  # type: ignore[operator]
        return {
            "alert_id": kind.alert_id(customer_id, family),
            "kind": kind.kind,
            "severity": state[0],
            "status": status,
            "ts": stamp,
            "reason": reason,
            "evidence": dict(ev),
            **kind.scope_fields(customer_id),
            "rule": state[1],
            "manager_id": manager_id if manager_id is not None else (previous or {}).get("manager_id"),
            "flapping": flapping,
        }

    def current_reason() -> str:
        return firing.reason if firing is not None else "condition clear now"

    flapping_now = was_flapping
    if not was_flapping and damped != published and (damped is None) != (published is None):
        # an open or a resolve: the flip that makes the alert flapping is not published as such
        flapping_now = len(track.changes) >= timing.flap_transitions
    if flapping_now:
        n = len(track.changes)
        flap_reason = (
            f"flapping: opened or resolved {n} times within {timing.flap_window_s / 86400:g} days; "
            f"held open until steady for {timing.flap_quiet_s / 3600:g} h; now: {current_reason()}"
        )
        quiet_due = track.quiet_since + timing.flap_quiet_s
        later = quiet_due if due is None else min(due, quiet_due)
        if not was_flapping:
            if published is None:
                assert damped is not None
                return Decision(message("open", damped, flap_reason, evidence, True), later)
            assert previous is not None
            return Decision(message(str(previous["status"]), published, flap_reason, evidence, True), later)
        assert previous is not None and published is not None
        if now - track.quiet_since >= timing.flap_quiet_s:
            flapping_now = False  # steady again: the alert takes its state below
        elif _rank(damped) > _rank(published):
            assert damped is not None
            return Decision(message("escalated", damped, flap_reason, evidence, True), later)
        else:  # held: not even its evidence is re-published until it is steady
            return Decision(None, later)

    if damped is None:
        if published is None:
            return Decision(None, due)
        assert previous is not None
        reason = kind.resolution_reason(family, previous, evidence)
        if was_flapping:
            reason += " (after flapping)"
        return Decision(message("resolved", published, reason, evidence, False), due)
    if published is None:
        return Decision(message("open", damped, current_reason(), evidence, False), due)
    assert previous is not None
    if damped != published:
        status = "escalated" if _rank(damped) > _rank(published) else "open"
        return Decision(message(status, damped, current_reason(), evidence, False), due)
    refresh = settled and kind.evidence_changed(family, previous["evidence"], evidence)
    if was_flapping or refresh or manager_moved(previous, manager_id):
        # same state: the evidence (or the manager, or the end of flapping) is what is new;
        # not while another state is held (its transition will carry the evidence then)
        return Decision(message(str(previous["status"]), published, current_reason(), evidence, False), due)
    return Decision(None, due)


# ---------------------------------------------------------------------- one customer


@dataclass(slots=True)
class CustomerAlerts:
    """What the stage holds of one customer between evaluations."""

    published: dict[str, dict[str, Any]] = field(default_factory=dict)  # open alerts by family
    tracks: dict[str, AlertTrack] = field(default_factory=dict)
    baseline: Baseline | None = None


@dataclass(frozen=True, slots=True)
class Evaluation:
    messages: list[Alert]
    due: float | None  # the earliest hold that ends without new input


def evaluate_customer(
    customer_id: str,
    arrears: Mapping[str, Any],
    grade: str | None,
    held: CustomerAlerts,
    now: float,
    *,
    ts: str,
    manager_id: str | None,
    thresholds: CreditThresholds,
    timing: CreditTiming,
) -> Evaluation:
    """Every family of one customer at ``now``: the messages to publish and when to look
    again. ``held`` (tracks, baseline) is updated; ``held.published`` is not (the caller
    applies what it publishes). ``arrears`` must be as of ``now`` (its ``as_of``)."""
    recent = inputs_recent(arrears.get("last_event_ts"), now, timing)
    conditions: dict[str, tuple[Firing | None, dict[str, Any]]] = dict(stats_conditions(arrears, thresholds))
    if grade is not None:
        conditions[GRADE_DOWNGRADE] = grade_condition(
            grade, held.baseline, held.published.get(GRADE_DOWNGRADE), recent=recent
        )
    out: list[Alert] = []
    due: float | None = None
    for family, (firing, evidence) in conditions.items():
        previous = held.published.get(family)
        track = held.tracks.get(family)
        if track is None:
            if firing is None and previous is None:
                continue  # nothing open, nothing firing, nothing held: the usual case, no track
            track = held.tracks[family] = AlertTrack.start(previous, now)
        decision = decide(
            customer_id,
            family,
            previous,
            firing,
            evidence,
            track,
            now,
            ts=ts,
            manager_id=manager_id,
            thresholds=thresholds,
            timing=timing,
        )
        if decision.message is not None:
            out.append(decision.message)
        if decision.due is not None:
            due = decision.due if due is None else min(due, decision.due)
        if track.idle(now, timing) and not is_open(decision.message or previous):
            del held.tracks[family]
    if grade is not None:
        grade_alert = next((m for m in out if family_of(m) == GRADE_DOWNGRADE), None)
        track = held.tracks.get(GRADE_DOWNGRADE)
        held.baseline = next_baseline(
            held.baseline,
            grade,
            arrears.get("last_event_ts") is not None,
            alert_open=is_open(grade_alert or held.published.get(GRADE_DOWNGRADE)),
            downgrade_pending=track is not None and track.target is not None,
        )
    return Evaluation(out, due)


def observe_old_inputs(
    arrears: Mapping[str, Any],
    grade: str | None,
    held: CustomerAlerts,
    thresholds: CreditThresholds,
) -> bool:
    """A statistics document whose billing inputs are old (``inputs_recent`` false): nothing is
    published now. The grade becomes the baseline silently (unless a downgrade alert is open or
    held: that one follows the grade when the customer is evaluated). Returns whether an
    evaluation could publish anything once the customer has settled: a condition that differs
    from what is published or held, or evidence that moved. Cheap; the stage asks it of every
    such document before it schedules an evaluation."""
    if grade is not None:
        downgrade = held.published.get(GRADE_DOWNGRADE)
        track = held.tracks.get(GRADE_DOWNGRADE)
        if is_open(downgrade) or (track is not None and track.target is not None):
            firing, _ = grade_condition(grade, held.baseline, downgrade, recent=False)
            target: State = None if firing is None else (firing.severity, firing.rule)
            if target != (track.target if track is not None else state_of(downgrade)):
                return True
        else:
            held.baseline = next_baseline(
                held.baseline,
                grade,
                arrears.get("last_event_ts") is not None,
                alert_open=False,
                downgrade_pending=False,
            )
    for family, (firing, evidence) in stats_conditions(arrears, thresholds).items():
        previous = held.published.get(family)
        track = held.tracks.get(family)
        target = None if firing is None else (firing.severity, firing.rule)
        if target != (track.target if track is not None else state_of(previous)):
            return True
        if previous is not None and evidence_changed(family, previous["evidence"], evidence, thresholds):
            return True
    return False
