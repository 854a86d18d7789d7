"""Indicator weights from fuzzy judgement matrices (DOMAIN.md section 3, article 1).

Fuzzy consistent matrix method (Lv Yuejin 2002): for a fuzzy complementary judgement matrix
R = (r_ij), n x n, 0 <= r_ij <= 1, r_ij + r_ji = 1, r_ii = 0.5,

    w_i = 1/n - 1/(2a) + (sum_j r_ij) / (n a),    a = (n - 1) / 2.

With that a (the smallest the method allows) the weights always sum to 1 and are >= 0.

The value model is a two-level hierarchy: four criteria B1..B4 (level 1), each with two
indicators (level 2). An indicator's total weight is its criterion's weight times its own
weight within the criterion.

The article's level-1 matrix has a misprint (see ``ARTICLE_LEVEL1_MATRIX``); the shipped
default uses the published weights, and both are in the default config so both are testable.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

INDICATORS: tuple[str, ...] = ("B11", "B12", "B21", "B22", "B31", "B32", "B41", "B42")
"""Indicator ids in the fixed column order every array of the package uses."""
CRITERIA: dict[str, tuple[str, ...]] = {
    "B1": ("B11", "B12"),  # contribution 贡献度
    "B2": ("B21", "B22"),  # power use behaviour
    "B3": ("B31", "B32"),  # payment behaviour
    "B4": ("B41", "B42"),  # growth
}
CURRENT_INDICATORS: tuple[str, ...] = ("B11", "B12", "B21", "B22")  # 当前价值
POTENTIAL_INDICATORS: tuple[str, ...] = ("B31", "B32", "B41", "B42")  # 潜在价值

ARTICLE_LEVEL1_MATRIX: tuple[tuple[float, ...], ...] = (
    (0.5, 0.6, 0.9, 0.7),
    (0.4, 0.5, 0.7, 0.7),
    (0.1, 0.3, 0.5, 0.4),
    (0.3, 0.3, 0.6, 0.5),
)
"""Level-1 judgement matrix as printed in the article.

Misprint: the formula on this matrix gives (0.3667, 0.3, 0.1333, 0.2), not the published
(0.367, 0.3, 0.1, 0.233). With r34 = 0.2 / r43 = 0.8 (``ARTICLE_LEVEL1_MATRIX_CORRECTED``) it
gives the published weights exactly, so the printed 0.4 / 0.6 pair is most likely a typesetting
error. The default config ships the published weights as an explicit override
(``ARTICLE_LEVEL1_WEIGHTS``) and keeps this printed matrix next to it.
"""
ARTICLE_LEVEL1_MATRIX_CORRECTED: tuple[tuple[float, ...], ...] = (
    (0.5, 0.6, 0.9, 0.7),
    (0.4, 0.5, 0.7, 0.7),
    (0.1, 0.3, 0.5, 0.2),
    (0.3, 0.3, 0.8, 0.5),
)
"""The printed matrix with r34 = 0.2 / r43 = 0.8: reproduces the published level-1 weights."""
ARTICLE_LEVEL1_WEIGHTS: tuple[float, ...] = (0.367, 0.3, 0.1, 0.233)
"""Level-1 weights as published in the article (B1, B2, B3, B4)."""
ARTICLE_LEVEL2_MATRICES: dict[str, tuple[tuple[float, ...], ...]] = {
    "B1": ((0.5, 0.7), (0.3, 0.5)),  # -> (0.7, 0.3)
    "B2": ((0.5, 0.4), (0.6, 0.5)),  # -> (0.4, 0.6)
    "B3": ((0.5, 0.3), (0.7, 0.5)),  # -> (0.3, 0.7)
    "B4": ((0.5, 0.6), (0.4, 0.5)),  # -> (0.6, 0.4)
}

COMPLEMENT_TOLERANCE = 1e-9
MatrixLike = Sequence[Sequence[float]] | np.ndarray


class JudgementMatrixError(ValueError):
    """A judgement matrix is not a fuzzy complementary matrix; the message names the cell."""


def check_judgement_matrix(matrix: MatrixLike, name: str = "matrix") -> np.ndarray:
    """The matrix as a float array, after checking it is square, in [0, 1] and complementary.

    Raises ``JudgementMatrixError`` naming the first offending cell (1-based, as printed in the
    literature: r12 is row 1, column 2).
    """
    try:
        rows = [list(r) for r in matrix]
    except TypeError as exc:
        raise JudgementMatrixError(f"{name}: expected a list of rows") from exc
    n = len(rows)
    if n == 0:
        raise JudgementMatrixError(f"{name}: empty matrix")
    for i, row in enumerate(rows, start=1):
        if len(row) != n:
            raise JudgementMatrixError(f"{name}: not square: row {i} has {len(row)} cells, expected {n}")
    r = np.asarray(rows, dtype=np.float64)
    for i in range(n):
        for j in range(n):
            v = r[i, j]
            if not np.isfinite(v) or not 0.0 <= v <= 1.0:
                raise JudgementMatrixError(f"{name}: r{i + 1}{j + 1} = {v} is outside [0, 1]")
    for i in range(n):
        if abs(r[i, i] - 0.5) > COMPLEMENT_TOLERANCE:
            raise JudgementMatrixError(f"{name}: r{i + 1}{i + 1} = {r[i, i]} must be 0.5")
        for j in range(i + 1, n):
            if abs(r[i, j] + r[j, i] - 1.0) > COMPLEMENT_TOLERANCE:
                raise JudgementMatrixError(
                    f"{name}: not complementary: r{i + 1}{j + 1} + r{j + 1}{i + 1} = "
                    f"{r[i, j]} + {r[j, i]} = {r[i, j] + r[j, i]:.12g}, must be 1"
                )
    return r


def fuzzy_consistent_weights(matrix: MatrixLike, name: str = "matrix") -> np.ndarray:
    """Weights of a fuzzy complementary judgement matrix by the fuzzy consistent matrix method."""
    r = check_judgement_matrix(matrix, name)
    n = r.shape[0]
    if n == 1:
        return np.ones(1)
    a = (n - 1) / 2.0
    return 1.0 / n - 1.0 / (2.0 * a) + r.sum(axis=1) / (n * a)


def hierarchical_weights(
    level1: Sequence[float] | np.ndarray,
    level2: Mapping[str, Sequence[float] | np.ndarray],
    criteria: Mapping[str, Sequence[str]] = CRITERIA,
) -> dict[str, float]:
    """Total weight of each indicator: its criterion's level-1 weight x its level-2 weight.

    ``level1`` is in the order of ``criteria``; ``level2`` maps each criterion to the weights
    of its indicators in their order.
    """
    names = list(criteria)
    w1 = np.asarray(level1, dtype=np.float64)
    if w1.shape != (len(names),):
        raise ValueError(f"level-1 weights: expected {len(names)} values for {names}, got {w1.shape}")
    total: dict[str, float] = {}
    for k, crit in enumerate(names):
        w2 = np.asarray(level2[crit], dtype=np.float64)
        members = criteria[crit]
        if w2.shape != (len(members),):
            raise ValueError(f"{crit}: expected {len(members)} weights for {list(members)}, got {w2.shape}")
        for ind, w in zip(members, w2, strict=True):
            total[ind] = float(w1[k] * w)
    return total
