"""The readings agent with the block form (streams/agents/readings.py), run by faust with tables
in memory: singles and blocks of a customer in one batch, per-interval dead letters with
``interval_index``, and the same messages sent as single readings giving the same state,
statistics and dead letters."""

from __future__ import annotations

import base64
import re
from collections import Counter
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from schemas.models import DeadLetter
from schemas.topics import METER_READINGS
from tests.samples import PROFILE
from tests.unit.worker_harness import js, quarter_hours_ago, reading, worker_under_test

pytestmark = pytest.mark.timeout(60)


def block(cid: str, first_end: datetime, kwh: list[Any], **extra: Any) -> dict[str, Any]:
    """A block of 15-minute intervals whose first interval ends at ``first_end``."""
    return {
        "meter_id": f"M-{cid}",
        "customer_id": cid,
        "start": (first_end - timedelta(minutes=15)).isoformat(),
        "interval_s": 900,
        "kwh": kwh,
        "kvarh": [None if v is None or isinstance(v, str) else abs(v) * 0.4 for v in kwh],
        **extra,
    }


def as_singles(value: dict[str, Any]) -> list[dict[str, Any]]:
    if "start" not in value:
        return [value]
    start = datetime.fromisoformat(value["start"])
    out = []
    for i, kwh in enumerate(value["kwh"]):
        if kwh is None:
            continue
        r = {
            "meter_id": value["meter_id"],
            "customer_id": value["customer_id"],
            "ts": (start + timedelta(seconds=900 * (i + 1))).isoformat(),
            "interval_s": 900,
            "kwh": kwh,
        }
        if value["kvarh"][i] is not None:
            r["kvarh"] = value["kvarh"][i]
        out.append(r)
    return out


async def run(tmp_path: Path, batches: list[list[dict[str, Any]]], **settings: Any) -> dict[str, Any]:
    """Each batch put at once through a fresh worker (c1 has a 100 kVA profile): what came out."""
    async with worker_under_test(tmp_path, **settings) as w:
        async with w.agent("customers").test_context() as customers:
            await w.put(customers, b"c1", js(PROFILE | {"contract_kva": 100.0}))
        async with w.agent("readings").test_context() as ctx:
            for batch in batches:
                await w.put_many(ctx, [(v["customer_id"].encode(), js(v)) for v in batch])
        latest = {doc["customer_id"]: doc for doc in w.stats()}
        return {
            "dead": w.dead_letters(METER_READINGS),
            "latest": latest,
            "state": {cid: w.rt.load_table[cid.encode()] for cid in latest},
            "writes": Counter(s.key for s in w.changelog(w.rt.load_table)),
            "batches": w.rt.counters["readings_batches"],
            "applied": w.rt.counters["readings_applied"],
            "duplicate": w.rt.counters["readings_duplicate"],
        }


def comparable(doc: dict[str, Any]) -> dict[str, Any]:
    """A stats document without what depends on the instant it was computed at."""
    return {k: v for k, v in doc.items() if k not in ("arrears", "gaps")}


async def test_singles_and_blocks_in_one_batch_give_one_write_and_the_singles_statistics(
    tmp_path: Path,
) -> None:
    singles_c1 = [reading("c1", quarter_hours_ago(n), 0.5 + n / 10) for n in range(24, 20, -1)]
    curve = [round(0.2 + 0.03 * k, 2) for k in range(20)]
    curve[7] = None  # not read
    blocks = [
        block("c1", quarter_hours_ago(20), curve),  # the next 20 quarter hours of c1
        block("c2", quarter_hours_ago(12), [1.0] * 12),
    ]
    late_single = reading("c1", quarter_hours_ago(10), 2.0)  # inside c1's block: a duplicate
    batch = [*singles_c1, blocks[0], blocks[1], late_single]
    got = await run(tmp_path / "blocks", [batch])
    flat = [s for v in batch for s in as_singles(v)]
    want = await run(tmp_path / "singles", [flat])

    assert got["dead"] == want["dead"] == []
    assert got["state"] == want["state"]  # the same state record, byte for byte
    assert {c: comparable(d) for c, d in got["latest"].items()} == {
        c: comparable(d) for c, d in want["latest"].items()
    }
    assert got["applied"] == want["applied"] == 4 + 19 + 12 and got["duplicate"] == 1
    # one state write per customer and batch, however many singles and blocks
    assert got["writes"][b"c1"] == got["batches"] and got["writes"][b"c2"] == got["batches"]
    assert got["latest"]["c1"]["d30"]["intervals"] == 23


async def test_bad_intervals_go_to_the_dlq_with_their_index_as_the_singles_would(tmp_path: Path) -> None:
    newest = reading("c1", quarter_hours_ago(1), 1.0)
    kwh: list[Any] = [1.0] * 12
    kwh[2] = -1.0  # negative_energy
    kwh[5] = "x"  # schema
    kwh[6] = 50.0  # 200 kW > 100 kVA x 1.5: impossible_demand
    # the block's first intervals are more than the lateness (1 h) behind the newest reading
    old_block = block("c1", quarter_hours_ago(12), kwh)
    # from the current quarter hour on: ends more than 300 s ahead (future_timestamp) from the
    # interval after the current one, whenever the test runs
    future = block("c1", quarter_hours_ago(-1), [1.0] * 4)
    redelivered = block("c1", quarter_hours_ago(3), [0.7, 0.7])
    batches = [[newest], [old_block, future, redelivered, redelivered]]
    got = await run(tmp_path / "blocks", batches, lateness_s=3600)
    want = await run(
        tmp_path / "singles", [[s for v in b for s in as_singles(v)] for b in batches], lateness_s=3600
    )

    def key(d: dict[str, Any]) -> tuple[str, str]:  # the seconds ahead differ between two runs
        return d["error"], re.sub(r"is [0-9.]+ s in the future", "is N s in the future", d["detail"])

    assert sorted(map(key, got["dead"])) == sorted(map(key, want["dead"]))
    assert got["state"] == want["state"]
    by_index = {(base64.b64decode(d["raw"]), d["interval_index"]): d["error"] for d in got["dead"]}
    raw = js(old_block)
    assert by_index[(raw, 2)] == "negative_energy" and by_index[(raw, 5)] == "schema"
    assert by_index[(raw, 6)] == "impossible_demand"
    late = sorted(i for (r, i), kind in by_index.items() if r == raw and kind == "late")
    # ends 11..0 quarter hours before the newest reading's (1 ago): older than 1 h is late
    assert late == [0, 1, 3, 4]  # (2 is negative_energy before the state sees it)
    assert [i for (r, i), k in by_index.items() if r == js(future) and k == "future_timestamp"][-3:] == [
        1,
        2,
        3,
    ]
    for d in got["dead"]:
        DeadLetter.model_validate(d)
        assert d["interval_index"] is not None and base64.b64decode(d["key"]) == b"c1"
    assert all(d["interval_index"] is None for d in want["dead"])
    assert got["duplicate"] == want["duplicate"] == 1 + 2 + 2  # newest again, the redelivered twice


async def test_a_bad_block_is_dead_lettered_whole(tmp_path: Path) -> None:
    too_long = block("c1", quarter_hours_ago(3000), [0.1] * 2977)
    unequal = block("c1", quarter_hours_ago(4), [0.1] * 4) | {"kvarh": [0.1] * 3}
    other_key = block("c2", quarter_hours_ago(4), [0.1] * 4)
    async with worker_under_test(tmp_path) as w:
        async with w.agent("readings").test_context() as ctx:
            await w.put_many(ctx, [(b"c1", js(too_long)), (b"c1", js(unequal)), (b"c1", js(other_key))])
        dead = w.dead_letters(METER_READINGS)
        assert [(d["error"], d["interval_index"]) for d in dead] == [
            ("schema", None),
            ("schema", None),
            ("key_mismatch", None),
        ]
        assert "2976" in dead[0]["detail"] and w.rt.counters["readings_applied"] == 0


async def test_a_state_that_cannot_be_read_sends_the_customers_block_whole_to_the_dlq(tmp_path: Path) -> None:
    async with worker_under_test(tmp_path) as w:
        async with w.agent("readings").test_context() as ctx:
            await w.put(ctx, b"c1", js(reading("c1", quarter_hours_ago(9), 1.0)))
            w.rt.load_table.data[b"c1"] = w.rt.load_table[b"c1"][:7]  # a truncated record in the store
            c1 = js(block("c1", quarter_hours_ago(8), [0.5] * 8))
            await w.put_many(ctx, [(b"c1", c1), (b"c2", js(block("c2", quarter_hours_ago(8), [0.5] * 8)))])

        (dead,) = w.dead_letters(METER_READINGS)
        assert dead["error"] == "processing_failed" and dead["interval_index"] is None
        assert base64.b64decode(dead["raw"]) == c1  # the whole block: nothing of it was applied
        assert w.stats()[-1]["customer_id"] == "c2" and w.stats()[-1]["d30"]["intervals"] == 8
        assert w.rt.counters["processing_failed"] == 1
