"""The block scenario's data: the bench's population as daily curves, in the block form of
``meter.readings`` (docs/CONTRACT.md / ../shared/CONTRACT.md "Block form"), and the bench's own
reading of a block for the peers.

`daily_curves` draws one local day of 96 quarter hours per customer from the simulator's load
model (`simulator.load.LoadModel`, vectorised over customers one interval at a time) for the
same population as the single-reading scenario (`simulator.population.make_population` with the
same seed: the same customer ids, meters and profiles), and yields one block per meter, customer
after customer, as a collection run delivers the acquisition system's curves after midnight. The
values are rounded as the simulator rounds single readings (kWh and kvarh to 4 decimals, demand
to 3), a meter's ``kvarh`` / ``kvarh_export`` / ``demand_kw`` lists are null when it has no such
register (the single readings carry null fields then) and ``quality`` has the single readings'
codes (estimated, power_fail). No interval is missing, late or duplicated: the benchmark measures
throughput; ``gridpulse simulate --blocks`` (simulator/blocks.py) sends the messy collection run,
and the agent and fault tests cover it. (simulator.blocks.day_curves holds every step as float64
arrays, ~5 GB at 1,000,000 meters; this keeps int32, ~2 GB.)

`checked_block` is how the bench's peers (the naive Faust agent, the Quix-core peer) read a
block: as the pipeline's readings agent does (``schemas.blocks.decode_reading``, the intervals'
issues and ``schemas.validation.check_block``), then `CheckedBlock.apply` applies the valid
intervals in one ``LoadState.apply_block`` call. `as_blocks` turns single readings into blocks
(the tests compare both forms).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np
import orjson

from metering.load import DEFAULT_INTERVAL_S, ApplyResult, LoadState
from schemas.blocks import ReadingBlock, decode_reading
from schemas.codec import DecodeError
from schemas.validation import check_block
from simulator.clock import INTERVAL_S
from simulator.load import LoadModel
from simulator.population import make_population

Pairs = list[tuple[bytes, bytes]]
INTERVALS_PER_DAY = 96
_NULL = np.iinfo(np.int32).min  # "no register" in the scaled integer arrays


def day_start(days_ago: int, tz: ZoneInfo, now: datetime) -> int:
    """Epoch seconds of the local midnight ``days_ago`` days before ``now``'s local day."""
    day = now.astimezone(tz).date() - timedelta(days=days_ago)
    return int(datetime(day.year, day.month, day.day, tzinfo=tz).timestamp())


class DailyCurves:
    """One local day of quarter hours for ``customers`` customers (seed as `bench.run.population`).

    The values are kept as int32 in units of 1e-4 kWh / kvarh and 1e-3 kW (4 bytes a value, so
    1,000,000 meters' day is ~1.6 GB with the quality flags, not 3); ``/ 1e4`` gives back exactly the double
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
        self.flags = np.empty(shape, np.uint8)  # 1: power_fail, 2: estimated
        for k in range(INTERVALS_PER_DAY):
            r = model.step(start + k * INTERVAL_S)
            self.kwh[:, k] = _scaled(r.kwh, 4)
            self.kvarh[:, k] = _scaled(r.kvarh, 4)
            self.export[:, k] = _scaled(r.kvarh_export, 4)
            self.demand[:, k] = _scaled(r.demand_kw, 3)
            self.flags[:, k] = r.power_fail.astype(np.uint8) | (r.estimated.astype(np.uint8) << 1)

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
                "quality": _quality(self.flags[i]),
            }
            yield cid.encode(), orjson.dumps(value)


def _scaled(values: np.ndarray, decimals: int) -> np.ndarray:
    out = np.rint(values * 10**decimals)
    return np.where(np.isnan(out), _NULL, out).astype(np.int32)


_CODES: list[list[str] | None] = [None, ["power_fail"], ["estimated"], ["power_fail", "estimated"]]


def _quality(flags: np.ndarray) -> list[list[str] | None] | None:
    """The head-end's codes per interval, as the single readings carry them; None without any."""
    if not flags.any():
        return None
    return [_CODES[f] for f in flags.tolist()]


def _column(row: np.ndarray, scale: float) -> list[float | None] | None:
    if row[0] == _NULL:  # a register is the meter's: absent on every interval or none
        return None
    return (row / scale).tolist()


# ---------------------------------------------------------------------- the peers' reading


class BlockError(ValueError):
    """A message the peers cannot use as a block (they skip it and count ``kind``)."""

    def __init__(self, kind: str) -> None:
        super().__init__(kind)
        self.kind = kind


@dataclass(slots=True)
class CheckedBlock:
    """A decoded block, the intervals to apply (readable and valid) and the kinds of the others."""

    block: ReadingBlock
    indices: list[int]
    issues: list[str]

    @property
    def customer_id(self) -> str:
        return self.block.customer_id

    @property
    def readings(self) -> int:
        """The intervals read (valid or not): what the rate counts."""
        return len(self.indices) + len(self.issues)

    def apply(self, load: LoadState) -> ApplyResult:
        b = self.block
        return load.apply_block(
            b.meter_id, b.start_s, b.interval_s, b.kwh, b.kvarh, b.kvarh_export, b.demand_kw, self.indices
        )


def checked_block(
    key: bytes | None, value: bytes | None, *, now: datetime, future_tolerance_s: int
) -> CheckedBlock:
    """A block message as the pipeline's readings agent reads one (streams/agents/readings.py):
    ``schemas.blocks.decode_reading`` (one pass, key checked), the intervals' own issues and
    ``schemas.validation.check_block`` (no profile: no demand check, as the peers know none).
    Raises `BlockError` for a message that is not a usable block."""
    try:
        block = decode_reading(key, value)
    except DecodeError as exc:
        raise BlockError(exc.kind) from None
    if not isinstance(block, ReadingBlock):
        raise BlockError("not_a_block")
    issues = {i: kind for i, (kind, _) in block.issues.items()}
    issues |= {
        i: issue.kind
        for i, issue in check_block(
            block, now=now, contract_kva=None, future_tolerance_s=future_tolerance_s
        ).items()
    }
    indices = [i for i in block.readable() if i not in issues]
    return CheckedBlock(block, indices, list(issues.values()))


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
        block = {
            "meter_id": meter,
            "customer_id": docs[0]["customer_id"],
            "start": datetime.fromtimestamp(first, tz).isoformat(),
            "interval_s": interval_s,
            **{f: (v if f == "kwh" or any(x is not None for x in v) else None) for f, v in lists.items()},
        }
        out.append((key, orjson.dumps(block)))
    return out
