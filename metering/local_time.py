"""Local days and billing months of epoch instants, cached per zone (the hot path asks per reading).

Days are keyed by their proleptic ordinal (``date.toordinal()``), billing months by a month
index ``year * 12 + month - 1``; a span is the half-open UTC interval [lo, hi) in epoch seconds,
so DST days are 23 or 25 hours long and nothing assumes 86 400 s.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from functools import lru_cache
from typing import NamedTuple, TypeVar
from zoneinfo import ZoneInfo

# Every current zone offset and DST rule moves in steps of 15 minutes, so a UTC quarter hour never
# straddles a local midnight; the cache key is that quarter hour, and each hit is still checked
# against the span (old LMT offsets with seconds simply miss the cache).
_CACHE_KEY_S = 900
_CACHE_MAX = 200_000
_K = TypeVar("_K")
_V = TypeVar("_V")


class DaySpan(NamedTuple):
    lo: int
    hi: int
    ordinal: int
    month: int  # year * 12 + month - 1


def month_index(year: int, month: int) -> int:
    return year * 12 + month - 1


def month_period(index: int) -> str:
    """ "YYYY-MM" of a month index."""
    return f"{index // 12:04d}-{index % 12 + 1:02d}"


def parse_period(period: str) -> int:
    year, month = period.split("-")
    if len(year) != 4 or len(month) != 2 or not 1 <= int(month) <= 12:
        raise ValueError(f"billing period must be 'YYYY-MM', got {period!r}")
    return month_index(int(year), int(month))


class LocalCalendar:
    """Day and month spans in one zone; shared by every customer of a worker (see `calendar_for`)."""

    def __init__(self, tz: ZoneInfo) -> None:
        self.tz = tz
        self._spans: dict[int, DaySpan] = {}
        self._last = DaySpan(0, 0, 0, 0)
        # Snapshots ask for these per customer and call; every customer of a worker shares the
        # zone and (on a 15-minute grid) mostly the same instants, so they are computed once.
        self._day_spans: dict[int, tuple[int, int]] = {}
        self._month_spans: dict[int, tuple[int, int]] = {}
        self._isos: dict[float, str] = {}

    def span_of(self, instant: int) -> DaySpan:
        span = self._spans.get(instant // _CACHE_KEY_S)
        if span is not None and span.lo <= instant < span.hi:
            return span
        span = self._last if self._last.lo <= instant < self._last.hi else self._compute(instant)
        self._last = span
        if len(self._spans) >= _CACHE_MAX:
            self._spans.clear()
        self._spans[instant // _CACHE_KEY_S] = span
        return span

    def _midnight(self, day: date) -> int:
        # fold=0: a midnight skipped by DST maps to the transition instant, a repeated one to its
        # first occurrence — in both cases the instant the local day really begins.
        return int(datetime(day.year, day.month, day.day, tzinfo=self.tz).timestamp())

    def _compute(self, instant: int) -> DaySpan:
        day = datetime.fromtimestamp(instant, self.tz).date()
        lo, hi = self._midnight(day), self._midnight(day + timedelta(days=1))
        return DaySpan(lo, hi, day.toordinal(), month_index(day.year, day.month))

    def day_span(self, ordinal: int) -> tuple[int, int]:
        span = self._day_spans.get(ordinal)
        if span is None:
            day = date.fromordinal(ordinal)
            span = self._midnight(day), self._midnight(day + timedelta(days=1))
            _bounded(self._day_spans)[ordinal] = span
        return span

    def month_span(self, index: int) -> tuple[int, int]:
        span = self._month_spans.get(index)
        if span is None:
            first = date(index // 12, index % 12 + 1, 1)
            nxt = date((index + 1) // 12, (index + 1) % 12 + 1, 1)
            span = self._midnight(first), self._midnight(nxt)
            _bounded(self._month_spans)[index] = span
        return span

    def iso(self, instant: float) -> str:
        text = self._isos.get(instant)
        if text is None:
            text = datetime.fromtimestamp(instant, self.tz).isoformat()
            _bounded(self._isos)[instant] = text
        return text


def _bounded(cache: dict[_K, _V]) -> dict[_K, _V]:
    """The cache, emptied first when full (a long-running worker sees ever new instants)."""
    if len(cache) >= _CACHE_MAX:
        cache.clear()
    return cache


@lru_cache(maxsize=32)
def calendar_for(tz: ZoneInfo) -> LocalCalendar:
    return LocalCalendar(tz)
