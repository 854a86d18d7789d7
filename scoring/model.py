"""Entry points: score a population of customers, or rescore one against the last pass.

- ``score_population(stats_docs, profiles, config)`` -> ``scores.customer`` dicts (each validates
  against ``schemas.models.ScoresCustomer``).
- ``run_population(...)`` -> ``PopulationRun``: the dicts, the arrays, and the
  ``PopulationState`` to keep (supplier totals, breakpoints, resolved origin, tier cuts) for
  ``score_one``, plus ``explain(customer_id)``.
- ``score_one(stats_doc, profile, state, config)``: one customer against a kept state, as the
  stream does between population passes. Scoring a member of the population against the state
  of its own pass gives exactly its population-pass result.
- ``score_arrays(population, config, state=None)``: the array-level pipeline (benchmark).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict

from scoring.assign import Breakpoints
from scoring.config import ModelConfig
from scoring.credit import GRADES, CreditResult, credit_grades, safety_grades
from scoring.explain import explain_row
from scoring.indicators import Population, SupplierTotals, compute_indicators
from scoring.value import QUADRANTS, TIERS, TierCuts, quadrant_codes, tier_value, value_scores, weight_vector
from scoring.weights import INDICATORS


class PopulationState(BaseModel):
    """What a population pass leaves for rescoring single customers (JSON-able)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    model_version: str
    customers: int
    supplier_energy_kwh: float
    supplier_transmission_fee_cny: float
    breakpoints: dict[str, list[float | None]]
    origin: tuple[float, float]
    tier_cuts: dict[str, float | None]  # special / level1 / level2; None = the tier is empty

    def totals(self) -> SupplierTotals:
        return SupplierTotals(self.supplier_energy_kwh, self.supplier_transmission_fee_cny)

    def cuts(self) -> TierCuts:
        c = {k: float("inf") if v is None else v for k, v in self.tier_cuts.items()}
        return TierCuts(special=c["special"], level1=c["level1"], level2=c["level2"])


@dataclass(frozen=True)
class ScoreArrays:
    """Every score of a population, as arrays in population order."""

    indicators: np.ndarray  # (n, 8) float64, NaN = not computable
    scores: np.ndarray  # (n, 8) int8, 1..5
    weights: np.ndarray  # (8,) total weights
    current: np.ndarray
    potential: np.ndarray
    quadrant: np.ndarray  # int8 index into QUADRANTS
    tier: np.ndarray  # int8 index into TIERS
    credit: CreditResult
    safety: np.ndarray  # int8 index into GRADES
    state: PopulationState


def _finite_or_none(v: float) -> float | None:
    return float(v) if np.isfinite(v) else None


def score_arrays(pop: Population, config: ModelConfig, state: PopulationState | None = None) -> ScoreArrays:
    """Score a population. Without ``state`` the population sets its own supplier totals,
    breakpoints, origin ("mean") and tier cuts; with ``state`` those of a previous pass are used."""
    if state is not None and state.model_version != config.model_version:
        raise ValueError(
            f"population state was computed by model {state.model_version}, not {config.model_version}"
        )
    ind, totals = compute_indicators(pop, config.indicators, state.totals() if state else None)
    if state is not None:
        bp = Breakpoints.from_dict(state.breakpoints)
    else:
        bp = Breakpoints.from_population(ind, config.assignment)
    scores = bp.score(ind)
    weights = weight_vector(config.total_weights())
    current, potential = value_scores(scores, weights)
    if state is not None:
        origin = state.origin
    elif config.origin == "mean":
        origin = (float(current.mean()), float(potential.mean())) if len(pop) else (0.0, 0.0)
    else:
        origin = config.origin
    tval = tier_value(current, potential, config.tiers)
    cuts = state.cuts() if state else TierCuts.from_values(tval, config.tiers)
    credit = credit_grades(
        ind[:, 4],
        ind[:, 5],
        pop.oldest_overdue_days,
        pop.late_fees_12m,
        pop.reversals_12m,
        pop.theft_12m,
        config.credit,
    )
    new_state = state or PopulationState(
        model_version=config.model_version,
        customers=len(pop),
        supplier_energy_kwh=totals.energy_kwh,
        supplier_transmission_fee_cny=totals.transmission_fee_cny,
        breakpoints=bp.to_dict(),
        origin=origin,
        tier_cuts={
            "special": _finite_or_none(cuts.special),
            "level1": _finite_or_none(cuts.level1),
            "level2": _finite_or_none(cuts.level2),
        },
    )
    return ScoreArrays(
        indicators=ind,
        scores=scores,
        weights=weights,
        current=current,
        potential=potential,
        quadrant=quadrant_codes(current, potential, origin),
        tier=cuts.codes(tval),
        credit=credit,
        safety=safety_grades(pop.distinct_feeders, pop.emergency_generator, config.safety),
        state=new_state,
    )


def to_documents(pop: Population, arrays: ScoreArrays) -> list[dict[str, Any]]:
    """``scores.customer`` dicts (JSON-able; NaN indicators become null)."""
    raw = arrays.indicators.astype(object)
    raw[np.isnan(arrays.indicators)] = None
    ind = raw.tolist()
    scores = arrays.scores.tolist()
    current = arrays.current.tolist()
    potential = arrays.potential.tolist()
    quad = arrays.quadrant.tolist()
    tier = arrays.tier.tolist()
    credit = arrays.credit.grade.tolist()
    safety = arrays.safety.tolist()
    version = arrays.state.model_version
    c0, p0 = arrays.state.origin
    return [
        {
            "customer_id": pop.customer_id[i],
            "ts": pop.ts[i],
            "indicators": dict(zip(INDICATORS, ind[i], strict=True)),
            "scores": dict(zip(INDICATORS, scores[i], strict=True)),
            "current_value": current[i],
            "potential_value": potential[i],
            "quadrant": QUADRANTS[quad[i]],
            "credit_grade": GRADES[credit[i]],
            "service_tier": TIERS[tier[i]],
            "safety_grade": GRADES[safety[i]],
            "model_version": version,
            "value_origin": {"current": float(c0), "potential": float(p0)},
        }
        for i in range(len(pop))
    ]


@dataclass(frozen=True)
class PopulationRun:
    population: Population
    arrays: ScoreArrays
    documents: list[dict[str, Any]]
    config: ModelConfig

    @property
    def state(self) -> PopulationState:
        return self.arrays.state

    def explain(self, customer_id: str) -> dict[str, Any]:
        return explain_row(self.arrays, self.population.customer_id.index(customer_id), self.config)


ProfileInput = Mapping[str, Any] | Iterable[Any] | None


def run_population(
    stats_docs: Iterable[Any], profiles: ProfileInput = None, config: ModelConfig | None = None
) -> PopulationRun:
    config = config or ModelConfig()
    pop = Population.from_docs(stats_docs, profiles)
    arrays = score_arrays(pop, config)
    return PopulationRun(pop, arrays, to_documents(pop, arrays), config)


def score_population(
    stats_docs: Iterable[Any], profiles: ProfileInput = None, config: ModelConfig | None = None
) -> list[dict[str, Any]]:
    """``scores.customer`` dicts for every stats document, scored against this population."""
    return run_population(stats_docs, profiles, config).documents


def score_one(
    stats_doc: Any, profile: Any, state: PopulationState, config: ModelConfig | None = None
) -> dict[str, Any]:
    """One customer's ``scores.customer`` dict against the state of the last population pass."""
    config = config or ModelConfig()
    pop = Population.from_docs([stats_doc], [profile] if profile is not None else None)
    return to_documents(pop, score_arrays(pop, config, state))[0]


def explain_one(
    stats_doc: Any, profile: Any, state: PopulationState, config: ModelConfig | None = None
) -> dict[str, Any]:
    """``score_one``'s explanation (see ``scoring.explain``)."""
    config = config or ModelConfig()
    pop = Population.from_docs([stats_doc], [profile] if profile is not None else None)
    return explain_row(score_arrays(pop, config, state), 0, config)
