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

``explain_document(doc, config)`` gives the same per-indicator rows from a published
``scores.customer`` document and the model's weights (what the dashboard shows), without a
population pass.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from scoring.credit import CREDIT_CAPS, CREDIT_RULES, GRADES
from scoring.value import QUADRANTS, TIERS, tier_value, weight_vector
from scoring.weights import CURRENT_INDICATORS, INDICATORS

if TYPE_CHECKING:
    from scoring.config import ModelConfig
    from scoring.model import ScoreArrays


def indicator_rows(
    raw: Sequence[float | None],
    scores: Sequence[int],
    weights: Sequence[float],
    breakpoints: Mapping[str, list[float | None]] | None,
) -> list[dict[str, Any]]:
    """Per indicator (in ``INDICATORS`` order in, largest contribution first out): raw value,
    1-5 score, breakpoints (None when not known), total weight, contribution = score x weight,
    and the part it counts in."""
    rows: list[dict[str, Any]] = []
    for j, name in enumerate(INDICATORS):
        value = raw[j]
        score = int(scores[j])
        weight = float(weights[j])
        rows.append(
            {
                "indicator": name,
                "raw": float(value) if value is not None and np.isfinite(value) else None,
                "score": score,
                "breakpoints": breakpoints[name] if breakpoints is not None else None,
                "weight": weight,
                "contribution": score * weight,
                "part": "current" if name in CURRENT_INDICATORS else "potential",
            }
        )
    rows.sort(key=lambda r: r["contribution"], reverse=True)
    return rows


def explain_document(doc: Mapping[str, Any], config: ModelConfig) -> dict[str, Any]:
    """The explanation a ``scores.customer`` document carries with the model's weights: its
    indicators' raw values and 1-5 scores, each weight and contribution, the values, the
    origin (``value_origin``) and quadrant, tier and grades; no population is recomputed, so
    breakpoints, tier cuts and credit deductions (which need the pass) are not in it. Raises
    ValueError when the document was scored by another model than ``config``."""
    if doc.get("model_version") != config.model_version:
        raise ValueError(
            f"scored by model {doc.get('model_version')}, the configured model is {config.model_version}"
        )
    weights = weight_vector(config.total_weights())
    indicators = doc["indicators"]
    scores = doc["scores"]
    origin = doc.get("value_origin")
    return {
        "indicators": indicator_rows(
            [indicators.get(n) for n in INDICATORS], [scores[n] for n in INDICATORS], list(weights), None
        ),
        "current_value": doc["current_value"],
        "potential_value": doc["potential_value"],
        "origin": [origin["current"], origin["potential"]] if origin else None,
        "quadrant": doc["quadrant"],
        "service_tier": doc["service_tier"],
        "tier_by": config.tiers.by,
        "credit": {"grade": doc["credit_grade"]},
        "safety_grade": doc["safety_grade"],
        "model_version": doc["model_version"],
    }


def explain_row(arrays: ScoreArrays, i: int, config: ModelConfig) -> dict[str, Any]:
    raw = arrays.indicators[i]
    rows = indicator_rows(
        [float(v) for v in raw],
        [int(v) for v in arrays.scores[i]],
        list(arrays.weights),
        arrays.state.breakpoints,
    )
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
