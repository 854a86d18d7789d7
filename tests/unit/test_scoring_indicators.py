"""Indicators B11..B42 at their edges (DOMAIN.md section 3)."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest

from scoring.config import IndicatorParams
from scoring.indicators import Population, compute_indicators, ramp, transmission_fee_per_kwh
from scoring.weights import INDICATORS

NAN = float("nan")
COL = {name: j for j, name in enumerate(INDICATORS)}


def _pop(n: int, **cols: Any) -> Population:
    base: dict[str, Any] = {
        "customer_id": [f"c{i}" for i in range(n)],
        "ts": ["2026-10-31T23:45:00+08:00"] * n,
        "d30_kwh": np.full(n, 100.0),
        "voltage_kv": np.full(n, 10.0),
        "load_factor": np.full(n, 0.5),
        "power_factor": np.full(n, 0.9),
        "paid_36m": np.full(n, 100.0),
        "due_36m": np.full(n, 100.0),
        "late_fee_amount_36m": np.zeros(n),
        "yoy_growth_rate": np.zeros(n),
        "yoy_growth_kwh": np.zeros(n),
        "oldest_overdue_days": np.zeros(n),
        "late_fees_12m": np.zeros(n),
        "reversals_12m": np.zeros(n),
        "theft_12m": np.zeros(n),
        "distinct_feeders": np.ones(n, dtype=np.int32),
        "emergency_generator": np.zeros(n, dtype=bool),
    }
    for k, v in cols.items():
        base[k] = np.asarray(v, dtype=base[k].dtype)
    return Population(**base)


def _column(name: str, **cols: Any) -> np.ndarray:
    n = len(next(iter(cols.values())))
    ind, _ = compute_indicators(_pop(n, **cols), IndicatorParams())
    return ind[:, COL[name]]


def _same(a: np.ndarray, b: list[float]) -> None:
    np.testing.assert_allclose(a, b, rtol=0, atol=1e-12, equal_nan=True)


def test_b22_power_factor_ramp() -> None:
    pf = [0.0, 0.79, 0.80, 0.875, 0.9, 0.95, 0.99, 1.0, NAN]
    _same(_column("B22", power_factor=pf), [0, 0, 0, 0.5, 2 / 3, 1, 1, 1, NAN])


def test_b32_punctuality() -> None:
    # x = late fee amount / due; a = 0.5: (a - x) / a below a, 0 from a on
    late = [0.0, 10.0, 25.0, 50.0, 80.0, NAN]
    _same(_column("B32", late_fee_amount_36m=late, due_36m=[100.0] * 6), [1, 0.8, 0.5, 0, 0, NAN])


def test_b32_nothing_due_is_punctual() -> None:
    _same(_column("B32", late_fee_amount_36m=[5.0, 0.0], due_36m=[0.0, NAN]), [1, 1])


def test_b41_growth_rate() -> None:
    x = [-0.5, 0.0, 0.15, 0.3, 0.9, NAN]
    _same(_column("B41", yoy_growth_rate=x), [0, 0, 0.5, 1, 1, NAN])


def test_b42_growth_amount() -> None:
    x = [-100.0, 0.0, 2500.0, 10_000.0, 1e6, NAN]
    _same(_column("B42", yoy_growth_kwh=x), [0, 0, 0.25, 1, 1, NAN])
    params = IndicatorParams(growth_amount_m_kwh=5_000)
    ind, _ = compute_indicators(_pop(2, yoy_growth_kwh=[2500.0, 5000.0]), params)
    _same(ind[:, COL["B42"]], [0.5, 1.0])


def test_b31_recovery() -> None:
    paid = [0.0, 50.0, 100.0, 130.0, -20.0, 10.0, NAN, 5.0]
    due = [100.0, 100.0, 100.0, 100.0, 100.0, 0.0, 100.0, NAN]
    # capped at 1; negative paid (reversals) floors at 0; nothing due -> 1.0; unknown paid -> NaN
    _same(_column("B31", paid_36m=paid, due_36m=due), [0, 0.5, 1, 1, 0, 1, NAN, 1])


def test_b21_is_the_d30_load_factor() -> None:
    _same(_column("B21", load_factor=[0.2, 1.0, NAN]), [0.2, 1.0, NAN])


def test_b11_b12_shares_of_supplier_totals() -> None:
    kwh = [100.0, 300.0, 600.0, NAN]
    kv = [0.4, 10.0, 110.0, 10.0]
    pop = _pop(4, d30_kwh=kwh, voltage_kv=kv)
    ind, totals = compute_indicators(pop, IndicatorParams())
    assert totals.energy_kwh == 1000.0
    fee = [100 * 0.20, 300 * 0.15, 600 * 0.05]
    assert totals.transmission_fee_cny == pytest.approx(sum(fee))
    _same(ind[:, COL["B11"]], [0.1, 0.3, 0.6, NAN])
    np.testing.assert_allclose(ind[:3, COL["B12"]], np.array(fee) / sum(fee))
    assert math.isnan(ind[3, COL["B12"]])
    # against given totals (rescoring one customer after a population pass)
    ind2, same = compute_indicators(pop.take([1]), IndicatorParams(), totals)
    assert same is totals and ind2[0, COL["B11"]] == 0.3


def test_unknown_voltage_gives_nan_b12_and_zero_total_gives_nan_b11() -> None:
    ind, _ = compute_indicators(_pop(2, voltage_kv=[NAN, 10.0], d30_kwh=[0.0, 0.0]), IndicatorParams())
    assert np.isnan(ind[:, COL["B11"]]).all() and np.isnan(ind[0, COL["B12"]])


def test_transmission_fee_bands() -> None:
    kv = np.array([0.0, 0.38, 0.999, 1.0, 10.0, 20.0, 35.0, 66.0, 110.0, 500.0, NAN, -1.0])
    expected = [0.2, 0.2, 0.2, 0.15, 0.15, 0.15, 0.10, 0.10, 0.05, 0.05, NAN, NAN]
    _same(transmission_fee_per_kwh(kv, IndicatorParams()), expected)


def test_ramp_keeps_nan() -> None:
    _same(ramp(np.array([NAN, -1.0, 2.0]), 0.0, 1.0), [NAN, 0.0, 1.0])


def test_population_from_docs_reads_every_input() -> None:
    doc = {
        "customer_id": "c1",
        "ts": "2026-10-31T23:45:00+08:00",
        "d30": {"kwh": 300.0, "load_factor": None},
        "month": {"power_factor": 0.93},
        "arrears": {
            "paid_36m": 90.0,
            "due_36m": 100.0,
            "late_fee_amount_36m": 2.0,
            "oldest_overdue_days": 40,
            "late_fees_12m": 1,
            "reversals_12m": 2,
            "theft_12m": 0.0,
        },
        "yoy_growth_rate": 0.1,
        "yoy_growth_kwh": None,
    }
    profile = {
        "customer_id": "c1",
        "voltage_kv": 10.0,
        "feeders": ["f1", "f2", "f1"],
        "emergency_generator": True,
    }
    pop = Population.from_docs([doc, {**doc, "customer_id": "c2"}], [profile])
    assert pop.customer_id == ["c1", "c2"]
    assert pop.d30_kwh.tolist() == [300.0, 300.0]
    assert np.isnan(pop.load_factor).all() and np.isnan(pop.yoy_growth_kwh).all()
    assert pop.voltage_kv[0] == 10.0 and np.isnan(pop.voltage_kv[1])  # c2 has no profile
    assert pop.distinct_feeders.tolist() == [2, 0]
    assert pop.emergency_generator.tolist() == [True, False]
    assert pop.oldest_overdue_days[0] == 40 and pop.reversals_12m[0] == 2
    same = Population.from_docs([doc], {"c1": profile})
    assert same.distinct_feeders.tolist() == [2]
