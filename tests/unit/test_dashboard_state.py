"""dashboard.state: merge by event time, aggregates that move on replacement, malformed documents
counted, the columnar value matrix (also at 100,000 customers)."""

from __future__ import annotations

import time
from collections import Counter
from typing import Any

import orjson
import pytest

from dashboard.state import DashboardState
from schemas import topics as contract
from scoring import score_population
from tests.scoring_samples import simulated_stats


def scores_doc(cid: str, ts: str, **kw: Any) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "customer_id": cid,
        "ts": ts,
        "indicators": {},
        "scores": {},
        "current_value": 1.0,
        "potential_value": 2.0,
        "quadrant": "vip",
        "credit_grade": "A",
        "service_tier": "level1",
        "safety_grade": "B",
        "model_version": "m1",
        "value_origin": {"current": 0.5, "potential": 0.7},
    }
    doc.update(kw)
    return doc


def stats_doc(cid: str, ts: str, kwh30: float | None) -> dict[str, Any]:
    return {"customer_id": cid, "ts": ts, "d30": {"kwh": kwh30}}


def alert_doc(
    aid: str, ts: str, status: str, severity: str = "major", kind: str = "credit"
) -> dict[str, Any]:
    return {
        "alert_id": aid,
        "kind": kind,
        "ts": ts,
        "status": status,
        "severity": severity,
        "customer_id": "c1",
    }


def put(state: DashboardState, topic: str, doc: Any) -> Any:
    return state.apply_raw(topic, orjson.dumps(doc))


def test_an_older_document_does_not_replace_a_newer_one_and_an_equal_ts_does() -> None:
    state = DashboardState()
    assert put(state, contract.SCORES_CUSTOMER, scores_doc("c1", "2026-11-01T10:00:00+08:00", quadrant="vip"))
    older = scores_doc("c1", "2026-11-01T01:59:59Z", quadrant="abandon")  # 09:59:59+08:00
    assert put(state, contract.SCORES_CUSTOMER, older) is None
    assert state.doc("scores", "c1")["quadrant"] == "vip"
    same = scores_doc("c1", "2026-11-01T02:00:00Z", quadrant="maintenance")  # the same instant
    change = put(state, contract.SCORES_CUSTOMER, same)
    assert change is not None and (change.kind, change.key) == ("scores", "c1")
    assert state.doc("scores", "c1")["quadrant"] == "maintenance"
    newer = scores_doc("c1", "2026-11-01T10:00:01+08:00", quadrant="improvement")
    assert put(state, contract.SCORES_CUSTOMER, newer) is not None
    assert state.doc("scores", "c1")["quadrant"] == "improvement"


def test_reliability_without_ts_is_replaced_in_topic_order() -> None:
    state = DashboardState()
    put(state, contract.RELIABILITY_INDICES, {"scope": "system", "scope_id": "system", "SAIDI": 1.0})
    put(state, contract.RELIABILITY_INDICES, {"scope": "system", "scope_id": "system", "SAIDI": 0.5})
    assert state.doc("reliability", "system")["SAIDI"] == 0.5
    assert state.counts()["reliability_system"]["SAIDI"] == 0.5


def test_aggregates_move_when_a_document_replaces_another() -> None:
    state = DashboardState()
    put(state, contract.SCORES_CUSTOMER, scores_doc("c1", "2026-11-01T00:00:00Z"))
    put(state, contract.SCORES_CUSTOMER, scores_doc("c2", "2026-11-01T00:00:00Z"))
    c = state.counts()
    assert (c["customers_scored"], c["quadrants"]["vip"], c["credit_grades"]["A"]) == (2, 2, 2)
    put(
        state,
        contract.SCORES_CUSTOMER,
        scores_doc(
            "c1",
            "2026-11-02T00:00:00Z",
            quadrant="abandon",
            credit_grade="D",
            safety_grade="A",
            service_tier="special",
        ),
    )
    c = state.counts()
    assert c["customers_scored"] == 2
    assert (c["quadrants"]["vip"], c["quadrants"]["abandon"]) == (1, 1)
    assert (c["credit_grades"]["A"], c["credit_grades"]["D"]) == (1, 1)
    assert (c["safety_grades"]["B"], c["safety_grades"]["A"]) == (1, 1)
    assert (c["service_tiers"]["level1"], c["service_tiers"]["special"]) == (1, 1)

    put(state, contract.ALERTS_CREDIT, alert_doc("a1", "2026-11-01T00:00:00Z", "open", "major"))
    put(
        state,
        contract.ALERTS_OUTAGE,
        alert_doc("o1", "2026-11-01T00:00:00Z", "escalated", "critical", "outage"),
    )
    c = state.counts()["alerts_open"]
    assert c["by_severity"] == {"critical": 1, "major": 1, "minor": 0, "info": 0}
    assert c["by_kind"] == {"credit": 1, "outage": 1, "inspection": 0}
    put(state, contract.ALERTS_CREDIT, alert_doc("a1", "2026-11-02T00:00:00Z", "escalated", "critical"))
    assert state.counts()["alerts_open"]["by_severity"] == {"critical": 2, "major": 0, "minor": 0, "info": 0}
    put(state, contract.ALERTS_CREDIT, alert_doc("a1", "2026-11-03T00:00:00Z", "resolved", "critical"))
    c = state.counts()["alerts_open"]
    assert c["by_severity"]["critical"] == 1 and c["by_kind"] == {"credit": 0, "outage": 1, "inspection": 0}

    # a tombstone removes the customer from every count and from the matrix
    assert state.apply_raw(contract.SCORES_CUSTOMER, None, b"c1") is not None
    c = state.counts()
    assert c["customers_scored"] == 1 and c["quadrants"]["abandon"] == 0
    assert orjson.loads(state.matrix_json())["ids"] == ["c2"]


@pytest.mark.parametrize(
    "raw",
    [
        b"not json",
        b"[1, 2]",
        b'"a string"',
        orjson.dumps({"ts": "2026-11-01T00:00:00Z", "current_value": 1}),  # no key
        orjson.dumps(scores_doc("c9", "yesterday")),  # ts not RFC 3339
        orjson.dumps(scores_doc("c9", "2026-11-01T00:00:00")),  # no offset
        orjson.dumps({k: v for k, v in scores_doc("c9", "x").items() if k != "ts"}),  # no ts
        orjson.dumps(scores_doc("c9", "2026-11-01T00:00:00Z", current_value="1.5")),
    ],
)
def test_a_malformed_document_is_skipped_and_counted(raw: bytes) -> None:
    state = DashboardState()
    put(state, contract.SCORES_CUSTOMER, scores_doc("c1", "2026-11-01T00:00:00Z"))
    version = state.version
    assert state.apply_raw(contract.SCORES_CUSTOMER, raw) is None
    assert state.malformed == Counter({contract.SCORES_CUSTOMER: 1})
    assert state.counts()["malformed"] == {contract.SCORES_CUSTOMER: 1}
    assert state.version == version and state.counts()["customers_scored"] == 1
    # the state goes on taking documents
    assert put(state, contract.SCORES_CUSTOMER, scores_doc("c2", "2026-11-01T00:00:00Z")) is not None


def test_the_matrix_joins_scores_with_the_30_day_kwh_and_uses_the_newest_docs_origin() -> None:
    state = DashboardState()
    put(state, contract.STATS_CUSTOMER, stats_doc("c1", "2026-11-01T00:00:00Z", 100.0))
    put(state, contract.SCORES_CUSTOMER, scores_doc("c1", "2026-11-01T00:00:00Z", current_value=3.0))
    put(
        state,
        contract.SCORES_CUSTOMER,
        scores_doc(
            "c2",
            "2026-11-02T00:00:00Z",
            current_value=4.0,
            credit_grade="C",
            model_version="m2",
            value_origin={"current": 2.5, "potential": 2.6},
        ),
    )
    # an older pass's document arriving later does not move the origin back
    put(state, contract.SCORES_CUSTOMER, scores_doc("c3", "2026-10-30T00:00:00Z"))
    m = orjson.loads(state.matrix_json())
    assert m["ids"] == ["c1", "c2", "c3"]
    assert m["current"] == [3.0, 4.0, 1.0] and m["credit"] == ["A", "C", "A"]
    assert m["kwh30"] == [100.0, None, None]
    assert m["origin"] == {"current": 2.5, "potential": 2.6} and m["model_version"] == "m2"
    put(state, contract.STATS_CUSTOMER, stats_doc("c2", "2026-11-02T00:00:00Z", 7.5))
    assert orjson.loads(state.matrix_json())["kwh30"] == [100.0, 7.5, None]
    put(state, contract.STATS_CUSTOMER, stats_doc("c2", "2026-11-01T00:00:00Z", 1.0))  # older: ignored
    assert orjson.loads(state.matrix_json())["kwh30"][1] == 7.5
    state.apply_raw(contract.SCORES_CUSTOMER, None, b"c1")  # c3 takes c1's row
    m = orjson.loads(state.matrix_json())
    assert m["ids"] == ["c3", "c2"] and m["kwh30"] == [None, 7.5] and m["current"] == [1.0, 4.0]
    assert state.newest_reading_text == "2026-11-02T00:00:00Z"


def test_the_matrix_of_real_score_documents_equals_the_documents() -> None:
    stats, profiles = simulated_stats(300, seed=3)
    docs = score_population(stats, profiles)
    state = DashboardState()
    for s in stats:
        put(state, contract.STATS_CUSTOMER, s)
    for d in docs:
        put(state, contract.SCORES_CUSTOMER, d)
    m = orjson.loads(state.matrix_json())
    by_id = {d["customer_id"]: d for d in docs}
    kwh = {s["customer_id"]: s["d30"]["kwh"] for s in stats}
    assert sorted(m["ids"]) == sorted(by_id)
    for i, cid in enumerate(m["ids"]):
        d = by_id[cid]
        assert (m["current"][i], m["potential"][i], m["credit"][i], m["quadrant"][i]) == (
            d["current_value"],
            d["potential_value"],
            d["credit_grade"],
            d["quadrant"],
        )
        assert m["kwh30"][i] == kwh[cid]
    assert m["origin"] == docs[0]["value_origin"]
    quadrants = ("vip", "improvement", "maintenance", "abandon")
    assert state.counts()["quadrants"] == {q: sum(d["quadrant"] == q for d in docs) for q in quadrants}


def test_the_matrix_at_100000_customers_is_built_fast_and_cached_until_a_change() -> None:
    state = DashboardState()
    quadrants = ("vip", "improvement", "maintenance", "abandon")
    for i in range(100_000):
        cid = f"C{i:06d}"
        state.apply_doc("stats", stats_doc(cid, "2026-11-01T00:00:00Z", float(i)))
        state.apply_doc(
            "scores",
            scores_doc(cid, "2026-11-01T00:00:00Z", current_value=i % 97 / 10, quadrant=quadrants[i % 4]),
        )
    t0 = time.perf_counter()
    body = state.matrix_json()
    built_s = time.perf_counter() - t0
    assert state.matrix_json() is body  # cached
    m = orjson.loads(body)
    assert len(m["ids"]) == 100_000 and m["kwh30"][99_999] == 99_999.0
    assert state.counts()["quadrants"] == dict.fromkeys(quadrants, 25_000)
    assert built_s < 1.0, f"the matrix took {built_s:.3f} s to build"
    state.apply_doc("scores", scores_doc("C000005", "2026-11-02T00:00:00Z", quadrant="vip"))
    assert state.matrix_json() is not body
