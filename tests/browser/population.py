"""What the browser tests put on the dashboard's inputs: every document valid by the contract's
models, the scores computed by the real scoring model from the statistics, the area figures by
the inspection stage's pure core (``inspection.area.AreaState``).

Every customer's stats.customer goes out twice: its latest document and one a day older with
other figures; for half of the customers the older one is published AFTER the latest (out of
order), so a page showing "the latest stats.customer" shows the merge by event time.
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

import orjson

from inspection.area import AreaState
from metering.load import DEFAULT_TZ
from schemas import topics as contract
from schemas.models import (
    CreditAlert,
    InspectionAlert,
    OutageAlert,
    ReliabilityIndices,
    ScoresCustomer,
    StatsArea,
    StatsCustomer,
)
from scoring import run_population
from tests.scoring_samples import full_doc, simulated_stats

MANAGERS = ("M01", "M02")


def _json(doc: dict[str, Any]) -> dict[str, Any]:
    return orjson.loads(orjson.dumps(doc, option=orjson.OPT_SERIALIZE_NUMPY))


def _months_back(period: str, n: int) -> list[str]:
    y, m = (int(x) for x in period.split("-"))
    out = []
    for k in range(n - 1, -1, -1):
        idx = y * 12 + (m - 1) - k
        out.append(f"{idx // 12:04d}-{idx % 12 + 1:02d}")
    return out


@dataclass
class Population:
    customers: list[str]
    stats: dict[str, dict[str, Any]]  # the latest document of each customer
    stale_stats: dict[str, dict[str, Any]]  # a day older, other figures
    scores: dict[str, dict[str, Any]]
    alerts: list[dict[str, Any]]  # credit, outage, inspection alert documents
    reliability: list[dict[str, Any]]
    areas: list[dict[str, Any]]
    messages: list[tuple[str, str, bytes]] = field(default_factory=list)  # (topic, key, value) in order

    def quadrant_counts(self) -> dict[str, int]:
        counts = dict.fromkeys(("vip", "improvement", "maintenance", "abandon"), 0)
        for doc in self.scores.values():
            counts[doc["quadrant"]] += 1
        return counts

    def alerts_of(self, manager: str) -> list[dict[str, Any]]:
        return [a for a in self.alerts if manager in (a.get("manager_ids") or [a.get("manager_id")])]


def _stats_docs(n: int) -> tuple[list[dict[str, Any]], dict[str, dict[str, Any]]]:
    docs, profiles = simulated_stats(n, seed=14)
    ids = {d["customer_id"]: f"C{i:04d}" for i, d in enumerate(docs)}
    out = []
    for i, d in enumerate(docs):
        d = full_doc(d)
        cid = ids[d["customer_id"]]
        d["customer_id"] = cid
        kwh = d["d30"]["kwh"]
        d["hourly_kw"] = [
            round(kwh / 720 * (0.6 + 0.5 * math.sin(math.pi * (h - 6) / 12) ** 2), 3) for h in range(24)
        ]
        d["consumption"] = {
            p: round(kwh * (0.8 + 0.02 * k + 0.1 * math.sin(k + i)), 1)
            for k, p in enumerate(_months_back(d["month"]["period"], 26))
        }
        d["month"]["pf_adjustment_cny"] = round(kwh * 0.65 * (d["month"]["pf_adjustment_pct"] or 0) / 100, 2)
        d["month"]["projected_power_factor"] = d["month"]["power_factor"]
        d["month"]["projected_pf_adjustment_pct"] = d["month"]["pf_adjustment_pct"]
        d["month"]["projected_pf_adjustment_cny"] = d["month"]["pf_adjustment_cny"]
        buckets = d["arrears"]["overdue_buckets"]
        outstanding = max(0.0, d["arrears"]["outstanding"])
        buckets.update({"0_30": round(outstanding * 0.5, 2), "31_60": round(outstanding * 0.3, 2)})
        buckets.update({"61_90": round(outstanding * 0.2, 2), "over_90": 0.0})
        out.append(_json(StatsCustomer.model_validate(d).model_dump(mode="json", by_alias=True)))
    by_id = {}
    for p in profiles:
        p = dict(p)
        p["customer_id"] = ids[p["customer_id"]]
        by_id[p["customer_id"]] = p
    return out, by_id


def _stale(doc: dict[str, Any]) -> dict[str, Any]:
    """The same customer a day earlier, with other figures (what the page must NOT show)."""
    old = copy.deepcopy(doc)
    old["ts"] = (datetime.fromisoformat(doc["ts"]) - timedelta(days=1)).isoformat()
    for w in ("day", "d30", "month"):
        for f in ("kwh", "kvarh", "avg_kw", "max_kw"):
            old[w][f] = round(old[w][f] * 0.5 + 1.0, 3)
    old["arrears"]["outstanding"] = round(old["arrears"]["outstanding"] + 1000.0, 2)
    return _json(StatsCustomer.model_validate(old).model_dump(mode="json", by_alias=True))


def _alerts(customers: list[str], scores: dict[str, dict[str, Any]], now: datetime) -> list[dict[str, Any]]:
    alerts: list[dict[str, Any]] = []
    for k, cid in enumerate(customers[:6]):
        days = 35 + 20 * k
        alerts.append(
            CreditAlert(
                alert_id=f"credit:{cid}:{'overdue_90' if days > 90 else 'overdue_30'}",
                severity="critical" if days > 90 else "major",
                status="open",
                ts=now - timedelta(hours=6 - k),
                reason=f"oldest bill {days} days overdue",
                evidence={"oldest_overdue_days": days, "outstanding": 1000.0 + k, "as_of": now.isoformat()},
                customer_id=cid,
                rule="overdue_90" if days > 90 else "overdue_30",
                manager_id=MANAGERS[k % 2],
            ).model_dump(mode="json")
        )
    affected = [
        {
            "customer_id": cid,
            "importance": imp,
            "safety_grade": scores[cid]["safety_grade"],
            "impact": impact,
            "est_kw": kw,
            "revenue_at_risk_cny_per_h": None if kw is None else round(kw * 0.65, 2),
            "manager_id": MANAGERS[j % 2],
        }
        for j, (cid, imp, impact, kw) in enumerate(
            [
                (customers[10], "special", "loss_of_supply", 830.5),
                (customers[11], "level1", "loss_of_redundancy", 420.0),
                (customers[12], "none", "loss_of_supply", None),
            ]
        )
    ]
    outage = dict(
        reason="feeder F3 tripped: a special customer loses supply",
        evidence={"customers_affected": 3, "loss_of_supply": 2},
        scope="feeder",
        scope_id="F3",
        manager_ids=list(MANAGERS),
        affected=affected,
        cause="cable fault",
    )
    alerts.append(
        OutageAlert(
            alert_id="outage:O-active",
            outage_id="O-active",
            severity="critical",
            status="open",
            ts=now - timedelta(minutes=20),
            planned=False,
            expected_restore=now + timedelta(hours=2),
            **outage,
        ).model_dump(mode="json")
    )
    alerts.append(
        OutageAlert(
            alert_id="outage:O-planned",
            outage_id="O-planned",
            severity="major",
            status="open",
            ts=now - timedelta(hours=1),
            planned=True,
            planned_start=now + timedelta(days=2),
            expected_restore=now + timedelta(days=2, hours=6),
            **(outage | {"scope_id": "F4", "reason": "planned work on F4", "cause": "maintenance"}),
        ).model_dump(mode="json")
    )
    alerts.append(
        OutageAlert(
            alert_id="outage:O-restored",
            outage_id="O-restored",
            severity="minor",
            status="resolved",
            ts=now - timedelta(days=1),
            planned=False,
            **(outage | {"scope_id": "F2", "reason": "F2 restored after 48 min", "affected": affected[1:2]}),
        ).model_dump(mode="json")
    )
    alerts.append(
        InspectionAlert(
            alert_id="inspection:TA01:area_high_loss",
            severity="major",
            status="open",
            ts=now - timedelta(hours=3),
            reason="area TA01 lost 18.2 % on a complete day",
            evidence={"loss_rate": 0.182},
            rule="area_high_loss",
            scope="transformer_area",
            transformer_area="TA01",
            manager_ids=["M02"],
            suspects=[
                {
                    "customer_id": customers[20],
                    "score": 0.81,
                    "reasons": ["negative_loss_correlation", "drop_with_loss_rise"],
                    "evidence": {"correlation": -0.9},
                },
                {
                    "customer_id": customers[21],
                    "score": 0.22,
                    "reasons": ["consumption_drop"],
                    "evidence": {},
                },
            ],
        ).model_dump(mode="json")
    )
    return [_json(a) for a in alerts]


def _reliability(now: datetime) -> list[dict[str, Any]]:
    docs = []
    for scope_id, served, ci, minutes in (
        ("system", 3000, 900, 61000.0),
        ("F1", 800, 120, 5200.0),
        ("F2", 700, 400, 31000.0),
        ("F3", 900, 300, 20500.0),
        ("F4", 600, 80, 4300.0),
    ):
        saifi = ci / served
        saidi = minutes / served
        docs.append(
            ReliabilityIndices(
                scope="system" if scope_id == "system" else "feeder",
                scope_id=scope_id,
                year=now.year,
                customers_served=served,
                customer_interruptions=ci,
                customer_minutes=minutes,
                SAIFI=saifi,
                SAIDI=saidi,
                CAIDI=saidi / saifi,
                momentary_interruptions=3,
                ts=now - timedelta(hours=2),
            ).model_dump(mode="json")
        )
    return [_json(d) for d in docs]


def _areas(customers: list[str]) -> list[dict[str, Any]]:
    """Two areas over 35 days: TA01 loses 18 % (a meter of customers[20] counts 30 % from day 28),
    TA02 3 %."""
    first = date(2026, 10, 1)
    lo = int(datetime(first.year, first.month, first.day, tzinfo=DEFAULT_TZ).timestamp())
    docs = []
    for area, members, extra in (("TA01", customers[20:24], 0.0), ("TA02", customers[24:28], 0.0)):
        state = AreaState(DEFAULT_TZ)
        for c in members:
            state.join(c, lo)
        for k in range(35):
            start = lo + k * 86400
            true = {c: 0.2 + 0.05 * j for j, c in enumerate(members)}
            loss = 1.18 if area == "TA01" else 1.03
            state.apply_supply(start, [round(sum(true.values()) * loss + extra, 4)] * 96)
            for c, kwh in true.items():
                metered = round(kwh * 0.3, 4) if area == "TA01" and c == members[0] and k >= 28 else kwh
                state.apply_customer(c, f"m-{c}", start, [metered] * 96)
        docs.append(
            _json(StatsArea.model_validate(_json(state.stats_document(area))).model_dump(mode="json"))
        )
    return docs


def build(n: int, now: datetime | None = None) -> Population:
    now = (now or datetime.now(UTC)).replace(microsecond=0)
    stats_docs, profiles = _stats_docs(n)
    run = run_population(stats_docs, profiles)
    scores = {
        d["customer_id"]: _json(ScoresCustomer.model_validate(d).model_dump(mode="json"))
        for d in run.documents
    }
    customers = [d["customer_id"] for d in stats_docs]
    stats = {d["customer_id"]: d for d in stats_docs}
    stale = {cid: _stale(doc) for cid, doc in stats.items()}
    pop = Population(
        customers=customers,
        stats=stats,
        stale_stats=stale,
        scores=scores,
        alerts=_alerts(customers, scores, now),
        reliability=_reliability(now),
        areas=_areas(customers),
    )
    msgs = pop.messages
    for i, cid in enumerate(customers):
        order = [stale[cid], stats[cid]] if i % 2 else [stats[cid], stale[cid]]  # even: out of order
        msgs.extend((contract.STATS_CUSTOMER, cid, orjson.dumps(d)) for d in order)
        msgs.append((contract.SCORES_CUSTOMER, cid, orjson.dumps(scores[cid])))
    topic_of = {
        "credit": contract.ALERTS_CREDIT,
        "outage": contract.ALERTS_OUTAGE,
        "inspection": contract.ALERTS_INSPECTION,
    }
    msgs.extend((topic_of[a["kind"]], a["alert_id"], orjson.dumps(a)) for a in pop.alerts)
    msgs.extend((contract.RELIABILITY_INDICES, d["scope_id"], orjson.dumps(d)) for d in pop.reliability)
    msgs.extend((contract.STATS_AREA, d["transformer_area"], orjson.dumps(d)) for d in pop.areas)
    return pop
