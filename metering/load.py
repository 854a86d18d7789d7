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
  (for gaps);
- slots: for every interval start within the allowed lateness behind the watermark, the summed
  demand and a bit mask of the meters already counted — the dedup record and the coincident sum.
"""

from __future__ import annotations

import math
import struct
import sys
from array import array
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any, Final, Literal
from zoneinfo import ZoneInfo

import orjson

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

# bucket layout (lists, mutated in place on the hot path)
KWH, KWH_Q, KVARH, MAX_KW, SECONDS, N, PER_METER = range(7)
_INF = math.inf


def _new_day() -> list[Any]:
    return [0.0, 0.0, 0.0, 0.0, 0, 0, {}]


def _new_month() -> list[Any]:
    return [0.0, 0.0, 0.0, 0.0, 0, 0]


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


class LoadState:
    """Rolling load/energy statistics of one customer. Not thread-safe; one per customer key."""

    __slots__ = (
        "_cal",
        "_days",
        "_meter_bit",
        "_meter_interval",
        "_meters",
        "_months",
        "_pruned_cutoff",
        "_seeds",
        "_slots",
        "data_end",
        "lateness_s",
        "tz",
        "watermark",
    )

    def __init__(self, tz: ZoneInfo = DEFAULT_TZ, lateness_s: int = DEFAULT_LATENESS_S) -> None:
        if not 0 <= lateness_s <= 30 * 86400:
            # late readings must still find their day bucket (35 days kept)
            raise ValueError("lateness_s must be within 0..30 days")
        self.tz = tz
        self.lateness_s = lateness_s
        self._cal = calendar_for(tz)
        self.watermark: int | None = None  # newest interval start applied (epoch s)
        self.data_end: int | None = None  # newest interval end applied: the event time of the stats
        self._days: dict[int, list[Any]] = {}
        self._months: dict[int, list[Any]] = {}
        self._seeds: dict[int, float] = {}
        self._slots: dict[int, list[Any]] = {}  # start -> [summed demand kW, meter bit mask]
        self._meters: list[str] = []
        self._meter_bit: dict[str, int] = {}
        self._meter_interval: dict[int, int] = {}  # meter index -> its latest interval_s
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

    def _apply_rows(self, rows: list[tuple[Any, ...] | str], result: ApplyResult) -> None:
        slots, days, months = self._slots, self._days, self._months
        meter_bit, span_of = self._meter_bit, self._cal.span_of
        statuses = result.statuses
        lo = hi = 0
        day: list[Any] = []
        month: list[Any] = []
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
            bit = meter_bit.get(meter_id) or self._add_meter(meter_id)
            kw = demand_kw if demand_kw is not None else kwh * 3600.0 / interval_s
            slot = slots.get(start)
            if slot is None:
                slots[start] = [kw, bit]
                covered = interval_s
            elif slot[1] & bit:
                statuses[i] = DUPLICATE
                continue
            else:  # another meter of the customer, same interval: coincident sum
                slot[0] += kw
                slot[1] |= bit
                kw = slot[0]
                covered = 0
            if not lo <= start < hi:
                lo, hi, ordinal, month_ix = span_of(start)
                day = days.get(ordinal) or days.setdefault(ordinal, _new_day())
                month = months.get(month_ix) or months.setdefault(month_ix, _new_month())
            for bucket in (day, month):
                bucket[KWH] += kwh
                bucket[KWH_Q] += kwh_q
                bucket[KVARH] += reactive
                if kw > bucket[MAX_KW]:
                    bucket[MAX_KW] = kw
                bucket[SECONDS] += covered
                bucket[N] += 1
            index = bit.bit_length() - 1
            per_meter = day[PER_METER]
            per_meter[index] = per_meter.get(index, 0) + 1
            self._meter_interval[index] = interval_s
            if start + interval_s > data_end:
                data_end = start + interval_s
        if data_end:
            self.watermark, self.data_end = watermark, data_end

    def _add_meter(self, meter_id: str) -> int:
        bit = 1 << len(self._meters)
        self._meters.append(meter_id)
        self._meter_bit[meter_id] = bit
        return bit

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
        for start in [s for s in self._slots if s < cutoff]:
            del self._slots[start]
        newest = self._cal.span_of(self.watermark)
        for ordinal in [d for d in self._days if d <= newest.ordinal - DAYS_KEPT]:
            del self._days[ordinal]
        for index in [m for m in self._months if m <= newest.month - MONTHS_KEPT]:
            del self._months[index]
        for index in [m for m in self._seeds if m <= newest.month - MONTHS_KEPT]:
            del self._seeds[index]
        self._forget_departed_meters()

    def _forget_departed_meters(self) -> None:
        """Drop meters with no reading in the kept days (a replaced meter), renumbering the rest."""
        used = set().union(*(day[PER_METER] for day in self._days.values()))
        if len(used) == len(self._meters):
            return
        keep = sorted(used)
        renumber = {old: new for new, old in enumerate(keep)}
        for slot in self._slots.values():
            slot[1] = sum(1 << renumber[i] for i in keep if slot[1] >> i & 1)
        for day in self._days.values():
            day[PER_METER] = {renumber[i]: n for i, n in day[PER_METER].items()}
        self._meters = [self._meters[i] for i in keep]
        self._meter_bit = {m: 1 << i for i, m in enumerate(self._meters)}
        self._meter_interval = {renumber[i]: s for i, s in self._meter_interval.items() if i in renumber}

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
        first_seen: dict[int, int] = {}
        for ordinal in sorted(self._days):
            for index in self._days[ordinal][PER_METER]:
                first_seen.setdefault(index, ordinal)
        found_gaps = []
        for ordinal in range(newest.ordinal - days + 1, newest.ordinal + 1):
            lo, hi = self._cal.day_span(ordinal)
            per_meter = self._days.get(ordinal, _new_day())[PER_METER]
            for index, since in sorted(first_seen.items()):
                if ordinal < since:
                    continue
                interval_s = self._meter_interval[index]
                end = min(hi, self.watermark + 1)
                expected = -(-(end - lo) // interval_s)  # intervals starting in [lo, end)
                found = per_meter.get(index, 0)
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

        ``now_ts`` (epoch s; default: the newest interval end) only decides whether the month is
        still open. Projection while it is open: month-to-date energies plus, for the hours from
        the newest interval end to the month end, the trailing-7-day average kW and kvar (the 7
        local days ending with the newest day, over the hours those days' intervals cover).
        """
        anchor = self.watermark if self.watermark is not None else now_ts
        if anchor is None:
            raise ValueError("a state without readings needs now_ts to anchor its windows")
        newest = self._cal.span_of(int(anchor))
        day_window = _window([self._days.get(newest.ordinal)])
        d30 = _window([self._days.get(newest.ordinal - k) for k in range(D30_DAYS)])
        month = _window([self._months.get(newest.month)])
        day_window["date"] = date.fromordinal(newest.ordinal).isoformat()
        d30["from"] = date.fromordinal(newest.ordinal - D30_DAYS + 1).isoformat()
        d30["to"] = day_window["date"]
        month.update(self._month_tariff(newest.month, now_ts, pf_standard, tariff_cny_per_kwh))
        consumption = self._consumption(newest.month)
        return {
            "ts": self._cal.iso(self.data_end) if self.data_end is not None else None,
            "day": day_window,
            "d30": d30,
            "month": month,
            "consumption": {month_period(m): kwh for m, kwh in consumption.items()},
            "yoy_growth_rate": _yoy_rate(consumption, newest.month),
            "yoy_growth_kwh": _yoy_kwh(consumption, newest.month),
        }

    def _month_tariff(
        self, index: int, now_ts: float | None, standard: float | None, tariff: float | None
    ) -> dict[str, Any]:
        bucket = self._months.get(index) or _new_month()
        pf = power_factor(bucket[KWH_Q], bucket[KVARH])
        pct = pf_adjustment_pct(pf, standard) if pf is not None and standard is not None else None
        out: dict[str, Any] = {
            "period": month_period(index),
            "pf_standard": standard,
            "pf_adjustment_pct": pct,
            "pf_adjustment_cny": pf_adjustment_money(pct, bucket[KWH], tariff),
            "projected_power_factor": None,
            "projected_pf_adjustment_pct": None,
            "projected_pf_adjustment_cny": None,
        }
        month_end = self._cal.month_span(index)[1]
        now = now_ts if now_ts is not None else self.data_end
        if self.data_end is None or now is None or now >= month_end:
            return out  # closed (or empty): the bill's numbers are the actual ones
        remaining_h = max(0, month_end - self.data_end) / 3600.0
        newest_day = self._cal.span_of(self.watermark).ordinal  # type: ignore[arg-type]
        trailing = [self._days.get(newest_day - k) for k in range(PROJECTION_DAYS)]
        hours = sum(b[SECONDS] for b in trailing if b) / 3600.0
        if hours == 0:
            return out

        def rate(field: int) -> float:
            return sum(b[field] for b in trailing if b) / hours

        projected_pf = power_factor(
            bucket[KWH_Q] + rate(KWH_Q) * remaining_h, bucket[KVARH] + rate(KVARH) * remaining_h
        )
        projected_pct = (
            pf_adjustment_pct(projected_pf, standard)
            if projected_pf is not None and standard is not None
            else None
        )
        out["projected_power_factor"] = projected_pf
        out["projected_pf_adjustment_pct"] = projected_pct
        out["projected_pf_adjustment_cny"] = pf_adjustment_money(
            projected_pct, bucket[KWH] + rate(KWH) * remaining_h, tariff
        )
        return out

    def _consumption(self, newest_month: int) -> dict[int, float]:
        """kWh per billing month: metered where the month has readings, else the seeded value."""
        months = range(newest_month - MONTHS_KEPT + 1, newest_month + 1)
        out = {}
        for index in months:
            if index in self._months:
                out[index] = self._months[index][KWH]
            elif index in self._seeds:
                out[index] = self._seeds[index]
        return out

    # ---------------------------------------------------------------- serialisation

    def to_bytes(self) -> bytes:
        """Compact binary record: a small JSON header, then packed little-endian arrays."""
        self.compact()
        days = sorted(self._days)
        months = sorted(self._months)
        seeds = sorted(self._seeds)
        starts = sorted(self._slots)
        slot_layout, slot_starts = _pack_starts(starts)
        masks = [self._slots[s][1] for s in starts]
        header = {
            "v": 1,
            "wm": self.watermark,
            "end": self.data_end,
            "lat": self.lateness_s,
            "pc": self._pruned_cutoff,
            "meters": self._meters,
            "mi": [self._meter_interval.get(i, DEFAULT_INTERVAL_S) for i in range(len(self._meters))],
            "pm": [[i, n] for d in days for i, n in sorted(self._days[d][PER_METER].items())],
            "pmn": [len(self._days[d][PER_METER]) for d in days],
            "slots": slot_layout,
            "masks": None if all(m == 1 for m in masks) else masks,
        }
        parts = [
            array("i", days),
            array("d", [self._days[d][f] for d in days for f in (KWH, KWH_Q, KVARH, MAX_KW)]),
            array("i", [self._days[d][f] for d in days for f in (SECONDS, N)]),
            array("i", months),
            array("d", [self._months[m][f] for m in months for f in (KWH, KWH_Q, KVARH, MAX_KW)]),
            array("i", [self._months[m][f] for m in months for f in (SECONDS, N)]),
            array("i", seeds),
            array("d", [self._seeds[m] for m in seeds]),
            slot_starts,
            array("d", [self._slots[s][0] for s in starts]),
        ]
        head = orjson.dumps(header)
        out = [_MAGIC, struct.pack("<I", len(head)), head]
        for part in parts:
            if sys.byteorder == "big":
                part.byteswap()
            raw = part.tobytes()
            out += [struct.pack("<I", len(raw)), raw]
        return b"".join(out)

    @classmethod
    def from_bytes(cls, data: bytes, tz: ZoneInfo = DEFAULT_TZ, lateness_s: int | None = None) -> LoadState:
        """Restore a state written by `to_bytes`. The zone is configuration, not state; the
        lateness is the recorded one unless the configuration now says otherwise."""
        if data[:4] != _MAGIC:
            raise ValueError("not a LoadState record")
        (head_len,) = struct.unpack_from("<I", data, 4)
        header = orjson.loads(data[8 : 8 + head_len])
        offset = 8 + head_len
        parts = []
        for typecode in "idiidiidqd":
            (size,) = struct.unpack_from("<I", data, offset)
            part = array(typecode, data[offset + 4 : offset + 4 + size])
            if sys.byteorder == "big":
                part.byteswap()
            parts.append(part)
            offset += 4 + size
        days, day_f, day_i, months, month_f, month_i, seeds, seed_kwh, slot_starts, demands = parts
        state = cls(tz, header["lat"] if lateness_s is None else lateness_s)
        state.watermark, state.data_end = header["wm"], header["end"]
        state._pruned_cutoff = header["pc"]
        for m in header["meters"]:
            state._add_meter(m)
        state._meter_interval = dict(enumerate(header["mi"]))
        per_meter = iter(header["pm"])
        for k, ordinal in enumerate(days):
            counts = dict(next(per_meter) for _ in range(header["pmn"][k]))
            state._days[ordinal] = [*day_f[4 * k : 4 * k + 4], *day_i[2 * k : 2 * k + 2], counts]
        for k, index in enumerate(months):
            state._months[index] = [*month_f[4 * k : 4 * k + 4], *month_i[2 * k : 2 * k + 2]]
        state._seeds = dict(zip(seeds, seed_kwh, strict=True))
        starts = _unpack_starts(header["slots"], slot_starts)
        masks = header["masks"] or [1] * len(starts)
        state._slots = {s: [d, m] for s, d, m in zip(starts, demands, masks, strict=True)}
        return state


_MAGIC = b"GPL\x01"


def _pack_starts(starts: list[int]) -> tuple[list[Any], array[int]]:
    """Interval starts as a bit mask over their common step (192 starts of 15 min: 24 bytes);
    explicit int64s when the mask would be larger."""
    if not starts:
        return [0, 0, ""], array("q")
    base = starts[0]
    step = math.gcd(*(s - base for s in starts)) or 1
    bits = (starts[-1] - base) // step + 1
    if bits > 64 * len(starts):
        return [base, 0, ""], array("q", starts)
    mask = sum(1 << ((s - base) // step) for s in starts)
    return [base, step, mask.to_bytes((bits + 7) // 8, "little").hex()], array("q")


def _unpack_starts(layout: list[Any], explicit: array[int]) -> list[int]:
    base, step, hexmask = layout
    if step == 0:
        return list(explicit)
    mask = int.from_bytes(bytes.fromhex(hexmask), "little")
    return [base + k * step for k in range(mask.bit_length()) if mask >> k & 1]


def _window(buckets: list[list[Any] | None]) -> dict[str, Any]:
    kwh = kwh_q = kvarh = max_kw = 0.0
    seconds = n = 0
    for bucket in buckets:
        if bucket is None:
            continue
        kwh += bucket[KWH]
        kwh_q += bucket[KWH_Q]
        kvarh += bucket[KVARH]
        max_kw = max(max_kw, bucket[MAX_KW])
        seconds += bucket[SECONDS]
        n += bucket[N]
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


def _yoy_rate(consumption: dict[int, float], newest_month: int) -> float | None:
    """B41's x: (last 12 complete months - the 12 before) / the 12 before."""
    last = [consumption.get(newest_month - k) for k in range(1, 13)]
    before = [consumption.get(newest_month - k) for k in range(13, 25)]
    if None in last or None in before:
        return None
    base = sum(before)  # type: ignore[arg-type]
    return (sum(last) - base) / base if base > 0 else None  # type: ignore[arg-type]


def _yoy_kwh(consumption: dict[int, float], newest_month: int) -> float | None:
    """B42's x: last complete month - the same month a year earlier."""
    this, year_ago = consumption.get(newest_month - 1), consumption.get(newest_month - 13)
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
