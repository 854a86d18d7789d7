"""Scoring throughput: the vectorised model against a plain-Python loop, in the same run.

    python -m bench.scoring_bench [--customers 1000000] [--loop-customers 10000] [--seed 0]

1. vectorised: ``scoring.score_arrays`` on a simulated population of ``--customers`` (supplier
   totals, indicators, breakpoints, 1-5 scores, value, quadrant, tier cuts, credit and safety
   grades), from arrays — building the arrays is not timed, nor are the output dicts; best of
   ``--repeat`` runs after a warm-up (the loop likewise);
2. baseline: the same formulas written straightforwardly in Python, one customer at a time
   (sorted lists for the quantiles), over the first ``--loop-customers`` of them;
3. check: the loop's results equal the vectorised results on that same sub-population.

Prints one JSON object: both rates (customers/s), the per-customer speed ratio, peak RSS.
Timings depend on the machine: compare the ratio, not the absolute numbers.
"""

from __future__ import annotations

import argparse
import json
import math
import platform
import resource
import sys
import time
from typing import Any

import numpy as np

from scoring import GRADES, QUADRANTS, TIERS, ModelConfig, Population, score_arrays

NAN = float("nan")


def simulate(n: int, seed: int) -> Population:
    """A population with realistic spreads and a share of missing inputs."""
    rng = np.random.default_rng(seed)

    def holes(x: np.ndarray, share: float) -> np.ndarray:
        return np.where(rng.random(n) < share, np.nan, x)

    due = np.where(rng.random(n) < 0.05, 0.0, rng.uniform(0, 1e5, n))
    return Population(
        customer_id=[f"c{i}" for i in range(n)],
        ts=["2026-10-31T23:45:00+08:00"] * n,
        d30_kwh=holes(rng.lognormal(8, 1.5, n), 0.01),
        voltage_kv=holes(rng.choice([0.38, 10.0, 35.0, 110.0], n), 0.03),
        load_factor=holes(rng.uniform(0.05, 1.0, n), 0.02),
        power_factor=holes(rng.uniform(0.6, 1.0, n), 0.02),
        paid_36m=due * np.minimum(1.0, rng.uniform(0.7, 1.05, n)),
        due_36m=due,
        late_fee_amount_36m=due * rng.uniform(0, 0.02, n),
        yoy_growth_rate=holes(rng.normal(0.05, 0.2, n), 0.2),
        yoy_growth_kwh=holes(rng.normal(500, 8000, n), 0.2),
        oldest_overdue_days=rng.choice([0.0, 0.0, 0.0, 15.0, 45.0, 75.0, 120.0], n),
        late_fees_12m=rng.integers(0, 4, n).astype(np.float64),
        reversals_12m=rng.integers(0, 3, n).astype(np.float64),
        theft_12m=np.where(rng.random(n) < 0.01, rng.uniform(0, 1e5, n), 0.0),
        distinct_feeders=rng.integers(0, 4, n).astype(np.int32),
        emergency_generator=rng.random(n) < 0.3,
    )


# --- the baseline: the same model, one customer at a time, no numpy ---------------------------


def _ramp(x: float, lo: float, hi: float) -> float:
    if math.isnan(x):
        return NAN
    if x <= lo:
        return 0.0
    if x >= hi:
        return 1.0
    return (x - lo) / (hi - lo)


def _fee(kv: float, bands: list[tuple[float, float]]) -> float:
    if math.isnan(kv) or kv < 0:
        return NAN
    fee = bands[0][1]
    for min_kv, cny in bands:
        if kv >= min_kv:
            fee = cny
    return fee


def _quantile(sorted_values: list[float], q: float) -> float:
    if not sorted_values:
        return math.inf
    pos = q * (len(sorted_values) - 1)
    lo = int(pos)
    hi = min(lo + 1, len(sorted_values) - 1)
    return sorted_values[lo] + (sorted_values[hi] - sorted_values[lo]) * (pos - lo)


def python_loop(rows: list[dict[str, Any]], config: ModelConfig) -> list[tuple[Any, ...]]:
    p = config.indicators
    bands = [(b.min_kv, b.cny_per_kwh) for b in p.transmission_bands]
    w = config.total_weights()
    names = list(w)
    total_kwh = sum(r["d30_kwh"] for r in rows if not math.isnan(r["d30_kwh"]))
    total_fee = 0.0
    for r in rows:
        f = r["d30_kwh"] * _fee(r["voltage_kv"], bands)
        if not math.isnan(f):
            total_fee += f
    indicators = []
    for r in rows:
        due = r["due_36m"]
        nothing_due = math.isnan(due) or due <= 0
        if nothing_due:
            b31, late = 1.0, 0.0
        else:
            b31 = min(1.0, max(0.0, r["paid_36m"] / due))
            late = r["late_fee_amount_36m"] / due
        a = p.punctuality_a
        b32 = NAN if math.isnan(late) else (a - late) / a if late < a else 0.0
        indicators.append(
            [
                r["d30_kwh"] / total_kwh if total_kwh > 0 else NAN,
                r["d30_kwh"] * _fee(r["voltage_kv"], bands) / total_fee if total_fee > 0 else NAN,
                r["load_factor"],
                _ramp(r["power_factor"], p.pf_p1, p.pf_p2),
                b31,
                min(1.0, b32) if not math.isnan(b32) else NAN,
                _ramp(r["yoy_growth_rate"], 0.0, p.growth_rate_r),
                _ramp(r["yoy_growth_kwh"], 0.0, p.growth_amount_m_kwh),
            ]
        )
    cuts = []
    for j in range(8):
        known = sorted(x[j] for x in indicators if not math.isnan(x[j]))
        cuts.append([_quantile(known, q) for q in config.assignment.quantiles])
    values = []
    for x in indicators:
        scores = []
        for j in range(8):
            if math.isnan(x[j]):
                scores.append(1)
            else:
                below = sum(1 for c in cuts[j] if c < x[j])
                equal = sum(1 for c in cuts[j] if c == x[j])
                scores.append(1 + below + (equal + 1) // 2)
        current = sum(scores[j] * w[names[j]] for j in range(4))
        potential = sum(scores[j] * w[names[j]] for j in range(4, 8))
        values.append((scores, current, potential))
    origin = (
        config.origin
        if config.origin != "mean"
        else (sum(v[1] for v in values) / len(values), sum(v[2] for v in values) / len(values))
    )
    ranked = sorted((v[1] + v[2] for v in values), reverse=True)
    tier_cuts, cum = [], 0.0
    for share in (config.tiers.special, config.tiers.level1, config.tiers.level2):
        cum += share
        k = math.floor(cum * len(ranked) + 0.5)
        tier_cuts.append(ranked[k - 1] if k >= 1 else math.inf)
    c = config.credit
    out = []
    for r, x, (scores, current, potential) in zip(rows, indicators, values, strict=True):
        hc, hp = current >= origin[0], potential >= origin[1]
        quadrant = "vip" if hc and hp else "improvement" if hp else "maintenance" if hc else "abandon"
        total = current + potential
        tier = next((t for t, cut in zip(TIERS, tier_cuts, strict=False) if total >= cut), "level3")
        points = c.start
        b31 = 1.0 if math.isnan(x[4]) else x[4]
        b32 = 1.0 if math.isnan(x[5]) else x[5]
        points -= min((1 - b31) * 100 * c.recovery_points_per_pct, c.recovery_max)
        points -= (1 - b32) * c.punctuality_points
        overdue = 0.0
        for step in c.overdue_steps:
            if r["oldest_overdue_days"] > step.days:
                overdue = step.points
        points -= overdue
        fees, revs, theft = r["late_fees_12m"], r["reversals_12m"], r["theft_12m"]
        points -= fees * c.late_fee_each + (
            c.late_fee_repeat_points if fees >= c.late_fee_repeat_count else 0
        )
        points -= revs * c.reversal_each + (
            c.reversal_repeat_points if revs >= c.reversal_repeat_count else 0
        )
        points -= c.theft_points if theft > 0 else 0
        grade = 0 if points >= c.grade_a else 1 if points >= c.grade_b else 2 if points >= c.grade_c else 3
        if theft > 0:
            grade = max(grade, GRADES.index(c.theft_cap))
        if r["oldest_overdue_days"] > c.overdue_cap_days:
            grade = max(grade, GRADES.index(c.overdue_cap))
        if theft > c.theft_major_cny:
            grade = max(grade, GRADES.index(c.theft_major_grade))
        dual = r["distinct_feeders"] >= config.safety.dual_circuit_min_feeders
        gen = r["emergency_generator"]
        safety = "A" if dual and gen else "B" if dual else "C" if gen else "D"
        out.append((tuple(scores), current, potential, quadrant, tier, GRADES[grade], safety))
    return out


def _rows(pop: Population) -> list[dict[str, Any]]:
    cols = {k: v.tolist() for k, v in vars(pop).items() if isinstance(v, np.ndarray)}
    return [dict(zip(cols, vals, strict=True)) for vals in zip(*cols.values(), strict=True)]


def main(argv: list[str] | None = None) -> dict[str, Any]:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    ap.add_argument("--customers", type=int, default=1_000_000)
    ap.add_argument("--loop-customers", type=int, default=10_000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument(
        "--repeat", type=lambda v: max(1, int(v)), default=3, help="best of this many runs of each"
    )
    args = ap.parse_args(argv)
    config = ModelConfig()

    # warm up both paths (imports, pydantic's first validations), then best of --repeat
    score_arrays(simulate(1000, args.seed + 1), config)
    python_loop(_rows(simulate(1000, args.seed + 1)), config)

    pop = simulate(args.customers, args.seed)
    vector_s = math.inf
    for _ in range(args.repeat):
        t0 = time.perf_counter()
        arrays = score_arrays(pop, config)
        vector_s = min(vector_s, time.perf_counter() - t0)
        del arrays

    sub = pop.take(np.arange(min(args.loop_customers, args.customers)))
    rows = _rows(sub)
    loop_s = math.inf
    looped: list[tuple[Any, ...]] = []
    for _ in range(args.repeat):
        t0 = time.perf_counter()
        looped = python_loop(rows, config)
        loop_s = min(loop_s, time.perf_counter() - t0)

    check = score_arrays(sub, config)
    expected = zip(
        (tuple(row) for row in check.scores.tolist()),
        check.current.tolist(),
        check.potential.tolist(),
        (QUADRANTS[q] for q in check.quadrant),
        (TIERS[t] for t in check.tier),
        (GRADES[g] for g in check.credit.grade),
        (GRADES[g] for g in check.safety),
        strict=True,
    )
    agree = all(
        got[0] == exp[0]
        and math.isclose(got[1], exp[1])
        and math.isclose(got[2], exp[2])
        and got[3:] == exp[3:]
        for got, exp in zip(looped, expected, strict=True)
    )
    vector_rate = args.customers / vector_s
    loop_rate = len(rows) / loop_s
    result = {
        "bench": "scoring",
        "model_version": config.model_version,
        "customers": args.customers,
        "vectorised_seconds": round(vector_s, 4),
        "vectorised_customers_per_s": round(vector_rate),
        "loop_customers": len(rows),
        "loop_seconds": round(loop_s, 4),
        "loop_customers_per_s": round(loop_rate),
        "per_customer_speedup": round(vector_rate / loop_rate, 1),
        "loop_agrees_with_vectorised": bool(agree),
        "repeat": args.repeat,
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
        "python": platform.python_version(),
        "numpy": np.__version__,
    }
    json.dump(result, sys.stdout, indent=2)
    sys.stdout.write("\n")
    return result


if __name__ == "__main__":
    main()
