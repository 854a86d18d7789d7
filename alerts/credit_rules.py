"""Credit warnings (``alerts.credit``) as pure functions: numbers in, alert messages out.

DOMAIN.md section 4 (the defaults, all configurable through ``CreditThresholds``):

| alert (family) | fires when | severity |
|---|---|---|
| ``overdue`` | oldest bill > 30 days overdue (``overdue_30``), > 90 (``overdue_90``) | major, critical |
| ``late_fees_12m`` | 2nd late fee within 12 months | major |
| ``reversals_12m`` | 2nd payment reversal within 12 months | major |
| ``theft_12m`` | theft penalties > 50,000 CNY within 12 months | critical |
| ``grade_downgrade`` | credit grade worse than before | to B minor, to C major, to D critical |

One alert per (customer, family), ``alert_id = credit:<customer_id>:<family>``:

- the overdue warning is ONE alert whose ``rule`` names the threshold crossed: it opens as
  ``overdue_30`` (major) and escalates to ``overdue_90`` (critical) as the bill ages; paying the
  oldest bill may take it back to ``overdue_30`` (major, status ``open`` again);
- a grade downgrade remembers the grade before it (``evidence.from_grade``) while open: a
  further drop escalates it, a partial recovery lowers its severity, a recovery to
  ``from_grade`` or better resolves it. Severity follows the new grade: C and D are the grades
  that prepay (Hainan) and D is the worst credit;
- status: ``open`` for a new occurrence (also after a resolve: the same alert_id reopens),
  ``escalated`` when the severity rises, ``open`` when it falls while the condition holds,
  ``resolved`` when the condition clears.

Messages are sent only on those transitions: re-evaluating the same condition (a duplicate
event, the aging timer, a rescoring, a third late fee at the same severity, an overdue age
moving from 40 to 41 days) sends nothing. So ``evidence`` holds the numbers as of the last
transition, and ``ts`` is the event time of the statistics (or score) that caused it;
``evidence.as_of`` says when the ages were measured.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
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

Alert = dict[str, Any]
"""A ``CreditAlert`` message as a JSON-ready dict."""


@dataclass(frozen=True, slots=True)
class CreditThresholds:
    overdue_major_days: int = 30
    overdue_critical_days: int = 90
    late_fees_12m: int = 2
    reversals_12m: int = 2
    theft_12m_cny: float = 50_000.0


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


# ---------------------------------------------------------------------- the conditions


def _overdue(arrears: Mapping[str, Any], t: CreditThresholds) -> tuple[Firing | None, dict[str, Any]]:
    days = int(arrears.get("oldest_overdue_days") or 0)
    buckets = arrears.get("overdue_buckets") or {}
    evidence: dict[str, Any] = {
        "oldest_overdue_days": days,
        "outstanding": arrears.get("outstanding"),
        **{f"overdue_{k}": v for k, v in buckets.items()},
        "as_of": arrears.get("as_of"),
    }
    if days > t.overdue_critical_days:
        limit, severity, rule = t.overdue_critical_days, "critical", "overdue_90"
    elif days > t.overdue_major_days:
        limit, severity, rule = t.overdue_major_days, "major", "overdue_30"
    else:
        return None, evidence
    evidence["threshold_days"] = limit
    reason = f"oldest bill {days} days overdue (more than {limit})"
    return Firing(severity, rule, reason, evidence), evidence


def _count(
    arrears: Mapping[str, Any], field: str, limit: int, what: str
) -> tuple[Firing | None, dict[str, Any]]:
    n = int(arrears.get(field) or 0)
    evidence: dict[str, Any] = {field: n, "threshold": limit, "as_of": arrears.get("as_of")}
    if n < limit:
        return None, evidence
    return Firing("major", field, f"{n} {what} within 12 months (threshold {limit})", evidence), evidence


def _theft(arrears: Mapping[str, Any], t: CreditThresholds) -> tuple[Firing | None, dict[str, Any]]:
    amount = float(arrears.get("theft_12m") or 0.0)
    evidence: dict[str, Any] = {
        "theft_12m_cny": amount,
        "threshold_cny": t.theft_12m_cny,
        "as_of": arrears.get("as_of"),
    }
    if amount <= t.theft_12m_cny:
        return None, evidence
    reason = f"theft penalties of {amount:,.2f} CNY within 12 months (more than {t.theft_12m_cny:,.2f})"
    return Firing("critical", THEFT, reason, evidence), evidence


def stats_conditions(
    stats_doc: Mapping[str, Any], t: CreditThresholds
) -> dict[str, tuple[Firing | None, dict[str, Any]]]:
    """Per family: the firing (or None) and the current numbers, from a stats.customer doc."""
    arrears = stats_doc.get("arrears") or {}
    return {
        OVERDUE: _overdue(arrears, t),
        LATE_FEES: _count(arrears, LATE_FEES, t.late_fees_12m, "late fees"),
        REVERSALS: _count(arrears, REVERSALS, t.reversals_12m, "payment reversals"),
        THEFT: _theft(arrears, t),
    }


# ---------------------------------------------------------------------- transitions


def manager_moved(previous: Mapping[str, Any], manager_id: str | None) -> bool:
    """The open alert names another manager than the customer's profile now does (the profile
    arrived after the alert, or the customer was reassigned). A profile without a manager
    does not take the alert away from the one it has."""
    return manager_id is not None and previous.get("manager_id") != manager_id


def transition(
    customer_id: str,
    family: str,
    previous: Mapping[str, Any] | None,
    firing: Firing | None,
    current_evidence: Mapping[str, Any],
    *,
    ts: str,
    manager_id: str | None,
) -> Alert | None:
    """The message that moves the alert from ``previous`` (its last message, or None) to the
    condition now; None when nothing changed."""

    def message(status: str, severity: str, rule: str, reason: str, evidence: Mapping[str, Any]) -> Alert:
        return {
            "alert_id": alert_id(customer_id, family),
            "kind": "credit",
            "severity": severity,
            "status": status,
            "ts": ts,
            "reason": reason,
            "evidence": dict(evidence),
            "customer_id": customer_id,
            "rule": rule,
            "manager_id": manager_id,
        }

    if firing is None:
        if not is_open(previous):
            return None
        assert previous is not None
        reason = f"cleared: {previous['reason']}"
        return message("resolved", previous["severity"], previous["rule"], reason, current_evidence)
    if not is_open(previous):
        return message("open", firing.severity, firing.rule, firing.reason, firing.evidence)
    assert previous is not None
    if (previous["severity"], previous["rule"]) == (firing.severity, firing.rule):
        if manager_moved(previous, manager_id):
            # the customer got a (new) manager: the open alert follows, same status and reason
            status, reason = previous["status"], previous["reason"]
            return message(status, firing.severity, firing.rule, reason, firing.evidence)
        return None  # the same condition re-evaluated: no storm
    rose = SEVERITY_RANK[firing.severity] > SEVERITY_RANK[previous["severity"]]
    return message(
        "escalated" if rose else "open", firing.severity, firing.rule, firing.reason, firing.evidence
    )


def evaluate(
    stats_doc: Mapping[str, Any],
    previous: Mapping[str, Mapping[str, Any]],
    thresholds: CreditThresholds,
    manager_id: str | None = None,
) -> list[Alert]:
    """The alert messages a ``stats.customer`` document causes, given the customer's last alert
    message per family (``previous``; resolved or absent alike mean none open)."""
    cid = str(stats_doc["customer_id"])
    ts = str(stats_doc["ts"])
    out = []
    for family, (firing, evidence) in stats_conditions(stats_doc, thresholds).items():
        alert = transition(cid, family, previous.get(family), firing, evidence, ts=ts, manager_id=manager_id)
        if alert is not None:
            out.append(alert)
    return out


def evaluate_grade(
    customer_id: str,
    previous_grade: str | None,
    grade: str,
    previous: Mapping[str, Any] | None,
    *,
    ts: str,
    manager_id: str | None = None,
) -> Alert | None:
    """The ``grade_downgrade`` message a new credit grade causes, or None.

    ``previous_grade`` is the grade last published for the customer (None: first score, no
    downgrade to judge); ``previous`` the alert's last message."""
    if is_open(previous):
        assert previous is not None
        from_grade = str(previous["evidence"]["from_grade"])
    elif previous_grade is not None and previous_grade in GRADE_RANK:
        from_grade = previous_grade
    else:
        return None
    evidence = {"from_grade": from_grade, "to_grade": grade, "previous_grade": previous_grade}
    firing = None
    if GRADE_RANK[grade] > GRADE_RANK[from_grade]:
        reason = f"credit grade downgraded from {from_grade} to {grade}"
        firing = Firing(GRADE_SEVERITY[grade], GRADE_DOWNGRADE, reason, evidence)
    if firing is not None and is_open(previous) and previous is not None:
        if previous["evidence"].get("to_grade") == grade and not manager_moved(previous, manager_id):
            return None
    return transition(customer_id, GRADE_DOWNGRADE, previous, firing, evidence, ts=ts, manager_id=manager_id)
