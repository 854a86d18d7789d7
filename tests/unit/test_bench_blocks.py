"""The block scenario's data (bench/blocks.py) is the single-reading population in the other form:
the same customers, meters and values, interval by interval, as the head-end simulator sends them
one reading at a time; and a block read as the bench's peers read it gives the state of the same
readings applied one by one."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import orjson

from bench.blocks import DailyCurves, as_blocks, checked_block, day_start
from metering.load import LoadState
from simulator.run import SimulationOptions, generate

TZ = ZoneInfo("Asia/Shanghai")
NOW = datetime(2026, 3, 4, 9, 30, tzinfo=UTC)
CUSTOMERS = 40


def simulated_day(start: int) -> list[tuple[bytes, bytes]]:
    opts = SimulationOptions(
        customers=CUSTOMERS,
        days=1,
        start=datetime.fromtimestamp(start, UTC),
        bad_share=0.0,
        duplicate_share=0.0,
        late_share=0.0,
        consumption_history_months=0,
        billing=False,
        outages=False,
        seed=3,
        tz=TZ,
    )
    return [(m.key, m.value) for m in generate(opts) if m.topic == "meter.readings"]


def test_daily_curves_are_the_simulators_readings_as_blocks() -> None:
    start = day_start(2, TZ, NOW)
    assert datetime.fromtimestamp(start, TZ).isoformat() == "2026-03-02T00:00:00+08:00"
    curves = DailyCurves(CUSTOMERS, start, TZ)
    readings = simulated_day(start)
    assert len(readings) == curves.readings == CUSTOMERS * 96

    blocks = list(curves.blocks())
    want = {orjson.loads(v)["meter_id"]: orjson.loads(v) for _, v in as_blocks(readings, TZ)}
    assert len(blocks) == len(want) == CUSTOMERS
    some_reactive = some_quality = False
    for key, value in blocks:
        got = orjson.loads(value)
        assert key == got["customer_id"].encode()
        w = want[got["meter_id"]]
        for field in ("customer_id", "start", "interval_s", "kwh", "kvarh", "kvarh_export", "demand_kw"):
            assert got[field] == w[field], (got["meter_id"], field)
        some_reactive |= got["kvarh"] is not None
        some_quality |= got["quality"] is not None
    assert some_reactive and some_quality  # the data exercises both


def test_a_block_read_by_the_peers_gives_the_state_of_its_readings() -> None:
    start = day_start(2, TZ, NOW)
    readings = simulated_day(start)
    key, value = next(iter(DailyCurves(CUSTOMERS, start, TZ).blocks()))
    block = checked_block(key, value, now=NOW, future_tolerance_s=300)
    assert block.readings == 96 and block.indices == list(range(96)) and block.issues == []

    by_block = LoadState(tz=TZ)
    assert block.apply(by_block).statuses == ["applied"] * 96
    one_by_one = LoadState(tz=TZ)
    mine = [orjson.loads(v) for k, v in readings if k == key]
    for r in mine:
        one_by_one.apply([r | {"ts": datetime.fromisoformat(r["ts"])}])
    assert by_block.to_bytes() == one_by_one.to_bytes()
