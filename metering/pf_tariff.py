"""Power-factor tariff adjustment (功率因数调整电费办法, (83)水电财字215号), DOMAIN.md section 2.

The 1983 table is reproduced as DOMAIN.md gives it. Everything is computed in integer units of
0.05 % (every step of the table is a multiple of 0.05 %), so the percentages come out without
float noise.
"""

from __future__ import annotations

import math

import numpy as np

# Classes of the `customers` topic (CONTRACT.md).
HIGH_VOLTAGE_KV = 1.0  # Chinese practice: 高压供电 means supplied at 1 kV and above (10 kV typical)

# Per standard (in hundredths): the rebate for each rounded PF above the standard, in 0.05 %
# units (negative = rebate), exactly DOMAIN.md's list; PF above the last entry keeps its value.
_REBATE_UNITS: dict[int, dict[int, int]] = {
    # s = 0.90: 0.91 -0.15 ... 0.94 -0.60, >= 0.95 -0.75
    90: {91: -3, 92: -6, 93: -9, 94: -12, 95: -15},
    # s = 0.85: 0.86 -0.1 ... 0.90 -0.50, 0.91 -0.65 ... >= 0.94 -1.1
    85: {86: -2, 87: -4, 88: -6, 89: -8, 90: -10, 91: -13, 92: -16, 93: -19, 94: -22},
    # s = 0.80: 0.81 -0.1 ... 0.90 -1.0 (0.1 per 0.01), 0.91 -1.15, >= 0.92 -1.3
    80: {**{80 + k: -2 * k for k in range(1, 11)}, 91: -23, 92: -26},
}
# Surcharge below the standard: +0.5 %/0.01 down to s - 0.20, +1 %/0.01 down to s - 0.25,
# then +2 %/0.01 (DOMAIN.md: 0.70/0.65 for 0.90, 0.65/0.60 for 0.85, 0.60/0.55 for 0.80).
_HALF_PCT_BAND = 20
_ONE_PCT_BAND = 5
_UNITS_PER_PCT = 20  # 0.05 % units


def pf_standard_for(
    tariff_class: str | None,
    contract_kva: float | None,
    voltage_kv: float | None,
    explicit: float | None,
) -> float | None:
    """The PF standard a customer is assessed against, or None when it is not assessed.

    - ``explicit`` (the profile's pf_standard) wins.
    - 0.90 "high-voltage industrial >= 160 kVA": ``large_industrial`` (大工业 is supplied at high
      voltage, so an unknown voltage counts as high) or ``general_industrial`` with
      ``voltage_kv >= 1`` (高压 = 1 kV and above), contract >= 160 kVA.
    - 0.80 "agricultural >= 100 kVA and wholesale": agricultural >= 100 kVA; wholesale (趸售)
      always — a wholesale customer is a utility, far above 100 kVA, so both readings agree.
    - 0.85 "other customers >= 100 kVA": every other class (including industrial at low voltage
      or below 160 kVA, and residential — DOMAIN.md does not exempt it) at >= 100 kVA.
    - None below 100 kVA, or when the capacity is unknown (we cannot tell the threshold).
    """
    if explicit is not None:
        return float(explicit)
    if tariff_class == "wholesale":
        return 0.80
    if contract_kva is None:
        return None
    if tariff_class in ("large_industrial", "general_industrial") and contract_kva >= 160:
        unknown_is_high = tariff_class == "large_industrial"
        high_voltage = voltage_kv >= HIGH_VOLTAGE_KV if voltage_kv is not None else unknown_is_high
        if high_voltage:
            return 0.90
    if contract_kva < 100:
        return None
    if tariff_class == "agricultural":
        return 0.80
    return 0.85


def _standard_hundredths(standard: float) -> int:
    s = round(standard * 100)
    if s not in _REBATE_UNITS or abs(standard * 100 - s) > 1e-6:
        raise ValueError(f"unknown power-factor standard {standard!r}: the table has 0.90, 0.85 and 0.80")
    return s


def _pf_hundredths(pf: float) -> int:
    """PF rounded half up to 2 decimals, in hundredths.

    The 1e-9 (in hundredths) absorbs the float error of a computed PF (0.845 is stored as
    0.84499999...), so a PF that prints as a half rounds up, as the bill does.
    """
    if not 0.0 <= pf <= 1.0:  # also rejects NaN
        raise ValueError(f"power factor must be within [0, 1], got {pf!r}")
    return math.floor(pf * 100 + 0.5 + 1e-9)


def _adjustment_units(n: int, s: int) -> int:
    """Adjustment in 0.05 % units for rounded PF ``n`` (hundredths) and standard ``s``."""
    if n >= s:
        rebates = _REBATE_UNITS[s]
        return rebates[min(n, max(rebates))] if n > s else 0
    half_floor, one_floor = s - _HALF_PCT_BAND, s - _HALF_PCT_BAND - _ONE_PCT_BAND
    units = 10 * (s - max(n, half_floor))  # 0.5 % per 0.01
    if n < half_floor:
        units += 20 * (half_floor - max(n, one_floor))  # 1 % per 0.01
    if n < one_floor:
        units += 40 * (one_floor - n)  # 2 % per 0.01
    return units


def pf_adjustment_pct(pf: float, standard: float) -> float:
    """Adjustment of the basic + energy charge in percent (positive = surcharge, negative = rebate)."""
    units = _adjustment_units(_pf_hundredths(pf), _standard_hundredths(standard))
    return round(units / _UNITS_PER_PCT, 2)


def _table(s: int) -> np.ndarray:
    return np.array([_adjustment_units(n, s) / _UNITS_PER_PCT for n in range(101)], dtype=np.float64)


_TABLES: dict[int, np.ndarray] = {s: _table(s) for s in _REBATE_UNITS}


def pf_adjustment_pct_array(pf: np.ndarray, standard: float) -> np.ndarray:
    """`pf_adjustment_pct` for many customers at once; NaN (PF unknown) gives NaN.

    Looks the rounded PF up in the scalar function's own table, so both always agree.
    """
    table = _TABLES[_standard_hundredths(standard)]
    pf = np.asarray(pf, dtype=np.float64)
    known = ~np.isnan(pf)
    if np.any((pf[known] < 0.0) | (pf[known] > 1.0)):
        raise ValueError("power factor must be within [0, 1]")
    hundredths = np.floor(np.where(known, pf, 0.0) * 100 + 0.5 + 1e-9).astype(np.int64)
    return np.where(known, table[hundredths], np.nan)


def power_factor(kwh: float, kvarh: float) -> float | None:
    """PF from the window's summed energies (how utilities bill it); None when both are 0."""
    apparent = math.hypot(kwh, kvarh)
    if apparent == 0.0:
        return None
    return kwh / apparent


def pf_adjustment_money(pct: float | None, kwh: float, tariff_cny_per_kwh: float | None) -> float | None:
    """CNY of the adjustment on the energy charge (kWh x tariff), rounded to the fen.

    The 1983 rule applies the percentage to basic + energy charge; the basic (capacity/demand)
    charge is not on our inputs, so this is the energy-charge part only (a lower bound of the
    surcharge and of the rebate).
    """
    if pct is None or tariff_cny_per_kwh is None:
        return None
    return round(pct / 100 * kwh * tariff_cny_per_kwh, 2)
