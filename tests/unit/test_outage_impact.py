"""Outage impact: classification, overlap, ordering, severity at each rule, safety grades, the
notice path and the customer-minutes of a restore (alerts.outage_impact)."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from alerts.outage_impact import (
    CustomerNode,
    LoadEstimate,
    OutageRecord,
    Topology,
    apply_event,
    classify,
    outage_alert,
    safety_grade,
    severity,
)
from schemas.models import OutageAlert, OutageEvent

SH = ZoneInfo("Asia/Shanghai")
T0 = datetime(2026, 3, 2, 9, 0, tzinfo=SH)


def node(cid: str, feeders: tuple[str, ...], **kw: Any) -> CustomerNode:
    return CustomerNode(cid, feeders=frozenset(feeders), **kw)


def ev(outage_id: str, event: str, minutes: float, scope: str = "feeder", scope_id: str = "F1", **kw: Any):
    return OutageEvent.model_validate(
        {
            "outage_id": outage_id,
            "event": event,
            "ts": (T0 + timedelta(minutes=minutes)).isoformat(),
            "scope": scope,
            "scope_id": scope_id,
            **kw,
        }
    )


def run(topology: Topology, events: list[OutageEvent], est_kw: dict[str, Any] | None = None, tz: Any = None):
    """Fold the events one by one like the agent; the alert after the last one (validated)."""
    records: dict[str, OutageRecord] = {}
    alert: dict[str, Any] = {}
    for e in events:
        apply_event(records, e)
        alert = outage_alert(topology, records, e, est_kw or {}, tz=tz)
        OutageAlert.model_validate(alert)
    return alert


@pytest.fixture
def grid() -> Topology:
    return Topology(
        [
            node("L1", ("F1", "F2"), importance="level1", emergency_generator=True, manager_id="M1",
                 transformer_area="TA1", tariff_cny_per_kwh=1.0),
            node("L2", ("F1",), importance="level2", manager_id="M2", transformer_area="TA1",
                 tariff_cny_per_kwh=0.8),
            node("O1", ("F1",), manager_id="M3", transformer_area="TA1"),
            node("O2", ("F2",), manager_id="M3", transformer_area="TA2"),
        ]
    )  # fmt: skip


def impacts(alert: dict[str, Any]) -> dict[str, str]:
    return {a["customer_id"]: a["impact"] for a in alert["affected"]}


# ---------------------------------------------------------------------- classification


def test_classify_single_and_dual_circuit():
    single, dual = node("s", ("F1",)), node("d", ("F1", "F2"))
    assert classify(single, {"F1"}, set()) == "loss_of_supply"
    assert classify(dual, {"F1"}, set()) == "loss_of_redundancy"
    assert classify(dual, {"F1", "F2"}, set()) == "loss_of_supply"
    assert classify(single, {"F2"}, set()) is None
    # a transformer area outage cuts its customers entirely, dual circuit or not
    assert classify(node("d", ("F1", "F2"), transformer_area="TA"), set(), {"TA"}) == "loss_of_supply"


def test_feeder_start_dual_loses_redundancy_single_loses_supply(grid):
    alert = run(grid, [ev("o1", "start", 0)])
    assert impacts(alert) == {"L1": "loss_of_redundancy", "L2": "loss_of_supply", "O1": "loss_of_supply"}
    assert alert["alert_id"] == "outage:o1" and alert["status"] == "open"
    assert alert["manager_ids"] == ["M1", "M2", "M3"]
    assert alert["evidence"]["loss_of_supply"] == 2 and alert["evidence"]["loss_of_redundancy"] == 1


def test_overlapping_feeder_outages_turn_redundancy_loss_into_supply_loss(grid):
    alert = run(grid, [ev("o1", "start", 0, scope_id="F2"), ev("o2", "start", 10, scope_id="F1")])
    assert impacts(alert)["L1"] == "loss_of_supply"
    assert alert["severity"] == "critical"
    # once F2 is back, a new F1 outage is a redundancy loss again
    alert = run(
        grid,
        [
            ev("o1", "start", 0, scope_id="F2"),
            ev("o1", "restore", 5, scope_id="F2"),
            ev("o2", "start", 10, scope_id="F1"),
        ],
    )
    assert impacts(alert)["L1"] == "loss_of_redundancy"


def test_transformer_area_outage_cuts_its_customers(grid):
    alert = run(grid, [ev("t1", "start", 0, scope="transformer_area", scope_id="TA1")])
    assert impacts(alert) == {"L1": "loss_of_supply", "L2": "loss_of_supply", "O1": "loss_of_supply"}
    assert alert["severity"] == "critical"


def test_profile_change_and_delete_follow_the_topology(grid):
    grid.put(node("O1", ("F2",), transformer_area="TA2"))
    grid.delete("L2")
    alert = run(grid, [ev("o1", "start", 0)])
    assert impacts(alert) == {"L1": "loss_of_redundancy"}
    assert grid.on_feeder("F1") == {"L1"} and grid.in_area("TA1") == {"L1"}


# ---------------------------------------------------------------------- grades, ordering


@pytest.mark.parametrize(
    ("feeders", "generator", "grade"),
    [(("F1", "F2"), True, "A"), (("F1", "F2"), False, "B"), (("F1",), True, "C"), (("F1",), False, "D")],
)
def test_safety_grades(feeders, generator, grade):
    assert safety_grade(node("c", feeders, emergency_generator=generator)) == grade


def test_ordering_importance_then_grade_d_first_then_load():
    topo = Topology(
        [
            node("n-big", ("F1",)),
            node("n-small", ("F1",)),
            node("tmp", ("F1",), importance="temporary"),
            node("l2-a", ("F1", "F2"), importance="level2", emergency_generator=True),
            node("l2-d", ("F1",), importance="level2"),
            node("sp", ("F1", "F2"), importance="special"),
            node("l1", ("F1",), importance="level1", emergency_generator=True),
        ]
    )
    kw = {"n-big": 500.0, "n-small": 20.0, "l1": 100.0}
    alert = run(topo, [ev("o", "start", 0)], kw)
    assert [a["customer_id"] for a in alert["affected"]] == [
        "sp", "l1", "l2-d", "l2-a", "tmp", "n-big", "n-small",
    ]  # fmt: skip
    l1 = alert["affected"][1]
    assert l1["safety_grade"] == "C" and l1["est_kw"] == 100.0 and l1["revenue_at_risk_cny_per_h"] is None


def test_revenue_at_risk_is_est_kw_times_tariff(grid):
    alert = run(grid, [ev("o1", "start", 0)], {"L2": 250.0, "L1": 1000.0})
    by_id = {a["customer_id"]: a for a in alert["affected"]}
    assert by_id["L2"]["revenue_at_risk_cny_per_h"] == pytest.approx(200.0)
    assert by_id["L1"]["revenue_at_risk_cny_per_h"] == pytest.approx(1000.0)
    assert by_id["O1"]["est_kw"] is None and by_id["O1"]["revenue_at_risk_cny_per_h"] is None
    # only loss of supply counts in the interrupted load
    assert alert["evidence"]["est_kw_total"] == pytest.approx(250.0)


def profile(**by_hour: float) -> LoadEstimate:
    hourly = [None] * 24
    for name, kw in by_hour.items():
        hourly[int(name[1:])] = kw
    estimate = LoadEstimate.from_stats({"d30": {"avg_kw": 50.0}, "hourly_kw": hourly})
    assert estimate is not None
    return estimate


def test_est_kw_is_the_profile_at_the_local_hour_of_the_start(grid):
    # T0 is 09:00 in Shanghai (01:00 UTC); the restore keeps the start's hour
    est = {"L2": profile(h9=250.0, h1=7.0, h10=900.0), "O1": profile(h1=3.0)}
    for events in ([ev("o1", "start", 0)], [ev("o1", "start", 0), ev("o1", "restore", 90)]):
        by_id = {a["customer_id"]: a for a in run(grid, events, est, tz=SH)["affected"]}
        assert by_id["L2"]["est_kw"] == 250.0
        assert by_id["L2"]["revenue_at_risk_cny_per_h"] == pytest.approx(200.0)
        assert by_id["O1"]["est_kw"] == 50.0  # no data at 09:00: the 30-day average
    utc = {
        a["customer_id"]: a for a in run(grid, [ev("o1", "start", 0)], est, tz=ZoneInfo("UTC"))["affected"]
    }
    assert (utc["L2"]["est_kw"], utc["O1"]["est_kw"]) == (7.0, 3.0)  # 01:00 UTC


def test_est_kw_of_a_notice_is_read_at_the_planned_start(grid):
    notice = ev(
        "p1", "notice", -24 * 60 - 60, scope_id="F2", planned_start=T0.isoformat()
    )  # 08:00, day before
    alert = run(grid, [notice], {"O2": profile(h8=1.0, h9=42.0)}, tz=SH)
    assert {a["customer_id"]: a["est_kw"] for a in alert["affected"]}["O2"] == 42.0
    no_start = ev("p2", "notice", -60, scope_id="F2")  # 08:00, no planned start: the notice's time
    alert = run(grid, [no_start], {"O2": profile(h8=1.0, h9=42.0)}, tz=SH)
    assert {a["customer_id"]: a["est_kw"] for a in alert["affected"]}["O2"] == 1.0


# ---------------------------------------------------------------------- severity


def aff(importance: str, impact: str, grade: str = "B") -> dict[str, str]:
    return {"importance": importance, "impact": impact, "safety_grade": grade}


@pytest.mark.parametrize(
    ("affected", "expected"),
    [
        ([aff("special", "loss_of_supply", "A")], "critical"),
        ([aff("level1", "loss_of_supply", "A")], "critical"),
        ([aff("level2", "loss_of_supply", "D")], "critical"),
        ([aff("temporary", "loss_of_supply", "D")], "critical"),
        ([aff("level2", "loss_of_supply", "C")], "major"),
        ([aff("temporary", "loss_of_supply", "B")], "major"),
        ([aff("special", "loss_of_redundancy", "B")], "major"),
        ([aff("level1", "loss_of_redundancy", "A")], "major"),
        ([aff("level2", "loss_of_redundancy", "B")], "minor"),
        ([aff("none", "loss_of_supply", "D")], "minor"),
        ([], "minor"),
        ([aff("none", "loss_of_supply", "D"), aff("level1", "loss_of_redundancy")], "major"),
        ([aff("level1", "loss_of_redundancy"), aff("level2", "loss_of_supply", "D")], "critical"),
    ],
)
def test_severity_rules(affected, expected):
    assert severity(affected) == expected


# ---------------------------------------------------------------------- notice, restore


def test_notice_opens_an_advance_planned_alert_for_the_managers_it_will_hit(grid):
    notice = ev(
        "p1",
        "notice",
        -24 * 60,
        scope_id="F2",
        planned_start=T0.isoformat(),
        expected_restore=(T0 + timedelta(hours=4)).isoformat(),
        cause="switchgear maintenance",
    )
    alert = run(grid, [notice])
    assert alert["status"] == "open" and alert["planned"] is True
    assert "planned" in alert["reason"]
    assert impacts(alert) == {"L1": "loss_of_redundancy", "O2": "loss_of_supply"}
    assert alert["severity"] == "major"  # level-1 loses redundancy
    assert alert["manager_ids"] == ["M1", "M3"]
    assert alert["evidence"]["started_at"] is None
    assert alert["planned_start"] == T0.isoformat() and alert["cause"] == "switchgear maintenance"
    # the same alert_id goes on with the start
    started = run(grid, [notice, ev("p1", "start", 0, scope_id="F2")])
    assert started["alert_id"] == alert["alert_id"] and started["planned"] is True


def test_restore_resolves_with_customer_minutes(grid):
    alert = run(grid, [ev("o1", "start", 0), ev("o1", "restore", 42)])
    assert alert["alert_id"] == "outage:o1"
    assert alert["status"] == "resolved"
    assert alert["severity"] == "critical"
    assert alert["evidence"]["duration_min"] == 42
    assert alert["evidence"]["customer_minutes"] == 84  # L2 and O1 lost supply; L1 only redundancy
    assert impacts(alert)["L1"] == "loss_of_redundancy"


def test_restore_keeps_the_impact_of_the_start_when_an_overlap_ends_first(grid):
    events = [
        ev("a", "start", 0, scope_id="F2"),
        ev("b", "start", 10, scope_id="F1"),
        ev("a", "restore", 20, scope_id="F2"),
        ev("b", "restore", 40, scope_id="F1"),
    ]
    alert = run(grid, events)
    assert impacts(alert)["L1"] == "loss_of_supply"
    assert alert["evidence"]["customer_minutes"] == 3 * 30


def test_redelivered_events_change_nothing(grid):
    once = run(grid, [ev("o1", "start", 0), ev("o1", "restore", 42)])
    twice = run(grid, [ev("o1", "start", 0), ev("o1", "start", 0), ev("o1", "restore", 42)])
    assert once == twice


def test_no_names_in_the_alert():
    topo = Topology([node("c1", ("F1",))])
    alert = run(topo, [ev("o", "start", 0)])
    assert "name" not in alert["affected"][0]


def test_large_feeder_is_indexed():
    n = 20_000
    topo = Topology(node(f"c{i}", ("F1",) if i % 2 else ("F2",)) for i in range(n))
    alert = run(topo, [ev("o", "start", 0)])
    assert len(alert["affected"]) == n // 2
