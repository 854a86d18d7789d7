"""Current and potential value, the customer value matrix and service tiers (DOMAIN.md 3).

- current value (当前价值) = sum of score x total weight over B11, B12, B21, B22;
  potential value (潜在价值) = the same over B31, B32, B41, B42. The sums are written out term by
  term in a fixed order (not a BLAS dot product), so rescoring one customer gives bit-for-bit
  the value the population pass gave.
- Quadrant against an origin (c0, p0): current >= c0 is high, potential >= p0 is high — a
  customer exactly on an axis counts as high. vip = high/high, improvement = low current &
  high potential, maintenance = high current & low potential, abandon = low/low.
- Service tiers by value rank (article 7): cut values are taken from the ranked population —
  the value of the last customer inside the top 10 % is the ``special`` cut, inside the top
  40 % the ``level1`` cut, inside the top 90 % the ``level2`` cut — and a customer is in the
  best tier whose cut its value reaches. With distinct values the shares are exactly
  10/30/50/10; customers tied on a cut value all go to the better tier (equal value, equal
  service), so upper tiers may be slightly larger. The same cuts rescore one customer later.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from scoring.config import TierParams
from scoring.weights import INDICATORS

QUADRANTS: tuple[str, ...] = ("vip", "improvement", "maintenance", "abandon")
TIERS: tuple[str, ...] = ("special", "level1", "level2", "level3")


def weight_vector(total_weights: dict[str, float]) -> np.ndarray:
    return np.array([total_weights[name] for name in INDICATORS], dtype=np.float64)


def value_scores(scores: np.ndarray, weights: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(current, potential) of (n, 8) scores with the 8 total weights."""
    s = np.atleast_2d(scores).astype(np.float64)
    current = s[:, 0] * weights[0]
    for j in (1, 2, 3):
        current = current + s[:, j] * weights[j]
    potential = s[:, 4] * weights[4]
    for j in (5, 6, 7):
        potential = potential + s[:, j] * weights[j]
    return current, potential


def quadrant_codes(current: np.ndarray, potential: np.ndarray, origin: tuple[float, float]) -> np.ndarray:
    """Index into ``QUADRANTS`` per customer (int8)."""
    high_c = np.asarray(current) >= origin[0]
    high_p = np.asarray(potential) >= origin[1]
    # vip 0, improvement 1, maintenance 2, abandon 3
    return np.where(high_p, np.where(high_c, 0, 1), np.where(high_c, 2, 3)).astype(np.int8)


def quadrant(current: float, potential: float, origin: tuple[float, float]) -> str:
    return QUADRANTS[int(quadrant_codes(np.array([current]), np.array([potential]), origin)[0])]


def tier_value(current: np.ndarray, potential: np.ndarray, params: TierParams) -> np.ndarray:
    if params.by == "current":
        return np.asarray(current)
    if params.by == "potential":
        return np.asarray(potential)
    return np.asarray(current) + np.asarray(potential)


@dataclass(frozen=True)
class TierCuts:
    """Lowest value of ``special``, ``level1`` and ``level2`` (+inf: the tier is empty)."""

    special: float
    level1: float
    level2: float

    @classmethod
    def from_values(cls, value: np.ndarray, params: TierParams) -> TierCuts:
        v = np.sort(np.asarray(value, dtype=np.float64))[::-1]
        n = v.size
        cuts = []
        shares = (params.special, params.level1, params.level2)
        for cum in np.cumsum(shares):
            k = int(np.floor(cum * n + 0.5))  # customers inside this share, rounded half up
            cuts.append(float(v[k - 1]) if k >= 1 else float("inf"))
        return cls(*cuts)

    def codes(self, value: np.ndarray) -> np.ndarray:
        """Index into ``TIERS`` per customer (int8)."""
        v = np.asarray(value)
        reached = (v >= self.level2).astype(np.int8) + (v >= self.level1) + (v >= self.special)
        return (3 - reached).astype(np.int8)
