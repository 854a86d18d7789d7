"""CPU µs per call of `LoadState.snapshot` and `metering.stats.stats_document` (and the record's
decode and encode beside them), on a bench-size and a production-size state.

    python -m bench.snapshot_bench [--calls 20000] [--repeat 5]

- bench: what `python -m bench.run --intervals 4` leaves per customer (4 readings of one meter,
  one local day);
- production: a customer after 26 months of consumption and then 35 days of 15-minute readings
  of one meter (bench.run's `full_state_bytes` state; every day and month row present).

``--parts`` adds the snapshot's main parts (private helpers of metering/load.py): the 24-hour
profile over the 30 days, the day/7-day/30-day totals, and the 26 months with year-over-year.

Each figure is the lowest of ``--repeat`` runs of ``--calls`` calls, in CPU time of this process
(`time.process_time`), so other load on the machine costs less than in wall time; still run it
under ``flock /tmp/gp/bench.lock`` beside other benchmarks.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np

from metering import load as load_module
from metering.load import D30_DAYS, PROJECTION_DAYS, LoadState
from metering.stats import NO_BILLING, stats_document

TZ = ZoneInfo("Asia/Shanghai")
INTERVAL_S = 900


def bench_state() -> LoadState:
    state = LoadState(tz=TZ)
    start = int(datetime(2026, 11, 28, 10, tzinfo=TZ).timestamp())
    for k in range(4):
        end = start + (k + 1) * INTERVAL_S
        state.apply([{"meter_id": "m1", "ts": end, "interval_s": INTERVAL_S, "kwh": 1.0 + k, "kvarh": 0.3}])
    return state


def production_state() -> LoadState:
    """The same construction as bench.run.full_state_bytes."""
    state = LoadState(tz=TZ)
    rng = np.random.default_rng(1)
    first = datetime(2024, 1, 15, tzinfo=TZ)
    for m in range(26):
        day = datetime(
            first.year + (first.month - 1 + m) // 12, (first.month - 1 + m) % 12 + 1, 15, tzinfo=TZ
        )
        state.apply([{"meter_id": "m1", "ts": int(day.timestamp()), "interval_s": INTERVAL_S, "kwh": 10.0}])
    start = int(datetime(2026, 1, 28, tzinfo=TZ).timestamp())
    for k in range(35 * 96):
        kwh, kvarh = (float(x) for x in rng.uniform(0, 5, 2))
        end = start + (k + 1) * INTERVAL_S
        state.apply([{"meter_id": "m1", "ts": end, "interval_s": INTERVAL_S, "kwh": kwh, "kvarh": kvarh}])
    return state


def cpu_us(fn: Callable[[], Any], calls: int, repeat: int) -> float:
    best = float("inf")
    for _ in range(repeat):
        t0 = time.process_time()
        for _ in range(calls):
            fn()
        best = min(best, time.process_time() - t0)
    return best / calls * 1e6


def parts(state: LoadState, calls: int, repeat: int) -> dict[str, float]:
    assert state.watermark is not None
    newest = state._cal.span_of(state.watermark)
    days, day = state._days, newest.ordinal

    def totals() -> Any:
        week = days.totals(day, PROJECTION_DAYS)
        return days.totals(day, 1), days.totals(day, D30_DAYS, week, PROJECTION_DAYS)

    def months() -> Any:
        monthly = state._monthly_kwh(newest.month)
        return load_module._yoy_rate(monthly), load_module._yoy_kwh(monthly)

    return {
        "hourly_us": cpu_us(lambda: days.hourly(day, D30_DAYS), calls, repeat),
        "day_week_d30_totals_us": cpu_us(totals, calls, repeat),
        "months_yoy_us": cpu_us(months, calls, repeat),
    }


def measure(state: LoadState, calls: int, repeat: int) -> dict[str, float]:
    raw = state.to_bytes()
    assert state.data_end is not None
    now_ts = state.data_end + 60
    now = datetime.fromtimestamp(now_ts, UTC)

    def snapshot() -> Any:
        return state.snapshot(now_ts, pf_standard=0.9, tariff_cny_per_kwh=0.6)

    def document() -> Any:
        return stats_document("c1", state, NO_BILLING, None, now, TZ, 7)

    return {
        "record_bytes": len(raw),
        "snapshot_us": cpu_us(snapshot, calls, repeat),
        "stats_document_us": cpu_us(document, calls, repeat),
        "from_bytes_us": cpu_us(lambda: LoadState.from_bytes(raw, TZ), calls, repeat),
        "to_bytes_us": cpu_us(state.to_bytes, calls, repeat),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--calls", type=int, default=20_000)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--parts", action="store_true", help="also time the snapshot's main parts")
    args = ap.parse_args()
    for name, state in (("bench", bench_state()), ("production", production_state())):
        figures = measure(state, args.calls, args.repeat)
        if args.parts:
            figures |= parts(state, args.calls, args.repeat)
        print(name, " ".join(f"{k}={v:.1f}" for k, v in figures.items()), flush=True)


if __name__ == "__main__":
    main()
