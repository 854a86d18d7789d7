"""1-5 assignment by position in the population (DOMAIN.md section 3)."""

from __future__ import annotations

import numpy as np
import pytest

from scoring.assign import Breakpoints
from scoring.config import AssignmentParams
from scoring.weights import INDICATORS


def _hand_quantile(sorted_values: list[float], q: float) -> float:
    """Linear interpolation between closest ranks, written out (numpy's default method)."""
    pos = q * (len(sorted_values) - 1)
    lo = int(pos)
    hi = min(lo + 1, len(sorted_values) - 1)
    return sorted_values[lo] + (sorted_values[hi] - sorted_values[lo]) * (pos - lo)


def test_quintiles_match_ranks_by_hand() -> None:
    rng = np.random.default_rng(7)
    n = 1000
    ind = rng.normal(size=(n, len(INDICATORS)))  # distinct values
    scores = Breakpoints.from_population(ind).score(ind)
    for j in range(len(INDICATORS)):
        rank = np.empty(n, dtype=int)
        rank[np.argsort(ind[:, j])] = np.arange(n)
        assert (scores[:, j] == 1 + (5 * rank) // n).all()  # the lowest fifth 1, ..., the highest 5
        assert np.bincount(scores[:, j], minlength=6)[1:].tolist() == [200] * 5


def test_quintiles_against_pure_python() -> None:
    rng = np.random.default_rng(3)
    n = 1003
    ind = rng.gamma(2.0, size=(n, len(INDICATORS)))
    ind[rng.random(size=ind.shape) < 0.05] = np.nan
    bp = Breakpoints.from_population(ind)
    scores = bp.score(ind)
    for j in range(len(INDICATORS)):
        known = sorted(float(v) for v in ind[:, j] if v == v)
        cuts = [_hand_quantile(known, q) for q in (0.2, 0.4, 0.6, 0.8)]
        np.testing.assert_allclose(bp.values[j], cuts, rtol=1e-12)
        for i in range(n):
            x = float(ind[i, j])
            below = sum(1 for c in cuts if c < x)
            equal = sum(1 for c in cuts if c == x)
            expected = 1 if x != x else 1 + below + (equal + 1) // 2
            assert scores[i, j] == expected


def test_nan_scores_lowest_and_all_nan_column() -> None:
    ind = np.tile(np.arange(10.0)[:, None], (1, len(INDICATORS)))
    ind[0, 0] = np.nan
    ind[:, 7] = np.nan
    bp = Breakpoints.from_population(ind)
    scores = bp.score(ind)
    assert scores[0, 0] == 1 and scores[9, 0] == 5
    assert (scores[:, 7] == 1).all()
    assert bp.to_dict()["B42"] == [None] * 4


def test_ties_get_equal_scores_and_breakpoint_values_go_up() -> None:
    col = np.array([0.0] * 50 + [0.5] * 10 + [1.0] * 40)  # like B22: many at the cap, many at 0
    ind = np.tile(col[:, None], (1, len(INDICATORS)))
    scores = Breakpoints.from_population(ind).score(ind)[:, 0]
    for v in (0.0, 0.5, 1.0):
        assert len(set(scores[col == v].tolist())) == 1
    assert scores[col == 1.0][0] == 5  # everyone with the best value scores 5
    # 50 % tied at 0 spans classes 1-3: placed in the middle, 2; 0.5 (50-60 %) scores 3
    assert (scores[col == 0.0][0], scores[col == 0.5][0]) == (2, 3)


def test_value_on_a_breakpoint() -> None:
    bp = Breakpoints(np.tile([[1.0, 2.0, 2.0, 3.0]], (len(INDICATORS), 1)))
    x = np.array([0.5, 1.0, 1.5, 2.0, 2.5, 3.0, 9.0])
    # one breakpoint equal: up; two equal (2.0): middle of the classes spanned, rounded up
    assert bp.score(np.tile(x[:, None], (1, len(INDICATORS))))[:, 0].tolist() == [1, 2, 2, 3, 4, 5, 5]


def test_explicit_breakpoints_replace_quantiles() -> None:
    params = AssignmentParams(breakpoints={"B21": (0.2, 0.4, 0.6, 0.8)})
    x = np.array([0.0, 0.2, 0.39, 0.4, 0.7, 0.8, 1.0])
    ind = np.tile(x[:, None], (1, len(INDICATORS)))
    bp = Breakpoints.from_population(ind, params)
    assert bp.values[2].tolist() == [0.2, 0.4, 0.6, 0.8]
    assert bp.score(ind)[:, 2].tolist() == [1, 2, 2, 3, 4, 5, 5]


def test_breakpoints_are_reusable_for_one_customer() -> None:
    rng = np.random.default_rng(5)
    ind = rng.random((500, len(INDICATORS)))
    bp = Breakpoints.from_population(ind)
    again = Breakpoints.from_dict(bp.to_dict())
    np.testing.assert_array_equal(again.values, bp.values)
    population_scores = bp.score(ind)
    for i in (0, 17, 499):
        assert again.score(ind[i]).tolist() == [population_scores[i].tolist()]


def test_custom_quantiles_validated() -> None:
    with pytest.raises(ValueError):
        AssignmentParams(quantiles=(0.5, 0.4, 0.6, 0.8))
