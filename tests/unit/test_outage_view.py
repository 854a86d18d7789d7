"""The outage view: topology follows profile changes and tombstones; est_kw from stats."""

from __future__ import annotations

import orjson

from alerts.outage_impact import LoadEstimate
from streams.agents.outages import OutageView


def profile(cid: str, feeders: list[str], ta: str = "TA1") -> bytes:
    return orjson.dumps(
        {"customer_id": cid, "name": "never kept", "feeders": feeders, "transformer_area": ta}
    )


def test_profiles_changes_and_tombstones():
    view = OutageView("customers", "stats.customer", "grid.outages")
    assert view.apply_profile_message(b"c1", profile("c1", ["F1", "F2"]))
    assert view.topology.on_feeder("F2") == {"c1"}
    assert view.apply_profile_message(b"c1", profile("c1", ["F3"], ta="TA2"))
    assert view.topology.on_feeder("F2") == set() and view.topology.in_area("TA2") == {"c1"}
    assert not view.apply_profile_message(b"other", profile("c1", ["F1"]))  # key mismatch
    assert not view.apply_profile_message(b"c1", b"{not json")
    assert view.topology.customers["c1"].feeders == frozenset({"F3"})
    assert view.apply_profile_message(b"c1", None)
    assert len(view.topology) == 0 and view.topology.on_feeder("F3") == set()


def test_stats_give_the_30_day_average_load():
    view = OutageView("customers", "stats.customer", "grid.outages")
    assert view.apply_stats_message(orjson.dumps({"customer_id": "c1", "d30": {"avg_kw": 12.5}}))
    assert view.est_kw == {"c1": LoadEstimate(12.5)}
    assert view.est_kw["c1"].kw_at(9) == 12.5
    assert not view.apply_stats_message(b"garbage")


def test_stats_give_the_hour_of_day_profile():
    view = OutageView("customers", "stats.customer", "grid.outages")
    hourly = [None] * 24
    hourly[9], hourly[20] = 30.0, 4.25
    doc = {"customer_id": "c1", "d30": {"avg_kw": 12.5}, "hourly_kw": hourly}
    assert view.apply_stats_message(orjson.dumps(doc))
    estimate = view.est_kw["c1"]
    assert estimate.hourly is not None and len(estimate.hourly) == 24
    assert (estimate.kw_at(9), estimate.kw_at(20)) == (30.0, 4.25)
    assert estimate.kw_at(3) == 12.5  # no data that hour: the 30-day average
    assert estimate.kw_at(None) == 12.5
    # a profile without any data is not kept
    assert view.apply_stats_message(orjson.dumps({**doc, "hourly_kw": [None] * 24}))
    assert view.est_kw["c1"] == LoadEstimate(12.5)


def test_outage_events_fold_into_records():
    view = OutageView("customers", "stats.customer", "grid.outages")
    ev = {
        "outage_id": "o1",
        "event": "start",
        "ts": "2026-03-01T10:00:00+08:00",
        "scope": "feeder",
        "scope_id": "F1",
    }
    assert view.apply_outage_message(b"o1", orjson.dumps(ev))
    assert not view.apply_outage_message(b"o2", orjson.dumps(ev))  # key mismatch
    assert not view.apply_outage_message(b"o1", orjson.dumps({**ev, "event": "bogus"}))
    assert view.records["o1"].start_ts is not None and view.records["o1"].restore_ts is None


def stats_doc(cid: str, avg_kw: float, as_of: str) -> dict[str, object]:
    return {"customer_id": cid, "d30": {"avg_kw": avg_kw}, "arrears": {"as_of": as_of}}


def test_own_documents_are_not_replaced_by_older_ones_read_from_the_topic():
    view = OutageView("customers", "stats.customer", "grid.outages")
    view.put_own(stats_doc("c1", 5.0, "2026-03-02T10:00:00+00:00"))
    assert view.est_kw == {"c1": LoadEstimate(5.0)}
    # an earlier owner's document (or this worker's own, read again) that is older
    assert not view.apply_stats_message(orjson.dumps(stats_doc("c1", 1.0, "2026-03-02T09:59:00+00:00")))
    assert view.est_kw == {"c1": LoadEstimate(5.0)}
    # the same document read back, then a newer one (the next owner's): taken
    assert view.apply_stats_message(orjson.dumps(stats_doc("c1", 5.0, "2026-03-02T10:00:00+00:00")))
    assert view.apply_stats_message(orjson.dumps(stats_doc("c1", 7.0, "2026-03-02T10:05:00+00:00")))
    assert view.est_kw == {"c1": LoadEstimate(7.0)}
    # once the topic has the customer's newest, the topic's order decides again
    assert view.apply_stats_message(orjson.dumps(stats_doc("c1", 6.0, "2026-03-02T10:01:00+00:00")))
    assert view.est_kw == {"c1": LoadEstimate(6.0)}
