"""Independent reference for the metering statistics, computed from the raw event lists with numpy.

It shares no code with ``metering/`` (only the PF table, which has its own hand-written tests):
no buckets, no caches, no pruning — every window is recomputed from all accepted readings.
"""

from __future__ import annotations

import math
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np

EPOCH_ORDINAL = date(1970, 1, 1).toordinal()


def _local_offsets(starts: np.ndarray, tz: ZoneInfo) -> np.ndarray:
    uniq, inverse = np.unique(starts, return_inverse=True)
    # the offset in force at each instant (fromtimestamp resolves it from UTC, no wall-time guess)
    offsets = np.array(
        [int(datetime.fromtimestamp(int(s), tz).utcoffset().total_seconds()) for s in uniq],  # type: ignore[union-attr]
        dtype=np.int64,
    )
    return offsets[inverse]


def accepted_readings(batches: list[list[dict[str, Any]]], lateness_s: int) -> dict[str, np.ndarray]:
    """Arrays of the readings a correct LoadState counts: not late, first of each (meter, start)."""
    rows = [(b, r) for b, batch in enumerate(batches) for r in batch]
    ts = np.array([r["ts"] for _, r in rows], dtype=np.int64)
    interval = np.array([r.get("interval_s") or 900 for _, r in rows], dtype=np.int64)
    start = ts - interval
    # the watermark moves with every reading in arrival order, whatever the batches
    late = start < np.maximum.accumulate(start) - lateness_s
    meters, meter_code = np.unique([r["meter_id"] for _, r in rows], return_inverse=True)
    key = meter_code.astype(np.int64) * (1 << 40) + start
    candidates = np.flatnonzero(~late)
    _, first = np.unique(key[candidates], return_index=True)
    keep = np.sort(candidates[first])

    def column(name: str) -> np.ndarray:
        return np.array([np.nan if r.get(name) is None else r[name] for _, r in rows], dtype=np.float64)

    kvarh, kvarh_export, demand = column("kvarh"), column("kvarh_export"), column("demand_kw")
    kwh = column("kwh")
    has_q = ~(np.isnan(kvarh) & np.isnan(kvarh_export))
    return {
        "late": late,
        "index": keep,
        "start": start[keep],
        "interval": interval[keep],
        "meter": meters[meter_code[keep]],
        "kwh": kwh[keep],
        "kwh_q": np.where(has_q, kwh, 0.0)[keep],
        "kvarh": (np.abs(np.nan_to_num(kvarh)) + np.abs(np.nan_to_num(kvarh_export)))[keep],
        "kw": np.where(np.isnan(demand), kwh * 3600.0 / interval, demand)[keep],
    }


def _pf(kwh: float, kvarh: float) -> float | None:
    return None if kwh == 0 and kvarh == 0 else kwh / math.sqrt(kwh * kwh + kvarh * kvarh)


def _window(acc: dict[str, np.ndarray], mask: np.ndarray) -> dict[str, Any]:
    starts = acc["start"][mask]
    uniq, inverse = np.unique(starts, return_inverse=True)
    coincident = np.bincount(inverse, weights=acc["kw"][mask]) if len(uniq) else np.zeros(0)
    interval_of = np.zeros(len(uniq), dtype=np.int64)
    interval_of[inverse] = acc["interval"][mask]
    hours = float(interval_of.sum()) / 3600.0
    kwh = float(acc["kwh"][mask].sum())
    max_kw = float(coincident.max()) if len(uniq) else 0.0
    avg_kw = kwh / hours if hours else 0.0
    return {
        "kwh": kwh,
        "kvarh": float(acc["kvarh"][mask].sum()),
        "avg_kw": avg_kw,
        "max_kw": max_kw,
        "load_factor": avg_kw / max_kw if max_kw > 0 else None,
        "power_factor": _pf(float(acc["kwh_q"][mask].sum()), float(acc["kvarh"][mask].sum())),
        "hours": hours,
        "intervals": int(mask.sum()),
    }


def _month_of(local_seconds: np.ndarray) -> np.ndarray:
    months = (local_seconds // 86400).astype("datetime64[D]").astype("datetime64[M]").astype(np.int64)
    return months + 1970 * 12  # year * 12 + month - 1


def _month_end(month: int, tz: ZoneInfo) -> float:
    nxt = month + 1
    return datetime(nxt // 12, nxt % 12 + 1, 1, tzinfo=tz).timestamp()


def reference_load(
    batches: list[list[dict[str, Any]]],
    tz: ZoneInfo,
    lateness_s: int = 48 * 3600,
    seeds: dict[str, float] | None = None,
    *,
    now: float,
) -> dict[str, Any]:
    """The statistics of the accepted readings, as of the wall-clock instant ``now`` (epoch s).

    ``now`` only closes the month: once the newest reading's month has ended on the wall clock
    (``now >= month end``), there is nothing left to project (projection None), even while that
    month's last intervals have not arrived; before, its remaining hours (from the newest interval
    end) are projected at the trailing 7 days' rates. Every caller says which instant it means.
    """
    acc = accepted_readings(batches, lateness_s)
    local = acc["start"] + _local_offsets(acc["start"], tz)
    day = local // 86400 + EPOCH_ORDINAL
    month = _month_of(local)
    newest = int(np.argmax(acc["start"]))
    newest_day, newest_month = int(day[newest]), int(month[newest])
    out: dict[str, Any] = {
        "day": _window(acc, day == newest_day),
        "d30": _window(acc, (day > newest_day - 30) & (day <= newest_day)),
        "month": _window(acc, month == newest_month),
        "period": f"{newest_month // 12:04d}-{newest_month % 12 + 1:02d}",
    }
    # hour-of-day profile of the d30 days: kWh of the intervals starting in each local hour /
    # the hours covered by them (an interval start covers its time once, whatever the meters)
    in30 = (day > newest_day - 30) & (day <= newest_day)
    hour = (local % 86400) // 3600
    hourly: list[float | None] = []
    for h in range(24):
        mask = in30 & (hour == h)
        starts, first = np.unique(acc["start"][mask], return_index=True)
        seconds = int(acc["interval"][mask][first].sum()) if len(starts) else 0
        hourly.append(float(acc["kwh"][mask].sum()) / (seconds / 3600.0) if seconds else None)
    out["hourly_kw"] = hourly
    # projection: trailing 7 days' average rates over the rest of the month
    trailing = (day > newest_day - 7) & (day <= newest_day)
    t7 = _window(acc, trailing)
    data_end = int((acc["start"] + acc["interval"]).max())
    remaining_h = max(0.0, _month_end(newest_month, tz) - data_end) / 3600.0
    in_month = month == newest_month
    kwh_q_m, kvarh_m = float(acc["kwh_q"][in_month].sum()), float(acc["kvarh"][in_month].sum())
    hours7 = t7["hours"]
    out["projected_kwh"] = out["month"]["kwh"] + t7["kwh"] / hours7 * remaining_h
    out["projected_power_factor"] = _pf(
        kwh_q_m + float(acc["kwh_q"][trailing].sum()) / hours7 * remaining_h,
        kvarh_m + t7["kvarh"] / hours7 * remaining_h,
    )
    if now >= _month_end(newest_month, tz):  # the month has ended on the wall clock: closed
        out["projected_kwh"] = out["projected_power_factor"] = None
    out["data_end"] = data_end
    # consumption per billing month (26 kept), seeds where a month has no readings
    consumption: dict[int, float] = {}
    for m in range(newest_month - 25, newest_month + 1):
        if np.any(month == m):
            consumption[m] = float(acc["kwh"][month == m].sum())
    for period, kwh in (seeds or {}).items():
        y, mo = map(int, period.split("-"))
        m = y * 12 + mo - 1
        if newest_month - 25 <= m <= newest_month and m not in consumption:
            consumption[m] = kwh
    out["consumption"] = {f"{m // 12:04d}-{m % 12 + 1:02d}": v for m, v in sorted(consumption.items())}
    last12 = [consumption.get(newest_month - k) for k in range(1, 13)]
    prior12 = [consumption.get(newest_month - k) for k in range(13, 25)]
    if None in last12 or None in prior12 or sum(prior12) == 0:  # type: ignore[arg-type]
        out["yoy_growth_rate"] = None
    else:
        out["yoy_growth_rate"] = (sum(last12) - sum(prior12)) / sum(prior12)  # type: ignore[arg-type]
    a, b = consumption.get(newest_month - 1), consumption.get(newest_month - 13)
    out["yoy_growth_kwh"] = None if a is None or b is None else a - b
    return out


def reference_gaps(
    batches: list[list[dict[str, Any]]], tz: ZoneInfo, lateness_s: int = 48 * 3600, days: int = 7
) -> list[dict[str, Any]]:
    """Meter-days among the last ``days`` local days (ending with the newest reading's) with
    fewer accepted readings than the day's intervals, as ``stats.customer`` lists them: day by
    day, meters in the order they first reported. A meter is expected from its first day with
    readings; on the newest day only the intervals starting up to the newest start. Assumes
    every local midnight exists in ``tz`` and the data spans less than the state's 35 days."""
    acc = accepted_readings(batches, lateness_s)
    local = acc["start"] + _local_offsets(acc["start"], tz)
    day = local // 86400 + EPOCH_ORDINAL
    watermark = int(acc["start"].max())
    newest_day = int(day[np.argmax(acc["start"])])
    meters = list(dict.fromkeys(acc["meter"].tolist()))  # first-report order
    out = []
    for ordinal in range(newest_day - days + 1, newest_day + 1):
        d = date.fromordinal(ordinal)
        lo = int(datetime(d.year, d.month, d.day, tzinfo=tz).timestamp())
        nd = d + timedelta(days=1)
        hi = int(datetime(nd.year, nd.month, nd.day, tzinfo=tz).timestamp())
        for meter in meters:
            mine = acc["meter"] == meter
            if ordinal < int(day[mine].min()):
                continue
            interval = int(acc["interval"][mine][0])
            expected = math.ceil((min(hi, watermark + 1) - lo) / interval)
            found = int(np.sum(mine & (day == ordinal)))
            if found < expected:
                out.append({"date": d.isoformat(), "meter_id": meter, "expected": expected, "found": found})
    return out


# ------------------------------------------------------------------------------------- arrears


def reference_arrears(events: list[dict[str, Any]], as_of: datetime, tz: ZoneInfo) -> dict[str, Any]:
    """Replay the ledger rules on plain dicts (no pruning, no fen buckets) and count the windows
    straight from the event list."""
    unique: dict[str, dict[str, Any]] = {}
    for e in events:
        unique.setdefault(e["event_id"], e)
    evs = list(unique.values())
    open_items: list[dict[str, Any]] = []  # {"key", "type", "due": date, "open": cents}
    stack: list[list[Any]] = []
    credit = 0

    def local_date(ts: datetime) -> date:
        return ts.astimezone(tz).date()

    def settle(money: int, first_bill: str | None) -> int:
        items = sorted((i for i in open_items if i["open"] > 0), key=lambda i: i["due"])
        items.sort(key=lambda i: not (i["key"] == first_bill and i["type"] == "bill"))
        for item in items:
            pay = min(money, item["open"])
            if pay:
                item["open"] -= pay
                money -= pay
                stack.append([item, pay])
        return money

    for e in evs:
        cents = round(e["amount"] * 100)
        kind, day = e["type"], local_date(e["ts"])
        if kind == "bill" or kind in ("late_fee", "theft_penalty") or (kind == "adjustment" and cents > 0):
            due = date.fromisoformat(str(e["due_date"])) if kind == "bill" else day
            key = e.get("bill_id") or e["event_id"] if kind == "bill" else e["event_id"]
            open_items.append({"key": key, "type": kind, "due": due, "open": cents})
            credit = settle(credit, None)
        elif kind == "payment":
            credit = settle(credit + cents, e.get("bill_id"))
        elif kind == "adjustment":
            credit = settle(credit - cents, None)
        else:  # payment_reversal: credit first, then LIFO re-opening
            from_credit = min(credit, cents)
            credit -= from_credit
            left = cents - from_credit
            while left and stack:
                item, pay = stack[-1]
                back = min(left, pay)
                item["open"] += back
                left -= back
                if back == pay:
                    stack.pop()
                else:
                    stack[-1][1] = pay - back
            if left:
                open_items.append({"key": e["event_id"], "type": kind, "due": day, "open": left})

    today = local_date(as_of)
    buckets = {"0_30": 0, "31_60": 0, "61_90": 0, "over_90": 0}
    dpd = [(today - i["due"]).days for i in open_items if i["open"] > 0]
    for item in open_items:
        d = (today - item["due"]).days
        if item["open"] > 0 and d > 0:
            name = "0_30" if d <= 30 else "31_60" if d <= 60 else "61_90" if d <= 90 else "over_90"
            buckets[name] += item["open"]
    try:
        year_ago = today.replace(year=today.year - 1)
    except ValueError:
        year_ago = today.replace(year=today.year - 1, day=28)

    ts = np.array([e["ts"].timestamp() for e in evs])
    days = np.array([local_date(e["ts"]).toordinal() for e in evs])
    months = np.array([local_date(e["ts"]).year * 12 + local_date(e["ts"]).month - 1 for e in evs])
    kinds = np.array([e["type"] for e in evs])
    amounts = np.array([round(e["amount"] * 100) for e in evs])
    overdue = [i for i in open_items if i["open"] > 0 and (today - i["due"]).days > 0]
    oldest = max(overdue, key=lambda i: (today - i["due"]).days, default=None)  # first of equals
    in12 = (ts <= as_of.timestamp()) & (days > year_ago.toordinal())
    now_m = today.year * 12 + today.month - 1
    in36 = (months > now_m - 36) & (months <= now_m)
    return {
        "outstanding": sum(i["open"] for i in open_items) / 100,
        "oldest_overdue_days": max([d for d in dpd if d > 0], default=0),
        "overdue_buckets": {k: v / 100 for k, v in buckets.items()},
        "late_fees_12m": int(np.sum(in12 & (kinds == "late_fee"))),
        "reversals_12m": int(np.sum(in12 & (kinds == "payment_reversal"))),
        "theft_12m": int(amounts[in12 & (kinds == "theft_penalty")].sum()) / 100,
        "paid_36m": int(
            amounts[in36 & (kinds == "payment")].sum() - amounts[in36 & (kinds == "payment_reversal")].sum()
        )
        / 100,
        "due_36m": int(amounts[in36 & (kinds == "bill")].sum()) / 100,
        "late_fee_amount_36m": int(amounts[in36 & (kinds == "late_fee")].sum()) / 100,
        "credit": credit / 100,
        "bills_open": sum(1 for i in open_items if i["type"] == "bill" and i["open"] > 0),
        "oldest_overdue_id": oldest["key"] if oldest else None,
        "oldest_overdue_type": oldest["type"] if oldest else None,
        "oldest_overdue_due_date": oldest["due"].isoformat() if oldest else None,
        "oldest_overdue_open": oldest["open"] / 100 if oldest else 0.0,
        "late_fee_amount_12m": int(amounts[in12 & (kinds == "late_fee")].sum()) / 100,
        "reversal_amount_12m": int(amounts[in12 & (kinds == "payment_reversal")].sum()) / 100,
        "last_event_ts": max(e["ts"] for e in evs).astimezone(tz).isoformat() if evs else None,
    }
