"""Per-customer load and energy state: one compact record per customer, updated once per batch.

Reading semantics (CONTRACT.md ``meter.readings``): ``ts`` is the END of the interval; the interval
belongs to the local day and billing month in which it STARTS (``ts - interval_s``).

``ts`` is taken as epoch seconds (int or float; the agent converts the RFC 3339 string once).
An aware ``datetime`` is accepted too, at some cost; a naive one is invalid.

The customer's load in an interval is the sum over its meters: readings of several meters with
the same interval start are added before the maximum is taken (coincident maximum demand), and
the interval's time is covered once (``hours``). This assumes a customer's meters share one
interval length; ``intervals`` counts readings (meter intervals).

What the state holds (DOMAIN.md section 2, CONTRACT.md ``stats.customer``):
- day buckets (last 35 local days) and billing-month buckets (last 26 months): kwh, kwh_q (kWh of
  intervals that have a reactive register, so a meter without one does not fake PF 1.0), kvarh
  (|import| + |export|), max_kw, seconds covered, readings, and per day the readings per meter
  (for gaps) and, per local hour of the day, the kWh (float32) and seconds covered (uint32) of
  the intervals starting in it (the hour-of-day profile, ``hourly_kw``: +192 bytes a day row,
  6.7 KB for the 35 days kept);
- slots: for every interval start within the allowed lateness behind the watermark, the summed
  demand and a bit mask of the meters already counted — the dedup record and the coincident sum.

The stream agent decodes, applies a reading or two, encodes and snapshots each customer about once
per reading, so the state lives in flat `array`s that ARE the record (see `_Buckets` and
`LoadState.to_bytes`): decoding and encoding copy bytes, not objects, and a window is a slice.
"""

from __future__ import annotations

import math
import struct
import sys
from array import array
from bisect import bisect_left
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from functools import lru_cache
from typing import Any, Final, Literal, NamedTuple, cast
from zoneinfo import ZoneInfo

import numpy as np

from metering.local_time import calendar_for, month_period, parse_period
from metering.pf_tariff import pf_adjustment_money, pf_adjustment_pct, power_factor

ReadingStatus = Literal["applied", "duplicate", "late", "invalid"]
APPLIED: Final = "applied"
DUPLICATE: Final = "duplicate"
LATE: Final = "late"
INVALID: Final = "invalid"

DEFAULT_TZ = ZoneInfo("Asia/Shanghai")
DEFAULT_LATENESS_S = 48 * 3600
DEFAULT_INTERVAL_S = 900
DAYS_KEPT = 35
MONTHS_KEPT = 26
D30_DAYS = 30
PROJECTION_DAYS = 7
PRUNE_EVERY_S = 6 * 3600

# Bucket columns. Days and months keep the same four float and two int columns; days add one
# int32 column of readings per meter (for gaps).
KWH, KWH_Q, KVARH, MAX_KW = range(4)  # float64 columns
SECONDS, N = range(2)  # int64 columns
HOURS = 24  # hour-of-day columns of the day rows (local hour of the interval start)
_INF = math.inf
_INT32 = 1 << 31
_LITTLE_ENDIAN = sys.byteorder == "little"
_HOURLY_NUMPY_ROWS = 4  # from this many day rows on, `_Buckets.hourly` sums with numpy (faster)


@dataclass(slots=True)
class Reading:
    """One ``meter.readings`` value, in the form `LoadState.apply` reads (any object with these
    attributes will do, e.g. the schema model with ``ts`` as epoch seconds)."""

    meter_id: str
    ts: float | datetime
    kwh: float
    interval_s: int = DEFAULT_INTERVAL_S
    kvarh: float | None = None
    kvarh_export: float | None = None
    demand_kw: float | None = None

    @classmethod
    def from_mapping(cls, value: Mapping[str, Any]) -> Reading:
        ts = value["ts"]
        if isinstance(ts, str):
            ts = datetime.fromisoformat(ts)
        return cls(
            meter_id=value["meter_id"],
            ts=ts,
            kwh=value["kwh"],
            interval_s=value.get("interval_s") or DEFAULT_INTERVAL_S,
            kvarh=value.get("kvarh"),
            kvarh_export=value.get("kvarh_export"),
            demand_kw=value.get("demand_kw"),
        )


@dataclass(slots=True)
class ApplyResult:
    """Per reading (same order as given): applied, duplicate, late or invalid.

    late: the interval starts more than the allowed lateness before the watermark — not applied;
    the caller dead-letters it with error ``late``. invalid: breaks the contract (``reasons``
    gives the DLQ error kind) — the agent's schema check should have caught it.
    """

    statuses: list[str]
    reasons: dict[int, str] = field(default_factory=dict)

    def indices(self, status: str) -> list[int]:
        return [i for i, s in enumerate(self.statuses) if s == status]

    def count(self, status: str) -> int:
        return self.statuses.count(status)


@dataclass(frozen=True, slots=True)
class DayGap:
    day: date
    meter_id: str
    expected: int
    found: int


def _epoch(ts: Any) -> int:
    if isinstance(ts, datetime):
        if ts.tzinfo is None:
            raise ValueError("naive timestamp")
        return round(ts.timestamp())
    value = float(ts)
    if not math.isfinite(value):
        raise ValueError("timestamp not finite")
    return round(value)


def _fields(reading: Any) -> tuple[Any, ...]:
    if isinstance(reading, Mapping):
        return (
            reading["meter_id"],
            reading["ts"],
            reading.get("interval_s") or DEFAULT_INTERVAL_S,
            reading["kwh"],
            reading.get("kvarh"),
            reading.get("kvarh_export"),
            reading.get("demand_kw"),
        )
    return (
        reading.meter_id,
        reading.ts,
        reading.interval_s or DEFAULT_INTERVAL_S,
        reading.kwh,
        reading.kvarh,
        reading.kvarh_export,
        reading.demand_kw,
    )


def _validated(fields: tuple[Any, ...]) -> tuple[Any, ...] | str:
    """(meter_id, start, interval_s, kwh, kvarh_used, kwh_q, demand_kw|None) or a DLQ error kind."""
    meter_id, ts, interval_s, kwh, kvarh, kvarh_export, demand_kw = fields
    if type(ts) is not int:
        try:
            ts = _epoch(ts)
        except (TypeError, ValueError):
            return "bad_timestamp"
    if type(interval_s) is not int or interval_s <= 0:
        return "bad_interval"
    if not 0.0 <= kwh < _INF:
        return "negative_energy" if kwh < 0 else "bad_value"
    if kvarh is None and kvarh_export is None:
        reactive, kwh_q = 0.0, 0.0  # no reactive register: the interval stays out of PF
    else:
        reactive = abs(kvarh or 0.0) + abs(kvarh_export or 0.0)
        kwh_q = kwh
        if not reactive < _INF:
            return "bad_value"
    if demand_kw is not None and not 0.0 <= demand_kw < _INF:
        return "bad_value"
    return meter_id, ts - interval_s, interval_s, kwh, reactive, kwh_q, demand_kw


Totals = tuple[float, float, float, float, int, int]  # kwh, kwh_q, kvarh, max_kw, seconds, readings
_NO_TOTALS: Totals = (0.0, 0.0, 0.0, 0.0, 0, 0)


class _Buckets:
    """Rows for consecutive keys (local day ordinals or billing-month indices), column by column.

    Column-wise so that a window is a slice (``sum``/``max`` run in C) and the record is the raw
    bytes of three arrays. Column ``c`` of ``f`` is ``f[c * rows : (c + 1) * rows]``:
    - ``f`` float64: kwh, kwh_q, kvarh, max_kw;
    - ``i`` int64: seconds covered, readings;
    - ``c`` int32: readings per meter index, ``counts`` columns (days only);
    - ``hk`` float32 and ``hs`` uint32: kWh and seconds covered of the intervals starting in each
      local hour, ``hours`` (24) columns each (days only; float32 keeps the row at 192 bytes: the
      kWh are rounded to ~7 significant digits, the seconds are exact).
    A key without readings is a row of zeros: exactly what an absent bucket contributes to every
    window; "has readings" (a metered month) is ``readings > 0``.
    """

    __slots__ = ("c", "counts", "dropped", "f", "first", "hk", "hours", "hs", "i", "rows")

    def __init__(
        self,
        counts: int = 0,
        first: int = 0,
        f: array[float] | None = None,
        i: array[int] | None = None,
        c: array[int] | None = None,
        hours: int = 0,
        hk: array[float] | None = None,
        hs: array[int] | None = None,
    ) -> None:
        self.first = first  # key of row 0
        self.counts = counts
        self.hours = hours
        self.f: array[float] = array("d") if f is None else f
        self.i: array[int] = array("q") if i is None else i
        self.c: array[int] = array("i") if c is None else c
        self.hk: array[float] = array("f") if hk is None else hk
        self.hs: array[int] = array("I") if hs is None else hs
        self.rows = len(self.f) // 4
        self.dropped = False  # rows deleted since the owner last looked (see `compact`)

    def row(self, key: int, kept: int) -> int:
        """The row of ``key``, adding zero rows up to it when needed."""
        r = key - self.first
        if 0 <= r < self.rows:
            return r
        if self.rows == 0 or key >= self.first + self.rows - 1 + kept:
            # Every row is at least `kept` keys behind: the compaction that this watermark jump
            # triggers at the end of the same `apply` drops them all, and no reading of the batch
            # can reach them (late), so drop them now rather than fill the gap with zero rows.
            self._delete(0, self.rows)
            self.first = key
            self._insert(0, 1)
            return 0
        if r < 0:
            self._insert(0, -r)
            self.first = key
            return 0
        self._insert(self.rows, r - self.rows + 1)
        return r

    def add(self, r: int, kwh: float, kwh_q: float, kvarh: float, kw: float, seconds: int) -> None:
        f, n, i = self.f, self.rows, self.i
        f[r] += kwh
        f[n + r] += kwh_q
        f[2 * n + r] += kvarh
        if kw > f[3 * n + r]:
            f[3 * n + r] = kw
        i[r] += seconds
        i[n + r] += 1

    def add_hour(self, r: int, hour: int, kwh: float, seconds: int) -> None:
        at = hour * self.rows + r
        self.hk[at] += kwh
        self.hs[at] += seconds

    def hourly(self, last: int, count: int) -> list[float | None]:
        """Average kW per hour column over the ``count`` keys ending at ``last``: kWh / hours
        covered, None for an hour without intervals."""
        n = self.rows
        lo, hi = max(last - count + 1 - self.first, 0), min(last + 1 - self.first, n)
        if lo >= hi:
            return [None] * self.hours
        hk, hs = self.hk, self.hs
        if hi - lo == 1:  # one day row (a young customer): its values, as the sums below give them
            return [hk[at] * 3600.0 / hs[at] if hs[at] else None for at in range(lo, self.hours * n, n)]
        if hi - lo < _HOURLY_NUMPY_ROWS:
            # a few rows: sums of slices, oldest row first from 0 (the definition below follows)
            out: list[float | None] = []
            for base in range(0, self.hours * n, n):
                seconds = sum(hs[base + lo : base + hi])
                out.append(sum(hk[base + lo : base + hi]) * 3600.0 / seconds if seconds else None)
            return out
        # All hour columns at once, with the very same float additions: each column's kWh in
        # double, oldest row first, one after the other (an accumulate is a running sum, never
        # reordered; its last element is ``sum(column)``, which starts from 0 and adds the
        # non-negative kWh in that order), the seconds as exact integers.
        kwh = np.add.accumulate(
            np.frombuffer(hk, np.float32).reshape(self.hours, n)[:, lo:hi], axis=1, dtype=np.float64
        )[:, -1].tolist()
        covered = np.frombuffer(hs, np.uint32).reshape(self.hours, n)[:, lo:hi].sum(axis=1, dtype=np.int64)
        return [k * 3600.0 / s if s else None for k, s in zip(kwh, covered.tolist(), strict=True)]

    def totals(self, last: int, count: int, newer: Totals = _NO_TOTALS, skip: int = 0) -> Totals:
        """kwh, kwh_q, kvarh, max kW, seconds, readings over the ``count`` keys ending at ``last``.

        Floats are added newest key first, starting from 0.0 — the order the windows have always
        used, so the sums are bit for bit the same (zero rows add nothing). ``newer``, the totals
        of the newest ``skip`` of those keys, lets a window continue a shorter one's sums (the
        30 days go on from the projection's 7) with the very same additions.
        """
        n = self.rows
        lo, hi = max(last - count + 1 - self.first, 0), min(last - skip + 1 - self.first, n)
        if lo >= hi:
            return newer
        f, i = self.f, self.i
        kwh, kwh_q, kvarh, max_kw, seconds, readings = newer
        if hi - lo == 1:  # the day and month windows: no slicing
            return (
                kwh + f[lo],
                kwh_q + f[n + lo],
                kvarh + f[2 * n + lo],
                max(max_kw, f[3 * n + lo]),
                seconds + i[lo],
                readings + i[n + lo],
            )
        return (
            sum(reversed(f[lo:hi]), kwh),
            sum(reversed(f[n + lo : n + hi]), kwh_q),
            sum(reversed(f[2 * n + lo : 2 * n + hi]), kvarh),
            max(max_kw, max(f[3 * n + lo : 3 * n + hi])),
            sum(i[lo:hi], seconds),
            sum(i[n + lo : n + hi], readings),
        )

    def has_readings(self, column: int) -> bool:
        """Whether count column ``column`` (a meter) has readings in any row."""
        n = self.rows
        return n > 0 and max(self.c[column * n : (column + 1) * n]) > 0

    def first_row_with(self, column: int) -> int:
        """The first row in which count column ``column`` has readings (``rows`` if none)."""
        c, base = self.c, column * self.rows
        for r in range(self.rows):
            if c[base + r]:
                return r
        return self.rows

    def drop_through(self, key: int) -> None:
        """Drop the rows of keys up to ``key``, and then any leading rows without readings."""
        k = min(max(key - self.first + 1, 0), self.rows)
        while k < self.rows and self.i[self.rows + k] == 0:
            k += 1
        if k:
            self._delete(0, k)
            self.first += k

    def add_count_column(self) -> None:
        self.c.extend(array("i", bytes(4 * self.rows)))
        self.counts += 1

    def keep_count_columns(self, keep: list[int]) -> None:
        n, kept = self.rows, array("i")
        for column in keep:
            kept.extend(self.c[column * n : (column + 1) * n])
        self.c, self.counts = kept, len(keep)

    def _columns(self) -> tuple[tuple[array[Any], int], ...]:
        return (
            (self.f, 4),
            (self.i, 2),
            (self.c, self.counts),
            (self.hk, self.hours),
            (self.hs, self.hours),
        )

    def _insert(self, at: int, k: int) -> None:
        for arr, columns in self._columns():
            _insert_zeros(arr, columns, self.rows, at, k)
        self.rows += k

    def _delete(self, at: int, k: int) -> None:
        for arr, columns in self._columns():
            _delete_rows(arr, columns, self.rows, at, k)
        self.rows -= k
        self.dropped = True


def _insert_zeros(arr: array[Any], columns: int, rows: int, at: int, k: int) -> None:
    """Insert ``k`` zero rows at row ``at`` of each of the ``columns`` columns of ``arr``."""
    zeros = array(arr.typecode, bytes(arr.itemsize * k))
    for column in reversed(range(columns)):  # back to front: the earlier offsets stay valid
        arr[column * rows + at : column * rows + at] = zeros


def _delete_rows(arr: array[Any], columns: int, rows: int, at: int, k: int) -> None:
    for column in reversed(range(columns)):
        del arr[column * rows + at : column * rows + at + k]


def _checked_lateness(lateness_s: int) -> int:
    if not 0 <= lateness_s <= 30 * 86400:
        # late readings must still find their day bucket (35 days kept)
        raise ValueError("lateness_s must be within 0..30 days")
    return lateness_s


class LoadState:
    """Rolling load/energy statistics of one customer. Not thread-safe; one per customer key."""

    __slots__ = (
        "_cal",
        "_days",
        "_meter_index",
        "_meter_interval",
        "_meters",
        "_months",
        "_pruned_cutoff",
        "_seeds",
        "_slot_base",
        "_slot_kw",
        "_slot_masks",
        "_slot_offsets",
        "data_end",
        "lateness_s",
        "tz",
        "watermark",
    )

    def __init__(self, tz: ZoneInfo = DEFAULT_TZ, lateness_s: int = DEFAULT_LATENESS_S) -> None:
        self.tz = tz
        self.lateness_s = _checked_lateness(lateness_s)
        self._cal = calendar_for(tz)
        self.watermark: int | None = None  # newest interval start applied (epoch s)
        self.data_end: int | None = None  # newest interval end applied: the event time of the stats
        self._days = _Buckets(hours=HOURS)  # one count column per meter index
        self._months = _Buckets()
        self._seeds: dict[int, float] = {}
        # The dedup record and the coincident sums: one slot per interval start within the
        # lateness behind the watermark, sorted by start. Starts are int32 offsets from
        # `_slot_base` (half the bytes of epoch int64s; `_insert_slot` keeps them in range).
        self._slot_base = 0
        self._slot_offsets: array[int] = array("i")
        self._slot_kw: array[float] = array("d")  # summed demand of the meters counted
        self._slot_masks = bytearray()  # meters counted: a bit per meter index, `_mask_width` bytes a slot
        self._meters: list[str] = []
        self._meter_index: dict[str, int] = {}
        self._meter_interval: list[int] = []  # per meter index: its latest interval_s
        self._pruned_cutoff = -(1 << 62)

    # ---------------------------------------------------------------- apply (hot path)

    def apply(self, readings: Iterable[Any]) -> ApplyResult:
        """Apply one batch, reading by reading in arrival order.

        The watermark moves with every reading, so the outcome depends only on the arrival order
        (the partition's order, the same on a replay), never on how the consumer cut batches.
        """
        rows: list[tuple[Any, ...] | str] = []
        for reading in readings:
            try:
                rows.append(_validated(_fields(reading)))
            except (KeyError, AttributeError, TypeError):
                rows.append("schema")
        result = ApplyResult(statuses=[APPLIED] * len(rows))
        self._apply_rows(rows, result)
        if self.watermark is not None:
            self._prune(self.watermark - self.lateness_s)
        return result

    def apply_block(
        self,
        meter_id: str,
        start: int,
        interval_s: int,
        kwh: Sequence[float | None],
        kvarh: Sequence[float | None] | None = None,
        kvarh_export: Sequence[float | None] | None = None,
        demand_kw: Sequence[float | None] | None = None,
        indices: Iterable[int] | None = None,
    ) -> ApplyResult:
        """Apply intervals of one meter's block in one call: interval i is the reading stamped
        ``start + (i+1)*interval_s`` (``start``: epoch s of the first interval's start) with the
        i-th entries of the lists, judged exactly as that reading would be by `apply`, in
        interval order.

        ``indices``: the intervals to apply, ascending (default: every one whose kwh is not
        None). The result has one status per index given, in that order.
        """
        if indices is None:
            indices = [i for i, value in enumerate(kwh) if value is not None]
        rows: list[tuple[Any, ...] | str] = []
        for i in indices:
            fields = (
                meter_id,
                start + (i + 1) * interval_s,
                interval_s,
                kwh[i],
                kvarh[i] if kvarh is not None else None,
                kvarh_export[i] if kvarh_export is not None else None,
                demand_kw[i] if demand_kw is not None else None,
            )
            try:
                rows.append(_validated(fields))
            except TypeError:
                rows.append("schema")
        result = ApplyResult(statuses=[APPLIED] * len(rows))
        self._apply_rows(rows, result)
        if self.watermark is not None:
            self._prune(self.watermark - self.lateness_s)
        return result

    def _apply_rows(self, rows: list[tuple[Any, ...] | str], result: ApplyResult) -> None:
        days, months = self._days, self._months
        meter_index, span_of = self._meter_index, self._cal.span_of
        statuses = result.statuses
        lo = hi = ordinal = month_ix = 0
        regular = True  # the local day [lo, hi) is 24 h long: local hour = (start - lo) // 3600
        data_end = self.data_end or 0
        watermark = self.watermark if self.watermark is not None else -(1 << 62)
        cutoff = watermark - self.lateness_s
        for i, row in enumerate(rows):
            if type(row) is not tuple:
                statuses[i] = INVALID
                result.reasons[i] = str(row)
                continue
            meter_id, start, interval_s, kwh, reactive, kwh_q, demand_kw = row
            if start > watermark:
                watermark = start
                cutoff = start - self.lateness_s
            elif start < cutoff:
                statuses[i] = LATE
                continue
            index = meter_index.get(meter_id)
            if index is None:
                index = self._add_meter(meter_id)
            kw = demand_kw if demand_kw is not None else kwh * 3600.0 / interval_s
            claimed = self._claim(start, index, kw)
            if claimed is None:
                statuses[i] = DUPLICATE
                continue
            kw, new_slot = claimed
            covered = interval_s if new_slot else 0  # the interval's time is covered once
            if not lo <= start < hi:
                lo, hi, ordinal, month_ix = span_of(start)
                regular = hi - lo == 86400
            day = days.row(ordinal, DAYS_KEPT)
            days.add(day, kwh, kwh_q, reactive, kw, covered)
            hour = (start - lo) // 3600 if regular else datetime.fromtimestamp(start, self.tz).hour
            days.add_hour(day, hour, kwh, covered)
            days.c[index * days.rows + day] += 1
            months.add(months.row(month_ix, MONTHS_KEPT), kwh, kwh_q, reactive, kw, covered)
            self._meter_interval[index] = interval_s
            if start + interval_s > data_end:
                data_end = start + interval_s
        if data_end:
            self.watermark, self.data_end = watermark, data_end

    def _claim(self, start: int, index: int, kw: float) -> tuple[float, bool] | None:
        """Count meter ``index`` in the slot of ``start``: (the slot's coincident kW, whether the
        slot is new), or None when that meter was already counted there (a duplicate)."""
        offsets = self._slot_offsets
        offset = start - self._slot_base
        row = len(offsets)
        if row and offset <= offsets[-1]:  # not the newest start: look it up
            row = bisect_left(offsets, offset)
            if row < len(offsets) and offsets[row] == offset:
                return self._join_slot(row, index, kw)
        self._insert_slot(row, start, index, kw)
        return kw, True

    def _join_slot(self, row: int, index: int, kw: float) -> tuple[float, bool] | None:
        at, bit = row * self._mask_width() + (index >> 3), 1 << (index & 7)
        if self._slot_masks[at] & bit:
            return None
        # another meter of the customer, same interval: coincident sum
        self._slot_masks[at] |= bit
        self._slot_kw[row] += kw
        return self._slot_kw[row], False

    def _insert_slot(self, row: int, start: int, index: int, kw: float) -> None:
        if not self._slot_offsets:
            self._slot_base = start
        if not -_INT32 <= start - self._slot_base < _INT32:
            self._rebase_slots(start)
            row = bisect_left(self._slot_offsets, 0)
        width = self._mask_width()
        mask = bytearray(width)
        mask[index >> 3] = 1 << (index & 7)
        self._slot_offsets.insert(row, start - self._slot_base)
        self._slot_kw.insert(row, kw)
        self._slot_masks[row * width : row * width] = mask

    def _rebase_slots(self, base: int) -> None:
        """Re-anchor the slot offsets at ``base`` (the start of a reading that is not late).

        Slots more than 68 years from it cannot be encoded, but they are far behind the lateness
        cutoff — never consulted again, and `compact` would drop them — so they go. Only a clock
        jump (or decades without `compact`) gets here.
        """
        shift, width = self._slot_base - base, self._mask_width()
        keep = [r for r, offset in enumerate(self._slot_offsets) if -_INT32 <= offset + shift < _INT32]
        self._slot_offsets = array("i", [self._slot_offsets[r] + shift for r in keep])
        self._slot_kw = array("d", [self._slot_kw[r] for r in keep])
        self._slot_masks = bytearray(b"".join(self._slot_masks[r * width : (r + 1) * width] for r in keep))
        self._slot_base = base

    def _mask_width(self) -> int:
        return (len(self._meters) + 7) >> 3

    def _slot_mask_ints(self) -> list[int]:
        width, masks = self._mask_width(), self._slot_masks
        return [
            int.from_bytes(masks[r * width : (r + 1) * width], "little")
            for r in range(len(self._slot_offsets))
        ]

    def _store_slot_masks(self, masks: list[int]) -> None:
        width = self._mask_width()
        self._slot_masks = bytearray(b"".join(mask.to_bytes(width, "little") for mask in masks))

    def _add_meter(self, meter_id: str) -> int:
        index = len(self._meters)
        widen = index % 8 == 0 and len(self._slot_offsets) > 0  # the masks need another byte
        masks = self._slot_mask_ints() if widen else []
        self._meters.append(meter_id)
        self._meter_index[meter_id] = index
        self._meter_interval.append(DEFAULT_INTERVAL_S)  # set by the reading being applied
        self._days.add_count_column()
        if widen:
            self._store_slot_masks(masks)
        return index

    def _prune(self, cutoff: int) -> None:
        # Lazily, every few hours of watermark: slots behind the cutoff are never consulted again
        # (late is judged first), and `compact` trims exactly before the state is written.
        if cutoff >= self._pruned_cutoff + PRUNE_EVERY_S:
            self.compact()

    def compact(self) -> None:
        """Drop what the windows no longer need: slots behind the lateness cutoff, days and
        months beyond those kept, meters that no longer report."""
        if self.watermark is None:
            return
        cutoff = self.watermark - self.lateness_s
        self._pruned_cutoff = cutoff
        behind = bisect_left(self._slot_offsets, cutoff - self._slot_base)
        if behind:
            del self._slot_offsets[:behind]
            del self._slot_kw[:behind]
            del self._slot_masks[: behind * self._mask_width()]
        newest = self._cal.span_of(self.watermark)
        self._days.drop_through(newest.ordinal - DAYS_KEPT)
        self._months.drop_through(newest.month - MONTHS_KEPT)
        for index in [m for m in self._seeds if m <= newest.month - MONTHS_KEPT]:
            del self._seeds[index]
        if self._days.dropped:  # a meter is added with a reading, so only dropped days lose one
            self._days.dropped = False
            self._forget_departed_meters()

    def _forget_departed_meters(self) -> None:
        """Drop meters with no reading in the kept days (a replaced meter), renumbering the rest."""
        keep = [index for index in range(len(self._meters)) if self._days.has_readings(index)]
        if len(keep) == len(self._meters):
            return
        masks = [
            sum(1 << new for new, old in enumerate(keep) if mask >> old & 1)
            for mask in self._slot_mask_ints()
        ]
        self._days.keep_count_columns(keep)
        self._meters = [self._meters[i] for i in keep]
        self._meter_index = {m: i for i, m in enumerate(self._meters)}
        self._meter_interval = [self._meter_interval[i] for i in keep]
        self._store_slot_masks(masks)

    # ---------------------------------------------------------------- history, gaps

    def seed_history(self, period: str, kwh: float) -> None:
        """Consumption of a past billing month from billing history (so year-over-year works from
        day one). Used only while the month has no metered data; seeding again replaces it."""
        if not 0.0 <= kwh < _INF:
            raise ValueError(f"seeded kWh must be >= 0, got {kwh!r}")
        self._seeds[parse_period(period)] = float(kwh)

    def gaps(self, days: int = 7) -> list[DayGap]:
        """Meter-days among the last ``days`` local days with fewer intervals than expected.

        Expected = the local day's length / the meter's interval (23 h / 25 h on DST days); for
        the newest day only the intervals starting up to the watermark. A meter is expected from
        the first kept day it reported on.
        """
        if self.watermark is None:
            return []
        newest = self._cal.span_of(self.watermark)
        buckets = self._days
        first_seen: dict[int, int] = {}  # meter index -> first ordinal with readings
        for index in range(len(self._meters)):
            row = buckets.first_row_with(index)
            if row < buckets.rows:
                first_seen[index] = buckets.first + row
        found_gaps = []
        for ordinal in range(newest.ordinal - days + 1, newest.ordinal + 1):
            lo, hi = self._cal.day_span(ordinal)
            row = ordinal - buckets.first
            for index, since in first_seen.items():
                if ordinal < since:
                    continue
                interval_s = self._meter_interval[index]
                end = min(hi, self.watermark + 1)
                expected = -(-(end - lo) // interval_s)  # intervals starting in [lo, end)
                found = buckets.c[index * buckets.rows + row] if 0 <= row < buckets.rows else 0
                if found < expected:
                    day = date.fromordinal(ordinal)
                    found_gaps.append(DayGap(day, self._meters[index], expected, found))
        return found_gaps

    # ---------------------------------------------------------------- snapshot

    def snapshot(
        self,
        now_ts: float | None = None,
        *,
        pf_standard: float | None = None,
        tariff_cny_per_kwh: float | None = None,
    ) -> dict[str, Any]:
        """The `stats.customer` windows (CONTRACT.md), anchored at the newest reading's interval.

        ``now_ts`` (epoch s: the wall clock; default: the newest interval end) only decides
        whether the month is still open: a month whose end has passed on the wall clock has
        nothing left to project (the projected fields are None), even while its last intervals
        may still arrive within the lateness. Projection while it is open: month-to-date energies
        plus, for the hours from the newest interval end to the month end, the trailing-7-day
        average kW and kvar (the 7 local days ending with the newest day, over the hours those
        days' intervals cover).

        ``hourly_kw``: the hour-of-day profile of the ``d30`` days — for each local hour 0..23,
        the kWh of the intervals starting in that hour / the hours those intervals cover (None
        for an hour without intervals). On a DST fall-back day both occurrences of the repeated
        hour count as that hour; a skipped hour simply has no intervals that day.
        """
        anchor = self.watermark if self.watermark is not None else now_ts
        if anchor is None:
            raise ValueError("a state without readings needs now_ts to anchor its windows")
        newest = self._cal.span_of(int(anchor))
        day_window = _window(self._days.totals(newest.ordinal, 1))
        week = self._days.totals(newest.ordinal, PROJECTION_DAYS)
        d30 = _window(self._days.totals(newest.ordinal, D30_DAYS, week, PROJECTION_DAYS))
        hourly_kw = self._days.hourly(newest.ordinal, D30_DAYS)
        month_totals = self._months.totals(newest.month, 1)
        month = _window(month_totals)
        day_window["date"] = _iso_date(newest.ordinal)
        d30["from"] = _iso_date(newest.ordinal - D30_DAYS + 1)
        d30["to"] = day_window["date"]
        self._month_tariff(month, newest.month, month_totals, week, now_ts, pf_standard, tariff_cny_per_kwh)
        monthly = self._monthly_kwh(newest.month)
        periods = _periods(newest.month)
        return {
            "ts": self._cal.iso(self.data_end) if self.data_end is not None else None,
            "day": day_window,
            "d30": d30,
            "month": month,
            "consumption": (
                dict(zip(periods, monthly, strict=True))
                if None not in monthly
                else {p: kwh for p, kwh in zip(periods, monthly, strict=True) if kwh is not None}
            ),
            "yoy_growth_rate": _yoy_rate(monthly),
            "yoy_growth_kwh": _yoy_kwh(monthly),
            "hourly_kw": hourly_kw,
        }

    def _month_tariff(
        self,
        out: dict[str, Any],
        index: int,
        totals: Totals,
        week: Totals,
        now_ts: float | None,
        standard: float | None,
        tariff: float | None,
    ) -> None:
        """Add month ``index``'s PF adjustment (``totals``: the month's), and its projection while
        the month is open (``week``: the trailing days' totals), to ``out``."""
        kwh, kwh_q, kvarh = totals[:3]
        pf = power_factor(kwh_q, kvarh)
        pct = pf_adjustment_pct(pf, standard) if pf is not None and standard is not None else None
        out["period"] = month_period(index)
        out["pf_standard"] = standard
        out["pf_adjustment_pct"] = pct
        out["pf_adjustment_cny"] = pf_adjustment_money(pct, kwh, tariff)
        out["projected_power_factor"] = None
        out["projected_pf_adjustment_pct"] = None
        out["projected_pf_adjustment_cny"] = None
        month_end = self._cal.month_span(index)[1]
        now = now_ts if now_ts is not None else self.data_end
        if self.data_end is None or now is None or now >= month_end:
            return  # ended on the wall clock (or empty): the bill's numbers are the actual ones
        remaining_h = max(0, month_end - self.data_end) / 3600.0
        t_kwh, t_kwh_q, t_kvarh, _, t_seconds, _ = week
        hours = t_seconds / 3600.0
        if hours == 0:
            return
        projected_pf = power_factor(
            kwh_q + t_kwh_q / hours * remaining_h, kvarh + t_kvarh / hours * remaining_h
        )
        projected_pct = (
            pf_adjustment_pct(projected_pf, standard)
            if projected_pf is not None and standard is not None
            else None
        )
        out["projected_power_factor"] = projected_pf
        out["projected_pf_adjustment_pct"] = projected_pct
        out["projected_pf_adjustment_cny"] = pf_adjustment_money(
            projected_pct, kwh + t_kwh / hours * remaining_h, tariff
        )

    def _monthly_kwh(self, newest_month: int) -> list[float | None]:
        """kWh of the MONTHS_KEPT billing months ending with ``newest_month``, oldest first:
        metered where the month has readings, else the seeded value, else None."""
        first = newest_month - MONTHS_KEPT + 1
        months = self._months
        n, lo, hi = months.rows, first - months.first, newest_month + 1 - months.first
        if 0 <= lo and hi <= n and 0 not in months.i[N * n + lo : N * n + hi]:
            # every month metered (the usual case once a customer is two years old)
            return cast(list[float | None], months.f[KWH * n + lo : KWH * n + hi].tolist())
        seeds = self._seeds
        out: list[float | None] = (
            [seeds.get(m) for m in range(first, newest_month + 1)] if seeds else [None] * MONTHS_KEPT
        )
        lo, hi = max(lo, 0), min(hi, n)
        if lo < hi:
            at = months.first + lo - first  # position of row lo in out
            metered = zip(
                months.f[KWH * n + lo : KWH * n + hi], months.i[N * n + lo : N * n + hi], strict=True
            )
            out[at : at + hi - lo] = [
                kwh if readings else out[at + k] for k, (kwh, readings) in enumerate(metered)
            ]
        return out

    # ---------------------------------------------------------------- serialisation

    def to_bytes(self) -> bytes:
        """The record: the `_HEAD` header, then the arrays' raw little-endian bytes, in order:

        meter id lengths (uint32) and the UTF-8 ids; meter intervals (int64); day floats, ints,
        per-meter counts, hourly kWh (float32) and hourly seconds (uint32); month floats and ints
        (see `_Buckets`); seeded months (int64) and their kWh (float64); slot offsets (int32), summed
        kW (float64) and meter masks (bytes).
        """
        self.compact()
        days, months = self._days, self._months
        names = [meter.encode() for meter in self._meters]
        seeds = sorted(self._seeds)
        head = _HEAD.pack(
            _MAGIC,
            _VERSION,
            (_HAS_WATERMARK if self.watermark is not None else 0)
            | (_HAS_DATA_END if self.data_end is not None else 0),
            self.watermark or 0,
            self.data_end or 0,
            self.lateness_s,
            self._pruned_cutoff,
            days.first,
            days.rows,
            months.first,
            months.rows,
            len(names),
            len(seeds),
            self._slot_base,
            len(self._slot_offsets),
        )
        return b"".join(
            [
                head,
                _le(array("I", [len(name) for name in names])),
                *names,
                _le(array("q", self._meter_interval)),
                _le(days.f),
                _le(days.i),
                _le(days.c),
                _le(days.hk),
                _le(days.hs),
                _le(months.f),
                _le(months.i),
                _le(array("q", seeds)),
                _le(array("d", [self._seeds[m] for m in seeds])),
                _le(self._slot_offsets),
                _le(self._slot_kw),
                self._slot_masks,
            ]
        )

    @classmethod
    def from_bytes(cls, data: bytes, tz: ZoneInfo = DEFAULT_TZ, lateness_s: int | None = None) -> LoadState:
        """Restore a state written by `to_bytes`. The zone is configuration, not state; the
        lateness is the recorded one unless the configuration now says otherwise."""
        if type(data) is not bytes:
            data = bytes(data)  # slicing bytes is the cheapest way into arrays
        if len(data) < _HEAD.size or data[:3] != _MAGIC:
            raise ValueError("not a LoadState record")
        head = _Head._make(_HEAD.unpack_from(data))
        if head.version != _VERSION:
            raise ValueError(
                f"LoadState record version {head.version} cannot be read (this code reads version "
                f"{_VERSION}: version 2 lacks the hour-of-day profile; version 1, the JSON-header "
                "format, was never deployed): rebuild the state"
            )
        state = cls.__new__(cls)  # every field is set below: no empty containers to replace
        state.tz, state._cal = tz, calendar_for(tz)
        state.lateness_s = _checked_lateness(head.lateness_s if lateness_s is None else lateness_s)
        state.watermark = head.watermark if head.flags & _HAS_WATERMARK else None
        state.data_end = head.data_end if head.flags & _HAS_DATA_END else None
        state._pruned_cutoff = head.pruned_cutoff
        read = _Reader(data, _HEAD.size)
        state._meters = [read.text(size) for size in read.array("I", head.meters)]
        state._meter_index = {meter: i for i, meter in enumerate(state._meters)}
        state._meter_interval = read.array("q", head.meters).tolist()
        state._days = read.buckets(head.day_first, head.day_rows, head.meters, HOURS)
        state._months = read.buckets(head.month_first, head.month_rows, 0)
        state._seeds = (
            dict(zip(read.array("q", head.seeds), read.array("d", head.seeds), strict=True))
            if head.seeds
            else {}
        )
        state._slot_base = head.slot_base
        state._slot_offsets = read.array("i", head.slots)
        state._slot_kw = read.array("d", head.slots)
        state._slot_masks = bytearray(read.take(head.slots * state._mask_width()))
        read.finish()
        return state


# The record header. Older versions are rejected, not converted: version 1 (a JSON header) was never
# deployed, version 2 has no hour-of-day columns (they cannot be rebuilt from its day rows).
_MAGIC = b"GPL"
_VERSION = 3  # 3: hour-of-day kWh and seconds per day row
_HEAD = struct.Struct("<3sBBqqqqqIqIIIqI")
_HAS_WATERMARK, _HAS_DATA_END = 1, 2  # flags
_ITEM_SIZE = {"d": 8, "q": 8, "i": 4, "I": 4, "f": 4}
assert all(array(code).itemsize == size for code, size in _ITEM_SIZE.items())


class _Head(NamedTuple):
    magic: bytes
    version: int
    flags: int
    watermark: int
    data_end: int
    lateness_s: int
    pruned_cutoff: int
    day_first: int  # ordinal of the first day row
    day_rows: int
    month_first: int  # index of the first month row
    month_rows: int
    meters: int
    seeds: int  # seeded months
    slot_base: int
    slots: int


def _le(values: array[Any]) -> array[Any]:
    """The array as little-endian bytes (a byte-swapped copy on a big-endian machine)."""
    if _LITTLE_ENDIAN:
        return values
    swapped = array(values.typecode, values)
    swapped.byteswap()
    return swapped


class _Reader:
    """Takes the consecutive parts of a record, refusing a truncated one."""

    __slots__ = ("data", "pos")

    def __init__(self, data: bytes, pos: int) -> None:
        self.data = data
        self.pos = pos

    def take(self, size: int) -> bytes:
        part = self.data[self.pos : self.pos + size]
        if len(part) != size:
            raise ValueError("truncated LoadState record")
        self.pos += size
        return part

    def array(self, typecode: str, count: int) -> array[Any]:
        size = _ITEM_SIZE[typecode] * count
        part = self.data[self.pos : self.pos + size]
        if len(part) != size:
            raise ValueError("truncated LoadState record")
        self.pos += size
        values = array(typecode, part)
        if not _LITTLE_ENDIAN:
            values.byteswap()
        return values

    def buckets(self, first: int, rows: int, counts: int, hours: int = 0) -> _Buckets:
        f, i, c = self.array("d", 4 * rows), self.array("q", 2 * rows), self.array("i", counts * rows)
        hk, hs = self.array("f", hours * rows), self.array("I", hours * rows)
        return _Buckets(counts, first, f, i, c, hours, hk, hs)

    def text(self, size: int) -> str:
        return self.take(size).decode()

    def finish(self) -> None:
        if self.pos != len(self.data):
            raise ValueError("trailing bytes after a LoadState record")


@lru_cache(maxsize=4096)
def _iso_date(ordinal: int) -> str:
    return date.fromordinal(ordinal).isoformat()


@lru_cache(maxsize=256)
def _periods(newest_month: int) -> tuple[str, ...]:
    """ "YYYY-MM" of the MONTHS_KEPT billing months ending with ``newest_month``, oldest first."""
    return tuple(month_period(m) for m in range(newest_month - MONTHS_KEPT + 1, newest_month + 1))


def _window(totals: Totals) -> dict[str, Any]:
    kwh, kwh_q, kvarh, max_kw, seconds, n = totals
    hours = seconds / 3600.0
    avg_kw = kwh / hours if hours > 0 else 0.0
    return {
        "kwh": kwh,
        "kvarh": kvarh,
        "avg_kw": avg_kw,
        "max_kw": max_kw,
        "load_factor": avg_kw / max_kw if max_kw > 0 and hours > 0 else None,
        "power_factor": power_factor(kwh_q, kvarh),
        "hours": hours,
        "intervals": n,
    }


def _yoy_rate(monthly: list[float | None]) -> float | None:
    """B41's x: (last 12 complete months - the 12 before) / the 12 before (``monthly`` ends with
    the newest month)."""
    newest = len(monthly) - 1
    last = monthly[newest - 1 : newest - 13 : -1]  # newest - 1 back to newest - 12
    before = monthly[newest - 13 : newest - 25 : -1]
    if None in last or None in before:
        return None
    base = sum(before)  # type: ignore[arg-type]
    return (sum(last) - base) / base if base > 0 else None  # type: ignore[arg-type]


def _yoy_kwh(monthly: list[float | None]) -> float | None:
    """B42's x: last complete month - the same month a year earlier."""
    this, year_ago = monthly[-2], monthly[-14]
    return this - year_ago if this is not None and year_ago is not None else None


__all__ = [
    "APPLIED",
    "DUPLICATE",
    "INVALID",
    "LATE",
    "ApplyResult",
    "DayGap",
    "LoadState",
    "Reading",
]
