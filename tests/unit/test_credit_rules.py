"""Credit warning rules at their thresholds, holds, flap detection, the recent-input horizon,
the grade baseline, evidence refresh and resolution reasons (alerts.credit_rules).

Every evaluation takes an explicit ``now``; nothing reads the wall clock."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

import pytest

from alerts.credit_rules import (
    GRADE_DOWNGRADE,
    OVERDUE,
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
from schemas.models import CreditAlert

T = CreditThresholds()
CST = timezone(timedelta(hours=8))
T0 = datetime(2026, 3, 2, 10, 0, tzinfo=CST).timestamp()  # a fixed "now"
DAY = 86400.0
AT_ONCE = CreditTiming(open_hold_s=0.0, resolve_hold_s=0.0)  # the rules without damping
DEFAULT = CreditTiming()


def iso(t: float) -> str:
    return datetime.fromtimestamp(t, CST).isoformat()


def arrears(
    now: float = T0,
    *,
    days: int = 0,
    oldest: str | None = "B1",
    oldest_type: str = "bill",
    oldest_open: float = 500.0,
    outstanding: float | None = None,
    late_fees: int = 0,
    fee_amount: float | None = None,
    reversals: int = 0,
    theft: float = 0.0,
    last_event: float | None = None,
) -> dict[str, Any]:
    """A stats.customer ``arrears`` object as of ``now``; the newest billing event a day before
    ``now`` unless ``last_event`` says otherwise."""
    due = datetime.fromtimestamp(now, CST).date() - timedelta(days=days)
    overdue = oldest_open if days else 0.0
    return {
        "outstanding": outstanding if outstanding is not None else overdue,
        "oldest_overdue_days": days,
        "overdue_buckets": {"0_30": 0.0, "31_60": overdue, "61_90": 0.0, "over_90": 0.0},
        "late_fees_12m": late_fees,
        "reversals_12m": reversals,
        "theft_12m": theft,
        "oldest_overdue_id": oldest if days else None,
        "oldest_overdue_type": oldest_type if days else None,
        "oldest_overdue_due_date": due.isoformat() if days else None,
        "oldest_overdue_open": overdue,
        "late_fee_amount_12m": fee_amount if fee_amount is not None else 10.0 * late_fees,
        "reversal_amount_12m": 100.0 * reversals,
        "last_event_ts": iso(last_event if last_event is not None else now - DAY),
        "as_of": iso(now),
    }


class Customer:
    """One customer as the stage holds it: publishes what the rules say, keeps the open alerts."""

    def __init__(self, timing: CreditTiming = AT_ONCE, thresholds: CreditThresholds = T) -> None:
        self.timing = timing
        self.thresholds = thresholds
        self.held = CustomerAlerts()
        self.sent: list[dict[str, Any]] = []
        self.due: float | None = None

    def run(
        self, a: dict[str, Any], now: float = T0, grade: str | None = None, manager: str | None = "m-9"
    ) -> list[dict[str, Any]]:
        result = evaluate_customer(
            "c1",
            a,
            grade,
            self.held,
            now,
            ts=iso(now - 60),
            manager_id=manager,
            thresholds=self.thresholds,
            timing=self.timing,
        )
        for alert in result.messages:
            CreditAlert.model_validate(alert)  # every message is the contract's
            family = family_of(alert)
            assert family is not None
            if is_open(alert):
                self.held.published[family] = alert
            else:
                self.held.published.pop(family, None)
        self.sent += result.messages
        self.due = result.due
        return result.messages

    def of(self, family: str) -> list[dict[str, Any]]:
        return [a for a in self.sent if family_of(a) == family]


def only(out: list[dict[str, Any]]) -> dict[str, Any]:
    assert len(out) == 1, out
    return out[0]


# ---------------------------------------------------------------------- the rules at their thresholds


@pytest.mark.parametrize(
    ("days", "fires"), [(0, None), (30, None), (31, "major"), (90, "major"), (91, "critical")]
)
def test_overdue_thresholds(days: int, fires: str | None) -> None:
    out = Customer().run(arrears(days=days))
    if fires is None:
        assert out == []
        return
    alert = only(out)
    assert alert["alert_id"] == "credit:c1:overdue"
    assert alert["severity"] == fires
    assert alert["rule"] == ("overdue_90" if fires == "critical" else "overdue_30")
    assert alert["status"] == "open" and alert["flapping"] is False
    ev = alert["evidence"]
    assert ev["oldest_overdue_days"] == days
    assert ev["threshold_days"] == (90 if fires == "critical" else 30)
    # what does not age: the bill, its due date and what is open on it, and when ages were taken
    assert (ev["oldest_overdue_id"], ev["oldest_overdue_type"], ev["oldest_overdue_open"]) == (
        "B1",
        "bill",
        500.0,
    )
    due = datetime.fromisoformat(ev["as_of"]).date() - timedelta(days=days)
    assert ev["oldest_overdue_due_date"] == due.isoformat()
    assert alert["reason"] == (
        f"bill B1 (due {due.isoformat()}, 500.00 CNY open) {days} days overdue on 2026-03-02 "
        f"(more than {ev['threshold_days']})"
    )
    assert alert["manager_id"] == "m-9" and alert["kind"] == "credit" and alert["ts"] == iso(T0 - 60)


@pytest.mark.parametrize(("n", "fires"), [(0, False), (1, False), (2, True), (3, True)])
@pytest.mark.parametrize("field", ["late_fees_12m", "reversals_12m"])
def test_second_late_fee_or_reversal_is_major(field: str, n: int, fires: bool) -> None:
    kw = {"late_fees": n} if field == "late_fees_12m" else {"reversals": n}
    out = Customer().run(arrears(**kw))  # type: ignore[arg-type]
    if not fires:
        assert out == []
        return
    alert = only(out)
    assert (alert["rule"], alert["severity"], alert["alert_id"]) == (field, "major", f"credit:c1:{field}")
    assert alert["evidence"][field] == n and alert["evidence"]["threshold"] == 2
    amount = "late_fee_amount_12m" if field == "late_fees_12m" else "reversal_amount_12m"
    assert alert["evidence"][amount] == (10.0 if field == "late_fees_12m" else 100.0) * n


@pytest.mark.parametrize(("amount", "fires"), [(0.0, False), (50_000.0, False), (50_000.01, True)])
def test_theft_above_50000_is_critical(amount: float, fires: bool) -> None:
    out = Customer().run(arrears(theft=amount))
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
    out = Customer(thresholds=t).run(arrears(days=15, late_fees=2, theft=150.0))
    assert {(a["rule"], a["severity"]) for a in out} == {("overdue_30", "major"), ("theft_12m", "critical")}
    assert only(Customer(thresholds=t).run(arrears(days=21)))["severity"] == "critical"


def test_overdue_escalates_then_falls_back_then_resolves() -> None:
    c = Customer()
    opened = only(c.run(arrears(days=31)))
    assert (opened["status"], opened["severity"]) == ("open", "major")
    assert c.run(arrears(T0 + 29 * DAY, days=60)) == []  # older, same bill: nothing
    up = only(c.run(arrears(T0 + 60 * DAY, days=91)))
    assert (up["status"], up["severity"], up["rule"]) == ("escalated", "critical", "overdue_90")
    assert up["alert_id"] == opened["alert_id"]
    # B1 paid, a younger bill still overdue: falls back
    down = only(c.run(arrears(T0 + 61 * DAY, days=40, oldest="B2")))
    assert (down["status"], down["severity"], down["rule"]) == ("open", "major", "overdue_30")
    assert down["evidence"]["oldest_overdue_id"] == "B2"
    cleared = only(c.run(arrears(T0 + 62 * DAY, days=0)))
    assert (cleared["status"], cleared["severity"]) == ("resolved", "major")
    assert c.run(arrears(T0 + 62 * DAY, days=0)) == []
    again = only(c.run(arrears(T0 + 100 * DAY, days=31, oldest="B3")))  # a new occurrence reopens the same id
    assert (again["status"], again["alert_id"]) == ("open", opened["alert_id"])


def test_count_rules_resolve_when_the_window_drops_them() -> None:
    c = Customer()
    c.run(arrears(late_fees=2, reversals=2, theft=60_000.0))
    assert len(c.sent) == 3
    out = c.run(arrears(T0 + DAY, late_fees=1, reversals=2, theft=0.0))
    assert {(a["rule"], a["status"]) for a in out} == {
        ("late_fees_12m", "resolved"),
        ("theft_12m", "resolved"),
    }


def test_same_input_twice_and_time_passing_send_nothing_new() -> None:
    c = Customer()
    a = arrears(days=95, late_fees=2, reversals=3, theft=70_000.0)
    assert len(c.run(a)) == 4
    assert c.run(a) == []
    # the aging timer a day later: ages move, nothing a reader could not compute moved
    assert c.run(arrears(T0 + DAY, days=96, late_fees=2, reversals=3, theft=70_000.0)) == []


def test_every_message_has_the_contract_fields_and_no_name() -> None:
    c = Customer()
    c.run(arrears(days=95, late_fees=2, reversals=3, theft=70_000.0), grade="A")
    c.run(arrears(days=95, late_fees=2, reversals=3, theft=70_000.0), grade="D")
    assert {family_of(a) for a in c.sent} == {
        OVERDUE,
        "late_fees_12m",
        "reversals_12m",
        "theft_12m",
        GRADE_DOWNGRADE,
    }
    for alert in c.sent:
        assert set(alert) == set(CreditAlert.model_fields)
        assert "name" not in alert and "name" not in alert["evidence"]


# ---------------------------------------------------------------------- recent inputs: the horizon


def test_inputs_are_recent_up_to_the_horizon_inclusive() -> None:
    t = CreditTiming(recent_s=7 * DAY)
    assert inputs_recent(iso(T0 - 7 * DAY), T0, t)
    assert not inputs_recent(iso(T0 - 7 * DAY - 1), T0, t)
    assert inputs_recent(iso(T0), T0, t)
    assert not inputs_recent(None, T0, t)  # no billing event: nothing recent
    assert not inputs_recent(iso(T0 - 2 * DAY), T0, CreditTiming(recent_s=DAY))


def test_old_inputs_move_the_baseline_silently_and_say_whether_to_evaluate() -> None:
    held = CustomerAlerts()
    old = T0 - 30 * DAY
    # a first grade, then the history makes it C: baseline, no evaluation needed for that alone
    assert observe_old_inputs(arrears(last_event=old), "A", held, T) is False
    assert held.baseline == Baseline("A", True)
    assert observe_old_inputs(arrears(last_event=old), "C", held, T) is False
    assert held.baseline == Baseline("C", True)
    # a bill 300 days "overdue" mid-load: could open an alert once settled
    assert observe_old_inputs(arrears(days=300, last_event=old), "C", held, T) is True
    # an open alert whose evidence is unchanged: nothing to do; its bill paid: evaluate
    c = Customer()
    c.run(arrears(days=40))
    assert observe_old_inputs(arrears(T0 + 60, days=40, last_event=old), None, c.held, T) is False
    assert observe_old_inputs(arrears(T0 + 60, days=35, oldest="B2", last_event=old), None, c.held, T) is True
    assert observe_old_inputs(arrears(T0 + 60, days=0, last_event=old), None, c.held, T) is True


# ---------------------------------------------------------------------- holds


def test_an_alert_opens_after_the_open_hold_and_a_blip_never_opens() -> None:
    c = Customer(DEFAULT)  # open hold 30 s
    assert c.run(arrears(days=40), T0) == [] and c.due == T0 + 30
    assert c.run(arrears(T0 + 29.9, days=40), T0 + 29.9) == []
    opened = only(c.run(arrears(T0 + 30, days=40), T0 + 30))
    assert opened["status"] == "open" and c.due is None
    # a late fee that its payment follows within the hold: nothing at all
    b = Customer(DEFAULT)
    assert b.run(arrears(late_fees=2), T0) == []
    assert b.run(arrears(T0 + 1, late_fees=2), T0 + 1) == []
    assert b.run(arrears(T0 + 2, late_fees=1), T0 + 2) == []
    assert b.run(arrears(T0 + 60, late_fees=1), T0 + 60) == [] and b.sent == []


def test_escalation_waits_the_open_hold_and_a_change_of_target_restarts_it() -> None:
    c = Customer(DEFAULT)
    c.run(arrears(days=89), T0)
    c.run(arrears(T0 + 30, days=89), T0 + 30)
    assert c.run(arrears(T0 + DAY, days=91), T0 + DAY) == []
    assert c.due == T0 + DAY + 30
    up = only(c.run(arrears(T0 + DAY + 30, days=91), T0 + DAY + 30))
    assert (up["status"], up["severity"]) == ("escalated", "critical")


def test_a_resolve_waits_the_resolve_hold_and_a_comeback_within_it_changes_nothing() -> None:
    c = Customer(DEFAULT)  # resolve hold 1 h
    c.run(arrears(days=40), T0)
    c.run(arrears(T0 + 30, days=40), T0 + 30)
    t = T0 + 100
    assert c.run(arrears(t, days=0), t) == [] and c.due == t + 3600
    assert c.run(arrears(t + 3599, days=0), t + 3599) == []
    resolved = only(c.run(arrears(t + 3600, days=0), t + 3600))
    assert resolved["status"] == "resolved"
    # a payment reversed within the hour: neither resolved nor re-opened
    d = Customer(DEFAULT)
    d.run(arrears(days=40), T0)
    d.run(arrears(T0 + 30, days=40), T0 + 30)
    assert d.run(arrears(T0 + 100, days=0), T0 + 100) == []
    assert d.run(arrears(T0 + 1800, days=40), T0 + 1800) == []
    assert d.run(arrears(T0 + 2 * 3600, days=40), T0 + 2 * 3600) == []
    assert [a["status"] for a in d.sent] == ["open"]


def test_a_lower_severity_waits_the_resolve_hold() -> None:
    c = Customer(DEFAULT)
    c.run(arrears(days=95), T0)
    c.run(arrears(T0 + 30, days=95), T0 + 30)
    assert c.run(arrears(T0 + 60, days=40, oldest="B2"), T0 + 60) == []
    down = only(c.run(arrears(T0 + 60 + 3600, days=40, oldest="B2"), T0 + 60 + 3600))
    assert (down["status"], down["severity"], down["evidence"]["oldest_overdue_id"]) == (
        "open",
        "major",
        "B2",
    )


# ---------------------------------------------------------------------- flapping


def flips(c: Customer, times: list[float]) -> None:
    """The overdue condition on at times[0], off at times[1], on at times[2], ..."""
    for k, t in enumerate(times):
        c.run(arrears(t, days=40 if k % 2 == 0 else 0), t)


def test_the_fourth_flip_within_the_window_is_reported_as_flapping_not_notified() -> None:
    timing = CreditTiming(
        open_hold_s=0, resolve_hold_s=0, flap_transitions=4, flap_window_s=DAY, flap_quiet_s=3600
    )
    c = Customer(timing)
    flips(c, [T0, T0 + 600, T0 + 1200])
    assert [a["status"] for a in c.sent] == ["open", "resolved", "open"]
    held_open = only(c.run(arrears(T0 + 1800, days=0), T0 + 1800))  # the 4th: a resolve
    assert (held_open["status"], held_open["flapping"]) == ("open", True)  # not a resolve
    assert held_open["reason"].startswith("flapping: opened or resolved 4 times within 1 days")
    assert c.due == T0 + 1800 + 3600
    # it keeps flipping: nothing is published
    flips(c, [T0 + 2400, T0 + 3000])  # on, off
    assert len(c.sent) == 4
    # steady (clear) for the quiet time: it resolves, once, saying it was flapping
    t = T0 + 3000 + 3600
    assert c.run(arrears(t - 1, days=0), t - 1) == []
    end = only(c.run(arrears(t, days=0), t))
    assert (end["status"], end["flapping"]) == ("resolved", False)
    assert end["reason"].endswith("(after flapping)")


def test_a_flapping_alert_still_escalates_and_ends_open_when_the_condition_holds() -> None:
    timing = CreditTiming(
        open_hold_s=0, resolve_hold_s=0, flap_transitions=3, flap_window_s=DAY, flap_quiet_s=3600
    )
    c = Customer(timing)
    flips(c, [T0, T0 + 60])
    reopened = only(c.run(arrears(T0 + 120, days=40), T0 + 120))  # the 3rd flip is a re-open
    assert (reopened["status"], reopened["flapping"]) == ("open", True)  # news: told once, as flapping
    up = only(c.run(arrears(T0 + 180, days=95), T0 + 180))
    assert (up["status"], up["severity"], up["flapping"]) == ("escalated", "critical", True)
    assert c.run(arrears(T0 + 240, days=40), T0 + 240) == []  # lower: held while flapping
    steady = only(c.run(arrears(T0 + 120 + 3600, days=40), T0 + 120 + 3600))
    assert (steady["status"], steady["severity"], steady["flapping"]) == ("open", "major", False)


def test_flips_spread_wider_than_the_window_are_not_flapping() -> None:
    timing = CreditTiming(open_hold_s=0, resolve_hold_s=0, flap_transitions=4, flap_window_s=DAY)
    c = Customer(timing)
    flips(c, [T0, T0 + 0.5 * DAY, T0 + 1.1 * DAY, T0 + 1.6 * DAY, T0 + 2.2 * DAY])
    assert [a["status"] for a in c.sent] == ["open", "resolved", "open", "resolved", "open"]
    assert not any(a["flapping"] for a in c.sent)


def test_holds_absorb_what_flap_detection_would_otherwise_count() -> None:
    c = Customer(DEFAULT)  # flips every 10 minutes for a day: faster than the resolve hold
    for k in range(144):
        t = T0 + 600 * k
        a = arrears(t, days=40 if k % 2 == 0 else 0)
        c.run(a, t)
        while c.due is not None and c.due < t + 600:  # the stage looks again when a hold ends
            c.run(a, c.due)
    assert [(a["status"], a["flapping"]) for a in c.sent] == [("open", False)]


# ---------------------------------------------------------------------- grade: the baseline


def test_a_first_grade_is_a_baseline_not_a_downgrade() -> None:
    c = Customer()
    assert c.run(arrears(), grade="D") == []
    assert c.held.baseline == Baseline("D", True)
    c = Customer()
    assert c.run(arrears(), grade="A") == []
    assert c.run(arrears(), grade="A") == []
    assert c.run(arrears(), grade="B") != []  # against an established A, on recent inputs


def test_a_grade_without_billing_history_is_not_established() -> None:
    c = Customer()
    no_billing = {**arrears(), "last_event_ts": None}
    assert c.run(no_billing, grade="A") == []
    assert c.held.baseline == Baseline("A", False)
    # the first billing events (recent) give a C: a baseline, not a downgrade from an unearned A
    assert c.run(arrears(theft=600.0), grade="C") == []
    assert c.held.baseline == Baseline("C", True)
    assert only(c.run(arrears(theft=600.0), grade="D"))["evidence"] == {"from_grade": "C", "to_grade": "D"}


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
    c = Customer()
    c.held.baseline = Baseline(before, True)
    alert = only(c.run(arrears(), grade=after))
    assert (alert["alert_id"], alert["rule"], alert["status"], alert["severity"]) == (
        "credit:c1:grade_downgrade",
        "grade_downgrade",
        "open",
        severity,
    )
    assert alert["evidence"] == {"from_grade": before, "to_grade": after}
    assert alert["reason"] == f"credit grade downgraded from {before} to {after}"


def test_a_grade_changed_by_old_inputs_is_no_downgrade_and_becomes_the_baseline() -> None:
    c = Customer()
    c.held.baseline = Baseline("A", True)
    old = arrears(last_event=T0 - 8 * DAY)
    assert c.run(old, grade="C") == []  # the history loaded: C is where the customer stands
    assert c.held.baseline == Baseline("C", True)
    assert only(c.run(arrears(), grade="D"))["evidence"]["from_grade"] == "C"  # then a recent drop


def test_downgrade_escalates_lowers_and_resolves_against_the_grade_before() -> None:
    c = Customer()
    c.held.baseline = Baseline("A", True)
    opened = only(c.run(arrears(), grade="B"))
    assert c.run(arrears(), grade="B") == []  # rescored, same grade
    worse = only(c.run(arrears(), grade="D"))
    assert (worse["status"], worse["severity"], worse["evidence"]["from_grade"]) == (
        "escalated",
        "critical",
        "A",
    )
    # an open alert follows the grade on old inputs too
    better = only(c.run(arrears(last_event=T0 - 30 * DAY), grade="C"))
    assert (better["status"], better["severity"]) == ("open", "major")
    resolved = only(c.run(arrears(), grade="A"))
    assert (resolved["status"], resolved["evidence"]["to_grade"]) == ("resolved", "A")
    assert resolved["reason"] == "resolved: credit grade A, back to A or better"
    assert c.held.baseline == Baseline("A", True)
    assert c.run(arrears(), grade="A") == []
    assert opened["alert_id"] == resolved["alert_id"]


def test_a_held_downgrade_keeps_its_baseline() -> None:
    c = Customer(DEFAULT)
    c.held.baseline = Baseline("A", True)
    assert c.run(arrears(), T0, grade="C") == []  # held 30 s
    assert c.held.baseline == Baseline("A", True)
    assert c.run(arrears(T0 + 5), T0 + 5, grade="A") == []  # the late payment came: nothing
    assert c.run(arrears(T0 + 60), T0 + 60, grade="A") == [] and c.sent == []
    assert c.run(arrears(T0 + 70), T0 + 70, grade="B") == []
    opened = only(c.run(arrears(T0 + 100), T0 + 100, grade="B"))
    assert opened["evidence"] == {"from_grade": "A", "to_grade": "B"}


# ---------------------------------------------------------------------- evidence and reasons


def test_an_open_alert_is_republished_when_its_evidence_changes_materially() -> None:
    c = Customer(DEFAULT)
    c.run(arrears(days=68, outstanding=1500.0), T0)
    opened = only(c.run(arrears(T0 + 30, days=68, outstanding=1500.0), T0 + 30))
    # the oldest bill paid, a younger one 41 days overdue: same severity, new evidence, at once
    refreshed = only(c.run(arrears(T0 + DAY, days=41, oldest="B2", outstanding=1000.0), T0 + DAY))
    assert (refreshed["alert_id"], refreshed["status"], refreshed["severity"], refreshed["flapping"]) == (
        opened["alert_id"],
        "open",
        "major",
        False,
    )
    assert refreshed["evidence"]["oldest_overdue_id"] == "B2"
    assert refreshed["evidence"]["oldest_overdue_days"] == 41
    assert refreshed["reason"].startswith("bill B2 (due ")
    # the outstanding amount moving by 20 % or less, or a day passing: nothing
    assert c.run(arrears(T0 + 2 * DAY, days=42, oldest="B2", outstanding=1200.0), T0 + 2 * DAY) == []
    # by more than 20 %: re-published
    moved = only(c.run(arrears(T0 + 3 * DAY, days=43, oldest="B2", outstanding=1201.0), T0 + 3 * DAY))
    assert moved["evidence"]["outstanding"] == 1201.0 and moved["status"] == "open"


def test_an_escalated_alert_keeps_its_status_when_republished() -> None:
    c = Customer()
    c.run(arrears(days=40))
    c.run(arrears(T0 + 60 * DAY, days=100))
    again = only(c.run(arrears(T0 + 61 * DAY, days=95, oldest="B2", outstanding=400.0), T0 + 61 * DAY))
    assert (again["status"], again["severity"]) == ("escalated", "critical")


def test_a_third_late_fee_refreshes_the_count() -> None:
    c = Customer()
    c.run(arrears(late_fees=2))
    third = only(c.run(arrears(T0 + DAY, late_fees=3), T0 + DAY))
    assert (third["status"], third["evidence"]["late_fees_12m"]) == ("open", 3)
    assert third["reason"] == "3 late fees (30.00 CNY) within 12 months (threshold 2)"


def test_resolutions_say_why() -> None:
    c = Customer()
    c.run(arrears(days=37, oldest="B123"))
    paid_on = datetime(2026, 3, 10, 9, 0, tzinfo=CST).timestamp()
    resolved = only(c.run(arrears(paid_on + 3600, days=0, last_event=paid_on), paid_on + 3600))
    assert (
        resolved["reason"] == "resolved: bill B123 settled by 2026-03-10; no bill more than 30 days overdue"
    )
    assert resolved["evidence"]["oldest_overdue_id"] is None

    c = Customer()
    c.run(arrears(days=37, oldest="B1"))
    resolved = only(c.run(arrears(T0 + DAY, days=12, oldest="B2"), T0 + DAY))
    assert resolved["reason"] == (
        "resolved: bill B1 settled by 2026-03-02; no bill more than 30 days overdue (oldest now 12 days, B2)"
    )

    c = Customer()
    c.run(arrears(late_fees=2))
    resolved = only(c.run(arrears(T0 + DAY, late_fees=1), T0 + DAY))
    assert resolved["reason"] == (
        "resolved: 1 late fees within 12 months on 2026-03-03, fewer than 2 (older ones left the window)"
    )

    c = Customer()
    c.run(arrears(theft=60_000.0))
    resolved = only(c.run(arrears(T0 + DAY), T0 + DAY))
    assert resolved["reason"] == (
        "resolved: theft penalties within 12 months 0.00 CNY on 2026-03-03, not more than 50,000.00"
    )


def test_a_message_is_never_dated_before_the_previous_one() -> None:
    c = Customer()
    opened = only(c.run(arrears(days=40)))
    late = evaluate_customer(
        "c1",
        arrears(T0 + DAY, days=0),
        None,
        c.held,
        T0 + DAY,
        ts=iso(T0 - 7 * DAY),  # an input older than the one behind the open
        manager_id="m-9",
        thresholds=T,
        timing=AT_ONCE,
    )
    assert only(late.messages)["ts"] == opened["ts"]


def test_an_open_alert_follows_the_customers_manager() -> None:
    """The profile arrived after the alert opened (no manager yet), then the customer is
    reassigned: each time the open alert is sent again, same status, new manager; a profile
    without a manager does not take the alert away; an unchanged one sends nothing."""
    c = Customer()
    opened = only(c.run(arrears(days=45), manager=None))
    assert (opened["status"], opened["manager_id"]) == ("open", None)
    followed = only(c.run(arrears(days=45), manager="m-1"))
    assert (followed["status"], followed["reason"], followed["manager_id"]) == (
        "open",
        opened["reason"],
        "m-1",
    )
    assert c.run(arrears(days=45), manager="m-1") == []
    assert c.run(arrears(days=45), manager=None) == []
    assert only(c.run(arrears(days=45), manager="m-2"))["manager_id"] == "m-2"
