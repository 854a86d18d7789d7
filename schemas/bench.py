"""Micro-benchmark of the decode and encode paths: ``python -m schemas.bench``.

Prints µs per message for each way of turning a ``meter.readings`` value into a
``MeterReading``; ``schemas.codec.decode`` uses the fastest.
"""

from __future__ import annotations

import timeit
from collections.abc import Callable
from datetime import UTC, datetime

import orjson
from pydantic import TypeAdapter

from schemas.codec import decode, encode
from schemas.models import Arrears, MonthWindow, OverdueBuckets, StatsCustomer, Window

READING = (
    b'{"meter_id":"m-000123","customer_id":"c-000123","ts":"2026-03-01T10:15:00+08:00",'
    b'"interval_s":900,"kwh":12.5,"kvarh":3.25,"kvarh_export":null,"demand_kw":51.2,"quality":[]}'
)


def _us(fn: Callable[[], object], number: int) -> float:
    return min(timeit.repeat(fn, number=number, repeat=5)) / number * 1e6


def main(number: int = 100_000) -> dict[str, float]:
    from schemas.models import MeterReading

    adapter = TypeAdapter(MeterReading)
    window = Window(kwh=1, kvarh=0.5, avg_kw=0.1, max_kw=0.3, load_factor=0.33, power_factor=0.89)
    stats = StatsCustomer(
        customer_id="c1",
        ts=datetime(2026, 3, 1, tzinfo=UTC),
        day=window,
        d30=window,
        month=MonthWindow(**window.model_dump(), period="2026-03", pf_standard=0.9, pf_adjustment_pct=0.0),
        arrears=Arrears(
            outstanding=0,
            oldest_overdue_days=0,
            overdue_buckets=OverdueBuckets(),
            late_fees_12m=0,
            reversals_12m=0,
            paid_36m=0,
            due_36m=0,
        ),
    )
    paths: dict[str, Callable[[], object]] = {
        "decode (validator.validate_json)": lambda: decode(MeterReading, READING),
        "model_validate_json": lambda: MeterReading.model_validate_json(READING),
        "TypeAdapter.validate_json": lambda: adapter.validate_json(READING),
        "orjson.loads + model_validate": lambda: MeterReading.model_validate(orjson.loads(READING)),
        "encode StatsCustomer (orjson)": lambda: encode(stats),
        "StatsCustomer.model_dump_json": lambda: stats.model_dump_json(by_alias=True),
    }
    results = {name: _us(fn, number) for name, fn in paths.items()}
    for name, us in results.items():
        print(f"{name:36s} {us:6.2f} µs")
    return results


if __name__ == "__main__":
    main()
