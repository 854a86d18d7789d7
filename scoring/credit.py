"""Credit grade A-D (DOMAIN.md section 4) and supply-safety grade A-D (section 5), vectorised.

Credit: a points model. Start at 100 and deduct (defaults; all in ``CreditParams``):

| rule | deduction |
|---|---|
| recovery | 1 point per % of the 36-month due not recovered, (1 - B31) x 100, at most 40 |
| punctuality | 10 x (1 - B32): 0 without late fees, 10 when late fees reach a = 50 % of receivable |
| overdue | oldest unpaid bill > 30 days past due -10, > 60 -20, > 90 -35 (the largest step only) |
| late_fees | 5 per late-fee event in 12 months; 2 or more: 15 more (Hangzhou dishonesty rule) |
| reversals | 10 per payment reversal (退票) in 12 months (a repeat extra is configurable, default 0) |
| theft | any theft penalty in 12 months -30 |

Grade: A >= 90, B >= 75, C >= 60, D below. Caps (the grade can be no better than): any theft
-> C; oldest bill > 90 days past due (about 3 months of arrears) -> C; theft penalties
> 50,000 CNY in 12 months -> D (Hangzhou's commercial-dishonesty threshold).

How it differs from the Wuhan scheme (A >= 90, B 70-90, C < 70; theft or 3 months of arrears
force C) and why: Wuhan has three grades; we keep the four grades A-D of ``scores.customer``
(the Hainan scheme also has four, with C and D prepaying), so the bottom is split: B starts at
75 instead of 70 and C runs 60-75, D below 60. Wuhan's two forcing rules are kept as caps at C;
major theft (> 50,000 CNY, Hangzhou) forces D. The points themselves are ours — neither article
publishes its deductions — and every one is a config value.

Missing inputs deduct nothing (NaN counts as 0): a customer is not downgraded for a statistic
that is not there yet.

Safety grade (article 4): dual circuit (two or more distinct feeders) and own emergency
source -> A; dual circuit only -> B; emergency source only -> C; neither -> D.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from scoring.config import CreditParams, SafetyParams

GRADES: tuple[str, ...] = ("A", "B", "C", "D")
CREDIT_RULES: tuple[str, ...] = ("recovery", "punctuality", "overdue", "late_fees", "reversals", "theft")
"""Columns of ``CreditResult.deductions``."""
CREDIT_CAPS: tuple[str, ...] = ("theft_any", "overdue_long", "theft_major")
"""Columns of ``CreditResult.caps``."""


@dataclass(frozen=True)
class CreditResult:
    points: np.ndarray  # (n,) float64
    grade: np.ndarray  # (n,) int8 index into GRADES
    deductions: np.ndarray  # (n, len(CREDIT_RULES)) float64, points deducted per rule
    caps: np.ndarray  # (n, len(CREDIT_CAPS)) bool, caps that applied


def _zero_nan(x: np.ndarray) -> np.ndarray:
    return np.nan_to_num(np.asarray(x, dtype=np.float64), nan=0.0)


def credit_grades(
    b31: np.ndarray,
    b32: np.ndarray,
    oldest_overdue_days: np.ndarray,
    late_fees_12m: np.ndarray,
    reversals_12m: np.ndarray,
    theft_12m: np.ndarray,
    params: CreditParams,
) -> CreditResult:
    """Credit points, grade, deductions and caps of every customer."""
    p = params
    n = np.asarray(b31).shape[0]
    ded = np.zeros((n, len(CREDIT_RULES)), dtype=np.float64)
    b31z = np.where(np.isnan(b31), 1.0, b31)
    ded[:, 0] = np.minimum((1.0 - b31z) * 100.0 * p.recovery_points_per_pct, p.recovery_max)
    b32z = np.where(np.isnan(b32), 1.0, b32)
    ded[:, 1] = (1.0 - b32z) * p.punctuality_points
    days = _zero_nan(oldest_overdue_days)
    for step in p.overdue_steps:  # ascending: the largest step that applies wins
        ded[:, 2] = np.where(days > step.days, step.points, ded[:, 2])
    fees = _zero_nan(late_fees_12m)
    fee_repeat = np.where(fees >= p.late_fee_repeat_count, p.late_fee_repeat_points, 0.0)
    ded[:, 3] = fees * p.late_fee_each + fee_repeat
    rev = _zero_nan(reversals_12m)
    rev_repeat = np.where(rev >= p.reversal_repeat_count, p.reversal_repeat_points, 0.0)
    ded[:, 4] = rev * p.reversal_each + rev_repeat
    theft = _zero_nan(theft_12m)
    ded[:, 5] = np.where(theft > 0, p.theft_points, 0.0)

    points = p.start - ded.sum(axis=1)
    grade = 3 - (
        (points >= p.grade_c).astype(np.int8) + (points >= p.grade_b) + (points >= p.grade_a)
    ).astype(np.int8)
    caps = np.stack(
        [theft > 0, days > p.overdue_cap_days, theft > p.theft_major_cny],
        axis=1,
    )
    for k, cap_grade in enumerate((p.theft_cap, p.overdue_cap, p.theft_major_grade)):
        grade = np.where(caps[:, k], np.maximum(grade, GRADES.index(cap_grade)), grade)
    return CreditResult(points=points, grade=grade.astype(np.int8), deductions=ded, caps=caps)


def safety_grades(
    distinct_feeders: np.ndarray, emergency_generator: np.ndarray, params: SafetyParams
) -> np.ndarray:
    """Index into ``GRADES`` per customer (int8)."""
    dual = np.asarray(distinct_feeders) >= params.dual_circuit_min_feeders
    gen = np.asarray(emergency_generator, dtype=bool)
    return np.where(dual, np.where(gen, 0, 1), np.where(gen, 2, 3)).astype(np.int8)
