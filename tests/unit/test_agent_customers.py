"""The customers agent (streams/agents/customers.py), run by faust with tables in memory:
profiles, changes, tombstones, the DLQ kinds, key mismatch, and no name in any output."""

from __future__ import annotations

import base64
import logging
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from schemas.models import CustomerProfile
from schemas.topics import CUSTOMERS
from streams.runtime import ProfileFacts
from tests.samples import NAME, PROFILE
from tests.unit.worker_harness import js, quarter_hours_ago, reading, worker_under_test

pytestmark = pytest.mark.timeout(60)


async def test_a_profile_is_kept_changed_and_deleted(tmp_path: Path) -> None:
    async with worker_under_test(tmp_path) as w:
        async with w.agent("customers").test_context() as ctx:
            await w.put(ctx, b"c1", js(PROFILE))
            assert w.rt.profile("c1") == ProfileFacts.of(CustomerProfile.model_validate(PROFILE))
            await w.put(ctx, b"c1", js(PROFILE | {"manager_id": "mgr8"}))
            assert w.rt.profile("c1") == ProfileFacts.of(
                CustomerProfile.model_validate(PROFILE | {"manager_id": "mgr8"})
            )
            await w.put(ctx, b"c1", None)  # tombstone
            assert w.rt.profile("c1") is None
            await w.put(ctx, None, None)  # a tombstone without a key says nothing

        assert w.rt.counters["profiles_applied"] == 2 and w.rt.counters["profiles_deleted"] == 1
        changelog = w.changelog(w.rt.profile_table)
        assert [s.key for s in changelog] == [b"c1"] * 3
        assert not changelog[-1].value  # the delete reaches the changelog (compaction drops it)
        assert w.rt.profile_table.get(b"c1") is None
        assert not w.stats()  # nothing known of c1 yet: no document
        assert not w.dead_letters(CUSTOMERS)


async def test_a_profile_change_republishes_the_statistics(tmp_path: Path) -> None:
    async with worker_under_test(tmp_path) as w:
        async with w.agent("readings").test_context() as readings:
            await w.put(readings, b"c1", js(reading("c1", quarter_hours_ago(1), 3.0)))
        async with w.agent("customers").test_context() as ctx:
            await w.put(ctx, b"c1", js(PROFILE))

        before, after = w.stats()
        assert before["profile_known"] is False and before["month"]["pf_standard"] is None
        assert after["profile_known"] is True and after["month"]["pf_standard"] == 0.90  # large industrial
        assert after["d30"] == before["d30"]


async def test_an_unusable_profile_goes_to_the_dlq_and_the_previous_one_stays(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    bad = {
        "decode": b"{not json",
        "schema": js(PROFILE | {"contract_kva": NAME}),
        "unknown_code": js(PROFILE | {"importance": NAME}),
        "key_mismatch": js(PROFILE | {"customer_id": "c2"}),
        "bad_feeders": js(PROFILE | {"feeders": ["F101", "F101"]}),
        "bad_contract_kva": js(PROFILE | {"contract_kva": -1.0}),
        "bad_pf_standard": js(PROFILE | {"pf_standard": 0.7}),
    }
    async with worker_under_test(tmp_path) as w:
        async with w.agent("customers").test_context() as ctx:
            await w.put(ctx, b"c1", js(PROFILE))
            for value in bad.values():
                await w.put(ctx, b"c1", value)

        assert w.dead_letter_kinds(CUSTOMERS) == list(bad)
        for dead, raw in zip(w.dead_letters(CUSTOMERS), bad.values(), strict=True):
            assert base64.b64decode(dead["raw"]) == raw  # kept byte for byte, for a replay
            assert NAME not in dead["detail"]
        assert w.rt.profile("c1") == ProfileFacts.of(CustomerProfile.model_validate(PROFILE))
        assert w.rt.counters["profiles_applied"] == 1
        # besides the profile table's own changelog, the name travels only in the DLQ's raw bytes
        # (base64): never in a detail, a stats document or a log line
        outputs = [
            s.value or b""
            for s in w.producer.sent
            if s.topic != w.rt.profile_table.changelog_topic.get_topic_name()
        ]
        assert not any(NAME.encode() in value for value in outputs)
        assert NAME not in caplog.text


async def test_a_batch_of_profiles_is_applied_in_arrival_order(tmp_path: Path) -> None:
    """Profiles taken together give what they gave one by one: each customer's document after
    its profile, a set then a delete leaves no profile, the invalid one goes to the DLQ."""
    c2 = PROFILE | {"customer_id": "c2", "tariff_class": "residential", "contract_kva": 8.0}
    async with worker_under_test(tmp_path) as w:
        async with w.agent("readings").test_context() as readings:
            for cid in (b"c1", b"c2"):
                await w.put(readings, cid, js(reading(cid.decode(), quarter_hours_ago(1), 3.0)))
        async with w.agent("customers").test_context() as ctx:
            await w.put_many(
                ctx,
                [
                    (b"c1", js(PROFILE)),
                    (b"c2", b"{not json"),
                    (b"c2", js(c2)),
                    (b"c1", None),
                    (b"c3", js(PROFILE | {"customer_id": "c3"})),
                ],
            )
        docs = w.stats()[2:]  # after the readings' two
        assert [(d["customer_id"], d["profile_known"], d["month"]["pf_standard"]) for d in docs] == [
            ("c1", True, 0.90),  # large industrial
            ("c2", True, None),  # residential: no PF adjustment
        ]  # c3: nothing known of it yet, no document
        assert w.rt.profile("c1") is None
        assert w.rt.profile("c2") == ProfileFacts.of(CustomerProfile.model_validate(c2))
        assert w.dead_letter_kinds(CUSTOMERS) == ["decode"]
        assert w.rt.counters["profiles_applied"] == 3 and w.rt.counters["profiles_deleted"] == 1
        assert 1 <= w.rt.counters["profiles_batches"] <= 5


async def test_a_defect_meeting_one_profile_of_a_batch_dead_letters_that_profile_only(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with worker_under_test(tmp_path) as w:
        async with w.agent("readings").test_context() as readings:
            for cid in (b"c1", b"c2"):
                await w.put(readings, cid, js(reading(cid.decode(), quarter_hours_ago(1), 3.0)))
        snapshot = w.rt.stats_snapshot

        def failing(customer_id: str, now: datetime) -> dict[str, Any] | None:
            if customer_id == "c1":
                raise ZeroDivisionError("a defect")
            return snapshot(customer_id, now)

        monkeypatch.setattr(w.rt, "stats_snapshot", failing)
        async with w.agent("customers").test_context() as ctx:
            await w.put_many(ctx, [(b"c1", js(PROFILE)), (b"c2", js(PROFILE | {"customer_id": "c2"}))])
        assert [d["customer_id"] for d in w.stats()[2:]] == ["c2"]
        (dead,) = w.dead_letters(CUSTOMERS)
        assert dead["error"] == "processing_failed" and base64.b64decode(dead["key"]) == b"c1"
        assert w.rt.counters["processing_failed"] == 1
