"""Replay of measured data: the UCI household (Sceaux, France), one customer.

The file has one row per minute (Europe/Paris local time, the row stamped HH:MM covers the minute
[HH:MM, HH:MM+1)), with the minute's average active power (kW) and reactive power (kvar).
Aggregation to 15-minute readings, ts = END of the interval:
    kWh = sum(kW) / 60, kvarh = sum(kvar) / 60, demand_kw = the highest minute kW.
Missing minutes ('?' in the source) are skipped. An interval with at least `min_minutes` of its 15
minutes is kept, its energy scaled up by 15 / minutes present (the missing minutes estimated at
the interval's average) and flagged `estimated`; an interval with fewer is dropped, which leaves
a gap for the pipeline's validation to find. A complete file replays exactly: total kWh equals
the minute sum / 60.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np

from simulator.clock import INTERVAL_S, align_down, rfc3339, to_epoch

PARIS = ZoneInfo("Europe/Paris")
UCI_FILE = "uci-household-2007-02-01_02.txt"
REPO_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_UCI_PATH = REPO_ROOT / ".." / "shared" / "data" / UCI_FILE
UCI_CUSTOMER_ID = "C-UCI-SCEAUX"


class ReplayDataMissing(FileNotFoundError):
    """The replay data file is not where it was looked for."""


@dataclass(frozen=True)
class MinuteSeries:
    start: np.ndarray  # epoch of each minute's start (int64)
    kw: np.ndarray  # NaN where missing
    kvar: np.ndarray


@dataclass(frozen=True)
class Interval:
    start: int  # epoch
    kwh: float
    kvarh: float
    demand_kw: float
    minutes: int  # minutes present


def _num(text: str) -> float:
    text = text.strip().strip('"')
    return float("nan") if text in ("?", "") else float(text)


def read_uci(path: str | Path | None = None, tz: ZoneInfo = PARIS) -> MinuteSeries:
    """Minute rows of the UCI file. Raises ReplayDataMissing with the path tried."""
    p = Path(path) if path is not None else DEFAULT_UCI_PATH
    if not p.is_file():
        raise ReplayDataMissing(
            f"UCI replay data not found at {p.resolve()}; pass its path (--uci-path) or put "
            f"{UCI_FILE} in ../shared/data/ next to the repository"
        )
    starts: list[int] = []
    kw: list[float] = []
    kvar: list[float] = []
    with p.open(newline="", encoding="utf-8") as f:
        rows = csv.reader(f, delimiter=";")
        header = next(rows)
        col = {name: k for k, name in enumerate(header)}
        d, t = col["Date"], col["Time"]
        a, r = col["Global_active_power"], col["Global_reactive_power"]
        for row in rows:
            if not row:
                continue
            local = datetime.strptime(f"{row[d]} {row[t]}", "%d/%m/%Y %H:%M:%S").replace(tzinfo=tz)
            starts.append(to_epoch(local))
            kw.append(_num(row[a]))
            kvar.append(_num(row[r]))
    return MinuteSeries(np.array(starts, dtype=np.int64), np.array(kw), np.array(kvar))


def aggregate(series: MinuteSeries, min_minutes: int = 8, interval_s: int = INTERVAL_S) -> list[Interval]:
    """15-minute intervals (see the module docstring for missing minutes)."""
    slots = series.start - series.start % interval_s
    per_interval = interval_s // 60
    out = []
    for s in np.unique(slots):
        sel = slots == s
        present = sel & ~np.isnan(series.kw)
        m = int(present.sum())
        if m < min_minutes:
            continue
        scale = per_interval / m
        kvar = np.nan_to_num(series.kvar[present])
        out.append(
            Interval(
                start=int(s),
                kwh=float(series.kw[present].sum()) / 60 * scale,
                kvarh=float(kvar.sum()) / 60 * scale,
                demand_kw=float(series.kw[present].max()),
                minutes=m,
            )
        )
    return out


def replay_readings(
    path: str | Path | None = None,
    customer_id: str = UCI_CUSTOMER_ID,
    start: datetime | None = None,
    out_tz: ZoneInfo = PARIS,
    min_minutes: int = 8,
) -> list[dict[str, Any]]:
    """meter.readings values of the UCI household, in time order. With `start`, the series is
    shifted so its first interval starts at `start` (aligned down to 15 minutes)."""
    intervals = aggregate(read_uci(path), min_minutes)
    shift = 0
    if start is not None and intervals:
        shift = align_down(to_epoch(start)) - intervals[0].start
    meter_id = f"MTR-{customer_id}-1"
    return [
        {
            "meter_id": meter_id,
            "customer_id": customer_id,
            "ts": rfc3339(iv.start + INTERVAL_S + shift, out_tz),
            "interval_s": INTERVAL_S,
            "kwh": iv.kwh,
            "kvarh": iv.kvarh,
            "kvarh_export": None,
            "demand_kw": iv.demand_kw,
            "quality": [] if iv.minutes == INTERVAL_S // 60 else ["estimated"],
        }
        for iv in intervals
    ]


def replay_profile(customer_id: str = UCI_CUSTOMER_ID) -> dict[str, Any]:
    """The customers value of the replayed household (a 9 kVA single-phase French supply)."""
    return {
        "customer_id": customer_id,
        "name": "Ménage de Sceaux",
        "tariff_class": "residential",
        "contract_kva": 9.0,
        "voltage_kv": 0.4,
        "importance": "none",
        "feeders": ["F001"],
        "transformer_area": "TA0001",
        "emergency_generator": False,
        "manager_id": "M01",
        "industry": None,
        "pf_standard": None,
        "tariff_cny_per_kwh": 0.55,
    }
