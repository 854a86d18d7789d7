"""Populations for the scoring tests: simulated ``stats.customer`` documents and profiles with a
spread of values and missing inputs, and the parts of a document scoring does not read."""

from __future__ import annotations

import copy
from typing import Any

import numpy as np

from schemas.models import CustomerProfile, StatsCustomer


def _window(rng: np.random.Generator, kwh: float) -> dict[str, Any]:
    lf = float(rng.uniform(0.1, 1.0)) if kwh > 0 else None
    pf = float(rng.uniform(0.6, 1.0)) if kwh > 0 else None
    avg = kwh / 720
    return {
        "kwh": kwh,
        "kvarh": kwh * 0.3,
        "avg_kw": avg,
        "max_kw": avg / lf if lf else 0.0,
        "load_factor": lf,
        "power_factor": pf,
        "intervals": 2880,
        "hours": 720.0,
    }


def simulated_stats(n: int, seed: int = 0) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Valid stats.customer documents and profiles with a spread of values and missing inputs."""
    rng = np.random.default_rng(seed)
    docs, profiles = [], []
    for i in range(n):
        cid = f"c{i:05d}"
        kwh = float(rng.lognormal(8, 1.5)) if rng.random() > 0.03 else 0.0
        due = float(rng.uniform(0, 1e5)) if rng.random() > 0.05 else 0.0
        paid = due * float(min(1.0, rng.uniform(0.7, 1.05)))
        theft = float(rng.choice([0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 1000.0, 60_000.0]))
        doc = {
            "customer_id": cid,
            "ts": "2026-10-31T23:45:00+08:00",
            "day": {**_window(rng, kwh / 30), "date": "2026-10-31"},
            "d30": {**_window(rng, kwh), "from": "2026-10-02", "to": "2026-10-31"},
            "month": {**_window(rng, kwh), "period": "2026-10", "pf_standard": 0.9, "pf_adjustment_pct": 0.0},
            "arrears": {
                "outstanding": due - paid,
                "oldest_overdue_days": int(rng.choice([0, 0, 0, 15, 45, 75, 120])),
                "overdue_buckets": {"0_30": 0.0},
                "late_fees_12m": int(rng.integers(0, 4)),
                "reversals_12m": int(rng.integers(0, 3)),
                "paid_36m": paid,
                "due_36m": due,
                "late_fee_amount_36m": due * float(rng.uniform(0, 0.02)),
                "theft_12m": theft,
            },
            "yoy_growth_rate": float(rng.normal(0.05, 0.2)) if rng.random() > 0.2 else None,
            "yoy_growth_kwh": float(rng.normal(500, 8000)) if rng.random() > 0.2 else None,
        }
        docs.append(StatsCustomer.model_validate(doc).model_dump(mode="json", by_alias=True))
        if rng.random() > 0.05:  # a few customers without a profile yet
            nf = int(rng.choice([0, 1, 2, 3]))
            profiles.append(
                CustomerProfile(
                    customer_id=cid,
                    voltage_kv=float(rng.choice([0.38, 10.0, 35.0, 110.0])),
                    feeders=[f"f{k}" for k in range(nf)],
                    emergency_generator=bool(rng.random() < 0.3),
                ).model_dump(mode="json")
            )
    return docs, profiles


def full_doc(doc: dict[str, Any], as_of: str = "2026-11-01T00:00:00+08:00") -> dict[str, Any]:
    """A stats document with the parts scoring does not read, as the worker publishes them."""
    d = copy.deepcopy(doc)
    d["arrears"]["as_of"] = as_of
    d["gaps"] = [{"date": "2026-10-30", "meter_id": "m1", "expected": 96, "found": 90}]
    d["consumption"] = {"2026-09": 1234.5, "2026-10": 2345.6}
    d["profile_known"] = True
    return d
