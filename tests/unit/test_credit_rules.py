"""Credit warning rules at their thresholds, transitions, and no storms (alerts.credit_rules)."""

from __future__ import annotations

from typing import Any

import pytest

from alerts.credit_rules import (
    CreditThresholds,
    evaluate,
    evaluate_grade,
    family_of,
)
from schemas.models import CreditAlert

T = CreditThresholds()
TS = "2026-03-01T10:15:00+08:00"


def stats(
    days: int = 0,
    late_fees: int = 0,
    reversals: int = 0,
    theft: float = 0.0,
    ts: str = TS,
) -> dict[str, Any]:
    return {
        "customer_id": "c1",
        "ts": ts,
        "arrears": {
            "outstanding": 1234.5 if days else 0.0,
            "oldest_overdue_days": days,
            "overdue_buckets": {"0_30": 0.0, "31_60": 1234.5 if days else 0.0, "61_90": 0.0, "over_90": 0.0},
            "late_fees_12m": late_fees,
            "reversals_12m": reversals,
            "theft_12m": theft,
            "as_of": "2026-03-02T00:00:00+08:00",
        },
    }


class Store:
    """The last message per family, as the worker keeps it."""

    def __init__(self) -> None:
        self.last: dict[str, dict[str, Any]] = {}
        self.sent: list[dict[str, Any]] = []

    def run(self, doc: dict[str, Any], thresholds: CreditThresholds = T) -> list[dict[str, Any]]:
        out = evaluate(doc, self.last, thresholds, manager_id="m-9")
        for alert in out:
            CreditAlert.model_validate(alert)  # every message validates
            family = family_of(alert)
            assert family is not None
            self.last[family] = alert
        self.sent += out
        return out


def only(out: list[dict[str, Any]]) -> dict[str, Any]:
    assert len(out) == 1, out
    return out[0]


@pytest.mark.parametrize(
    ("days", "fires"), [(0, None), (30, None), (31, "major"), (90, "major"), (91, "critical")]
)
def test_overdue_thresholds(days: int, fires: str | None) -> None:
    out = Store().run(stats(days=days))
    if fires is None:
        assert out == []
        return
    alert = only(out)
    assert alert["alert_id"] == "credit:c1:overdue"
    assert alert["severity"] == fires
    assert alert["rule"] == ("overdue_90" if fires == "critical" else "overdue_30")
    assert alert["status"] == "open"
    assert alert["evidence"]["oldest_overdue_days"] == days
    assert alert["evidence"]["threshold_days"] == (90 if fires == "critical" else 30)
    assert alert["manager_id"] == "m-9" and alert["kind"] == "credit" and alert["ts"] == TS


@pytest.mark.parametrize(("n", "fires"), [(0, False), (1, False), (2, True), (3, True)])
@pytest.mark.parametrize("field", ["late_fees_12m", "reversals_12m"])
def test_second_late_fee_or_reversal_is_major(field: str, n: int, fires: bool) -> None:
    kw = {"late_fees": n} if field == "late_fees_12m" else {"reversals": n}
    out = Store().run(stats(**kw))  # type: ignore[arg-type]
    if not fires:
        assert out == []
        return
    alert = only(out)
    assert (alert["rule"], alert["severity"], alert["alert_id"]) == (field, "major", f"credit:c1:{field}")
    assert alert["evidence"][field] == n and alert["evidence"]["threshold"] == 2


@pytest.mark.parametrize(("amount", "fires"), [(0.0, False), (50_000.0, False), (50_000.01, True)])
def test_theft_above_50000_is_critical(amount: float, fires: bool) -> None:
    out = Store().run(stats(theft=amount))
    if not fires:
        assert out == []
        return
    alert = only(out)
    assert (alert["rule"], alert["severity"]) == ("theft_12m", "critical")
    assert alert["evidence"]["theft_12m_cny"] == 50_000.01
    assert alert["evidence"]["threshold_cny"] == 50_000.0


def test_thresholds_are_configurable() -> None:
    t = CreditThresholds(
        overdue_major_days=10, overdue_critical_days=20, late_fees_12m=3, theft_12m_cny=100.0
    )
    store = Store()
    out = store.run(stats(days=15, late_fees=2, theft=150.0), t)
    assert {(a["rule"], a["severity"]) for a in out} == {("overdue_30", "major"), ("theft_12m", "critical")}
    assert only(Store().run(stats(days=21), t))["severity"] == "critical"


def test_overdue_escalates_then_falls_back_then_resolves() -> None:
    store = Store()
    opened = only(store.run(stats(days=31)))
    assert (opened["status"], opened["severity"]) == ("open", "major")
    assert store.run(stats(days=60)) == []  # older, same condition: nothing
    up = only(store.run(stats(days=91)))
    assert (up["status"], up["severity"], up["rule"]) == ("escalated", "critical", "overdue_90")
    assert up["alert_id"] == opened["alert_id"]
    down = only(store.run(stats(days=40)))  # the oldest bill paid, a younger one still overdue
    assert (down["status"], down["severity"], down["rule"]) == ("open", "major", "overdue_30")
    cleared = only(store.run(stats(days=0)))
    assert (cleared["status"], cleared["severity"]) == ("resolved", "major")
    assert cleared["evidence"]["oldest_overdue_days"] == 0
    assert cleared["reason"].startswith("cleared:")
    assert store.run(stats(days=0)) == []
    again = only(store.run(stats(days=31)))  # a new occurrence reopens the same id
    assert (again["status"], again["alert_id"]) == ("open", opened["alert_id"])


def test_count_rules_resolve_when_the_window_drops_them() -> None:
    store = Store()
    store.run(stats(late_fees=2, reversals=2, theft=60_000.0))
    assert len(store.sent) == 3
    out = store.run(stats(late_fees=1, reversals=2, theft=0.0))
    assert {(a["rule"], a["status"]) for a in out} == {
        ("late_fees_12m", "resolved"),
        ("theft_12m", "resolved"),
    }


def test_same_input_twice_sends_nothing_new() -> None:
    store = Store()
    doc = stats(days=95, late_fees=2, reversals=3, theft=70_000.0)
    first = store.run(doc)
    assert len(first) == 4
    assert store.run(doc) == []
    # the aging timer and more of the same at the same severity: still nothing
    assert store.run(stats(days=96, late_fees=3, reversals=3, theft=80_000.0)) == []


def test_no_name_in_any_message() -> None:
    store = Store()
    store.run(stats(days=95, late_fees=2, reversals=3, theft=70_000.0))
    for alert in store.sent:
        assert set(alert) == set(CreditAlert.model_fields)
        assert "name" not in alert and "name" not in alert["evidence"]


# ---------------------------------------------------------------------- grade downgrade


def test_first_grade_is_no_downgrade() -> None:
    assert evaluate_grade("c1", None, "D", None, ts=TS) is None
    assert evaluate_grade("c1", "B", "A", None, ts=TS) is None
    assert evaluate_grade("c1", "B", "B", None, ts=TS) is None


@pytest.mark.parametrize(
    ("before", "after", "severity"),
    [
        ("A", "B", "minor"),
        ("B", "C", "major"),
        ("A", "C", "major"),
        ("C", "D", "critical"),
        ("A", "D", "critical"),
    ],
)
def test_downgrade_severity_follows_the_new_grade(before: str, after: str, severity: str) -> None:
    alert = evaluate_grade("c1", before, after, None, ts=TS, manager_id="m-1")
    assert alert is not None
    CreditAlert.model_validate(alert)
    assert (alert["alert_id"], alert["rule"], alert["status"]) == (
        "credit:c1:grade_downgrade",
        "grade_downgrade",
        "open",
    )
    assert alert["severity"] == severity
    assert alert["evidence"] == {"from_grade": before, "to_grade": after, "previous_grade": before}


def test_downgrade_escalates_lowers_and_resolves_against_the_grade_before() -> None:
    opened = evaluate_grade("c1", "A", "B", None, ts=TS)
    assert opened is not None
    assert evaluate_grade("c1", "B", "B", opened, ts=TS) is None  # rescored, same grade
    worse = evaluate_grade("c1", "B", "D", opened, ts=TS)
    assert worse is not None
    assert (worse["status"], worse["severity"], worse["evidence"]["from_grade"]) == (
        "escalated",
        "critical",
        "A",
    )
    better = evaluate_grade("c1", "D", "C", worse, ts=TS)
    assert better is not None
    assert (better["status"], better["severity"]) == ("open", "major")
    resolved = evaluate_grade("c1", "C", "A", better, ts=TS)
    assert resolved is not None
    assert (resolved["status"], resolved["evidence"]["to_grade"]) == ("resolved", "A")
    assert evaluate_grade("c1", "A", "A", resolved, ts=TS) is None


def test_an_open_alert_follows_the_customers_manager() -> None:
    """The profile arrived after the alert opened (no manager yet), then the customer is
    reassigned: each time the open alert is sent again, same status and reason, new manager;
    a profile without a manager does not take the alert away; an unchanged one sends nothing."""
    doc = stats(days=45)
    (opened,) = evaluate(doc, {}, T, manager_id=None)
    assert (opened["status"], opened["manager_id"]) == ("open", None)
    (followed,) = evaluate(doc, {"overdue": opened}, T, manager_id="m-1")
    assert (followed["status"], followed["reason"], followed["manager_id"]) == (
        "open",
        opened["reason"],
        "m-1",
    )
    assert evaluate(doc, {"overdue": followed}, T, manager_id="m-1") == []
    assert evaluate(doc, {"overdue": followed}, T, manager_id=None) == []
    (moved,) = evaluate(doc, {"overdue": followed}, T, manager_id="m-2")
    assert moved["manager_id"] == "m-2"
    CreditAlert.model_validate(moved)

    grade = evaluate_grade("c1", "A", "C", None, ts=TS, manager_id=None)
    assert grade is not None and grade["manager_id"] is None
    again = evaluate_grade("c1", "C", "C", grade, ts=TS, manager_id="m-1")
    assert again is not None
    assert (again["status"], again["severity"], again["manager_id"]) == ("open", "major", "m-1")
    assert evaluate_grade("c1", "C", "C", again, ts=TS, manager_id="m-1") is None
