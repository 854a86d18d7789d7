"""Time helpers: the simulator keeps instants as integer epoch seconds and formats at the edge."""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

INTERVAL_S = 900
UTC = ZoneInfo("UTC")


def align_down(epoch_s: int, step_s: int = INTERVAL_S) -> int:
    """Floor to a multiple of step_s. Every real UTC offset is a multiple of 15 minutes, so a
    15-minute boundary in UTC is one in local time too."""
    return epoch_s - epoch_s % step_s


def rfc3339(epoch_s: float, tz: ZoneInfo) -> str:
    """`2026-03-01T10:15:00+08:00` (seconds precision, offset of tz at that instant)."""
    return datetime.fromtimestamp(int(epoch_s), tz).isoformat()


def local(epoch_s: float, tz: ZoneInfo) -> datetime:
    return datetime.fromtimestamp(epoch_s, tz)


def to_epoch(dt: datetime) -> int:
    if dt.tzinfo is None:
        raise ValueError("naive datetime: give a time zone")
    return int(dt.timestamp())


def month_start(year: int, month: int, tz: ZoneInfo) -> int:
    """Epoch of local midnight on the first of the month."""
    return int(datetime(year, month, 1, tzinfo=tz).timestamp())


def add_months(year: int, month: int, k: int) -> tuple[int, int]:
    m = year * 12 + (month - 1) + k
    return m // 12, m % 12 + 1


def date_str(epoch_s: float, tz: ZoneInfo, plus_days: int = 0) -> str:
    return (datetime.fromtimestamp(epoch_s, tz) + timedelta(days=plus_days)).date().isoformat()
