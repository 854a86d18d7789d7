"""The 1983 power-factor adjustment table ((83)水电财字215号) as DOMAIN.md section 2 gives it."""

from __future__ import annotations

import math

import numpy as np
import pytest

from metering.pf_tariff import (
    pf_adjustment_money,
    pf_adjustment_pct,
    pf_adjustment_pct_array,
    pf_standard_for,
    power_factor,
)

# (pf, standard, adjustment %) — written out by hand from DOMAIN.md, band edges and neighbours
TABLE = [
    # s = 0.90: rebates 0.15 per 0.01 up to -0.75 at >= 0.95; +0.5/0.01 to 0.70, +1 to 0.65, +2
    (1.00, 0.90, -0.75), (0.96, 0.90, -0.75), (0.95, 0.90, -0.75), (0.94, 0.90, -0.60),
    (0.93, 0.90, -0.45), (0.92, 0.90, -0.30), (0.91, 0.90, -0.15), (0.90, 0.90, 0.0),
    (0.89, 0.90, 0.5), (0.71, 0.90, 9.5), (0.70, 0.90, 10.0), (0.69, 0.90, 11.0),
    (0.66, 0.90, 14.0), (0.65, 0.90, 15.0), (0.64, 0.90, 17.0), (0.60, 0.90, 25.0),
    (0.30, 0.90, 85.0),
    # s = 0.85: 0.86..0.90 -0.1 each, 0.91..0.94 -0.15 each (-1.1 cap); +0.5 to 0.65, +1 to 0.60
    (0.95, 0.85, -1.1), (0.94, 0.85, -1.1), (0.93, 0.85, -0.95), (0.92, 0.85, -0.80),
    (0.91, 0.85, -0.65), (0.90, 0.85, -0.50), (0.89, 0.85, -0.4), (0.88, 0.85, -0.3),
    (0.87, 0.85, -0.2), (0.86, 0.85, -0.1), (0.85, 0.85, 0.0), (0.84, 0.85, 0.5),
    (0.70, 0.85, 7.5), (0.66, 0.85, 9.5), (0.65, 0.85, 10.0), (0.64, 0.85, 11.0),
    (0.61, 0.85, 14.0), (0.60, 0.85, 15.0), (0.59, 0.85, 17.0), (0.30, 0.85, 75.0),
    # s = 0.80: 0.81..0.90 -0.1 each, 0.91 -1.15, >= 0.92 -1.3; +0.5 to 0.60, +1 to 0.55, +2
    (0.93, 0.80, -1.3), (0.92, 0.80, -1.3), (0.91, 0.80, -1.15), (0.90, 0.80, -1.0),
    (0.89, 0.80, -0.9), (0.85, 0.80, -0.5), (0.81, 0.80, -0.1), (0.80, 0.80, 0.0),
    (0.79, 0.80, 0.5), (0.70, 0.80, 5.0), (0.66, 0.80, 7.0), (0.65, 0.80, 7.5),
    (0.61, 0.80, 9.5), (0.60, 0.80, 10.0), (0.59, 0.80, 11.0), (0.55, 0.80, 15.0),
    (0.54, 0.80, 17.0), (0.30, 0.80, 65.0),
]  # fmt: skip

SPOT_CHECKS = [  # DOMAIN.md's published spot checks: (pf, (s=.90, s=.85, s=.80))
    (0.66, (14.0, 9.5, 7.0)),
    (0.65, (15.0, 10.0, 7.5)),
    (0.60, (25.0, 15.0, 10.0)),
    (0.30, (85.0, 75.0, 65.0)),
]


@pytest.mark.parametrize(("pf", "standard", "expected"), TABLE)
def test_table_band_edges(pf: float, standard: float, expected: float) -> None:
    assert pf_adjustment_pct(pf, standard) == expected


@pytest.mark.parametrize(("pf", "expected"), SPOT_CHECKS)
def test_published_spot_checks(pf: float, expected: tuple[float, float, float]) -> None:
    assert tuple(pf_adjustment_pct(pf, s) for s in (0.90, 0.85, 0.80)) == expected


@pytest.mark.parametrize(
    ("pf", "standard", "expected"),
    [
        (0.845, 0.85, 0.0),  # half rounds up although 0.845 is stored as 0.84499999...
        (0.8449, 0.85, 0.5),
        (0.905, 0.90, -0.15),
        (0.9049, 0.90, 0.0),
        (0.695, 0.90, 10.0),
        (0.6949, 0.90, 11.0),
        (math.sqrt(0.81), 0.90, 0.0),  # 0.9 computed, not typed
    ],
)
def test_pf_is_rounded_half_up_to_two_decimals(pf: float, standard: float, expected: float) -> None:
    assert pf_adjustment_pct(pf, standard) == expected


def test_result_has_no_float_noise() -> None:
    for n in range(101):
        for s in (0.90, 0.85, 0.80):
            value = pf_adjustment_pct(n / 100, s)
            assert value == round(value, 2)
            assert repr(value) == repr(round(value, 2))


def test_unknown_standard_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match=r"unknown power-factor standard 0\.88"):
        pf_adjustment_pct(0.9, 0.88)


@pytest.mark.parametrize("pf", [-0.01, 1.01, float("nan")])
def test_pf_outside_unit_interval_is_rejected(pf: float) -> None:
    with pytest.raises(ValueError):
        pf_adjustment_pct(pf, 0.9)


@pytest.mark.parametrize("standard", [0.90, 0.85, 0.80])
def test_array_version_agrees_with_scalar(standard: float) -> None:
    rng = np.random.default_rng(7)
    pf = np.concatenate([np.linspace(0, 1, 10_001), rng.random(10_000), np.arange(101) / 100 + 0.005])
    pf = np.clip(pf, 0.0, 1.0)
    got = pf_adjustment_pct_array(pf, standard)
    assert got.tolist() == [pf_adjustment_pct(float(x), standard) for x in pf]


def test_array_version_passes_unknown_pf_through_as_nan() -> None:
    got = pf_adjustment_pct_array(np.array([np.nan, 0.66]), 0.85)
    assert np.isnan(got[0]) and got[1] == 9.5


@pytest.mark.parametrize(
    ("tariff_class", "kva", "kv", "explicit", "expected"),
    [
        ("commercial", 50, 0.4, 0.9, 0.9),  # explicit wins, even below the thresholds
        ("large_industrial", 315, 10, None, 0.90),
        ("large_industrial", 315, None, None, 0.90),  # 大工业 is high-voltage supply
        ("general_industrial", 160, 10, None, 0.90),
        ("general_industrial", 159, 10, None, 0.85),  # below 160 kVA: "other customers"
        ("general_industrial", 200, 0.4, None, 0.85),  # low voltage
        ("general_industrial", 200, None, None, 0.85),  # voltage unknown: not known to be HV
        ("agricultural", 100, 0.4, None, 0.80),
        ("agricultural", 99, 10, None, None),
        ("wholesale", None, 35, None, 0.80),
        ("commercial", 100, 10, None, 0.85),
        ("commercial", 99.9, 10, None, None),
        ("residential", 120, 0.4, None, 0.85),
        ("other", None, 10, None, None),  # capacity unknown: cannot assess
    ],
)
def test_pf_standard_for(
    tariff_class: str, kva: float | None, kv: float | None, explicit: float | None, expected: float | None
) -> None:
    assert pf_standard_for(tariff_class, kva, kv, explicit) == expected


def test_power_factor_from_summed_energies() -> None:
    assert power_factor(3.0, 4.0) == pytest.approx(0.6)
    assert power_factor(5.0, 0.0) == 1.0
    assert power_factor(0.0, 2.0) == 0.0
    assert power_factor(0.0, 0.0) is None


def test_adjustment_money_is_on_the_energy_charge() -> None:
    # 10 000 kWh at 0.60 CNY = 6 000 CNY energy charge; +14 % -> 840 CNY
    assert pf_adjustment_money(14.0, 10_000, 0.60) == 840.0
    assert pf_adjustment_money(-0.75, 10_000, 0.60) == -45.0
    assert pf_adjustment_money(None, 10_000, 0.60) is None
    assert pf_adjustment_money(14.0, 10_000, None) is None
