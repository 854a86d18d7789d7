"""15-minute interval readings, vectorised over customers one time step at a time.

Demand of customer i in the interval starting at local time t:
    kW = base_kw[i] * shape[profile, weekday, slot + shift] * season[profile, month]
         * (1 + growth)^(months since the reference) * lognormal noise (mean 1)
shapes are normalised to a weekly mean of 1, so `base_kw` is the average load. Reactive energy
follows the customer's power factor: kvarh = kWh * tan(acos(pf)), pf jittered per interval.
Meters with a reactive export register see export at light load (capacitors over-compensating).
Customers without supply (outages.py) read zero for the share of the interval they were off,
flagged `power_fail`.

Every step draws from its own generator seeded by (seed, absolute interval number), so a step's
numbers do not depend on where the simulation started or what was drawn before it.
"""

from __future__ import annotations

from dataclasses import dataclass
from zoneinfo import ZoneInfo

import numpy as np

from schemas.validation import DEMAND_MARGIN
from simulator.clock import INTERVAL_S, local
from simulator.outages import Outage
from simulator.population import PROFILES, Population

_H = (np.arange(96) + 0.5) / 4  # hour at the middle of each quarter-hour slot
SECONDS_PER_MONTH = 30.4375 * 86400


def _bump(center: float, width: float) -> np.ndarray:
    d = np.minimum(np.abs(_H - center), 24 - np.abs(_H - center))  # wraps over midnight
    return np.exp(-0.5 * (d / width) ** 2)


def _plateau(on: float, off: float, edge: float = 0.5) -> np.ndarray:
    up = 1 / (1 + np.exp(-(_H - on) / edge * 4))
    down = 1 / (1 + np.exp((_H - off) / edge * 4))
    if off < on:  # over midnight
        return np.clip(up + down, 0, 1)
    return up * down


def _week(weekday: np.ndarray, saturday: np.ndarray, sunday: np.ndarray) -> np.ndarray:
    return np.stack([weekday] * 5 + [saturday, sunday])


def _build_shapes() -> np.ndarray:
    res_wd = 0.35 + 0.8 * _bump(7.5, 1.0) + 1.6 * _bump(19.75, 1.8) + 0.25 * _plateau(11, 14)
    res_we = 0.40 + 0.7 * _bump(9.5, 1.5) + 1.5 * _bump(19.5, 2.0) + 0.6 * _plateau(10, 17)
    com_wd = 0.25 + 1.0 * _plateau(8.5, 21)
    com_we = 0.25 + 0.65 * _plateau(9.5, 21)
    one = 0.12 + 1.0 * _plateau(8, 17) - 0.3 * _plateau(12, 13, 0.25)
    one_sat = 0.12 + 0.45 * _plateau(8, 12)
    idle = np.full(96, 0.12)
    two = 0.18 + 1.0 * _plateau(6, 22)
    cont = 0.92 - 0.08 * (_bump(0, 0.3) + _bump(8, 0.3) + _bump(16, 0.3)) + 0.05 * _plateau(8, 20)
    agr = 0.25 + 0.9 * _plateau(22, 6) + 0.45 * _plateau(9, 16)  # pumps run on the valley tariff
    whl = 0.65 + 0.25 * _plateau(8, 22) + 0.2 * _bump(19.5, 1.5)
    oth = 0.45 + 0.55 * _plateau(8, 18)
    table = {
        "residential": _week(res_wd, res_we, res_we),
        "commercial": _week(com_wd, com_we, com_we),
        "industrial_1shift": _week(one, one_sat, idle),
        "industrial_2shift": _week(two, two, 0.5 * two + 0.1),
        "industrial_continuous": _week(cont, 0.97 * cont, 0.95 * cont),
        "agricultural": _week(agr, agr, agr),
        "wholesale": _week(whl, 0.95 * whl, 0.92 * whl),
        "other": _week(oth, 0.7 * oth, 0.6 * oth),
    }
    shapes = np.stack([table[p] for p in PROFILES])
    return shapes / shapes.mean(axis=(1, 2), keepdims=True)


SHAPES = _build_shapes()  # [profile, weekday (Mon=0), slot]
SEASON = np.array(
    [  # [profile, month-1]: winter heating, summer cooling, Spring Festival, irrigation season
        [1.20, 1.15, 1.00, 0.90, 0.90, 1.05, 1.30, 1.35, 1.05, 0.90, 0.95, 1.10],
        [1.00, 0.90, 0.95, 0.95, 1.00, 1.10, 1.25, 1.25, 1.10, 1.00, 0.95, 1.00],
        [1.00, 0.75, 1.00, 1.02, 1.02, 1.02, 1.00, 1.00, 1.02, 1.02, 1.03, 1.05],
        [1.00, 0.78, 1.00, 1.02, 1.02, 1.02, 1.00, 1.00, 1.02, 1.02, 1.03, 1.05],
        [1.00, 0.90, 1.00, 1.00, 1.00, 1.00, 1.00, 1.00, 1.00, 1.00, 1.00, 1.00],
        [0.30, 0.30, 0.60, 1.10, 1.50, 1.70, 1.60, 1.50, 1.20, 0.80, 0.40, 0.30],
        [1.10, 1.00, 0.95, 0.90, 0.95, 1.05, 1.20, 1.20, 1.00, 0.92, 0.95, 1.05],
        [1.00, 0.95, 1.00, 1.00, 1.00, 1.05, 1.10, 1.10, 1.00, 1.00, 1.00, 1.00],
    ]
)


@dataclass
class StepReadings:
    """One interval for every customer. Arrays of length n; None entries are nulls on the wire."""

    start: int  # epoch of the interval start; the reading's ts is start + interval_s
    kwh: np.ndarray
    kvarh: np.ndarray  # NaN where the meter has no reactive register
    kvarh_export: np.ndarray  # NaN where no export register
    demand_kw: np.ndarray  # NaN where not metered
    estimated: np.ndarray  # bool
    power_fail: np.ndarray  # bool


class LoadModel:
    def __init__(
        self,
        pop: Population,
        seed: int,
        tz: ZoneInfo,
        growth_ref: int,
        outages: list[Outage] | None = None,
        outage_masks: list[np.ndarray] | None = None,
        interval_s: int = INTERVAL_S,
    ) -> None:
        self.pop = pop
        self.seed = seed
        self.tz = tz
        self.growth_ref = growth_ref
        self.outages = outages or []
        self.masks = outage_masks or []
        self.interval_s = interval_s
        if interval_s != INTERVAL_S:
            raise ValueError("the load shapes are in quarter hours: interval_s must be 900")
        self._cap_kw = pop.contract_kva * 0.98
        # a demand peak above contract kVA x DEMAND_MARGIN is impossible to the input rules
        # (schemas.validation): the simulator's valid readings stay below it, with room for rounding
        self._demand_cap_kw = pop.contract_kva * (DEMAND_MARGIN * 0.99)

    def mean_kw(self, start: int) -> np.ndarray:
        """Expected load (no noise, no outages) of the interval starting at `start`."""
        t = local(start, self.tz)
        slot = (t.hour * 60 + t.minute) // 15
        idx = (slot + self.pop.slot_shift) % 96
        p = self.pop.profile_idx
        months = (start - self.growth_ref) / SECONDS_PER_MONTH
        return (
            self.pop.base_kw
            * SHAPES[p, t.weekday(), idx]
            * SEASON[p, t.month - 1]
            * (1 + self.pop.growth_per_month) ** months
        )

    def expected_kwh(self, start: int, end: int) -> np.ndarray:
        """Expected energy over [start, end) (shapes average to 1 over a week; season and growth
        taken at the middle). Used for bills of months the readings do not cover."""
        if end <= start:
            return np.zeros(self.pop.n)
        mid = local((start + end) // 2, self.tz)
        months = ((start + end) / 2 - self.growth_ref) / SECONDS_PER_MONTH
        p = self.pop.profile_idx
        return (
            self.pop.base_kw
            * SEASON[p, mid.month - 1]
            * (1 + self.pop.growth_per_month) ** months
            * (end - start)
            / 3600
        )

    def step(self, start: int) -> StepReadings:
        pop = self.pop
        n = pop.n
        rng = np.random.default_rng([self.seed, 0x10AD, start // self.interval_s])
        mean = self.mean_kw(start)
        sigma = pop.noise_sigma
        noise = np.exp(sigma * rng.standard_normal(n) - 0.5 * sigma * sigma)
        kw = np.minimum(mean * noise, self._cap_kw)
        off = np.zeros(n)
        end = start + self.interval_s
        for o, m in zip(self.outages, self.masks, strict=True):
            overlap = min(end, o.restore) - max(start, o.start)
            if overlap > 0:
                off = np.maximum(off, m * (overlap / self.interval_s))
        kw = kw * (1 - off)
        kwh = kw * (self.interval_s / 3600)
        pf = np.clip(pop.target_pf + 0.01 * rng.standard_normal(n), 0.5, 0.999)
        kvarh = kwh * np.tan(np.arccos(pf))
        light = noise * mean < 0.7 * pop.base_kw
        export = np.where(light, kwh * rng.uniform(0.0, 0.15, n), 0.0)
        kvarh = np.where(pop.has_kvarh_export & light, kvarh * 0.3, kvarh)
        kvarh = np.where(pop.has_kvarh, kvarh, np.nan)
        export = np.where(pop.has_kvarh_export, export, np.nan)
        # maximum demand of a sliding sub-interval is at least the interval average
        peak = np.minimum(kw * (1 + rng.exponential(0.06, n)), self._demand_cap_kw)
        demand = np.where(pop.has_demand, peak, np.nan)
        estimated = rng.random(n) < pop.estimated_rate
        return StepReadings(
            start=start,
            kwh=kwh,
            kvarh=kvarh,
            kvarh_export=export,
            demand_kw=demand,
            estimated=estimated,
            power_fail=off > 0,
        )
