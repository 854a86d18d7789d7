"""`make bench`'s Quix Streams peer (bench/quix_peer.py) computes what gridpulse computes, so
that its rate is compared apples to apples: on the real broker, a few customers' readings over
two local days (several meters per customer, meters without a reactive register, metered
demand, a duplicate and a reading for the previous day) go through the peer, and each customer's
final daily load factor and power factor on its output topic must equal an independent numpy
computation and gridpulse's own `LoadState` day window."""

from __future__ import annotations

import importlib.util
import math
import os
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np
import orjson
import pytest

from gridpulse.settings import Settings
from metering.load import LoadState
from schemas import topics as contract
from streams.kafka import read_all
from tests.environment import in_ci
from tests.integration.helpers import js, produce

pytestmark = pytest.mark.integration

TZ = ZoneInfo("Asia/Shanghai")
INTERVAL_S = 900


def _require_quix() -> None:
    if importlib.util.find_spec("quixstreams") is None:
        msg = "quixstreams is not installed (the `bench` extra: make setup)"
        if in_ci():
            pytest.fail(msg)
        pytest.skip(msg)


def readings() -> list[dict[str, Any]]:
    """Two days of 15-minute readings from local 20:00 on, in time order across customers:
    QA one meter with kvarh; QB two meters (the second missing every third interval) with
    kvarh and kvarh_export; QC one meter, a reactive register on half the intervals and metered
    demand on every fourth. Then a duplicate of QA's last reading and a reading of QA for the
    previous local day (both change nothing in the day window)."""
    rng = np.random.default_rng(7)

    def u(lo: float, hi: float) -> float:
        return float(rng.uniform(lo, hi))

    first_end = datetime(2026, 3, 1, 20, 0, tzinfo=TZ) + timedelta(seconds=INTERVAL_S)
    out: list[dict[str, Any]] = []
    for k in range(2 * 96):
        ts = (first_end + timedelta(seconds=k * INTERVAL_S)).isoformat()
        base = {"ts": ts, "interval_s": INTERVAL_S, "quality": []}
        q, b1, b2, c = (u(0.1, 9.0) for _ in range(4))
        out.append({**base, "customer_id": "QA", "meter_id": "QA-1", "kwh": q, "kvarh": q * u(0, 1)})
        out.append(
            {
                **base,
                "customer_id": "QB",
                "meter_id": "QB-1",
                "kwh": b1,
                "kvarh": u(0, 3),
                "kvarh_export": u(0, 1),
            }
        )
        if k % 3:
            out.append(
                {
                    **base,
                    "customer_id": "QB",
                    "meter_id": "QB-2",
                    "kwh": b2,
                    "kvarh": u(0, 3),
                    "kvarh_export": None,
                }
            )
        r = {**base, "customer_id": "QC", "meter_id": "QC-1", "kwh": c}
        if k % 2:
            r["kvarh"] = u(0, 4)
        if k % 4 == 0:
            r["demand_kw"] = c * 4 * u(1.0, 1.6)
        out.append(r)
    last_qa = next(r for r in reversed(out) if r["customer_id"] == "QA")
    out.append(dict(last_qa, kwh=99.0))  # the same (meter, interval) again: a duplicate
    yesterday = datetime.fromisoformat(last_qa["ts"]) - timedelta(days=1, minutes=15)
    out.append(dict(last_qa, ts=yesterday.isoformat(), meter_id="QA-2", kwh=55.0))
    return out


def reference_day(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """The newest local day of one customer's readings, computed with numpy."""
    start = np.array([datetime.fromisoformat(r["ts"]).timestamp() - r["interval_s"] for r in rows])
    day = np.array([datetime.fromtimestamp(s, TZ).date() for s in start])
    keep = day == day[np.argmax(start)]
    seen: set[tuple[str, float]] = set()
    for i, r in enumerate(rows):  # the first of a (meter, interval start) counts
        key = (r["meter_id"], float(start[i]))
        keep[i] &= key not in seen
        seen.add(key)
    sel = [r for r, k in zip(rows, keep, strict=True) if k]
    kwh = np.array([r["kwh"] for r in sel])
    has_q = np.array([r.get("kvarh") is not None or r.get("kvarh_export") is not None for r in sel])
    kvarh = np.array([abs(r.get("kvarh") or 0.0) + abs(r.get("kvarh_export") or 0.0) for r in sel])
    kw = np.array(
        [r["demand_kw"] if r.get("demand_kw") is not None else r["kwh"] * 3600 / r["interval_s"] for r in sel]
    )
    starts, slot = np.unique(start[keep], return_inverse=True)
    coincident = np.bincount(slot, weights=kw)
    hours = len(starts) * INTERVAL_S / 3600
    avg_kw = kwh.sum() / hours
    p, q = kwh[has_q].sum(), kvarh.sum()
    return {
        "date": day[np.argmax(start)].isoformat(),
        "kwh": kwh.sum(),
        "kvarh": q,
        "max_kw": coincident.max(),
        "hours": hours,
        "load_factor": avg_kw / coincident.max(),
        "power_factor": p / math.sqrt(p * p + q * q) if p or q else None,
        "intervals": len(sel),
    }


async def test_quix_peer_daily_lf_and_pf_match_reference(
    topics: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _require_quix()
    from bench.quix_peer import OUTPUT_TOPIC, delete_peer_topics, run_peer

    if "libfaketime" in os.environ.get("LD_PRELOAD", ""):
        # Under scripts/at_clock.sh the peer runs on the real clock (it reads none: its figures
        # come from the readings' ts): librdkafka's timed waits hang under Debian 12's libfaketime
        # 0.9.10, which moves a monotonic condition variable's deadline by the realtime offset
        # (wolfcw/libfaketime a2e406c, 2025). This test process keeps the fake clock.
        monkeypatch.delenv("LD_PRELOAD")

    rows = readings()
    await produce(topics, contract.METER_READINGS, [(r["customer_id"].encode(), js(r)) for r in rows])
    group, output = f"{topics.app_id}-quix", topics.topic(OUTPUT_TOPIC)
    try:
        rate = await run_peer(topics, len(rows), tmp_path, group=group, output_topic=output, timeout_s=240)
        assert rate > 0
        records = await read_all(topics, output)
    finally:
        await delete_peer_topics(topics, group, output)

    assert len(records) == len(rows)  # an update per reading
    final: dict[str, dict[str, Any]] = {}
    for rec in records:  # a customer's updates share a partition: the last read is the last made
        assert rec.key is not None and rec.value is not None
        final[rec.key.decode()] = orjson.loads(rec.value)
    assert sorted(final) == ["QA", "QB", "QC"]

    for customer, got in final.items():
        mine = [r for r in rows if r["customer_id"] == customer]
        want = reference_day(mine)
        day = got["day"]
        assert got["customer_id"] == customer
        assert day["date"] == want["date"] == "2026-03-03"
        assert day["intervals"] == want["intervals"]
        for field in ("kwh", "kvarh", "max_kw", "hours", "load_factor", "power_factor"):
            assert day[field] == pytest.approx(want[field], rel=1e-9), (customer, field)
        assert 0 < day["load_factor"] < 1 and 0 < day["power_factor"] < 1

        # ... and what the gridpulse worker's state gives for the same readings
        state = LoadState(tz=TZ)
        state.apply([dict(r, ts=datetime.fromisoformat(r["ts"])) for r in mine])
        ours = state.snapshot()["day"]
        for field in ("kwh", "kvarh", "max_kw", "hours", "load_factor", "power_factor", "intervals"):
            assert day[field] == pytest.approx(ours[field], rel=1e-12), (customer, field, "LoadState")
