"""Suspects of an area with a high-loss or loss-jump alert: a score in 0-1 per customer, ranked.

DOMAIN.md 6: an inspector needs a short list instead of a district to walk. The score of a
customer is a weighted sum of three parts, each in 0-1 (weights in ``SuspectWeights``), over the
last 30 days on which both the area's day and the customer's own day are complete (the area's
loss after the estimate of missing intervals):

- **correlation** (weight 0.35): what a tampered meter stops counting, the area loses, so a
  thief's daily kWh moves *against* the area's daily loss kWh: ``max(0, -r)``, ``r`` the Pearson
  correlation of the two series (at least ``min_days``, 7, days).
- **drop** (0.45): the customer's mean daily kWh over its newest ``recent_days`` (3) days against
  the median of its days before them, ``clip(1 - recent / median, 0, 1)`` (0 with a median at or
  below ``median_floor_kwh``, 1 kWh), *times how well the area's loss matched the drop when it
  began* (``coincidence``). The onset is the day that splits the customer's days into the
  largest fall of the mean (at least ``min_days`` before it); with ``kwh_step`` and
  ``loss_step`` the customer's fall and the area's loss rise between the ``recent_days`` days on
  either side of it, ``ratio = loss_step / kwh_step`` and ``coincidence = min(ratio, 1 / ratio)``
  (0 when either does not move the right way). Why: a drop alone is a holiday as often as a
  theft, and the level correlation alone cannot tell them apart when the holiday falls inside a
  thief's high-loss period (both customers are low while the loss is high: on the tests'
  simulated cases a holiday customer's ``r`` reached -0.73 against the thief's -0.998, and its
  deeper drop put it first). At the onset the difference is plain: the thief's metered kWh falls
  as the loss rises by about as much (ratio near 1); the holiday customer's falls and the loss
  does not move (ratio near 0), or moves by far more than its drop because of someone else
  (ratio far above 1: a holiday starting the day after a large theft saw a loss rise 236 times
  its own drop).
- **flags** (0.2): the strongest of the customer's own open inspection alerts: ``tamper_flag``
  1.0, ``stopped_reporting`` 0.7 (a "white screen" meter hides consumption), ``consumption_drop``
  0.5.

The parts, the inputs behind them and the weights are in ``evidence``; ``reasons`` names the
parts that weigh (``negative_loss_correlation`` at ``r <= -0.5``, ``drop_with_loss_rise`` when the
drop part is 0.2 or more) and the flags. Ties rank by customer id, so the list is deterministic.
A theft that began before the 30 days shows no onset and no correlation: the area's high-loss
alert still fires, its suspects then rest on the flags. Pure: series in, suspects out.
"""

from __future__ import annotations

import statistics
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from inspection.area import CustomerDay, DayFigures

FLAG_SCORES: Mapping[str, float] = {"tamper_flag": 1.0, "stopped_reporting": 0.7, "consumption_drop": 0.5}


@dataclass(frozen=True, slots=True)
class SuspectWeights:
    correlation: float = 0.35
    drop: float = 0.45
    flags: float = 0.2
    window_days: int = 30
    min_days: int = 7
    recent_days: int = 3
    median_floor_kwh: float = 1.0
    strong_correlation: float = -0.5  # reason "negative_loss_correlation" at or below
    strong_drop: float = 0.2  # reason "drop_with_loss_rise" when the drop part is at or above
    flag_scores: Mapping[str, float] = field(default_factory=lambda: dict(FLAG_SCORES))


@dataclass(frozen=True, slots=True)
class Suspect:
    customer_id: str
    score: float
    reasons: tuple[str, ...]
    evidence: dict[str, Any]
    manager_id: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """The entry of an alert's ``suspects`` (CONTRACT.md ``alerts.inspection``)."""
        return {
            "customer_id": self.customer_id,
            "score": self.score,
            "reasons": list(self.reasons),
            "evidence": self.evidence,
        }


def _loss(day: DayFigures) -> float:
    net = day.loss_kwh_net
    return net if net is not None else day.loss_kwh


def suspect_score(
    customer_id: str,
    series: Sequence[CustomerDay],
    area_days: Sequence[DayFigures],
    flags: Collection[str] = (),
    *,
    manager_id: str | None = None,
    weights: SuspectWeights | None = None,
) -> Suspect:
    """The score of one customer: ``series`` its local days and ``area_days`` its area's
    (both oldest first; matched by date), ``flags`` its open inspection alerts' rules."""
    w = weights if weights is not None else SuspectWeights()
    area = {d.date: d for d in area_days if d.complete}
    usable = [d for d in series if d.complete and d.date in area][-w.window_days :]

    kwh = [d.kwh for d in usable]
    loss = [_loss(area[d.date]) for d in usable]
    r: float | None = None
    if len(usable) >= w.min_days and np.std(kwh) > 0 and np.std(loss) > 0:
        r = float(np.corrcoef(kwh, loss)[0, 1])
    correlation_part = max(0.0, -r) if r is not None else 0.0

    recent = usable[-w.recent_days :]
    before = kwh[: -w.recent_days]
    median = statistics.median(before) if len(before) >= w.min_days else None
    recent_kwh = sum(d.kwh for d in recent) / len(recent) if recent else None
    drop = 0.0
    if median is not None and median > w.median_floor_kwh and recent_kwh is not None:
        drop = min(1.0, max(0.0, 1.0 - recent_kwh / median))
    onset = _onset(kwh, w.min_days)
    kwh_step: float | None = None
    loss_step: float | None = None
    coincidence: float | None = None
    if onset is not None:
        lo, hi = max(0, onset - w.recent_days), onset + w.recent_days
        kwh_step = _mean(kwh[lo:onset]) - _mean(kwh[onset:hi])
        loss_step = _mean(loss[onset:hi]) - _mean(loss[lo:onset])
        ratio = loss_step / kwh_step if kwh_step > 0 else 0.0
        coincidence = min(ratio, 1.0 / ratio) if ratio > 0 else 0.0
    drop_part = drop * (coincidence or 0.0)

    own = sorted(f for f in flags if f in w.flag_scores)
    flags_part = max((w.flag_scores[f] for f in own), default=0.0)

    score = w.correlation * correlation_part + w.drop * drop_part + w.flags * flags_part
    reasons = []
    if r is not None and r <= w.strong_correlation:
        reasons.append("negative_loss_correlation")
    if drop_part >= w.strong_drop:
        reasons.append("drop_with_loss_rise")
    reasons += own
    evidence = {
        "score": round(score, 4),
        "correlation": None if r is None else round(r, 4),
        "correlation_days": len(usable),
        "correlation_part": round(correlation_part, 4),
        "recent_kwh": recent_kwh,
        "trailing_median_kwh": median,
        "drop": round(drop, 4),
        "onset": None if onset is None else usable[onset].date.isoformat(),
        "onset_kwh_step": kwh_step,
        "onset_loss_step": loss_step,
        "coincidence": None if coincidence is None else round(coincidence, 4),
        "drop_part": round(drop_part, 4),
        "flags": own,
        "flags_part": flags_part,
        "weights": {"correlation": w.correlation, "drop": w.drop, "flags": w.flags},
    }
    return Suspect(customer_id, round(score, 4), tuple(reasons), evidence, manager_id)


def _mean(values: Sequence[float]) -> float:
    return sum(values) / len(values)


def _onset(kwh: Sequence[float], min_before: int) -> int | None:
    """The index that splits ``kwh`` into the largest fall of the mean (at least ``min_before``
    values before it, one after), None when no split lowers the mean."""
    best, best_fall = None, 0.0
    for k in range(min_before, len(kwh)):
        fall = _mean(kwh[:k]) - _mean(kwh[k:])
        if fall > best_fall:
            best, best_fall = k, fall
    return best


def rank(suspects: Sequence[Suspect]) -> list[Suspect]:
    """Most suspicious first; ties by customer id."""
    return sorted(suspects, key=lambda s: (-s.score, s.customer_id))


def rank_area(
    customer_days: Mapping[str, Sequence[CustomerDay]],
    area_days: Sequence[DayFigures],
    flags: Mapping[str, Collection[str]] | None = None,
    managers: Mapping[str, str | None] | None = None,
    weights: SuspectWeights | None = None,
) -> list[Suspect]:
    """Every member of an area scored and ranked (``customer_days``: as
    ``AreaState.customer_days``; ``flags``: each customer's open inspection rules)."""
    flags, managers = flags or {}, managers or {}
    return rank(
        [
            suspect_score(
                customer,
                series,
                area_days,
                flags.get(customer, ()),
                manager_id=managers.get(customer),
                weights=weights,
            )
            for customer, series in customer_days.items()
        ]
    )


__all__ = ["FLAG_SCORES", "Suspect", "SuspectWeights", "rank", "rank_area", "suspect_score"]
