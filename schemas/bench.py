"""Micro-benchmark of the decode and encode paths: ``python -m schemas.bench``.

Prints µs per message for each way of turning a ``meter.readings`` value into a
``MeterReading``; ``schemas.codec.decode`` uses the fastest. Then a 96-interval daily curve as
one block against the same intervals as 96 single readings (µs per curve).
"""

from __future__ import annotations

import timeit
from collections.abc import Callable
from datetime import UTC, date, datetime

import orjson
from pydantic import TypeAdapter

from schemas.codec import decode, encode
from schemas.models import Arrears, D30Window, DayWindow, MonthWindow, OverdueBuckets, StatsCustomer, Window

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
        day=DayWindow(**window.model_dump(), date=date(2026, 3, 1)),
        d30=D30Window(**window.model_dump(), first_day=date(2026, 1, 31), last_day=date(2026, 3, 1)),
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
    results |= blocks(max(1, number // 100))
    for name, us in results.items():
        print(f"{name:36s} {us:6.2f} µs")
    return results


def blocks(number: int = 1000) -> dict[str, float]:
    """A 96-interval daily curve (kwh, kvarh, demand_kw) as one block against the same intervals
    as 96 single readings: decode, and decode plus validation (µs per curve)."""
    from datetime import timedelta

    from schemas.blocks import decode_reading
    from schemas.codec import decode_keyed
    from schemas.models import MeterReading
    from schemas.validation import check_block, check_reading

    start = datetime(2026, 3, 1, tzinfo=UTC)
    now = start + timedelta(days=2)
    kwh = [round(0.5 + (i % 7) / 10, 4) for i in range(96)]
    kvarh = [round(v * 0.3, 4) for v in kwh]
    demand = [round(v * 4.4, 3) for v in kwh]
    value = {
        "meter_id": "m-000123",
        "customer_id": "c-000123",
        "start": start.isoformat(),
        "interval_s": 900,
        "kwh": kwh,
        "kvarh": kvarh,
        "demand_kw": demand,
    }
    block = orjson.dumps(value)
    singles = [
        orjson.dumps(
            {
                "meter_id": "m-000123",
                "customer_id": "c-000123",
                "ts": (start + timedelta(seconds=900 * (i + 1))).isoformat(),
                "interval_s": 900,
                "kwh": kwh[i],
                "kvarh": kvarh[i],
                "demand_kw": demand[i],
            }
        )
        for i in range(96)
    ]
    key = b"c-000123"

    def block_checked() -> object:
        b = decode_reading(key, block)
        return check_block(b, now=now, contract_kva=500.0)  # type: ignore[arg-type]

    def singles_checked() -> object:
        return [
            check_reading(decode_keyed(MeterReading, key, raw), now=now, contract_kva=500.0)
            for raw in singles
        ]

    paths: dict[str, Callable[[], object]] = {
        "block of 96: decode_reading": lambda: decode_reading(key, block),
        "96 singles: decode_keyed": lambda: [decode_keyed(MeterReading, key, raw) for raw in singles],
        "block of 96: decode + check_block": block_checked,
        "96 singles: decode + check_reading": singles_checked,
    }
    return {name: _us(fn, number) for name, fn in paths.items()}


if __name__ == "__main__":
    main()
