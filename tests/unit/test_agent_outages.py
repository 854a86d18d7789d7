"""The outages agent (streams/agents/outages.py), run by faust: the alert and the indices it
publishes from its view, a redelivered event, the DLQ kinds, key mismatch.

The view is fed through the same calls its topic reader makes (``OutageView.apply_*``); with no
reader running, the agent decides on what the view holds after its (short) wait, as it does when
the reader is behind."""

from __future__ import annotations

import base64
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest

from alerts.outage_impact import LoadEstimate
from schemas.models import OutageAlert, ReliabilityIndices
from schemas.topics import ALERTS_OUTAGE, GRID_OUTAGES, RELIABILITY_INDICES
from streams.agents.scoring import trim_stats
from tests.samples import NAME, PROFILE
from tests.unit.worker_harness import WorkerUnderTest, js, quarter_hours_ago, reading, worker_under_test

pytestmark = pytest.mark.timeout(60)

T0 = datetime.fromisoformat("2026-03-02T09:00:00+08:00")


def outage(event: str, minutes: float, **extra: Any) -> dict[str, Any]:
    ts = (T0 + timedelta(minutes=minutes)).isoformat()
    return {"outage_id": "o1", "event": event, "ts": ts, "scope": "feeder", "scope_id": "F1"} | extra


def grid(w: WorkerUnderTest) -> None:
    """L1: level-1, feeders F1 + F2 (dual circuit); S1: F1 only; S3: F3 only."""
    view = w.worker.outages.view
    for cid, feeders, extra in (
        ("L1", ["F1", "F2"], {}),
        ("S1", ["F1"], {"importance": "none", "manager_id": "mgr9", "emergency_generator": False}),
        ("S3", ["F3"], {"importance": "none"}),
    ):
        assert view.apply_profile_message(
            cid.encode(), js(PROFILE | {"customer_id": cid, "feeders": feeders} | extra)
        )
    assert view.apply_stats_message(js({"customer_id": "S1", "d30": {"avg_kw": 40.0}}))


def alerts(w: WorkerUnderTest) -> list[dict[str, Any]]:
    return [orjson.loads(s.value) for s in w.sent_to(ALERTS_OUTAGE) if s.value is not None]


async def test_an_outage_opens_and_resolves_its_alert_and_publishes_the_indices(tmp_path: Path) -> None:
    async with worker_under_test(tmp_path, outage_view_wait_s=0.01) as w:
        grid(w)
        async with w.agent("outages").test_context() as ctx:
            await w.put(ctx, b"o1", js(outage("start", 0)))
            await w.put(ctx, b"o1", js(outage("start", 0)))  # redelivered
            await w.put(ctx, b"o1", js(outage("restore", 30)))

        opened, again, resolved = alerts(w)
        for doc in (opened, again, resolved):
            OutageAlert.model_validate(doc)
        assert [s.key for s in w.sent_to(ALERTS_OUTAGE)] == [b"outage:o1"] * 3
        assert opened == again  # folding an event twice changes nothing
        impact = {a["customer_id"]: a["impact"] for a in opened["affected"]}
        assert impact == {"S1": "loss_of_supply", "L1": "loss_of_redundancy"}
        assert opened["status"] == "open" and opened["severity"] == "major"  # level-1 loses redundancy
        assert opened["evidence"]["est_kw_total"] == 40.0
        assert sorted(opened["manager_ids"]) == ["mgr7", "mgr9"]
        assert resolved["status"] == "resolved" and resolved["evidence"]["customer_minutes"] == 30.0

        indices = [orjson.loads(s.value) for s in w.sent_to(RELIABILITY_INDICES) if s.value is not None]
        assert [s.key for s in w.sent_to(RELIABILITY_INDICES)] == [b"F1", b"system"]
        for doc in indices:
            ReliabilityIndices.model_validate(doc)
        f1, system = indices
        assert (f1["customers_served"], f1["customer_interruptions"], f1["customer_minutes"]) == (2, 1, 30.0)
        assert system["customers_served"] == 3 and system["SAIDI"] == pytest.approx(10.0)
        assert w.rt.counters["outage_alerts_published"] == 3
        assert w.rt.counters["outage_view_behind"] == 3  # no reader: decided on what the view held
        assert not any(NAME.encode() in (s.value or b"") for s in w.producer.sent)
        assert not w.dead_letters(GRID_OUTAGES)


async def test_every_unusable_outage_event_goes_to_the_dlq_with_its_kind(tmp_path: Path) -> None:
    bad = {
        "decode": b"null",
        "schema": js({"outage_id": "o1", "event": "start"}),
        "unknown_code": js(outage("flicker", 0)),
        "bad_timestamp": js(outage("start", 0) | {"ts": "2026-03-02 09:00"}),
        "key_mismatch": js(outage("start", 0) | {"outage_id": "o2"}),
    }
    async with worker_under_test(tmp_path, outage_view_wait_s=0.01) as w:
        grid(w)
        async with w.agent("outages").test_context() as ctx:
            for value in bad.values():
                await w.put(ctx, b"o1", value)

        assert w.dead_letter_kinds(GRID_OUTAGES) == list(bad)
        for dead, raw in zip(w.dead_letters(GRID_OUTAGES), bad.values(), strict=True):
            assert base64.b64decode(dead["raw"]) == raw and base64.b64decode(dead["key"]) == b"o1"
        assert not alerts(w) and not w.worker.outages.view.records


async def test_the_workers_own_statistics_reach_both_views_in_process(tmp_path: Path) -> None:
    """The views' followers pause the stats.customer partitions the worker owns, so the views
    must hold every document the worker publishes without reading it back (no reader runs)."""
    async with worker_under_test(tmp_path) as w:
        async with w.agent("readings").test_context() as ctx:
            await w.put(ctx, b"c1", js(reading("c1", quarter_hours_ago(2), 4.0)))
            await w.put(ctx, b"c1", js(reading("c1", quarter_hours_ago(1), 8.0)))
        last = w.stats()[-1]
        assert last["customer_id"] == "c1"
        held, expected = w.worker.outages.view.est_kw["c1"], LoadEstimate.from_stats(last)
        assert expected is not None and expected.hourly is not None and held.hourly is not None
        assert (held.avg_kw, held.hourly.tobytes()) == (
            expected.avg_kw,
            expected.hourly.tobytes(),
        )  # NaN-equal
        assert w.worker.scoring.view.stats("c1") == trim_stats(last)
