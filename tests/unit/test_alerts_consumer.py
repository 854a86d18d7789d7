"""Decoding alert messages for the store (credit, outage, inspection), the managers an alert
names, and the notices a sequence of alert states yields."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from alerts.consumer import MalformedAlert, decode_alert
from alerts.notifier import newcomer_event, notice_event
from alerts.store import alert_managers


def credit(**kw: Any) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "alert_id": "credit:C1:overdue_30",
        "kind": "credit",
        "severity": "major",
        "status": "open",
        "ts": "2026-11-01T08:00:00+08:00",
        "reason": "oldest bill 31 days overdue",
        "evidence": {"oldest_overdue_days": 31},
        "customer_id": "C1",
        "rule": "overdue_30",
        "manager_id": "M07",
    }
    doc.update(kw)
    return doc


def outage(**kw: Any) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "alert_id": "outage:O1",
        "kind": "outage",
        "severity": "critical",
        "status": "open",
        "ts": "2026-11-01T08:00:00+08:00",
        "reason": "feeder F1 lost",
        "evidence": {"customers": 2},
        "outage_id": "O1",
        "scope": "feeder",
        "scope_id": "F1",
        "planned": False,
        "manager_ids": ["M07", "M08"],
        "affected": [
            {
                "customer_id": "C1",
                "importance": "level1",
                "safety_grade": "D",
                "impact": "loss_of_supply",
                "est_kw": 120.0,
                "revenue_at_risk_cny_per_h": 80.0,
                "manager_id": "M07",
            }
        ],
    }
    doc.update(kw)
    return doc


def area_alert(**kw: Any) -> dict[str, Any]:
    """An inspection area alert as inspection.rules.evaluate_area publishes it."""
    doc: dict[str, Any] = {
        "alert_id": "inspection:A1:area_high_loss",
        "kind": "inspection",
        "severity": "major",
        "status": "open",
        "ts": "2027-02-11T01:00:00+08:00",
        "reason": "line loss 15.0 % on 2027-02-10, above 10.0 %",
        "evidence": {"date": "2027-02-10", "loss_rate": 0.15, "suspects": ["C7", "C2"]},
        "scope": "transformer_area",
        "transformer_area": "A1",
        "rule": "area_high_loss",
        "flapping": False,
        "suspects": [
            {
                "customer_id": "C7",
                "score": 0.81,
                "reasons": ["negative_loss_correlation", "tamper_flag"],
                "evidence": {"correlation": -0.9, "flags": ["tamper_flag"], "weights": {"drop": 0.45}},
            },
            {"customer_id": "C2", "score": 0.3, "reasons": [], "evidence": {"correlation": -0.2}},
        ],
        "manager_ids": ["M07", "M08"],
    }
    doc.update(kw)
    return doc


def customer_inspection_alert(**kw: Any) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "alert_id": "inspection:C7:tamper_flag",
        "kind": "inspection",
        "severity": "major",
        "status": "open",
        "ts": "2027-02-11T01:00:00+08:00",
        "reason": "meter m1 reported magnetic at 2027-02-10T16:00:00+00:00",
        "evidence": {"meter_id": "m1", "codes": ["magnetic"], "keep_days": 30.0},
        "scope": "customer",
        "customer_id": "C7",
        "rule": "tamper_flag",
        "manager_id": "M07",
        "flapping": False,
    }
    doc.update(kw)
    return doc


def test_inspection_alerts_decode_for_the_store() -> None:
    area = decode_alert("inspection", orjson.dumps(area_alert()))
    assert area["transformer_area"] == "A1" and area["kind"] == "inspection"
    assert [s["customer_id"] for s in area["suspects"]] == ["C7", "C2"]
    assert area["suspects"][0]["evidence"]["weights"] == {"drop": 0.45}  # nested evidence kept
    assert alert_managers(area) == ["M07", "M08"]
    own = decode_alert("inspection", orjson.dumps(customer_inspection_alert()))
    assert own["customer_id"] == "C7" and own["evidence"]["codes"] == ["magnetic"]
    assert alert_managers(own) == ["M07"]
    resolved = decode_alert(
        "inspection", orjson.dumps(area_alert(status="resolved", suspects=[], manager_ids=[]))
    )
    assert alert_managers(resolved) == []  # the store keeps the managers it had (alerts.store)


@pytest.mark.parametrize(
    "doc",
    [
        area_alert(transformer_area=None),  # an area alert without its area
        customer_inspection_alert(customer_id=None),
        customer_inspection_alert(suspects=area_alert()["suspects"]),  # a customer alert lists none
        area_alert(suspects=[{"customer_id": "C7", "score": 1.2, "reasons": [], "evidence": {}}]),
        area_alert(scope="feeder"),
        credit(),  # a credit alert on the inspection topic
    ],
)
def test_malformed_inspection_alerts_are_refused(doc: dict[str, Any]) -> None:
    with pytest.raises(MalformedAlert) as bad:
        decode_alert("inspection", orjson.dumps(doc))
    assert bad.value.error == "schema"


def test_a_manager_newly_named_by_a_live_alert_hears_of_it_as_it_is() -> None:
    assert newcomer_event("open", "major", None) == "open"
    assert newcomer_event("escalated", "critical", None) == "escalated"
    assert newcomer_event("resolved", "major", None) is None
    assert newcomer_event("open", "major", "major") is None  # acknowledged: taken on
    assert newcomer_event("escalated", "critical", "major") == "escalated"  # worse than acknowledged


def test_valid_alerts_decode_with_their_added_fields() -> None:
    got = decode_alert("credit", orjson.dumps(credit(added_by_a_newer_producer=1)))
    assert got["alert_id"] == "credit:C1:overdue_30" and got["added_by_a_newer_producer"] == 1
    assert got["ts"] == "2026-11-01T08:00:00+08:00"
    assert decode_alert("outage", orjson.dumps(outage()))["manager_ids"] == ["M07", "M08"]


def test_kind_defaults_from_the_topic() -> None:
    doc = credit()
    del doc["kind"]
    assert decode_alert("credit", orjson.dumps(doc))["kind"] == "credit"


@pytest.mark.parametrize(
    ("kind", "value", "error"),
    [
        ("credit", None, "tombstone"),
        ("credit", b"{not json", "decode"),
        ("credit", b"[1, 2]", "decode"),
        ("credit", orjson.dumps(credit(severity="apocalyptic")), "schema"),
        ("credit", orjson.dumps(credit(ts="yesterday")), "schema"),
        ("credit", orjson.dumps({k: v for k, v in credit().items() if k != "alert_id"}), "schema"),
        ("outage", orjson.dumps(credit()), "schema"),  # a credit alert on the outage topic
    ],
)
def test_malformed_alerts_are_named(kind: str, value: bytes | None, error: str) -> None:
    with pytest.raises(MalformedAlert) as bad:
        decode_alert(kind, value)
    assert bad.value.error == error


def replay(states: list[tuple[str, str]], acked_at: dict[int, str] | None = None) -> list[str | None]:
    """The notices a sequence of stored states yields, as the consumer records them."""
    notice: tuple[str | None, str | None] = (None, None)
    ack: str | None = None
    out: list[str | None] = []
    for i, (status, severity) in enumerate(states):
        ack = (acked_at or {}).get(i, ack)
        out.append(notice_event(status, severity, notice[0], notice[1], ack))
        notice = (status, severity)
    return out


def test_a_credit_alert_lifecycle_notifies_open_escalated_resolved_once_each() -> None:
    states = [("open", "major"), ("open", "major"), ("escalated", "critical"), ("resolved", "info")]
    assert replay(states) == ["open", None, "escalated", "resolved"]


def test_acknowledged_alert_is_quiet_until_it_gets_worse() -> None:
    states = [("open", "minor"), ("escalated", "minor"), ("escalated", "major"), ("resolved", "info")]
    assert replay(states, acked_at={1: "minor"}) == ["open", None, "escalated", None]
