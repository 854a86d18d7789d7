"""Value, quadrants and service tiers (DOMAIN.md section 3, article 7)."""

from __future__ import annotations

import numpy as np
import pytest

from scoring.config import ModelConfig, TierParams
from scoring.value import QUADRANTS, TIERS, TierCuts, quadrant, quadrant_codes, value_scores, weight_vector

ORIGIN = (2.2, 1.1)


@pytest.mark.parametrize(
    ("name", "current", "potential", "expected"),
    [
        ("M", 2.638, 1.059, "maintenance"),
        ("N", 2.261, 1.292, "vip"),
        ("D", 2.131, 1.309, "improvement"),
        ("low-low", 1.5, 0.8, "abandon"),
    ],
)
def test_article_worked_example(name: str, current: float, potential: float, expected: str) -> None:
    assert quadrant(current, potential, ORIGIN) == expected, name


def test_ties_at_the_origin_count_as_high() -> None:
    assert quadrant(2.2, 1.1, ORIGIN) == "vip"
    assert quadrant(2.2, 1.0999, ORIGIN) == "maintenance"
    assert quadrant(2.1999, 1.1, ORIGIN) == "improvement"


def test_value_ranges_match_the_article() -> None:
    w = weight_vector(ModelConfig().total_weights())
    ones, fives = np.ones((1, 8), dtype=np.int8), np.full((1, 8), 5, dtype=np.int8)
    c1, p1 = value_scores(ones, w)
    c5, p5 = value_scores(fives, w)
    assert (c1[0], c5[0]) == pytest.approx((0.667, 3.335))
    assert (p1[0], p5[0]) == pytest.approx((0.333, 1.665))


def test_value_is_score_times_weight() -> None:
    w = weight_vector(ModelConfig().total_weights())
    s = np.array([[5, 4, 3, 2, 1, 2, 3, 4]], dtype=np.int8)
    c, p = value_scores(s, w)
    assert c[0] == pytest.approx(float(s[0, :4] @ w[:4]))
    assert p[0] == pytest.approx(float(s[0, 4:] @ w[4:]))


def test_quadrant_codes_vectorised() -> None:
    codes = quadrant_codes(np.array([2.638, 2.261, 2.131, 1.0]), np.array([1.059, 1.292, 1.309, 0.5]), ORIGIN)
    assert [QUADRANTS[c] for c in codes] == ["maintenance", "vip", "improvement", "abandon"]


def test_tier_shares_on_1000_customers() -> None:
    value = np.random.default_rng(11).permutation(np.linspace(0.5, 5.0, 1000))
    cuts = TierCuts.from_values(value, TierParams())
    tiers = cuts.codes(value)
    assert np.bincount(tiers, minlength=4).tolist() == [100, 300, 500, 100]
    order = np.argsort(-value)
    assert (tiers[order[:100]] == 0).all() and (tiers[order[-100:]] == 3).all()
    assert [TIERS[t] for t in tiers[order[[0, 100, 400, 900]]]] == ["special", "level1", "level2", "level3"]


def test_tier_ties_go_to_the_better_tier() -> None:
    value = np.array([5.0] * 15 + [1.0] * 85)  # 15 share the top value: all special
    tiers = TierCuts.from_values(value, TierParams()).codes(value)
    assert (tiers[:15] == 0).all()


def test_custom_tier_shares_and_tiny_population() -> None:
    params = TierParams(special=0.05, level1=0.25, level2=0.6, level3=0.1)
    value = np.arange(200.0)
    assert np.bincount(TierCuts.from_values(value, params).codes(value)).tolist() == [10, 50, 120, 20]
    one = TierCuts.from_values(np.array([3.0]), TierParams())
    assert TIERS[int(one.codes(np.array([3.0]))[0])] == "level2"  # no top 10 % of one customer
