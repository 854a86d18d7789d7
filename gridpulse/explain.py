"""`gridpulse scores explain CUSTOMER`: why a customer has its scores, from the live topics;
`gridpulse inspection explain CUSTOMER`: why it is suspected (below).

Reads the latest `stats.customer` of every customer and every profile from Kafka (what the
worker's population view holds), runs the value model over that population and prints the
customer's explanation: each indicator's raw value, 1–5 score, breakpoints, weight and
contribution; the quadrant against the origin; the tier cut; the credit deductions.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import date
from typing import Any

import orjson

from gridpulse.settings import Settings
from inspection.area import CustomerDay, DayFigures
from inspection.suspects import rank_area
from schemas import topics as contract
from schemas.area_snapshot import CUSTOMER_DAYS_FIELD, DOC_FIELD, DayRow, area_key, parse_customer_days
from scoring import ModelConfig, load_config, run_population
from streams.kafka import read_latest


async def explain_customer(settings: Settings, customer_id: str) -> dict[str, Any]:
    stats = await read_latest(settings, contract.STATS_CUSTOMER, "customer_id")
    if customer_id not in stats:
        raise KeyError(f"no stats.customer for {customer_id!r} on {settings.topic(contract.STATS_CUSTOMER)}")
    profiles = await read_latest(settings, contract.CUSTOMERS, "customer_id")
    config = load_config(settings.scoring_model_path) if settings.scoring_model_path else ModelConfig()
    run = run_population(
        list(stats.values()),
        {cid: {k: v for k, v in p.items() if k != "name"} for cid, p in profiles.items()},
        config,
    )
    return run.explain(customer_id)


# --- `gridpulse inspection explain CUSTOMER`: why a customer is suspected ----------------------
#
# Sources: the customer's profile (its area and manager) from the `customers` topic; the area's
# Redis snapshot `{prefix}gp:areas:<area>` (schemas.area_snapshot: `doc` the stats.area document,
# `customer_days` the members' daily series), else the latest stats.area on its topic; the
# customer's `gp:stats:<customer>` snapshot; the alerts.inspection topic (its own alerts, whose
# rules are its flags, and the area alerts listing it). With the members' daily series the
# score's parts are recomputed by the stage's own function (inspection.suspects) and the
# customer ranked among the area's members; without it (not written yet) the parts are those
# of the area alert that lists it, when one does.


def _area_days(doc: Mapping[str, Any]) -> list[DayFigures]:
    """The stats.area ``daily`` series as the figures the suspect score reads: the date, whether
    the day is complete, supplied and consumed kWh and the estimate of missing intervals (what
    ``loss_kwh`` and ``loss_kwh_net`` are made of: the same arithmetic, the same doubles). The
    interval and coverage counts are not on the topic: a complete day is rebuilt as 1 of 1
    covered and reported, an incomplete one as 0 of 1 covered."""
    out = []
    for d in doc.get("daily") or []:
        complete = bool(d["complete"])
        out.append(
            DayFigures(
                date.fromisoformat(d["date"]),
                1,
                1 if complete else 0,
                float(d["supplied_kwh"]),
                float(d["consumed_kwh"]),
                0,
                0,
                1,
                1,
                d.get("estimated_missing_kwh") if complete else None,
                0,
            )
        )
    return out


def _alert_summary(alert: Mapping[str, Any]) -> dict[str, Any]:
    return {k: alert.get(k) for k in ("alert_id", "rule", "status", "severity", "ts", "reason")}


def build_suspect_explanation(
    customer_id: str,
    profile: Mapping[str, Any] | None,
    area_doc: Mapping[str, Any] | None,
    customer_days: Mapping[str, list[DayRow]] | None,
    customer_stats: Mapping[str, Any] | None,
    alerts: Sequence[Mapping[str, Any]],
) -> dict[str, Any]:
    """The explanation (JSON-ready) from what the sources gave; pure. ``alerts``: the latest
    alerts.inspection messages (any scope); ``customer_days``: the area snapshot's members'
    series (``schemas.area_snapshot.parse_customer_days``), None when the snapshot has none."""
    area = (profile or {}).get("transformer_area") or (area_doc or {}).get("transformer_area")
    notes: list[str] = []
    own = [a for a in alerts if a.get("scope") == "customer" and a.get("customer_id") == customer_id]
    open_own = [a for a in own if a.get("status") != "resolved"]
    flags = sorted({str(a["rule"]) for a in open_own})
    listing = [
        a
        for a in alerts
        if a.get("scope") == "transformer_area"
        and a.get("status") != "resolved"
        and any(s.get("customer_id") == customer_id for s in a.get("suspects") or [])
    ]
    explanation: dict[str, Any] = {
        "customer_id": customer_id,
        "transformer_area": area,
        "manager_id": (profile or {}).get("manager_id"),
        "area": None,
        "series": [],
        "score": None,
        "rank": None,
        "members": None,
        "listed_in": [
            {
                **_alert_summary(a),
                "position": next(
                    i for i, s in enumerate(a["suspects"], 1) if s.get("customer_id") == customer_id
                ),
                "suspect": next(s for s in a["suspects"] if s.get("customer_id") == customer_id),
            }
            for a in listing
        ],
        "own_alerts": [_alert_summary(a) for a in own],
        "consumption": None,
        "notes": notes,
    }
    if customer_stats is not None:
        explanation["consumption"] = {
            "ts": customer_stats.get("ts"),
            "day": {k: customer_stats.get("day", {}).get(k) for k in ("date", "kwh")},
            "d30": {k: customer_stats.get("d30", {}).get(k) for k in ("from", "to", "kwh")},
        }
    if area is None:
        notes.append("the customer's profile names no transformer area")
        return explanation
    if area_doc is None:
        notes.append(f"no stats.area of area {area} (Redis gp:areas:{area} nor the topic)")
        return explanation
    explanation["area"] = {
        "ts": area_doc.get("ts"),
        "day": {
            k: area_doc["day"].get(k)
            for k in (
                "date",
                "supplied_kwh",
                "loss_kwh",
                "loss_rate",
                "loss_rate_net",
                "coverage",
                "complete",
            )
        },
        "d30": {
            k: area_doc["d30"].get(k)
            for k in ("from", "to", "supplied_kwh", "loss_kwh", "loss_rate", "complete_days")
        },
    }
    area_days = _area_days(area_doc)
    mine = {row[0]: row for row in (customer_days or {}).get(customer_id, [])}
    for d, figures in zip(area_doc.get("daily") or [], area_days, strict=True):
        row = mine.get(figures.date)
        own_day = CustomerDay(*row) if row is not None else None
        explanation["series"].append(
            {
                "date": d["date"],
                "area_supplied_kwh": d["supplied_kwh"],
                "area_loss_kwh": figures.loss_kwh_net
                if figures.loss_kwh_net is not None
                else figures.loss_kwh,
                "area_loss_rate": d["loss_rate"],
                "area_complete": d["complete"],
                "customer_kwh": None if own_day is None else own_day.kwh,
                "customer_complete": None if own_day is None else own_day.complete,
            }
        )
    if customer_days is None:
        notes.append(
            f"Redis gp:areas:{area} has no customer_days (the members' daily series): the "
            "customer's daily kWh and a recomputed score are not available; the score's parts "
            "are those of the area alerts listing it"
        )
        return explanation
    if customer_id not in customer_days:
        notes.append(f"not a member of area {area} in its snapshot's 30 days")
        return explanation
    members = {c: [CustomerDay(*row) for row in rows] for c, rows in customer_days.items()}
    ranked = rank_area(members, area_days, {customer_id: flags})
    position = next(i for i, s in enumerate(ranked, 1) if s.customer_id == customer_id)
    suspect = ranked[position - 1]
    explanation.update(
        score={"score": suspect.score, "reasons": list(suspect.reasons), "parts": suspect.evidence},
        rank=position,
        members=len(ranked),
    )
    notes.append(
        "the score is recomputed from the snapshot with this customer's open inspection alerts as "
        "its flags (the other members' flags are not applied to their ranks)"
    )
    return explanation


async def explain_suspect(settings: Settings, customer_id: str) -> dict[str, Any]:
    """Reads the sources (module comment above) and builds the explanation; KeyError when the
    customer has no profile on the ``customers`` topic."""
    import redis.asyncio as aioredis

    profiles = await read_latest(settings, contract.CUSTOMERS, "customer_id")
    if customer_id not in profiles:
        raise KeyError(f"no profile of {customer_id!r} on {settings.topic(contract.CUSTOMERS)}")
    raw_profile = profiles[customer_id]
    profile = {
        k: raw_profile.get(k) for k in ("transformer_area", "manager_id", "importance", "tariff_class")
    }
    area = profile.get("transformer_area")
    area_doc: dict[str, Any] | None = None
    customer_days: dict[str, list[DayRow]] | None = None
    customer_stats: dict[str, Any] | None = None
    client = aioredis.from_url(settings.redis_url, socket_timeout=5.0, socket_connect_timeout=5.0)
    try:
        if area:
            fields = await client.hgetall(area_key(settings.topic_prefix, str(area)))
            snapshot = {k.decode() if isinstance(k, bytes) else k: v for k, v in fields.items()}
            if DOC_FIELD in snapshot:
                area_doc = orjson.loads(snapshot[DOC_FIELD])
            if CUSTOMER_DAYS_FIELD in snapshot:
                customer_days = parse_customer_days(snapshot[CUSTOMER_DAYS_FIELD])
        raw_stats = await client.hget(f"{settings.topic_prefix}gp:stats:{customer_id}", "doc")
        customer_stats = orjson.loads(raw_stats) if raw_stats is not None else None
    finally:
        await client.aclose()
    if area and area_doc is None:  # Redis is a cache: the topic is the record
        area_doc = (await read_latest(settings, contract.STATS_AREA, "transformer_area")).get(str(area))
    alerts = list((await read_latest(settings, contract.ALERTS_INSPECTION, "alert_id")).values())
    return build_suspect_explanation(customer_id, profile, area_doc, customer_days, customer_stats, alerts)


def _num(value: Any, digits: int = 1, scale: float = 1.0, unit: str = "") -> str:
    return "-" if value is None else f"{float(value) * scale:,.{digits}f}{unit}"


def format_suspect_explanation(e: Mapping[str, Any]) -> str:
    """The explanation for people: the area, the daily series side by side, the score's parts."""
    lines = [
        f"customer {e['customer_id']}  area {e['transformer_area'] or '-'}  manager {e['manager_id'] or '-'}"
    ]
    area = e.get("area")
    if area is not None:
        day, d30 = area["day"], area["d30"]
        lines.append(
            f"area {day['date']}: loss {_num(day['loss_rate'], 1, 100, ' %')} "
            f"(after the estimate {_num(day['loss_rate_net'], 1, 100, ' %')}), "
            f"{'complete' if day['complete'] else 'incomplete'}; 30 days {d30['from']}..{d30['to']}: "
            f"loss {_num(d30['loss_rate'], 1, 100, ' %')}, {d30['complete_days']} complete days"
        )
    if e.get("series"):
        lines.append("")
        lines.append(
            f"{'date':<10}  {'supplied kWh':>12}  {'loss kWh':>10}  {'loss':>7}  {'customer kWh':>12}"
        )
        for row in e["series"]:
            mark = "" if row["area_complete"] else " (area incomplete)"
            if row["customer_complete"] is False:
                mark += " (customer incomplete)"
            lines.append(
                f"{row['date']:<10}  {_num(row['area_supplied_kwh']):>12}  {_num(row['area_loss_kwh']):>10}  "
                f"{_num(row['area_loss_rate'], 1, 100, ' %'):>7}  {_num(row['customer_kwh'], 2):>12}{mark}"
            )
    score = e.get("score")
    if score is not None:
        p, w = score["parts"], score["parts"]["weights"]
        lines += [
            "",
            f"suspect score {score['score']:.3f}, rank {e['rank']} of {e['members']} in the area; "
            f"reasons: {', '.join(score['reasons']) or '-'}",
            f"  correlation with the area's loss: r = {_num(p['correlation'], 3)} over "
            f"{p['correlation_days']} days -> part {p['correlation_part']:.3f} x {w['correlation']}",
            f"  drop: recent {_num(p['recent_kwh'], 2)} kWh/day against a median of "
            f"{_num(p['trailing_median_kwh'], 2)} -> {p['drop']:.3f}; onset {p['onset'] or '-'} "
            f"(kWh fell {_num(p['onset_kwh_step'], 2)}, loss rose {_num(p['onset_loss_step'], 2)}, "
            f"coincidence {_num(p['coincidence'], 3)}) -> part {p['drop_part']:.3f} x {w['drop']}",
            f"  flags: {', '.join(p['flags']) or '-'} -> part {p['flags_part']:.3f} x {w['flags']}",
        ]
    for listed in e.get("listed_in") or []:
        s = listed["suspect"]
        state = f"{listed['status']}/{listed['severity']}"
        lines.append(
            f"listed #{listed['position']} in {listed['alert_id']} ({state}): "
            f"score {float(s['score']):.3f}, reasons {', '.join(s.get('reasons') or []) or '-'}"
        )
    for alert in e.get("own_alerts") or []:
        lines.append(
            f"own alert {alert['alert_id']} ({alert['status']}/{alert['severity']}): {alert['reason']}"
        )
    for note in e.get("notes") or []:
        lines.append(f"note: {note}")
    return "\n".join(lines)
