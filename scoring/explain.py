"""Why a customer got its scores: every number behind the value, quadrant, tier and grades.

``explain_row(arrays, i, config)`` returns a JSON-able dict:

- ``indicators``: per indicator its raw value, 1-5 score, the breakpoints it was placed
  against, total weight, contribution (score x weight) and the part it counts in (current or
  potential), sorted by contribution, largest first;
- ``current_value`` / ``potential_value`` with the origin and the quadrant;
- ``service_tier`` with the value ranked and the tier cut values;
- ``credit``: points, grade, the deductions that applied (rule -> points, largest first) and
  the caps that limited the grade;
- ``safety_grade``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from scoring.credit import CREDIT_CAPS, CREDIT_RULES, GRADES
from scoring.value import QUADRANTS, TIERS, tier_value
from scoring.weights import CURRENT_INDICATORS, INDICATORS

if TYPE_CHECKING:
    from scoring.config import ModelConfig
    from scoring.model import ScoreArrays


def explain_row(arrays: ScoreArrays, i: int, config: ModelConfig) -> dict[str, Any]:
    raw = arrays.indicators[i]
    rows: list[dict[str, Any]] = []
    for j, name in enumerate(INDICATORS):
        score = int(arrays.scores[i, j])
        weight = float(arrays.weights[j])
        rows.append(
            {
                "indicator": name,
                "raw": float(raw[j]) if np.isfinite(raw[j]) else None,
                "score": score,
                "breakpoints": arrays.state.breakpoints[name],
                "weight": weight,
                "contribution": score * weight,
                "part": "current" if name in CURRENT_INDICATORS else "potential",
            }
        )
    rows.sort(key=lambda r: r["contribution"], reverse=True)
    credit = arrays.credit
    deductions: list[dict[str, Any]] = [
        {"rule": rule, "points": float(credit.deductions[i, k])}
        for k, rule in enumerate(CREDIT_RULES)
        if credit.deductions[i, k] > 0
    ]
    deductions.sort(key=lambda d: d["points"], reverse=True)
    cap_grades = (config.credit.theft_cap, config.credit.overdue_cap, config.credit.theft_major_grade)
    caps = [
        {"cap": cap, "grade_at_best": cap_grades[k]} for k, cap in enumerate(CREDIT_CAPS) if credit.caps[i, k]
    ]
    current = float(arrays.current[i])
    potential = float(arrays.potential[i])
    return {
        "indicators": rows,
        "current_value": current,
        "potential_value": potential,
        "origin": list(arrays.state.origin),
        "quadrant": QUADRANTS[int(arrays.quadrant[i])],
        "service_tier": TIERS[int(arrays.tier[i])],
        "tier_by": config.tiers.by,
        "tier_value": float(tier_value(np.array([current]), np.array([potential]), config.tiers)[0]),
        "tier_cuts": arrays.state.tier_cuts,
        "credit": {
            "points": float(credit.points[i]),
            "grade": GRADES[int(credit.grade[i])],
            "deductions": deductions,
            "caps": caps,
        },
        "safety_grade": GRADES[int(arrays.safety[i])],
        "model_version": arrays.state.model_version,
    }
