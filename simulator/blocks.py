"""Daily load curves in the block form of ``meter.readings``, delivered as a collection run does.

The acquisition system reads every meter's 96-point curve of the local day after midnight
(IEC 61968-9 ``IntervalBlock``s; docs/CONTRACT.md, "Block form") and sends one block per meter
and day. What :func:`daily_blocks` adds to the curves of the load model (simulator/load.py, the
same numbers as the single readings of the same run):

- the run: meters are read in the first ``run_minutes`` after local midnight, in random order;
- some meters are read hours late (``late_share``, 1 h to ``max_late_h`` after the run);
- some days are partly missing: a run of intervals is null (not read) (``partial_share``);
- some blocks are retried: the same bytes delivered again a little later (``retry_share``);
- some are re-sent overlapping: the previous day's last ``overlap_h`` hours in front of the
  day's curve, with the previous day's values (nulls there filled in: the backfill of a re-read)
  (``overlap_share``).

Every day draws from its own generator seeded by (seed, day start), so a day's blocks do not
depend on where the run started. :func:`block_readings` expands a block into the single readings
it stands for (the input of tests/reference.py).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, NamedTuple
from zoneinfo import ZoneInfo

import numpy as np
import orjson

from simulator.clock import INTERVAL_S, rfc3339
from simulator.load import LoadModel


@dataclass(frozen=True)
class CollectionOptions:
    run_minutes: float = 90.0  # the collection run after local midnight
    late_share: float = 0.05  # meters read hours after the run
    max_late_h: float = 6.0  # at most (< 20 h: a day's blocks are out before the next run)
    partial_share: float = 0.03  # days with a run of intervals not read (nulls)
    retry_share: float = 0.02  # blocks delivered twice (the same bytes)
    overlap_share: float = 0.02  # blocks re-sent with the previous day's last hours in front
    overlap_h: int = 6

    def __post_init__(self) -> None:
        if not 0 < self.max_late_h < 20 or self.run_minutes > 120:
            raise ValueError("a day's collection must end hours before the next one starts")


class Block(NamedTuple):
    sent_at: int  # epoch s at which the head-end delivers it
    key: bytes
    value: bytes
    outcome: str  # valid, or duplicate (a retried block: every interval already counted)


@dataclass
class DayCurves:
    """Every customer's intervals of one local day: arrays [customer, interval], NaN = none
    (not read for kwh; no register for the others)."""

    start: int  # epoch of local midnight
    kwh: np.ndarray
    kvarh: np.ndarray
    kvarh_export: np.ndarray
    demand_kw: np.ndarray
    quality: list[list[list[str] | None]]  # [customer][interval]


def local_midnights(start: int, end: int, tz: ZoneInfo) -> list[int]:
    """The local midnights m with start <= m and the day [m, next midnight) ending by ``end``."""
    day = datetime.fromtimestamp(start, tz).date()
    out: list[int] = []
    while True:
        m = int(datetime(day.year, day.month, day.day, tzinfo=tz).timestamp())
        nxt = day + timedelta(days=1)
        m_next = int(datetime(nxt.year, nxt.month, nxt.day, tzinfo=tz).timestamp())
        if m_next > end:
            return out
        if m >= start:
            out.append(m)
        day = nxt


def day_curves(load: LoadModel, day_start: int, tz: ZoneInfo) -> DayCurves:
    """The load model's intervals of the local day starting at ``day_start`` (92, 96 or 100 of
    them), rounded as the single readings of the same run are."""
    nxt = datetime.fromtimestamp(day_start, tz).date() + timedelta(days=1)
    day_end = int(datetime(nxt.year, nxt.month, nxt.day, tzinfo=tz).timestamp())
    steps = [load.step(s) for s in range(day_start, day_end, INTERVAL_S)]
    kwh = np.round(np.stack([r.kwh for r in steps], axis=1), 4)
    quality: list[list[list[str] | None]] = [[None] * len(steps) for _ in range(kwh.shape[0])]
    for t, r in enumerate(steps):
        for i in np.flatnonzero(r.power_fail | r.estimated):
            codes = ["power_fail"] if r.power_fail[i] else []
            if r.estimated[i]:
                codes.append("estimated")
            quality[i][t] = codes
    return DayCurves(
        start=day_start,
        kwh=kwh,
        kvarh=np.round(np.stack([r.kvarh for r in steps], axis=1), 4),
        kvarh_export=np.round(np.stack([r.kvarh_export for r in steps], axis=1), 4),
        demand_kw=np.round(np.stack([r.demand_kw for r in steps], axis=1), 3),
        quality=quality,
    )


def _column(values: np.ndarray) -> list[float | None] | None:
    """A block's list: None entries for NaN; None for the whole list when every entry is."""
    if np.isnan(values).all():
        return None
    return [None if v != v else v for v in values.tolist()]


def _block_value(
    meter_id: str,
    customer_id: str,
    start: int,
    tz: ZoneInfo,
    columns: dict[str, np.ndarray],
    quality: Sequence[Any],
) -> dict[str, Any]:
    value: dict[str, Any] = {
        "meter_id": meter_id,
        "customer_id": customer_id,
        "start": rfc3339(start, tz),
        "interval_s": INTERVAL_S,
        "kwh": [None if v != v else v for v in columns["kwh"].tolist()],
    }
    for name in ("kvarh", "kvarh_export", "demand_kw"):
        column = _column(columns[name])
        if column is not None:
            value[name] = column
    if any(q is not None for q in quality):
        value["quality"] = list(quality)
    return value


def daily_blocks(
    curves: DayCurves,
    customer_ids: Sequence[str],
    meter_ids: Sequence[str],
    tz: ZoneInfo,
    seed: int,
    opts: CollectionOptions | None = None,
    previous: DayCurves | None = None,
) -> list[Block]:
    """One day's blocks of every customer (one meter each), in delivery order.

    ``curves``: the day's intervals (:func:`day_curves`); ``previous``: the day before, for the
    overlapping re-sends (none without it). The blocks are delivered after the day's end, in the
    collection run; all of them before the next day's run starts.
    """
    opts = opts or CollectionOptions()
    n, length = int(curves.kwh.shape[0]), int(curves.kwh.shape[1])
    day_end = curves.start + length * INTERVAL_S
    rng = np.random.default_rng([seed, 0xB10C, curves.start])
    delay: np.ndarray = rng.uniform(0, opts.run_minutes * 60, n)
    late: np.ndarray = rng.random(n) < opts.late_share
    delay = np.where(late, delay + rng.uniform(3600, opts.max_late_h * 3600, n), delay)
    partial: np.ndarray = rng.random(n) < opts.partial_share
    gap_start: np.ndarray = rng.integers(0, length, n)
    gap_len: np.ndarray = rng.integers(1, length // 2 + 1, n)
    retry: np.ndarray = rng.random(n) < opts.retry_share
    retry_after: np.ndarray = rng.uniform(60, 1800, n)
    overlap: np.ndarray = rng.random(n) < opts.overlap_share
    overlap_after: np.ndarray = rng.uniform(600, 3 * 3600, n)
    names = ("kwh", "kvarh", "kvarh_export", "demand_kw")
    tail = opts.overlap_h * 3600 // INTERVAL_S
    out: list[Block] = []
    for i in range(n):
        columns = {name: getattr(curves, name)[i] for name in names}
        if partial[i]:
            columns["kwh"] = columns["kwh"].copy()
            columns["kwh"][gap_start[i] : gap_start[i] + gap_len[i]] = np.nan
        key = customer_ids[i].encode()
        value = _block_value(meter_ids[i], customer_ids[i], curves.start, tz, columns, curves.quality[i])
        raw = orjson.dumps(value)
        sent = day_end + int(delay[i])
        out.append(Block(sent, key, raw, "valid"))
        if retry[i]:
            out.append(Block(sent + int(retry_after[i]), key, raw, "duplicate"))
        if previous is not None and overlap[i]:
            p_len = previous.kwh.shape[1]
            k = min(tail, p_len)
            joined = {
                name: np.concatenate([getattr(previous, name)[i][p_len - k :], columns[name]])
                for name in names
            }
            quality = [*previous.quality[i][p_len - k :], *curves.quality[i]]
            resend = _block_value(
                meter_ids[i], customer_ids[i], curves.start - k * INTERVAL_S, tz, joined, quality
            )
            out.append(Block(sent + int(overlap_after[i]), key, orjson.dumps(resend), "valid"))
    out.sort(key=lambda b: b.sent_at)
    return out


def block_readings(value: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """The single readings a block stands for, in interval order (intervals not read left out)."""
    start = datetime.fromisoformat(value["start"])
    step = value.get("interval_s", INTERVAL_S)
    lists = {name: value.get(name) for name in ("kvarh", "kvarh_export", "demand_kw", "quality")}
    for i, kwh in enumerate(value["kwh"]):
        if kwh is None:
            continue
        reading = {
            "meter_id": value["meter_id"],
            "customer_id": value["customer_id"],
            "ts": (start + timedelta(seconds=(i + 1) * step)).isoformat(),
            "interval_s": step,
            "kwh": kwh,
        }
        for name, column in lists.items():
            if column is not None and column[i] is not None:
                reading[name] = column[i]
        yield reading
