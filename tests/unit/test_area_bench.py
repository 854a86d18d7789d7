"""bench/area_bench.py's pure helpers: the overhead arithmetic, the summary meters the A/B sends,
the profiles without an area, the day an alert is attributed to and the days counted, and the
py-spy attribution."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import numpy as np
import orjson
import pytest

from bench.area_bench import (
    Trace,
    cost_parts,
    days_to_alert,
    overhead_pct,
    summarize,
    summary_blocks,
    summary_curves,
    summary_singles,
    trigger_index,
    without_area,
)
from bench.blocks import DailyCurves

TZ = ZoneInfo("Asia/Shanghai")


def test_overhead_pct() -> None:
    assert overhead_pct(11.0, 10.0) == pytest.approx(10.0)
    assert overhead_pct(9.5, 10.0) == pytest.approx(-5.0)
    assert overhead_pct(10.0, 10.0) == 0.0
    with pytest.raises(ValueError):
        overhead_pct(1.0, 0.0)


def _trace(n: int, n_first: int, cpu_s: float) -> Trace:
    return Trace(
        t0=0.0,
        n=n,
        n_first=n_first,
        t_first=1.0,
        t_applied=3.0,
        t_area=4.0,
        t_end=5.0,
        cpu_s=cpu_s,
        counters={},
    )


def test_summarize_rates_cpu_and_the_change() -> None:
    r: dict[str, object] = {}
    # off: 2,000 readings over 2 s = 1,000/s, 1 s of CPU for 4,000 readings = 250 us each
    # on: 1,500 readings over 2 s = 750/s (-25 %), 1.5 s = 375 us each (+50 %)
    summarize(r, "k", {"off": [_trace(4000, 2000, 1.0)], "on": [_trace(4000, 2500, 1.5)]})
    assert r["k_off_rps"] == 1000 and r["k_pipeline_rps"] == 750
    assert r["k_off_cpu_us_per_reading"] == 250.0 and r["k_on_cpu_us_per_reading"] == 375.0
    assert r["k_stage_overhead_pct"] == 50.0 and r["k_rps_change_pct"] == -25.0


def test_summarize_a_run_too_small_for_a_rate_has_no_rate_change() -> None:
    # every reading applied within the first poll: no rate (was a ZeroDivisionError)
    r: dict[str, object] = {}
    summarize(r, "k", {"off": [_trace(4000, 4000, 1.0)], "on": [_trace(4000, 4000, 1.5)]})
    assert r["k_off_rps"] == 0 and r["k_rps_change_pct"] is None
    assert r["k_stage_overhead_pct"] == 50.0


def test_without_area_drops_only_the_area() -> None:
    profiles = [
        (b"C1", orjson.dumps({"customer_id": "C1", "transformer_area": "TA1", "tariff_class": "commercial"})),
        (b"C2", orjson.dumps({"customer_id": "C2", "tariff_class": "residential"})),
    ]
    out = without_area(profiles)
    assert [k for k, _ in out] == [b"C1", b"C2"]
    assert [orjson.loads(v) for _, v in out] == [
        {"customer_id": "C1", "tariff_class": "commercial"},
        {"customer_id": "C2", "tariff_class": "residential"},
    ]


def test_summary_curves_sum_the_members_with_the_loss() -> None:
    kwh = np.array([[1.0, 2.0], [3.0, 4.0], [10.0, 20.0]])
    areas, sums = summary_curves(kwh, ["TB", "TA", "TB"], np.array([0.5, 0.1]))
    assert areas == ["TA", "TB"]
    np.testing.assert_allclose(sums, [[4.5, 6.0], [12.1, 24.2]])


def test_summary_blocks_cover_every_area_of_the_population() -> None:
    start = int(datetime(2026, 3, 1, tzinfo=TZ).timestamp())
    curves = DailyCurves(300, start, TZ)
    blocks = summary_blocks(curves)
    docs = [orjson.loads(v) for _, v in blocks]
    areas = sorted(set(curves.pop.transformer_areas))
    assert [d["transformer_area"] for d in docs] == areas
    assert [k.decode() for k, _ in blocks] == areas
    members = np.zeros(96)
    first = areas[0]
    for i, a in enumerate(curves.pop.transformer_areas):
        if a == first:
            members += curves.kwh[i] / 1e4
    ratio = np.array(docs[0]["kwh"]) / members
    assert ratio.min() >= 1.02 - 1e-6 and ratio.max() <= 1.05 + 1e-6  # a technical loss of 2-5 %
    assert np.ptp(ratio) < 1e-3  # one loss for the day
    assert docs[0]["start"] == datetime.fromtimestamp(start, TZ).isoformat()
    assert all(len(d["kwh"]) == 96 and d["meter_id"] == f"SUM-{d['transformer_area']}" for d in docs)


def test_summary_singles_one_reading_per_area_and_interval() -> None:
    def reading(cid: str, ts: str, kwh: float) -> tuple[bytes, bytes]:
        return cid.encode(), orjson.dumps({"customer_id": cid, "meter_id": f"M{cid}", "ts": ts, "kwh": kwh})

    t1, t2 = "2026-03-01T00:15:00+08:00", "2026-03-01T00:30:00+08:00"
    readings = [
        reading("C1", t1, 1.0),
        reading("C2", t1, 2.0),
        reading("C3", t1, 5.0),
        reading("C1", t2, 4.0),
    ]
    out = [orjson.loads(v) for _, v in summary_singles(readings, {"C1": "TA", "C2": "TA", "C3": "TB"})]
    assert [(d["ts"], d["transformer_area"]) for d in out] == [(t1, "TA"), (t1, "TB"), (t2, "TA")]
    loss_a = out[0]["kwh"] / 3.0
    assert 1.02 <= loss_a <= 1.05
    assert out[2]["kwh"] == pytest.approx(4.0 * loss_a, abs=1e-3)


def test_trigger_index_is_the_last_day_published_before_the_alert() -> None:
    published = [100.0, 200.0, 300.0]
    assert trigger_index(published, 99.0) is None
    assert trigger_index(published, 100.0) == 0
    assert trigger_index(published, 250.0) == 1
    assert trigger_index(published, 1000.0) == 2


def test_days_to_alert_counts_the_theft_day_as_one() -> None:
    days = ["2026-11-20", "2026-11-21", "2026-11-22", "2026-11-23"]
    assert days_to_alert(days, "2026-11-21", "2026-11-21") == 1
    assert days_to_alert(days, "2026-11-21", "2026-11-23") == 3
    with pytest.raises(ValueError):
        days_to_alert(days, "2026-11-22", "2026-11-21")


def test_cost_parts_attributes_the_loops_busy_samples() -> None:
    main = "_run_module_as_main (<frozen runpy>:198);_cmd_worker (gridpulse/cli.py:55)"
    collapsed = "\n".join(
        [
            f"{main};run (streams/agents/areas.py:1);_apply (streams/agents/areas.py:2);"
            "apply_customer (inspection/area.py:3) 30",
            f"{main};run (streams/agents/areas.py:1);to_bytes (inspection/area.py:4) 10",
            f"{main};run (streams/agents/areas.py:1);stats_document (inspection/area.py:5) 10",
            f"{main};tick (streams/agents/areas.py:6);evaluate (streams/agents/areas.py:7);"
            "rank_area (inspection/suspects.py:8) 5",
            f"{main};energy_batch (streams/agents/areas.py:9);loads (orjson) 5",
            f"{main};process (streams/agents/readings.py:1);energy_of (streams/agents/readings.py:2) 5",
            f"{main};process (streams/agents/readings.py:1);route_energy (streams/agents/readings.py:3);"
            "batch_energy_messages (streams/agents/areas.py:4) 5",
            f"{main};process (streams/agents/readings.py:1);apply_block (metering/load.py:3) 30",
            "not a sample line",
            f"{main};Worker.execute_from_commandline (mode/worker.py:264) 50",  # waiting: left out
            "Thread.run (threading.py:982);stats_document (inspection/area.py:5) 40",  # not the loop
        ]
    )
    parts = cost_parts(collapsed)
    assert sum(parts.values()) == pytest.approx(1.0)
    assert parts["area: AreaState apply (members' intervals, summary meter)"] == 0.3
    assert parts["area: state record (AreaState/Area to_bytes, from_bytes)"] == 0.1
    assert parts["area: stats_document"] == 0.1
    assert parts["area: evaluate (customer days, rules, suspects, the explain snapshot)"] == 0.05
    assert parts["area: the agents' rest (decode, table, Redis, stats.area)"] == 0.05
    assert parts["readings agent: energy for the areas"] == 0.1
    assert parts["pipeline (everything else)"] == 0.3
    assert cost_parts("") == {}
