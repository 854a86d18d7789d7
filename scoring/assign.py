"""1-5 scores by position in the population (赋值法, DOMAIN.md section 3).

Per indicator four ascending breakpoints b1 <= b2 <= b3 <= b4 split the values into five
classes; higher indicator = higher score:

    score = 1 + #{k : b_k < x} + ceil(#{k : b_k == x} / 2)

A value strictly between breakpoints simply counts the breakpoints below it. A value equal to
one breakpoint goes to the upper class (the same ">= counts as high" rule as the value matrix).
A value equal to several breakpoints is a mass of tied customers spanning several classes (every
PF >= 0.95 has B22 = 1; every customer without growth has B41 = 0): it is placed in the middle
of the classes it spans, rounded up — so half the population tied at the worst value scores 2,
not 3, and 40 % tied at the best value scores 5. Ties never split: equal values always get
equal scores, so a class can hold more or less than a fifth.

By default the breakpoints are the population's 20/40/60/80 % quantiles (``np.quantile``,
linear interpolation, NaN left out): with distinct values each class holds a fifth of the
population. A company can set explicit breakpoints per indicator
(``AssignmentParams.breakpoints``).

NaN (indicator not computable) scores 1, the lowest. An indicator with no value in the whole
population gets breakpoints of +inf: everyone scores 1 on it.

Vectorised over the whole population (compare with each breakpoint; equivalent to
``np.searchsorted(b, x, "left")`` for ``#{b_k < x}`` and the "right" - "left" difference for
the equal count). ``Breakpoints`` is computed once per population pass and kept, so that a
single customer can be rescored later against the same classes (``Breakpoints.score``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from scoring.config import AssignmentParams
from scoring.weights import INDICATORS


@dataclass(frozen=True)
class Breakpoints:
    """(8, 4) ascending breakpoints, one row per indicator in ``INDICATORS`` order."""

    values: np.ndarray

    @classmethod
    def from_population(cls, indicators: np.ndarray, params: AssignmentParams | None = None) -> Breakpoints:
        params = params or AssignmentParams()
        qs = np.asarray(params.quantiles, dtype=np.float64)
        bp = np.empty((len(INDICATORS), len(qs)), dtype=np.float64)
        for j, name in enumerate(INDICATORS):
            explicit = params.breakpoints.get(name)
            if explicit is not None:
                bp[j] = explicit
                continue
            col = indicators[:, j]
            known = col[~np.isnan(col)]
            bp[j] = np.quantile(known, qs) if known.size else np.inf
        return cls(bp)

    def score(self, indicators: np.ndarray) -> np.ndarray:
        """(n, 8) int8 scores 1..5 of an (n, 8) indicator array; NaN scores 1."""
        x = np.atleast_2d(indicators)
        out = np.empty(x.shape, dtype=np.int8)
        for j in range(x.shape[1]):
            col = x[:, j]
            # four comparisons per value beat a binary search (np.searchsorted) on four
            # breakpoints by ~5x; NaN compares False everywhere, so it counts nothing
            below = np.zeros(col.shape, dtype=np.int8)
            equal = np.zeros(col.shape, dtype=np.int8)
            for b in self.values[j]:
                below += col > b
                equal += col == b
            out[:, j] = np.where(np.isnan(col), 1, 1 + below + (equal + 1) // 2)
        return out

    def to_dict(self) -> dict[str, list[float | None]]:
        """JSON-able (``inf`` for an indicator nobody had is written as None)."""
        return {
            name: [float(v) if np.isfinite(v) else None for v in row]
            for name, row in zip(INDICATORS, self.values, strict=True)
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Sequence[float | None]]) -> Breakpoints:
        rows = [[np.inf if v is None else float(v) for v in data[name]] for name in INDICATORS]
        return cls(np.asarray(rows, dtype=np.float64))
