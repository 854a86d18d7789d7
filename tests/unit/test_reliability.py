"""IEEE 1366 indices against hand computation (alerts.reliability)."""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from alerts.outage_impact import CustomerNode, OutageRecord, Topology, apply_event
from alerts.reliability import after_restore, feeder_indices, system_indices
from schemas.models import OutageEvent, ReliabilityIndices

SH = ZoneInfo("Asia/Shanghai")
T0 = datetime(2026, 3, 2, 9, 0, tzinfo=SH)


def topology() -> Topology:
    # F1 serves a, b, c, d (d dual with F2); F2 serves d, e, f; g is on F3; 7 customers
    nodes = [CustomerNode(c, feeders=frozenset({"F1"})) for c in "abc"]
    nodes.append(CustomerNode("d", feeders=frozenset({"F1", "F2"})))
    nodes += [CustomerNode(c, feeders=frozenset({"F2"})) for c in "ef"]
    nodes.append(CustomerNode("g", feeders=frozenset({"F3"})))
    return Topology(nodes)


def records(*outages: tuple[str, str, float, float]) -> dict[str, OutageRecord]:
    """(outage_id, feeder, start minute, restore minute) from T0."""
    out: dict[str, OutageRecord] = {}
    for oid, feeder, start, restore in outages:
        for event, minute in (("start", start), ("restore", restore)):
            apply_event(
                out,
                OutageEvent.model_validate(
                    {
                        "outage_id": oid,
                        "event": event,
                        "ts": (T0 + timedelta(minutes=minute)).isoformat(),
                        "scope": "feeder",
                        "scope_id": feeder,
                    }
                ),
            )
    return out


def test_three_events_two_feeders_one_momentary():
    # e1: F1 out 60 min -> a, b, c lose supply (d only redundancy): N=3, r=60
    # e2: F2 out 30 min, later -> d (F1 back), e, f: d redundancy; N=2, r=30
    # e3: F1 out 3 min -> momentary, N=3
    recs = records(("e1", "F1", 0, 60), ("e2", "F2", 120, 150), ("e3", "F1", 200, 203))
    topo = topology()
    system = system_indices(recs, topo, 2026, SH)
    assert system["customers_served"] == 7
    assert system["customer_interruptions"] == 5
    assert system["customer_minutes"] == pytest.approx(3 * 60 + 2 * 30)
    assert system["SAIFI"] == pytest.approx(5 / 7)
    assert system["SAIDI"] == pytest.approx(240 / 7)
    assert system["CAIDI"] == pytest.approx(48.0)
    assert system["momentary_interruptions"] == 3

    f1 = feeder_indices(recs, topo, "F1", 2026, SH)
    assert (f1["customers_served"], f1["customer_interruptions"], f1["momentary_interruptions"]) == (4, 3, 3)
    assert f1["SAIFI"] == pytest.approx(3 / 4)
    assert f1["SAIDI"] == pytest.approx(180 / 4)
    assert f1["CAIDI"] == pytest.approx(60.0)

    f2 = feeder_indices(recs, topo, "F2", 2026, SH)
    assert (f2["customers_served"], f2["customer_interruptions"]) == (3, 2)
    assert f2["SAIFI"] == pytest.approx(2 / 3)
    assert f2["SAIDI"] == pytest.approx(60 / 3)
    assert f2["CAIDI"] == pytest.approx(30.0)
    for doc in (system, f1, f2):
        ReliabilityIndices.model_validate(doc)


def test_overlap_makes_the_dual_circuit_customer_an_interruption():
    # F1 out 0..60; F2 out 10..40: d loses supply in the F2 event (N = d, e, f)
    recs = records(("a", "F1", 0, 60), ("b", "F2", 10, 40))
    system = system_indices(recs, topology(), 2026, SH)
    assert system["customer_interruptions"] == 3 + 3
    assert system["customer_minutes"] == pytest.approx(3 * 60 + 3 * 30)


def test_exactly_five_minutes_is_momentary_and_no_interruption_means_no_caidi():
    recs = records(("m", "F3", 0, 5))
    system = system_indices(recs, topology(), 2026, SH)
    assert system["customer_interruptions"] == 0 and system["momentary_interruptions"] == 1
    assert system["SAIFI"] == 0.0 and system["SAIDI"] == 0.0 and system["CAIDI"] is None


def test_unrestored_outages_and_other_years_are_not_counted():
    recs = records(("old", "F1", -400 * 24 * 60, -400 * 24 * 60 + 60))
    apply_event(
        recs,
        OutageEvent.model_validate(
            {"outage_id": "open", "event": "start", "ts": T0.isoformat(), "scope": "feeder", "scope_id": "F2"}
        ),
    )
    system = system_indices(recs, topology(), 2026, SH)
    assert system["customer_interruptions"] == 0 and system["momentary_interruptions"] == 0
    assert system_indices(recs, topology(), 2025, SH)["customer_interruptions"] == 3


def test_year_is_the_local_year_of_the_start():
    # 2025-12-31 23:30 Shanghai is 15:30 UTC: the outage belongs to 2025 locally
    start = datetime(2025, 12, 31, 23, 30, tzinfo=SH)
    recs = records(("ny", "F1", (start - T0).total_seconds() / 60, (start - T0).total_seconds() / 60 + 60))
    assert system_indices(recs, topology(), 2025, SH)["customer_interruptions"] == 3
    assert system_indices(recs, topology(), 2026, SH)["customer_interruptions"] == 0


def test_empty_feeder_has_null_indices():
    doc = feeder_indices({}, topology(), "F9", 2026, SH)
    assert doc["customers_served"] == 0 and doc["SAIFI"] is None and doc["SAIDI"] is None
    ReliabilityIndices.model_validate(doc)


def test_after_restore_publishes_every_feeder_touched_and_the_system():
    recs = records(("a", "F1", 0, 60), ("b", "F2", 10, 40))
    docs = after_restore(recs, topology(), "b", SH)
    # the F2 outage cut d, which F1 also serves
    assert [d["scope_id"] for d in docs] == ["F1", "F2", "system"]
    assert docs == after_restore(recs, topology(), "b", SH)  # deterministic
