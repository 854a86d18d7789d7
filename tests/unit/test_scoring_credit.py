"""Credit grade points model and supply-safety grade (DOMAIN.md sections 4 and 5)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from scoring.config import CreditParams, SafetyParams
from scoring.credit import CREDIT_CAPS, CREDIT_RULES, GRADES, credit_grades, safety_grades


def _grade(params: CreditParams | None = None, **kw: Any) -> tuple[float, str, dict[str, float], list[str]]:
    cols = {
        "b31": 1.0,
        "b32": 1.0,
        "oldest_overdue_days": 0,
        "late_fees_12m": 0,
        "reversals_12m": 0,
        "theft_12m": 0.0,
    } | kw
    r = credit_grades(*(np.array([float(v)]) for v in cols.values()), params=params or CreditParams())
    deductions = {
        rule: float(r.deductions[0, k]) for k, rule in enumerate(CREDIT_RULES) if r.deductions[0, k]
    }
    caps = [c for k, c in enumerate(CREDIT_CAPS) if r.caps[0, k]]
    return float(r.points[0]), GRADES[int(r.grade[0])], deductions, caps


@pytest.mark.parametrize(
    ("inputs", "points", "grade"),
    [
        ({}, 100, "A"),
        ({"reversals_12m": 1}, 90, "A"),  # A at exactly 90
        ({"reversals_12m": 1, "b32": 0.95}, 89.5, "B"),
        ({"oldest_overdue_days": 31, "reversals_12m": 1, "late_fees_12m": 1}, 75, "B"),  # B at 75
        ({"oldest_overdue_days": 31, "reversals_12m": 1, "late_fees_12m": 1, "b32": 0.95}, 74.5, "C"),
        ({"oldest_overdue_days": 61, "reversals_12m": 2}, 60, "C"),  # C at 60
        ({"oldest_overdue_days": 61, "reversals_12m": 2, "b32": 0.95}, 59.5, "D"),
    ],
)
def test_grade_thresholds(inputs: dict[str, float], points: float, grade: str) -> None:
    got_points, got_grade, _, _ = _grade(**inputs)
    assert got_points == pytest.approx(points) and got_grade == grade


def test_recovery_deduction_per_pct_and_cap() -> None:
    assert _grade(b31=0.75)[2] == {"recovery": 25.0}
    assert _grade(b31=0.0)[2] == {"recovery": 40.0}
    assert _grade(b31=np.nan, b32=np.nan)[0] == 100  # missing inputs deduct nothing


@pytest.mark.parametrize(
    ("days", "points"), [(30, 0), (31, 10), (60, 10), (61, 20), (90, 20), (91, 35), (400, 35)]
)
def test_overdue_steps(days: int, points: float) -> None:
    assert _grade(oldest_overdue_days=days)[2].get("overdue", 0) == points


def test_hangzhou_late_fee_rule() -> None:
    assert _grade(late_fees_12m=1)[2] == {"late_fees": 5}
    assert _grade(late_fees_12m=2)[2] == {"late_fees": 25}  # 2 x 5 + 15
    assert _grade(late_fees_12m=3)[:2] == (70, "C")


def test_caps() -> None:
    no_points = CreditParams(theft_points=0, overdue_steps=())
    assert _grade(no_points, theft_12m=10.0)[1:] == ("C", {}, ["theft_any"])
    assert _grade(no_points, oldest_overdue_days=91)[1:] == ("C", {}, ["overdue_long"])
    assert _grade(no_points, oldest_overdue_days=90)[1] == "A"
    assert _grade(theft_12m=50_000.0)[1] == "C"  # 70 points, theft cap C
    assert _grade(theft_12m=50_000.01)[1:] == ("D", {"theft": 30}, ["theft_any", "theft_major"])


def test_configurable_thresholds() -> None:
    wuhan_like = CreditParams(grade_b=70, grade_c=0)
    assert _grade(wuhan_like, late_fees_12m=3)[1] == "B"  # 70
    assert _grade(wuhan_like, late_fees_12m=10)[1] == "C"


def test_vectorised_matches_one_by_one() -> None:
    rng = np.random.default_rng(2)
    n = 300
    cols = [
        rng.random(n),
        rng.random(n),
        rng.integers(0, 200, n).astype(float),
        rng.integers(0, 4, n).astype(float),
        rng.integers(0, 3, n).astype(float),
        np.where(rng.random(n) < 0.1, rng.random(n) * 1e5, 0.0),
    ]
    r = credit_grades(*cols, params=CreditParams())
    names = ["b31", "b32", "oldest_overdue_days", "late_fees_12m", "reversals_12m", "theft_12m"]
    for i in range(0, n, 7):
        points, grade, _, _ = _grade(**{k: c[i] for k, c in zip(names, cols, strict=True)})
        assert r.points[i] == pytest.approx(points) and GRADES[r.grade[i]] == grade


def test_safety_grades() -> None:
    feeders = np.array([2, 2, 0, 0, 1, 3])
    generator = np.array([True, False, True, False, False, False])
    assert [GRADES[g] for g in safety_grades(feeders, generator, SafetyParams())] == [
        "A",
        "B",
        "C",
        "D",
        "D",
        "B",
    ]
