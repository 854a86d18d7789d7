"""The block scenario's data: the bench's population as daily curves, in the block form of
``meter.readings`` (docs/CONTRACT.md / ../shared/CONTRACT.md "Block form"), and the bench's own
reading of a block for the peers.

`daily_curves` draws one local day of 96 quarter hours per customer from the simulator's load
model (`simulator.load.LoadModel`, vectorised over customers one interval at a time) for the
same population as the single-reading scenario (`simulator.population.make_population` with the
same seed: the same customer ids, meters and profiles), and yields one block per meter, customer
after customer, as a collection run delivers the acquisition system's curves after midnight. The
values are rounded as the simulator rounds single readings (kWh and kvarh to 4 decimals, demand
to 3), and a meter's ``kvarh`` / ``kvarh_export`` / ``demand_kw`` lists are null when it has no
such register (the single readings carry null fields then). No interval is missing, late or
duplicated: the benchmark measures throughput, the fault and agent tests cover the rest.

`block_readings` is how the bench's peers (the naive Faust agent, the Quix peers) read a block:
orjson, the block's shape checked (key, equal list lengths, at most 2,976 intervals), one
`metering.load.Reading` per interval that was read (``ts`` = start + (i + 1) x interval_s).
The per-interval rules (negative energy, bad values) are `LoadState.apply`'s.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np
import orjson

from metering.load import DEFAULT_INTERVAL_S, Reading
from simulator.clock import INTERVAL_S
from simulator.load import LoadModel
from simulator.population import make_population

Pairs = list[tuple[bytes, bytes]]
INTERVALS_PER_DAY = 96
MAX_BLOCK_INTERVALS = 2976  # 31 days of quarter hours (the contract's limit)
_NULL = np.iinfo(np.int32).min  # "no register" in the scaled integer arrays


class BlockError(ValueError):
    """A value that is not a usable block (the peers skip it and count the reason)."""

    def __init__(self, kind: str) -> None:
        super().__init__(kind)
        self.kind = kind


def day_start(days_ago: int, tz: ZoneInfo, now: datetime) -> int:
    """Epoch seconds of the local midnight ``days_ago`` days before ``now``'s local day."""
    day = now.astimezone(tz).date() - timedelta(days=days_ago)
    return int(datetime(day.year, day.month, day.day, tzinfo=tz).timestamp())


class DailyCurves:
    """One local day of quarter hours for ``customers`` customers (seed as `bench.run.population`).

    The values are kept as int32 in units of 1e-4 kWh / kvarh and 1e-3 kW (4 bytes a value, so
    1,000,000 meters' day is ~1.5 GB, not 3); ``/ 1e4`` gives back exactly the double
    ``np.round(x, 4)`` gives, which is what the simulator sends.
    """

    def __init__(self, customers: int, start: int, tz: ZoneInfo, seed: int = 3) -> None:
        self.tz = tz
        self.start = start
        self.pop = make_population(customers, seed)
        model = LoadModel(self.pop, seed, tz, growth_ref=start)
        n = self.pop.n
        shape = (n, INTERVALS_PER_DAY)
        self.kwh = np.empty(shape, np.int32)
        self.kvarh = np.empty(shape, np.int32)
        self.export = np.empty(shape, np.int32)
        self.demand = np.empty(shape, np.int32)
        for k in range(INTERVALS_PER_DAY):
            r = model.step(start + k * INTERVAL_S)
            self.kwh[:, k] = _scaled(r.kwh, 4)
            self.kvarh[:, k] = _scaled(r.kvarh, 4)
            self.export[:, k] = _scaled(r.kvarh_export, 4)
            self.demand[:, k] = _scaled(r.demand_kw, 3)

    @property
    def readings(self) -> int:
        return self.kwh.size

    def profiles(self) -> Pairs:
        return [(p["customer_id"].encode(), orjson.dumps(p)) for p in self.pop.profiles]

    def blocks(self) -> Iterator[tuple[bytes, bytes]]:
        start = datetime.fromtimestamp(self.start, self.tz).isoformat()
        for i, cid in enumerate(self.pop.customer_ids):
            value = {
                "meter_id": self.pop.meter_id(i),
                "customer_id": cid,
                "start": start,
                "interval_s": INTERVAL_S,
                "kwh": (self.kwh[i] / 1e4).tolist(),
                "kvarh": _column(self.kvarh[i], 1e4),
                "kvarh_export": _column(self.export[i], 1e4),
                "demand_kw": _column(self.demand[i], 1e3),
                "quality": None,
            }
            yield cid.encode(), orjson.dumps(value)


def _scaled(values: np.ndarray, decimals: int) -> np.ndarray:
    out = np.rint(values * 10**decimals)
    return np.where(np.isnan(out), _NULL, out).astype(np.int32)


def _column(row: np.ndarray, scale: float) -> list[float | None] | None:
    if row[0] == _NULL:  # a register is the meter's: absent on every interval or none
        return None
    return (row / scale).tolist()


# ---------------------------------------------------------------------- the peers' reading


def _optional(doc: dict[str, Any], field: str, n: int) -> list[Any]:
    values = doc.get(field)
    if values is None:
        return [None] * n
    if type(values) is not list or len(values) != n:
        raise BlockError("bad_block")
    return values


def block_readings(key: bytes | None, value: bytes | None) -> tuple[str, list[Reading]]:
    """(customer_id, the block's intervals as readings); `BlockError` when it is not a block of
    this key's customer."""
    if value is None:
        raise BlockError("tombstone")
    try:
        doc = orjson.loads(value)
        cid, meter, kwh = doc["customer_id"], doc["meter_id"], doc["kwh"]
        start = round(datetime.fromisoformat(doc["start"]).timestamp())
    except (orjson.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
        raise BlockError("bad_block") from exc
    if key is None or key.decode(errors="replace") != cid:
        raise BlockError("key_mismatch")
    n = len(kwh) if type(kwh) is list else 0
    if not 0 < n <= MAX_BLOCK_INTERVALS:
        raise BlockError("bad_block")
    interval_s = doc.get("interval_s") or DEFAULT_INTERVAL_S
    kvarh = _optional(doc, "kvarh", n)
    export = _optional(doc, "kvarh_export", n)
    demand = _optional(doc, "demand_kw", n)
    out = [
        Reading(meter, start + (i + 1) * interval_s, kwh[i], interval_s, kvarh[i], export[i], demand[i])
        for i in range(n)
        if kwh[i] is not None
    ]
    return cid, out


def block_intervals(value: bytes) -> int:
    """The intervals read in a block (the ceiling's count: decode only)."""
    return sum(1 for k in orjson.loads(value)["kwh"] if k is not None)


def as_blocks(readings: Pairs, tz: ZoneInfo) -> Pairs:
    """Single readings (key, JSON value) as blocks: each meter's consecutive intervals of one
    local day in one block, in the order of each block's first reading. The same readings in
    the other form (the tests compare the two; a gap in a meter's day becomes null entries)."""
    groups: dict[tuple[bytes, str, Any], list[dict[str, Any]]] = {}
    for key, value in readings:
        doc = orjson.loads(value)
        interval_s = doc.get("interval_s") or DEFAULT_INTERVAL_S
        start = round(datetime.fromisoformat(doc["ts"]).timestamp()) - interval_s
        day = datetime.fromtimestamp(start, tz).date()
        groups.setdefault((key, doc["meter_id"], day), []).append(doc | {"_start": start})
    out: Pairs = []
    for (key, meter, _), docs in groups.items():
        interval_s = docs[0].get("interval_s") or DEFAULT_INTERVAL_S
        first = min(d["_start"] for d in docs)
        n = (max(d["_start"] for d in docs) - first) // interval_s + 1
        lists: dict[str, list[Any]] = {f: [None] * n for f in ("kwh", "kvarh", "kvarh_export", "demand_kw")}
        for d in docs:
            i = (d["_start"] - first) // interval_s
            for f, values in lists.items():
                values[i] = d.get(f)
        value = {
            "meter_id": meter,
            "customer_id": docs[0]["customer_id"],
            "start": datetime.fromtimestamp(first, tz).isoformat(),
            "interval_s": interval_s,
            **{f: (v if f == "kwh" or any(x is not None for x in v) else None) for f, v in lists.items()},
        }
        out.append((key, orjson.dumps(value)))
    return out
