"""The history agent (streams/agents/history.py), run by faust with tables in memory: seeded
months, replays, the DLQ kinds, key mismatch."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import pytest

from schemas.topics import CONSUMPTION_HISTORY
from tests.unit.worker_harness import js, quarter_hours_ago, reading, worker_under_test

pytestmark = pytest.mark.timeout(60)


def months_before(newest: str, k: int) -> str:
    year, month = map(int, newest.split("-"))
    m = year * 12 + month - 1 - k
    return f"{m // 12:04d}-{m % 12 + 1:02d}"


async def test_history_seeds_the_months_without_readings(tmp_path: Path) -> None:
    async with worker_under_test(tmp_path) as w:
        async with w.agent("history").test_context() as history:
            # before the first reading: kept, nothing to publish yet
            await w.put(history, b"c1", js({"customer_id": "c1", "period": "2001-01", "kwh": 5.0}))
            assert not w.stats() and w.rt.counters["history_months_applied"] == 1
            async with w.agent("readings").test_context() as readings:
                await w.put(readings, b"c1", js(reading("c1", quarter_hours_ago(1), 2.0)))
            month = w.stats()[-1]["month"]["period"]
            # 25 past months, the last one replayed with a corrected figure
            records = [
                {"customer_id": "c1", "period": months_before(month, k), "kwh": 1000.0 + k, "source": "CIS"}
                for k in range(1, 26)
            ]
            records.append(records[0] | {"kwh": 999.0})
            for record in records:
                await w.put(history, b"c1", js(record))
            # a record for the month that has readings: metered wins
            await w.put(history, b"c1", js({"customer_id": "c1", "period": month, "kwh": 1e6}))

        doc = w.stats()[-1]
        assert w.rt.counters["history_months_applied"] == 28
        assert len(w.stats()) == 1 + 27  # every record after the first reading republishes
        assert doc["consumption"][months_before(month, 1)] == 999.0  # the later record replaced it
        assert doc["consumption"][months_before(month, 12)] == 1012.0
        assert doc["consumption"][month] == pytest.approx(2.0)
        assert "2001-01" not in doc["consumption"]  # outside the 26 months kept
        assert doc["yoy_growth_kwh"] == pytest.approx(999.0 - 1013.0)
        assert doc["yoy_growth_rate"] is not None
        assert datetime.fromisoformat(doc["ts"]) == quarter_hours_ago(1)  # history has no event time
        assert not w.dead_letters(CONSUMPTION_HISTORY)


async def test_every_unusable_history_record_goes_to_the_dlq_with_its_kind(tmp_path: Path) -> None:
    bad = {
        "decode": b"",
        "schema": js({"customer_id": "c1", "period": "2026-01"}),
        "bad_date": js({"customer_id": "c1", "period": "2026-13", "kwh": 1.0}),
        "negative_energy": js({"customer_id": "c1", "period": "2026-01", "kwh": -1.0}),
        "key_mismatch": js({"customer_id": "c2", "period": "2026-01", "kwh": 1.0}),
    }
    async with worker_under_test(tmp_path) as w:
        async with w.agent("history").test_context() as ctx:
            for value in bad.values():
                await w.put(ctx, b"c1", value)

        assert w.dead_letter_kinds(CONSUMPTION_HISTORY) == list(bad)
        assert w.rt.counters["history_months_applied"] == 0 and w.rt.load_table.get(b"c1") is None
