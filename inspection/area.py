"""Line loss of one transformer area (台区线损) per local day and over 30 days: state in, figures out.

The rule (DOMAIN.md 6, CONTRACT.md ``stats.area``): for a window, ``supplied_kwh`` is what the
area's summary meter (台区总表, ``area.readings``) measured; ``consumed_kwh`` is the sum of the
member customers' meters over the *same* intervals (only intervals the summary meter covered
count); ``loss_kwh = supplied - consumed``; ``loss_rate = loss_kwh / supplied`` (None without
supply). ``coverage`` = customer-intervals reported / customer-intervals expected over the covered
intervals, where a customer is expected in an interval when it is a member of the area at the
interval's start. A day is ``complete`` when the summary meter covered every interval of it and
coverage is at least ``COMPLETE_COVERAGE`` (0.98: DOMAIN.md 6, the acquisition systems' own
success-rate targets of 98-99 %).

Semantics, as for ``meter.readings`` (``metering/load.py``): an interval belongs to the local day
in which it *starts*; days are local (any ``ZoneInfo``, default Asia/Shanghai), so a DST day has
92 or 100 quarter hours. The area works on one interval grid (``interval_s``, 900 s): a reading of
another length, or not on the grid, is invalid (``interval_mismatch``, ``off_grid``).

- **Several meters of a customer** are added per interval; the customer-interval counts as
  reported when any of its meters reported it (a silent meter of a customer is the
  ``stopped_reporting`` rule's business, ``inspection/rules.py``). Up to
  ``MAX_METERS_PER_CUSTOMER`` (8) meters per customer within the kept days.
- **Exactly once**: each (meter, interval) and each summary-meter interval counts once: a
  duplicate, or an overlapping re-delivery (a block re-sent with earlier hours in front), changes
  nothing, whatever value it carries (the first delivery wins, as in ``LoadState``).
- **Lateness, one watermark per side**: the summary meter's mark is its newest interval start
  (``supply_mark``), the members' mark the newest interval start of any member meter
  (``member_mark``); an interval starting more than ``lateness_s`` (48 h) before *its own side's*
  mark is rejected (``late``). The sides arrive by different paths (the summary meter in one hop,
  the customers' energy in two: ``streams/agents/areas.py``), so in a backlog of several days sent
  at once one side may run days ahead of the other: judged against its own side, neither refuses
  the other's days. An interval within the lateness is applied and its day's figures change at
  once. A day whose end is behind the lateness cutoff of *both* sides (``min(supply_mark,
  member_mark) - lateness_s``) can change no more: it is *sealed* (its per-interval detail is
  replaced by its figures and per-customer totals), which keeps the record small. While the
  members have no input, nothing is sealed (their days hold only the summary meter: small). A
  summary meter that lags (or has no input) holds the members' days open for at most
  ``SUPPLY_HOLD_S`` (7 days, the alerts' history horizon) beyond the lateness: open days keep
  every customer-interval, so a summary meter that stopped for good must not keep the area's
  last 35 days open; its intervals older than that are ``late``.
  Within one side the order still matters: a member meter more than 48 h behind the newest member
  interval is refused (a backlog sent customer by customer rather than day by day would be).
  ``watermark`` is the newer of the two marks: the day reported by default, the kept days' end.
  A reading of a day no longer kept (35 days behind the watermark) is ``late`` too.
- **Membership over time**: the area knows from which instant each member belongs (``join``) and
  until when (``leave``). A customer moved to another area counts in the new one from the change
  on: readings of intervals outside its membership are refused (``not_member``), ``leave`` removes
  what it had reported from the change on (in the days not yet sealed), and the expected
  customer-intervals follow the membership. Membership must reach the area before the readings
  it admits; a sealed day is not recomputed.
- **Estimate of missing intervals** (complete days only, published apart from the metered sum,
  ``estimated_missing_kwh``): each missing customer-interval of a covered interval counts at that
  customer's mean kWh per reported interval of the same day; a customer that reported nothing
  that day, at its mean per reported interval over the kept days before it; a customer without
  any reported interval is not estimated (``estimate_unavailable_intervals``). ``loss_kwh_net``
  and ``loss_rate_net`` are the loss after the estimate.
- Windows: ``day`` (a local day, default the watermark's), ``d30`` (the 30 local days ending with
  it: sums of the days' figures; complete when every one of its days is), ``daily`` (those 30
  days, oldest first). 35 days are kept, as by ``LoadState``.

Nothing here reads a clock or does I/O. The record (`AreaState.to_bytes`) starts with a version
byte behind the magic ``GPA`` (3; a version-2 record, one watermark for both sides, is read and
written back as 3); an unknown version is refused, not converted.
"""

from __future__ import annotations

import math
import struct
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, Final
from zoneinfo import ZoneInfo

import numpy as np
import numpy.typing as npt

from metering.load import (
    APPLIED,
    DEFAULT_INTERVAL_S,
    DEFAULT_LATENESS_S,
    DEFAULT_TZ,
    DUPLICATE,
    INVALID,
    LATE,
    ApplyResult,
)
from metering.local_time import calendar_for

NOT_MEMBER: Final = "not_member"
DAYS_KEPT = 35
D30_DAYS = 30
COMPLETE_COVERAGE = 0.98
MAX_METERS_PER_CUSTOMER = 8
SUPPLY_HOLD_S = 7 * 86400  # how long a lagging summary meter holds the members' days open
_FOREVER = 1 << 62  # the end of an open membership

F64 = npt.NDArray[np.float64]
U8 = npt.NDArray[np.uint8]


@dataclass(frozen=True, slots=True)
class DayFigures:
    """One local day's figures (CONTRACT.md ``stats.area``; fields beyond it are additions)."""

    date: date
    intervals: int  # quarter hours in the local day (92/96/100)
    covered_intervals: int  # of them, covered by the summary meter
    supplied_kwh: float
    consumed_kwh: float  # metered only
    customers: int  # members at any time of the day
    customers_reporting: int  # of them, with at least one reported interval that day
    expected: int  # customer-intervals expected over the covered intervals
    reported: int  # of them, reported
    estimated_missing_kwh: float | None  # complete days only (module docstring)
    estimate_unavailable_intervals: int

    @property
    def loss_kwh(self) -> float:
        return self.supplied_kwh - self.consumed_kwh

    @property
    def loss_rate(self) -> float | None:
        return self.loss_kwh / self.supplied_kwh if self.supplied_kwh > 0 else None

    @property
    def coverage(self) -> float | None:
        return self.reported / self.expected if self.expected else None

    @property
    def complete(self) -> bool:
        coverage = self.coverage
        return (
            self.intervals > 0
            and self.covered_intervals == self.intervals
            and coverage is not None
            and coverage >= COMPLETE_COVERAGE
        )

    @property
    def loss_kwh_net(self) -> float | None:
        """The loss after the estimate of the missing customer-intervals (complete days)."""
        if self.estimated_missing_kwh is None:
            return None
        return self.loss_kwh - self.estimated_missing_kwh

    @property
    def loss_rate_net(self) -> float | None:
        net = self.loss_kwh_net
        return net / self.supplied_kwh if net is not None and self.supplied_kwh > 0 else None

    def to_dict(self) -> dict[str, Any]:
        return {
            "date": self.date.isoformat(),
            "supplied_kwh": self.supplied_kwh,
            "consumed_kwh": self.consumed_kwh,
            "loss_kwh": self.loss_kwh,
            "loss_rate": self.loss_rate,
            "customers": self.customers,
            "customers_reporting": self.customers_reporting,
            "coverage": self.coverage,
            "complete": self.complete,
            "intervals": self.intervals,
            "covered_intervals": self.covered_intervals,
            "customer_intervals_expected": self.expected,
            "customer_intervals_reported": self.reported,
            "estimated_missing_kwh": self.estimated_missing_kwh,
            "estimate_unavailable_intervals": self.estimate_unavailable_intervals,
            "loss_kwh_net": self.loss_kwh_net,
            "loss_rate_net": self.loss_rate_net,
        }


@dataclass(frozen=True, slots=True)
class CustomerDay:
    """One member's local day: its metered kWh (all its meters, every interval it reported as a
    member), the intervals it reported and was expected in (as a member), and whether its own
    day is complete (reported >= ``COMPLETE_COVERAGE`` of expected)."""

    date: date
    kwh: float
    reported: int
    expected: int

    @property
    def complete(self) -> bool:
        return self.expected > 0 and self.reported >= COMPLETE_COVERAGE * self.expected


class _OpenDay:
    """A day still within the lateness: per interval, the summary meter's kWh (NaN = not read)
    and per customer row its kWh and the bit mask of its meters counted (0 = not reported)."""

    __slots__ = ("kwh", "lo", "mask", "n", "ordinal", "supply")

    def __init__(self, ordinal: int, lo: int, n: int, customers: int) -> None:
        self.ordinal, self.lo, self.n = ordinal, lo, n
        self.supply: F64 = np.full(n, np.nan)
        self.kwh: F64 = np.zeros((customers, n))
        self.mask: U8 = np.zeros((customers, n), dtype=np.uint8)

    def grow(self, customers: int) -> None:
        extra = customers - self.kwh.shape[0]
        if extra > 0:
            self.kwh = np.vstack([self.kwh, np.zeros((extra, self.n))])
            self.mask = np.vstack([self.mask, np.zeros((extra, self.n), dtype=np.uint8)])


class _SealedDay:
    """A day behind the lateness: its figures and, per customer row, kWh (float32), intervals
    reported and expected (uint8: at most 100 a day)."""

    __slots__ = ("cust_expected", "cust_kwh", "cust_reported", "figures", "ordinal")

    def __init__(
        self,
        ordinal: int,
        figures: DayFigures,
        cust_kwh: npt.NDArray[np.float32],
        cust_reported: U8,
        cust_expected: U8,
    ) -> None:
        self.ordinal, self.figures = ordinal, figures
        self.cust_kwh, self.cust_reported, self.cust_expected = cust_kwh, cust_reported, cust_expected


@dataclass(frozen=True, slots=True)
class _Summary:
    figures: DayFigures
    cust_kwh: F64  # per customer row (as many rows as the state has customers)
    cust_reported: npt.NDArray[np.int64]
    cust_expected: npt.NDArray[np.int64]


class AreaState:
    """The line-loss state of one transformer area. Not thread-safe; one per area key."""

    __slots__ = (
        "_cal",
        "_days",
        "_ids",
        "_index",
        "_meter_end",
        "_meters",
        "_spans",
        "data_end",
        "interval_s",
        "lateness_s",
        "member_mark",
        "supply_end",
        "supply_mark",
        "tz",
        "watermark",
    )

    def __init__(
        self,
        tz: ZoneInfo = DEFAULT_TZ,
        lateness_s: int = DEFAULT_LATENESS_S,
        interval_s: int = DEFAULT_INTERVAL_S,
    ) -> None:
        if not 0 <= lateness_s <= 30 * 86400:
            raise ValueError("lateness_s must be within 0..30 days (35 days are kept)")
        if interval_s <= 0 or 3600 % interval_s:
            raise ValueError("interval_s must divide an hour")
        self.tz, self._cal = tz, calendar_for(tz)
        self.lateness_s, self.interval_s = lateness_s, interval_s
        self.watermark: int | None = None  # newest interval start of any input (epoch s)
        self.supply_mark: int | None = None  # newest summary-meter interval start (its lateness)
        self.member_mark: int | None = None  # newest member-meter interval start (theirs)
        self.data_end: int | None = None  # newest interval end applied: the event time
        self.supply_end: int | None = None  # newest summary-meter interval end
        self._ids: list[str] = []  # customer rows
        self._index: dict[str, int] = {}
        self._spans: list[list[tuple[int, int]]] = []  # per row: membership [since, until), sorted
        self._meters: list[list[str]] = []  # per row: its meters (bit i of a mask = meter i)
        self._meter_end: list[list[int]] = []  # per row and meter: newest interval end
        self._days: dict[int, _OpenDay | _SealedDay] = {}

    # ------------------------------------------------------------------ membership

    @property
    def customers(self) -> list[str]:
        return list(self._ids)

    def spans(self, customer_id: str) -> list[tuple[int, int | None]]:
        """The customer's membership periods [since, until) (until None: still a member)."""
        row = self._index.get(customer_id)
        if row is None:
            return []
        return [(lo, None if hi >= _FOREVER else hi) for lo, hi in self._spans[row]]

    def is_member(self, customer_id: str, instant: int) -> bool:
        row = self._index.get(customer_id)
        return row is not None and any(lo <= instant < hi for lo, hi in self._spans[row])

    def join(self, customer_id: str, since: int) -> None:
        """The customer belongs to the area from ``since`` on (idempotent)."""
        row = self._row(customer_id)
        spans = sorted([*self._spans[row], (since, _FOREVER)])
        merged: list[tuple[int, int]] = []
        for lo, hi in spans:
            if merged and lo <= merged[-1][1]:
                merged[-1] = (merged[-1][0], max(merged[-1][1], hi))
            else:
                merged.append((lo, hi))
        self._spans[row] = merged

    def leave(self, customer_id: str, until: int) -> int:
        """The customer belongs to the area no more from ``until`` on (moved elsewhere, or gone).
        What it reported from then on, in the days not sealed, is removed; returns how many
        customer-intervals that was."""
        row = self._index.get(customer_id)
        if row is None:
            return 0
        self._spans[row] = [(lo, min(hi, until)) for lo, hi in self._spans[row] if lo < until]
        removed = 0
        for day in self._days.values():
            if isinstance(day, _OpenDay) and day.lo + day.n * self.interval_s > until:
                first = max(0, -(-(until - day.lo) // self.interval_s))
                removed += int(np.count_nonzero(day.mask[row, first:]))
                day.kwh[row, first:] = 0.0
                day.mask[row, first:] = 0
        return removed

    def _row(self, customer_id: str) -> int:
        row = self._index.get(customer_id)
        if row is None:
            row = self._index[customer_id] = len(self._ids)
            self._ids.append(customer_id)
            self._spans.append([])
            self._meters.append([])
            self._meter_end.append([])
            for day in self._days.values():
                if isinstance(day, _OpenDay):
                    day.grow(len(self._ids))
        return row

    # ------------------------------------------------------------------ readings

    def apply_supply(
        self, start: int, kwh: Sequence[float | None], interval_s: int = DEFAULT_INTERVAL_S
    ) -> ApplyResult:
        """The summary meter's consecutive intervals from ``start`` (epoch s of the first
        interval's start; a single reading is a list of one, ``start = ts - interval_s``).
        One status per entry that is not None, in order."""
        return self._apply(None, "", start, kwh, interval_s)

    def apply_customer(
        self,
        customer_id: str,
        meter_id: str,
        start: int,
        kwh: Sequence[float | None],
        interval_s: int = DEFAULT_INTERVAL_S,
    ) -> ApplyResult:
        """A member's meter's consecutive intervals from ``start`` (as `apply_supply`)."""
        return self._apply(customer_id, meter_id, start, kwh, interval_s)

    def _apply(
        self,
        customer_id: str | None,
        meter_id: str,
        start: int,
        kwh: Sequence[float | None],
        interval_s: int,
    ) -> ApplyResult:
        indices = [i for i, value in enumerate(kwh) if value is not None]
        result = ApplyResult(statuses=[APPLIED] * len(indices))
        row = self._index.get(customer_id) if customer_id is not None else None
        supply = customer_id is None
        side = self.supply_mark if supply else self.member_mark
        mark = side if side is not None else -_FOREVER
        for k, i in enumerate(indices):
            value = float(kwh[i])  # type: ignore[arg-type]
            begin = start + i * interval_s
            error = self._invalid(value, begin, interval_s)
            if error is not None:
                result.statuses[k], result.reasons[k] = INVALID, error
                continue
            if begin > mark:
                mark = begin
                if supply:
                    self.supply_mark = begin
                else:
                    self.member_mark = begin
                self.watermark = max(self.watermark or begin, begin)
                if self._seal() and customer_id is not None:
                    row = self._index.get(customer_id)  # departed customers' rows went: renumbered
            elif begin < mark - self.lateness_s:
                result.statuses[k], result.reasons[k] = LATE, LATE
                continue
            day = self._open_day(begin)
            if day is None:  # sealed, or no longer kept: behind the other side's lateness too
                result.statuses[k], result.reasons[k] = LATE, LATE
                continue
            j = (begin - day.lo) // interval_s
            if customer_id is None:
                if not math.isnan(day.supply[j]):
                    result.statuses[k] = DUPLICATE
                    continue
                day.supply[j] = value
                self.supply_end = max(self.supply_end or begin + interval_s, begin + interval_s)
            else:
                if row is None or not any(lo <= begin < hi for lo, hi in self._spans[row]):
                    result.statuses[k], result.reasons[k] = NOT_MEMBER, NOT_MEMBER
                    continue
                meter = self._meter(row, meter_id)
                if meter is None:
                    result.statuses[k], result.reasons[k] = INVALID, "too_many_meters"
                    continue
                bit = 1 << meter
                if day.mask[row, j] & bit:
                    result.statuses[k] = DUPLICATE
                    continue
                day.mask[row, j] |= bit
                day.kwh[row, j] += value
                ends = self._meter_end[row]
                ends[meter] = max(ends[meter], begin + interval_s)
            self.data_end = max(self.data_end or begin + interval_s, begin + interval_s)
        return result

    def _invalid(self, value: float, begin: int, interval_s: int) -> str | None:
        if interval_s != self.interval_s:
            return "interval_mismatch"
        if not 0.0 <= value < math.inf:
            return "negative_energy" if value < 0 else "bad_value"
        if (begin - self._cal.span_of(begin).lo) % interval_s:
            return "off_grid"
        return None

    def _meter(self, row: int, meter_id: str) -> int | None:
        meters = self._meters[row]
        if meter_id in meters:
            return meters.index(meter_id)
        if len(meters) >= MAX_METERS_PER_CUSTOMER:
            return None
        meters.append(meter_id)
        self._meter_end[row].append(0)
        return len(meters) - 1

    def _open_day(self, begin: int) -> _OpenDay | None:
        """The open day of ``begin`` (created when new); None when that day is sealed or older
        than the kept days."""
        span = self._cal.span_of(begin)
        day = self._days.get(span.ordinal)
        if day is None:
            assert self.watermark is not None
            if span.ordinal <= self._cal.span_of(self.watermark).ordinal - DAYS_KEPT:
                return None
            day = _OpenDay(span.ordinal, span.lo, (span.hi - span.lo) // self.interval_s, len(self._ids))
            self._days[span.ordinal] = day
        return day if isinstance(day, _OpenDay) else None

    def seal_cutoff(self) -> int | None:
        """The instant before which nothing can change any more: the older side's mark less the
        lateness; None while the members have no input; a summary meter behind (or without
        input) holds it at most ``SUPPLY_HOLD_S`` behind the members' cutoff."""
        if self.member_mark is None:
            return None
        members = self.member_mark - self.lateness_s
        if self.supply_mark is None:
            return members - SUPPLY_HOLD_S
        return max(min(members, self.supply_mark - self.lateness_s), members - SUPPLY_HOLD_S)

    # ------------------------------------------------------------------ sealing, compaction

    def _seal(self) -> bool:
        """Seal the open days that end at or before `seal_cutoff` (nothing can reach them), drop
        the days beyond the kept ones and the customers that left before the oldest kept day;
        returns whether customer rows were renumbered."""
        ordinals = sorted(self._days)
        cutoff = self.seal_cutoff()
        to_seal = (
            []
            if cutoff is None
            else [
                o
                for o in ordinals
                if isinstance(d := self._days[o], _OpenDay) and d.lo + d.n * self.interval_s <= cutoff
            ]
        )
        if to_seal:
            summaries = dict(self._summaries(upto=to_seal[-1]))
            for o in to_seal:
                s = summaries[o]
                self._days[o] = _SealedDay(
                    o,
                    s.figures,
                    s.cust_kwh.astype(np.float32),
                    s.cust_reported.astype(np.uint8),
                    s.cust_expected.astype(np.uint8),
                )
        assert self.watermark is not None
        newest = self._cal.span_of(self.watermark).ordinal
        old = [o for o in ordinals if o <= newest - DAYS_KEPT]
        for o in old:
            del self._days[o]
        if to_seal or old:
            oldest_lo = self._cal.day_span(newest - DAYS_KEPT + 1)[0]
            keep = [r for r in range(len(self._ids)) if any(hi > oldest_lo for _, hi in self._spans[r])]
            if len(keep) < len(self._ids):
                self._keep_rows(keep)
                return True
        return False

    def _keep_rows(self, keep: list[int]) -> None:
        self._ids = [self._ids[r] for r in keep]
        self._index = {c: r for r, c in enumerate(self._ids)}
        self._spans = [self._spans[r] for r in keep]
        self._meters = [self._meters[r] for r in keep]
        self._meter_end = [self._meter_end[r] for r in keep]
        for day in self._days.values():
            if isinstance(day, _OpenDay):
                day.kwh, day.mask = day.kwh[keep], day.mask[keep]
            else:
                rows = [r for r in keep if r < len(day.cust_kwh)]
                day.cust_kwh = day.cust_kwh[rows]
                day.cust_reported = day.cust_reported[rows]
                day.cust_expected = day.cust_expected[rows]

    # ------------------------------------------------------------------ figures

    def _member_matrix(self, lo: int, n: int) -> npt.NDArray[np.bool_]:
        """(customers, n): member at each interval start of the day starting at ``lo``."""
        starts = lo + np.arange(n, dtype=np.int64) * self.interval_s
        member = np.zeros((len(self._ids), n), dtype=bool)
        flat = [(r, since, until) for r, spans in enumerate(self._spans) for since, until in spans]
        if flat:
            rows, since, until = (np.array(column, dtype=np.int64) for column in zip(*flat, strict=True))
            inside = (starts[None, :] >= since[:, None]) & (starts[None, :] < until[:, None])
            np.logical_or.at(member, rows, inside)
        return member

    def _summaries(self, upto: int | None = None) -> Iterator[tuple[int, _Summary]]:
        """Every kept day up to ordinal ``upto``, oldest first, with the trailing per-customer
        totals each open day's estimate needs."""
        rows = len(self._ids)
        trail_kwh, trail_n = np.zeros(rows), np.zeros(rows, dtype=np.int64)
        for o in sorted(self._days):
            if upto is not None and o > upto:
                break
            day = self._days[o]
            if isinstance(day, _SealedDay):
                s = _Summary(
                    day.figures,
                    _padded(day.cust_kwh.astype(np.float64), rows),
                    _padded(day.cust_reported.astype(np.int64), rows),
                    _padded(day.cust_expected.astype(np.int64), rows),
                )
            else:
                s = self._open_summary(day, trail_kwh, trail_n)
            trail_kwh += s.cust_kwh
            trail_n += s.cust_reported
            yield o, s

    def _open_summary(self, day: _OpenDay, trail_kwh: F64, trail_n: npt.NDArray[np.int64]) -> _Summary:
        day.grow(len(self._ids))
        covered = ~np.isnan(day.supply)
        member = self._member_matrix(day.lo, day.n)
        reported = day.mask != 0
        cust_kwh = day.kwh.sum(axis=1)
        cust_reported = reported.sum(axis=1).astype(np.int64)
        cust_expected = member.sum(axis=1).astype(np.int64)
        expected_cov = member[:, covered].sum(axis=1)
        reported_cov = reported[:, covered].sum(axis=1)
        figures = DayFigures(
            date=date.fromordinal(day.ordinal),
            intervals=day.n,
            covered_intervals=int(covered.sum()),
            supplied_kwh=float(day.supply[covered].sum()),
            consumed_kwh=float(day.kwh[:, covered].sum()),
            customers=int(np.count_nonzero(cust_expected)),
            customers_reporting=int(np.count_nonzero(cust_reported)),
            expected=int(expected_cov.sum()),
            reported=int(reported_cov.sum()),
            estimated_missing_kwh=None,
            estimate_unavailable_intervals=0,
        )
        if figures.complete:
            missing = (expected_cov - reported_cov).astype(np.float64)
            with np.errstate(divide="ignore", invalid="ignore"):
                rate = np.where(
                    cust_reported > 0,
                    cust_kwh / np.maximum(cust_reported, 1),
                    np.where(trail_n > 0, trail_kwh / np.maximum(trail_n, 1), np.nan),
                )
            known = ~np.isnan(rate) & (missing > 0)
            unknown = np.isnan(rate) & (missing > 0)
            figures = _replace_estimate(
                figures, float((missing[known] * rate[known]).sum()), int(missing[unknown].sum())
            )
        return _Summary(figures, cust_kwh, cust_reported, cust_expected)

    def days(self, last: int | None = None, count: int = D30_DAYS) -> list[DayFigures]:
        """The figures of the ``count`` local days ending with ordinal ``last`` (default: the
        watermark's day), oldest first; a day without any input is an empty, incomplete day."""
        last = self._anchor(last)
        return self._figures(last, count, self._window(last, count))

    def _window(self, last: int, count: int) -> dict[int, _Summary]:
        return {o: s for o, s in self._summaries(upto=last) if o > last - count}

    def _figures(self, last: int, count: int, window: dict[int, _Summary]) -> list[DayFigures]:
        return [
            s.figures if (s := window.get(o)) is not None else _empty_day(o, self._day_intervals(o))
            for o in range(last - count + 1, last + 1)
        ]

    def customer_days(self, last: int | None = None, count: int = D30_DAYS) -> dict[str, list[CustomerDay]]:
        """Per member customer, its ``count`` local days ending with ``last``, oldest first (a
        day without the customer as a member: 0 kWh, 0 expected)."""
        last = self._anchor(last)
        per_day = self._window(last, count)
        ordinals = range(last - count + 1, last + 1)
        dates = [date.fromordinal(o) for o in ordinals]
        rows = len(self._ids)
        kwh = np.zeros((rows, count))
        reported = np.zeros((rows, count), dtype=np.int64)
        expected = np.zeros((rows, count), dtype=np.int64)
        for k, o in enumerate(ordinals):
            s = per_day.get(o)
            if s is not None:
                kwh[:, k], reported[:, k], expected[:, k] = s.cust_kwh, s.cust_reported, s.cust_expected
        return {
            customer: [
                CustomerDay(*day)
                for day in zip(
                    dates, kwh[r].tolist(), reported[r].tolist(), expected[r].tolist(), strict=True
                )
            ]
            for r, customer in enumerate(self._ids)
        }

    def meters_last_end(self) -> dict[str, dict[str, int]]:
        """Per customer, per meter: the end of its newest interval applied (epoch s), for the
        stopped_reporting rule. Meters seen in the kept days only."""
        return {
            c: dict(zip(self._meters[r], self._meter_end[r], strict=True)) for r, c in enumerate(self._ids)
        }

    def stats_document(self, transformer_area: str, last: int | None = None) -> dict[str, Any]:
        """The ``stats.area`` document (CONTRACT.md): ``day`` (ordinal ``last``, default the
        watermark's day), ``d30`` and ``daily`` (the 30 days ending with it, oldest first)."""
        last = self._anchor(last)
        window = self._window(last, D30_DAYS)
        days = self._figures(last, D30_DAYS, window)
        day = days[-1]
        rows = len(self._ids)
        members, reporting = np.zeros(rows, dtype=bool), np.zeros(rows, dtype=bool)
        for s in window.values():
            members |= s.cust_expected > 0
            reporting |= s.cust_reported > 0
        d30 = _window_sum(days, int(members.sum()), int(reporting.sum()))
        return {
            "transformer_area": transformer_area,
            "ts": datetime.fromtimestamp(self.data_end, self.tz).isoformat() if self.data_end else None,
            "day": day.to_dict(),
            "d30": d30,
            "daily": [
                {
                    "date": d.date.isoformat(),
                    "supplied_kwh": d.supplied_kwh,
                    "consumed_kwh": d.consumed_kwh,
                    "loss_kwh": d.loss_kwh,
                    "loss_rate": d.loss_rate,
                    "coverage": d.coverage,
                    "complete": d.complete,
                    "estimated_missing_kwh": d.estimated_missing_kwh,
                }
                for d in days
            ],
        }

    def _anchor(self, last: int | None) -> int:
        if last is not None:
            return last
        if self.watermark is None:
            raise ValueError("an area without readings needs the day to report")
        return self._cal.span_of(self.watermark).ordinal

    def _day_intervals(self, ordinal: int) -> int:
        lo, hi = self._cal.day_span(ordinal)
        return (hi - lo) // self.interval_s

    # ------------------------------------------------------------------ serialisation

    def to_bytes(self) -> bytes:
        """The record: `_HEAD`, then per customer row its id, membership spans, meters and their
        newest interval ends, then per day (oldest first) either the open detail (summary meter
        float64 per interval; the rows with readings: their index and their kWh and meter masks
        per interval, `_encode_cells`) or the sealed figures and per-row totals; little-endian
        throughout."""
        parts: list[bytes] = []
        for r, customer in enumerate(self._ids):
            cid = customer.encode()
            parts.append(struct.pack("<HH", len(cid), len(self._spans[r])) + cid)
            parts.append(np.asarray(self._spans[r], dtype="<i8").reshape(-1).tobytes())
            parts.append(struct.pack("<B", len(self._meters[r])))
            for meter in self._meters[r]:
                mid = meter.encode()
                parts.append(struct.pack("<H", len(mid)) + mid)
            parts.append(np.asarray(self._meter_end[r], dtype="<i8").tobytes())
        for o in sorted(self._days):
            day = self._days[o]
            if isinstance(day, _OpenDay):
                day.grow(len(self._ids))
                rows = np.flatnonzero(day.mask.any(axis=1)).astype("<u4")
                parts.append(struct.pack("<qBqII", o, 0, day.lo, day.n, len(rows)))
                parts.append(day.supply.astype("<f8").tobytes())
                parts.append(rows.tobytes())
                parts.append(_encode_cells(day.kwh[rows], day.mask[rows]))
            else:
                f = day.figures
                est = math.nan if f.estimated_missing_kwh is None else f.estimated_missing_kwh
                parts.append(struct.pack("<qBI", o, 1, len(day.cust_kwh)))
                parts.append(
                    _SEALED.pack(
                        f.intervals,
                        f.covered_intervals,
                        f.supplied_kwh,
                        f.consumed_kwh,
                        f.customers,
                        f.customers_reporting,
                        f.expected,
                        f.reported,
                        est,
                        f.estimate_unavailable_intervals,
                    )
                )
                parts.append(day.cust_kwh.astype("<f4").tobytes())
                parts.append(day.cust_reported.tobytes())
                parts.append(day.cust_expected.tobytes())
        flags = (
            (1 if self.watermark is not None else 0)
            | (2 if self.data_end is not None else 0)
            | (4 if self.supply_end is not None else 0)
            | (8 if self.supply_mark is not None else 0)
            | (16 if self.member_mark is not None else 0)
        )
        head = _HEAD.pack(
            _MAGIC,
            _VERSION,
            flags,
            self.watermark or 0,
            self.data_end or 0,
            self.supply_end or 0,
            self.supply_mark or 0,
            self.member_mark or 0,
            self.lateness_s,
            self.interval_s,
            len(self._ids),
            len(self._days),
        )
        return head + b"".join(parts)

    @classmethod
    def from_bytes(cls, data: bytes, tz: ZoneInfo = DEFAULT_TZ) -> AreaState:
        """Restore a state written by `to_bytes` (this version or version 2, whose one watermark
        becomes both sides' marks: what it sealed stays consistent, and each side's mark moves on
        from there); the zone is configuration, not state."""
        data = bytes(data)
        if len(data) < 4 or data[:3] != _MAGIC:
            raise ValueError("not an AreaState record")
        version = data[3]
        if version == _VERSION and len(data) >= _HEAD.size:
            head = _HEAD.unpack_from(data)
            size = _HEAD.size
        elif version == 2 and len(data) >= _HEAD_V2.size:
            m, v, f, wm, end, supply_end, *rest = _HEAD_V2.unpack_from(data)
            head = (m, v, f | (24 if f & 1 else 0), wm, end, supply_end, wm, wm, *rest)
            size = _HEAD_V2.size
        elif version in (2, _VERSION):
            raise ValueError("truncated AreaState record")
        else:
            raise ValueError(
                f"AreaState record version {version} cannot be read (this code reads 2 and {_VERSION})"
            )
        _m, _v, flags, watermark, data_end, supply_end, supply_mark, member_mark, lateness_s, interval_s = (
            head[:10]
        )
        rows, days = head[10:]
        state = cls(tz, lateness_s, interval_s)
        state.watermark = watermark if flags & 1 else None
        state.data_end = data_end if flags & 2 else None
        state.supply_end = supply_end if flags & 4 else None
        state.supply_mark = supply_mark if flags & 8 else None
        state.member_mark = member_mark if flags & 16 else None
        read = _Reader(data, size)
        for _ in range(rows):
            id_len, n_spans = read.unpack("<HH")
            row = state._row(read.take(id_len).decode())
            flat = read.array("<i8", 2 * n_spans).tolist()
            state._spans[row] = [(flat[k], flat[k + 1]) for k in range(0, len(flat), 2)]
            (n_meters,) = read.unpack("<B")
            state._meters[row] = [read.take(read.unpack("<H")[0]).decode() for _ in range(n_meters)]
            state._meter_end[row] = read.array("<i8", n_meters).tolist()
        for _ in range(days):
            ordinal, kind = read.unpack("<qB")
            if kind == 0:
                lo, n, k = read.unpack("<qII")
                day = _OpenDay(ordinal, lo, n, rows)
                day.supply = read.array("<f8", n).astype(np.float64)
                at = read.array("<u4", k).astype(np.int64)
                day.kwh[at], day.mask[at] = _decode_cells(read, k, n)
                state._days[ordinal] = day
            else:
                (k,) = read.unpack("<I")
                n, covered, supplied, consumed, customers, reporting, expected, reported, est, unavailable = (
                    read.unpack(_SEALED.format)
                )
                figures = DayFigures(
                    date.fromordinal(ordinal),
                    n,
                    covered,
                    supplied,
                    consumed,
                    customers,
                    reporting,
                    expected,
                    reported,
                    None if math.isnan(est) else est,
                    unavailable,
                )
                state._days[ordinal] = _SealedDay(
                    ordinal,
                    figures,
                    read.array("<f4", k).astype(np.float32),
                    read.array("u1", k).astype(np.uint8),
                    read.array("u1", k).astype(np.uint8),
                )
        read.finish()
        return state


_MAGIC = b"GPA"
# 3: a watermark per side (supply_mark, member_mark); 2: one watermark (read, converted);
# open-day cells in `_CELL_GROUPS` since 2 (1: float64 and a mask byte each, never deployed)
_VERSION = 3
_HEAD = struct.Struct("<3sBBqqqqqqIII")
_HEAD_V2 = struct.Struct("<3sBBqqqqIII")
_SEALED = struct.Struct("<IIddIIIIdI")


# How an open day's customer rows are written (`_encode_cells`): meters report kWh with at most
# 4 decimals, so a row whose every cell is exactly k / 10,000 kWh is written as the integers k
# (int16 while they fit, a residential quarter hour almost always does; else int32), any other
# row as float64; a row whose mask is 0/1 (one meter) as bits. A residential customer-day is 204
# bytes instead of 864; decoding gives back the very same doubles (checked when encoding).
_CELL_SCALE = 10_000.0
_CELL_GROUPS = [(values, bits) for values in ("<f8", "<i2", "<i4") for bits in (False, True)]


def _encode_cells(kwh: F64, mask: U8) -> bytes:
    """Rows of (kWh, meter mask) cells: a group byte per row, then per group (in `_CELL_GROUPS`
    order) its rows' values and masks."""
    if not len(kwh):
        return b""
    scaled = np.round(kwh * _CELL_SCALE)
    exact = (scaled / _CELL_SCALE == kwh).all(axis=1)
    biggest = np.abs(scaled).max(axis=1)
    code = np.where(exact & (biggest <= 32_767), 1, np.where(exact & (biggest < 2**31), 2, 0))
    group = code * 2 + (mask <= 1).all(axis=1)
    parts = [group.astype(np.uint8).tobytes()]
    for g, (dtype, bits) in enumerate(_CELL_GROUPS):
        chosen = group == g
        if chosen.any():
            values = kwh[chosen] if dtype == "<f8" else scaled[chosen]
            parts.append(values.astype(dtype).tobytes())
            parts.append(np.packbits(mask[chosen], axis=1).tobytes() if bits else mask[chosen].tobytes())
    return b"".join(parts)


def _decode_cells(read: _Reader, rows: int, n: int) -> tuple[F64, U8]:
    kwh, mask = np.zeros((rows, n)), np.zeros((rows, n), dtype=np.uint8)
    if not rows:
        return kwh, mask
    group = read.array("u1", rows)
    for g, (dtype, bits) in enumerate(_CELL_GROUPS):
        chosen = group == g
        count = int(chosen.sum())
        if count:
            values = read.array(dtype, count * n).astype(np.float64).reshape(count, n)
            kwh[chosen] = values if dtype == "<f8" else values / _CELL_SCALE
            if bits:
                packed = read.array("u1", count * ((n + 7) // 8)).reshape(count, -1)
                mask[chosen] = np.unpackbits(packed, axis=1)[:, :n]
            else:
                mask[chosen] = read.array("u1", count * n).reshape(count, n)
    return kwh, mask


class _Reader:
    """Takes the consecutive parts of a record, refusing a truncated one."""

    __slots__ = ("data", "pos")

    def __init__(self, data: bytes, pos: int) -> None:
        self.data, self.pos = data, pos

    def take(self, size: int) -> bytes:
        part = self.data[self.pos : self.pos + size]
        if len(part) != size:
            raise ValueError("truncated AreaState record")
        self.pos += size
        return part

    def unpack(self, fmt: str) -> tuple[Any, ...]:
        return struct.unpack(fmt, self.take(struct.calcsize(fmt)))

    def array(self, dtype: str, count: int) -> npt.NDArray[Any]:
        return np.frombuffer(self.take(np.dtype(dtype).itemsize * count), dtype=dtype)

    def finish(self) -> None:
        if self.pos != len(self.data):
            raise ValueError("trailing bytes after an AreaState record")


def _padded(values: npt.NDArray[Any], rows: int) -> npt.NDArray[Any]:
    """Per-row totals of a sealed day, with zeros for the rows added after it was sealed."""
    if len(values) >= rows:
        return values[:rows]
    return np.concatenate([values, np.zeros(rows - len(values), dtype=values.dtype)])


def _replace_estimate(figures: DayFigures, estimated: float, unavailable: int) -> DayFigures:
    return DayFigures(
        figures.date,
        figures.intervals,
        figures.covered_intervals,
        figures.supplied_kwh,
        figures.consumed_kwh,
        figures.customers,
        figures.customers_reporting,
        figures.expected,
        figures.reported,
        estimated,
        unavailable,
    )


def _empty_day(ordinal: int, intervals: int) -> DayFigures:
    return DayFigures(date.fromordinal(ordinal), intervals, 0, 0.0, 0.0, 0, 0, 0, 0, None, 0)


def _window_sum(days: list[DayFigures], customers: int, reporting: int) -> dict[str, Any]:
    """The ``d30`` object: the days' figures added (estimates of the complete days only)."""
    supplied = sum(d.supplied_kwh for d in days)
    consumed = sum(d.consumed_kwh for d in days)
    expected = sum(d.expected for d in days)
    reported = sum(d.reported for d in days)
    estimates = [d.estimated_missing_kwh for d in days if d.estimated_missing_kwh is not None]
    estimated = sum(estimates) if estimates else None
    loss = supplied - consumed
    return {
        "from": days[0].date.isoformat(),
        "to": days[-1].date.isoformat(),
        "supplied_kwh": supplied,
        "consumed_kwh": consumed,
        "loss_kwh": loss,
        "loss_rate": loss / supplied if supplied > 0 else None,
        "customers": customers,
        "customers_reporting": reporting,
        "coverage": reported / expected if expected else None,
        "complete": all(d.complete for d in days),
        "complete_days": sum(1 for d in days if d.complete),
        "customer_intervals_expected": expected,
        "customer_intervals_reported": reported,
        "estimated_missing_kwh": estimated,
    }


__all__ = [
    "COMPLETE_COVERAGE",
    "D30_DAYS",
    "DAYS_KEPT",
    "NOT_MEMBER",
    "SUPPLY_HOLD_S",
    "AreaState",
    "CustomerDay",
    "DayFigures",
]
