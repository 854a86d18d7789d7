"""Indicators B11..B42 (DOMAIN.md section 3), vectorised over a population.

Inputs come from the ``stats.customer`` documents and the ``customers`` profiles, gathered into
a struct of arrays (``Population``). Choices where the article leaves one:

- B11 and B12 use the trailing-30-day energy (``d30.kwh``): it is always a full window, while
  the billing month is partial for most of the month and would rank customers by how far into
  the month their readings reach. The supplier totals are the population sums.
- B12: fee = d30 kWh x transmission fee per kWh of the customer's voltage level
  (``IndicatorParams.transmission_bands``; the shipped fees are PLACEHOLDERS a company replaces
  with its approved tariff). No voltage in the profile -> B12 is NaN.
- B21 is the d30 load factor; B22 ramps the billing month's power factor (how PF is billed).
- B31 = paid_36m / due_36m clipped to [0, 1]. Nothing due in 36 months (due 0 or missing) ->
  1.0: nothing is owed, so nothing is unrecovered.
- B32 with x = late_fee_amount_36m / due_36m; nothing due -> x = 0 -> B32 = 1.
- B41 / B42 ramp ``yoy_growth_rate`` / ``yoy_growth_kwh`` of the stats document (null without
  enough history -> NaN).

A missing input gives a NaN indicator (null in the message); ``scoring.assign`` scores NaN as
the lowest score, 1: an indicator we cannot show gives no credit.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, fields
from typing import Any

import numpy as np

from scoring.config import IndicatorParams
from scoring.weights import INDICATORS

NAN = float("nan")


def _as_dict(obj: Any) -> dict[str, Any]:
    if obj is None:
        return {}
    if hasattr(obj, "model_dump"):
        return dict(obj.model_dump(mode="json", by_alias=True))
    return dict(obj)


def _num(v: Any) -> float:
    return NAN if v is None else float(v)


@dataclass
class Population:
    """Struct of arrays, one element per customer, float64 with NaN for a missing value."""

    customer_id: list[str]
    ts: list[str]  # event time of the newest input behind each customer's statistics
    d30_kwh: np.ndarray
    voltage_kv: np.ndarray
    load_factor: np.ndarray  # d30
    power_factor: np.ndarray  # billing month
    paid_36m: np.ndarray
    due_36m: np.ndarray
    late_fee_amount_36m: np.ndarray
    yoy_growth_rate: np.ndarray
    yoy_growth_kwh: np.ndarray
    oldest_overdue_days: np.ndarray
    late_fees_12m: np.ndarray
    reversals_12m: np.ndarray
    theft_12m: np.ndarray
    distinct_feeders: np.ndarray  # int
    emergency_generator: np.ndarray  # bool

    def __len__(self) -> int:
        return len(self.d30_kwh)

    def take(self, index: Sequence[int] | np.ndarray) -> Population:
        """A sub-population (same column order)."""
        idx = np.asarray(index, dtype=np.intp)
        out: dict[str, Any] = {}
        for f in fields(self):
            col = getattr(self, f.name)
            out[f.name] = [col[i] for i in idx] if isinstance(col, list) else col[idx]
        return Population(**out)

    @classmethod
    def from_docs(
        cls,
        stats_docs: Iterable[Mapping[str, Any] | Any],
        profiles: Mapping[str, Mapping[str, Any] | Any] | Iterable[Mapping[str, Any] | Any] | None = None,
    ) -> Population:
        """From ``stats.customer`` documents (JSON dicts or ``StatsCustomer``) and ``customers``
        profiles (a mapping customer_id -> profile, or a list of profiles). A customer without
        a profile has no voltage (B12 NaN) and no feeders (safety grade D)."""
        by_id: dict[str, dict[str, Any]] = {}
        if profiles is not None:
            if isinstance(profiles, Mapping):
                by_id = {str(k): _as_dict(v) for k, v in profiles.items()}
            else:
                for p in profiles:
                    d = _as_dict(p)
                    by_id[str(d["customer_id"])] = d
        rows: dict[str, list[Any]] = {f.name: [] for f in fields(cls)}
        for raw in stats_docs:
            doc = _as_dict(raw)
            cid = str(doc["customer_id"])
            prof = by_id.get(cid, {})
            d30 = doc.get("d30") or {}
            month = doc.get("month") or {}
            arr = doc.get("arrears") or {}
            rows["customer_id"].append(cid)
            rows["ts"].append(str(doc["ts"]))
            rows["d30_kwh"].append(_num(d30.get("kwh")))
            rows["voltage_kv"].append(_num(prof.get("voltage_kv")))
            rows["load_factor"].append(_num(d30.get("load_factor")))
            rows["power_factor"].append(_num(month.get("power_factor")))
            rows["paid_36m"].append(_num(arr.get("paid_36m")))
            rows["due_36m"].append(_num(arr.get("due_36m")))
            rows["late_fee_amount_36m"].append(_num(arr.get("late_fee_amount_36m")))
            rows["yoy_growth_rate"].append(_num(doc.get("yoy_growth_rate")))
            rows["yoy_growth_kwh"].append(_num(doc.get("yoy_growth_kwh")))
            rows["oldest_overdue_days"].append(_num(arr.get("oldest_overdue_days")))
            rows["late_fees_12m"].append(_num(arr.get("late_fees_12m")))
            rows["reversals_12m"].append(_num(arr.get("reversals_12m")))
            rows["theft_12m"].append(_num(arr.get("theft_12m")))
            rows["distinct_feeders"].append(len(set(prof.get("feeders") or ())))
            rows["emergency_generator"].append(bool(prof.get("emergency_generator", False)))
        out: dict[str, Any] = {}
        for name, values in rows.items():
            if name in ("customer_id", "ts"):
                out[name] = values
            elif name == "distinct_feeders":
                out[name] = np.asarray(values, dtype=np.int32)
            elif name == "emergency_generator":
                out[name] = np.asarray(values, dtype=bool)
            else:
                out[name] = np.asarray(values, dtype=np.float64)
        return cls(**out)


@dataclass(frozen=True)
class SupplierTotals:
    """Denominators of B11 and B12: the population's sums (kept to rescore one customer)."""

    energy_kwh: float
    transmission_fee_cny: float


def transmission_fee_per_kwh(voltage_kv: np.ndarray, params: IndicatorParams) -> np.ndarray:
    """Fee per kWh of each customer's voltage band; NaN for an unknown voltage."""
    lower = np.array([b.min_kv for b in params.transmission_bands])
    fee = np.array([b.cny_per_kwh for b in params.transmission_bands])
    v = np.asarray(voltage_kv, dtype=np.float64)
    band = np.searchsorted(lower, np.where(np.isnan(v), 0.0, v), side="right") - 1
    out = fee[np.clip(band, 0, len(fee) - 1)]
    return np.where(np.isnan(v) | (v < 0), np.nan, out)


def ramp(x: np.ndarray, lo: float, hi: float) -> np.ndarray:
    """0 at or below ``lo``, linear in between, 1 at or above ``hi``; NaN stays NaN."""
    return np.clip((np.asarray(x, dtype=np.float64) - lo) / (hi - lo), 0.0, 1.0)


def supplier_totals(pop: Population, params: IndicatorParams) -> SupplierTotals:
    fee = pop.d30_kwh * transmission_fee_per_kwh(pop.voltage_kv, params)
    return SupplierTotals(
        energy_kwh=float(np.nansum(pop.d30_kwh)), transmission_fee_cny=float(np.nansum(fee))
    )


def _share(part: np.ndarray, total: float) -> np.ndarray:
    if not total > 0:
        return np.full(part.shape, np.nan)
    return part / total


def compute_indicators(
    pop: Population, params: IndicatorParams, totals: SupplierTotals | None = None
) -> tuple[np.ndarray, SupplierTotals]:
    """Raw indicators as an (n, 8) float64 array in ``INDICATORS`` order, and the supplier
    totals used (the population's own unless ``totals`` is given, e.g. to rescore one customer
    against the last population pass)."""
    if totals is None:
        totals = supplier_totals(pop, params)
    n = len(pop)
    out = np.empty((n, len(INDICATORS)), dtype=np.float64)
    out[:, 0] = _share(pop.d30_kwh, totals.energy_kwh)
    fee = pop.d30_kwh * transmission_fee_per_kwh(pop.voltage_kv, params)
    out[:, 1] = _share(fee, totals.transmission_fee_cny)
    out[:, 2] = pop.load_factor
    out[:, 3] = ramp(pop.power_factor, params.pf_p1, params.pf_p2)
    due = pop.due_36m
    nothing_due = np.isnan(due) | (due <= 0)
    safe_due = np.where(nothing_due, 1.0, due)
    out[:, 4] = np.where(nothing_due, 1.0, np.clip(pop.paid_36m / safe_due, 0.0, 1.0))
    late_ratio = np.where(nothing_due, 0.0, pop.late_fee_amount_36m / safe_due)
    a = params.punctuality_a
    out[:, 5] = np.clip((a - late_ratio) / a, 0.0, 1.0)
    out[:, 6] = ramp(pop.yoy_growth_rate, 0.0, params.growth_rate_r)
    out[:, 7] = ramp(pop.yoy_growth_kwh, 0.0, params.growth_amount_m_kwh)
    return out, totals
