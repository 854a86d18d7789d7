"""Outage impact (``alerts.outage``) as pure functions: topology and outage events in, alerts out.

DOMAIN.md section 5. Topology comes from the customer profiles: a customer hangs on a
transformer area (台区) and on the feeders listed in its profile; two or more distinct feeders
make it dual-circuit. ``Topology`` indexes customers by feeder and by transformer area, so an
outage looks at the customers of its scope only, never at the whole population.

Impact of an outage on a customer, given every scope out at that moment (outages overlap):

- ``loss_of_supply``: its transformer area is out (a TA hangs on one feeder: a TA outage cuts
  its customers entirely), or every one of its feeders is out;
- ``loss_of_redundancy``: some of its feeders are out, some still live.

Safety grade (``scoring.credit.safety_grades``): dual circuit + own generator A; dual only B;
generator only C; neither D. Severity (DOMAIN.md defaults):

- ``critical``: a special or level-1 customer, or any important customer with safety grade D,
  loses supply;
- ``major``: any other important customer loses supply, or a special / level-1 customer loses
  redundancy;
- ``minor`` otherwise.

Estimated interrupted load (DOMAIN.md: from its statistics at this time of day): the customer's
latest ``stats.customer`` ``hourly_kw`` at the local hour of the outage start (the 30-day average
load of that hour of the day; the planned start for a notice), falling back to ``d30.avg_kw``
when the statistics have no profile or the hour has no data (`LoadEstimate`). Revenue at risk
per hour = est_kw x tariff_cny_per_kwh (null when either is unknown).

One alert per outage, ``alert_id = outage:<outage_id>``: a ``notice`` of planned work opens it
in advance (``planned: true``, severity as if the work had started), ``start`` (re)opens it with
the customers hit, ``restore`` resolves it with the customer-minutes interrupted (customers
that lost supply x minutes) in the evidence. The affected list of a restore is the one of the
start, recomputed from the outage records, so it is deterministic. Never customer names.
"""

from __future__ import annotations

import math
from array import array
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, tzinfo
from typing import Any, Literal

import numpy as np

from schemas.models import CustomerProfile, OutageEvent
from schemas.shared import shared
from scoring.config import SafetyParams
from scoring.credit import GRADES, safety_grades

IMPORTANCE_ORDER: tuple[str, ...] = ("special", "level1", "level2", "temporary", "none")
IMPORTANT = frozenset(("special", "level1", "level2", "temporary"))
TOP_IMPORTANCE = frozenset(("special", "level1"))
Impact = Literal["loss_of_supply", "loss_of_redundancy"]
SUPPLY: Impact = "loss_of_supply"
REDUNDANCY: Impact = "loss_of_redundancy"


def alert_id_of(outage_id: str) -> str:
    return f"outage:{outage_id}"


# ---------------------------------------------------------------------- estimated load


@dataclass(frozen=True, slots=True)
class LoadEstimate:
    """What the outage rules read of a customer's ``stats.customer``: ``d30.avg_kw`` and the
    ``hourly_kw`` profile, kept as 24 float64 (NaN: no data that hour) — 192 bytes a customer."""

    avg_kw: float | None
    hourly: array[float] | None = None

    @classmethod
    def from_stats(cls, doc: Mapping[str, Any]) -> LoadEstimate | None:
        """From a ``stats.customer`` document; None when it carries no load at all."""
        avg = (doc.get("d30") or {}).get("avg_kw")
        avg_kw = float(avg) if isinstance(avg, int | float) and not isinstance(avg, bool) else None
        profile = doc.get("hourly_kw")
        hourly = None
        if isinstance(profile, list) and len(profile) == 24:
            values = [
                float(v) if isinstance(v, int | float) and not isinstance(v, bool) else math.nan
                for v in profile
            ]
            if any(not math.isnan(v) for v in values):
                hourly = array("d", values)
        if avg_kw is None and hourly is None:
            return None
        return cls(avg_kw, hourly)

    def kw_at(self, hour: int | None) -> float | None:
        """The profile's kW at local ``hour``, else the 30-day average."""
        if hour is not None and self.hourly is not None:
            kw = self.hourly[hour]
            if not math.isnan(kw):
                return kw
        return self.avg_kw


EstKw = Mapping[str, "float | LoadEstimate"]
"""Estimated load per customer: a plain kW, or the statistics to read at the outage's hour."""


def _kw(value: float | LoadEstimate | None, hour: int | None) -> float | None:
    if value is None or isinstance(value, float | int):
        return value
    return value.kw_at(hour)


# ---------------------------------------------------------------------- topology


@dataclass(frozen=True, slots=True)
class CustomerNode:
    """What the outage rules read of a customer profile (no name: it never gets here)."""

    customer_id: str
    importance: str = "none"
    feeders: frozenset[str] = frozenset()
    transformer_area: str | None = None
    emergency_generator: bool = False
    manager_id: str | None = None
    tariff_cny_per_kwh: float | None = None

    @classmethod
    def from_profile(cls, p: CustomerProfile) -> CustomerNode:
        # repeated values are one object for all customers (a frozenset alone is 216 B)
        return cls(
            customer_id=shared(p.customer_id),
            importance=shared(p.importance),
            feeders=shared(frozenset(shared(f) for f in p.feeders)),
            transformer_area=shared(p.transformer_area),
            emergency_generator=p.emergency_generator,
            manager_id=shared(p.manager_id),
            tariff_cny_per_kwh=shared(p.tariff_cny_per_kwh),
        )


class Topology:
    """Customers indexed by feeder and by transformer area; follows profile changes."""

    def __init__(self, nodes: Iterable[CustomerNode] = ()) -> None:
        self.customers: dict[str, CustomerNode] = {}
        self._by_feeder: dict[str, set[str]] = {}
        self._by_area: dict[str, set[str]] = {}
        for node in nodes:
            self.put(node)

    def __len__(self) -> int:
        return len(self.customers)

    def put(self, node: CustomerNode) -> None:
        self.delete(node.customer_id)
        self.customers[node.customer_id] = node
        for f in node.feeders:
            self._by_feeder.setdefault(f, set()).add(node.customer_id)
        if node.transformer_area is not None:
            self._by_area.setdefault(node.transformer_area, set()).add(node.customer_id)

    def delete(self, customer_id: str) -> None:
        old = self.customers.pop(customer_id, None)
        if old is None:
            return
        for f in old.feeders:
            _discard(self._by_feeder, f, customer_id)
        if old.transformer_area is not None:
            _discard(self._by_area, old.transformer_area, customer_id)

    def on_feeder(self, feeder: str) -> set[str]:
        return self._by_feeder.get(feeder, set())

    def in_area(self, area: str) -> set[str]:
        return self._by_area.get(area, set())

    def in_scope(self, scope: str, scope_id: str) -> set[str]:
        return self.on_feeder(scope_id) if scope == "feeder" else self.in_area(scope_id)


def _discard(index: dict[str, set[str]], k: str, customer_id: str) -> None:
    members = index.get(k)
    if members is not None:
        members.discard(customer_id)
        if not members:
            del index[k]


# ---------------------------------------------------------------------- outage records


@dataclass(slots=True)
class OutageRecord:
    """Everything known of one outage, folded from its events (``apply_event``)."""

    outage_id: str
    scope: str
    scope_id: str
    planned: bool = False
    cause: str | None = None
    planned_start: datetime | None = None
    expected_restore: datetime | None = None
    notice_ts: datetime | None = None
    start_ts: datetime | None = None
    restore_ts: datetime | None = None
    events: set[str] = field(default_factory=set)

    def out_at(self, at: datetime) -> bool:
        """Whether its scope is out at ``at`` (started at or before, not restored by then)."""
        return (
            self.start_ts is not None
            and self.start_ts <= at
            and (self.restore_ts is None or self.restore_ts > at)
        )


def apply_event(records: dict[str, OutageRecord], event: OutageEvent) -> OutageRecord:
    """Fold an outage event into ``records`` (idempotent: a redelivered event changes nothing)."""
    rec = records.get(event.outage_id)
    if rec is None:
        rec = records[event.outage_id] = OutageRecord(event.outage_id, event.scope, event.scope_id)
    rec.scope, rec.scope_id = event.scope, event.scope_id
    rec.planned = rec.planned or event.planned or event.event == "notice"
    rec.cause = event.cause if event.cause is not None else rec.cause
    rec.planned_start = event.planned_start or rec.planned_start
    rec.expected_restore = event.expected_restore or rec.expected_restore
    if event.event == "notice":
        rec.notice_ts = event.ts
    elif event.event == "start":
        rec.start_ts = event.ts
    else:
        rec.restore_ts = event.ts
    rec.events.add(event.event)
    return rec


def scopes_out(
    records: Iterable[OutageRecord], at: datetime, exclude: str | None = None
) -> tuple[set[str], set[str]]:
    """(feeders, transformer areas) out at ``at``, by the other outages than ``exclude``."""
    feeders: set[str] = set()
    areas: set[str] = set()
    for r in records:
        if r.outage_id != exclude and r.out_at(at):
            (feeders if r.scope == "feeder" else areas).add(r.scope_id)
    return feeders, areas


# ---------------------------------------------------------------------- impact


def classify(node: CustomerNode, out_feeders: set[str], out_areas: set[str]) -> Impact | None:
    if node.transformer_area is not None and node.transformer_area in out_areas:
        return SUPPLY
    if not node.feeders:
        return None
    down = node.feeders & out_feeders
    if not down:
        return None
    return SUPPLY if len(down) == len(node.feeders) else REDUNDANCY


def lost(
    topology: Topology, record: OutageRecord, records: Mapping[str, OutageRecord], at: datetime
) -> dict[str, Impact]:
    """customer_id -> impact of ``record`` at ``at``, with the other outages then active."""
    out_feeders, out_areas = scopes_out(records.values(), at, exclude=record.outage_id)
    (out_feeders if record.scope == "feeder" else out_areas).add(record.scope_id)
    out: dict[str, Impact] = {}
    for cid in topology.in_scope(record.scope, record.scope_id):
        impact = classify(topology.customers[cid], out_feeders, out_areas)
        if impact is not None:
            out[cid] = impact
    return out


def safety_grade(node: CustomerNode, params: SafetyParams | None = None) -> str:
    return GRADES[int(_grades([node], params or SafetyParams())[0])]


def _grades(nodes: list[CustomerNode], params: SafetyParams) -> np.ndarray:
    feeders = np.fromiter((len(n.feeders) for n in nodes), dtype=np.int64, count=len(nodes))
    generator = np.fromiter((n.emergency_generator for n in nodes), dtype=bool, count=len(nodes))
    return safety_grades(feeders, generator, params)


def affected_customers(
    topology: Topology,
    impacts: Mapping[str, Impact],
    est_kw: EstKw,
    params: SafetyParams | None = None,
    hour: int | None = None,
) -> list[dict[str, Any]]:
    """``AffectedCustomer`` documents, most important first: importance, then safety grade
    (D first), then estimated load (largest first; unknown last), then customer_id. ``hour``:
    the local hour of day at which a `LoadEstimate` is read (None: its 30-day average)."""
    nodes = [topology.customers[cid] for cid in impacts]
    grades = _grades(nodes, params or SafetyParams()) if nodes else np.zeros(0, dtype=np.int8)
    rows: list[dict[str, Any]] = []
    for node, grade in zip(nodes, grades, strict=True):
        kw = _kw(est_kw.get(node.customer_id), hour)
        revenue = None
        if kw is not None and node.tariff_cny_per_kwh is not None:
            revenue = round(max(kw * node.tariff_cny_per_kwh, 0.0), 2)
        rows.append(
            {
                "customer_id": node.customer_id,
                "importance": node.importance,
                "safety_grade": GRADES[int(grade)],
                "impact": impacts[node.customer_id],
                "est_kw": None if kw is None else round(max(kw, 0.0), 3),
                "revenue_at_risk_cny_per_h": revenue,
                "manager_id": node.manager_id,
            }
        )
    rows.sort(
        key=lambda a: (
            IMPORTANCE_ORDER.index(a["importance"]),
            -GRADES.index(a["safety_grade"]),
            a["est_kw"] is None,
            -(a["est_kw"] or 0.0),
            a["customer_id"],
        )
    )
    return rows


def severity(affected: Iterable[Mapping[str, Any]]) -> str:
    level = "minor"
    for a in affected:
        imp, supply = a["importance"], a["impact"] == SUPPLY
        if supply and (imp in TOP_IMPORTANCE or (imp in IMPORTANT and a["safety_grade"] == "D")):
            return "critical"
        if (supply and imp in IMPORTANT) or (not supply and imp in TOP_IMPORTANCE):
            level = "major"
    return level


# ---------------------------------------------------------------------- the alert


def _iso(ts: datetime | None) -> str | None:
    return None if ts is None else ts.isoformat()


def _scope_text(record: OutageRecord) -> str:
    return f"{'feeder' if record.scope == 'feeder' else 'transformer area'} {record.scope_id}"


def outage_alert(
    topology: Topology,
    records: Mapping[str, OutageRecord],
    event: OutageEvent,
    est_kw: EstKw,
    params: SafetyParams | None = None,
    tz: tzinfo | None = None,
) -> dict[str, Any]:
    """The ``alerts.outage`` document after ``event`` (already folded into ``records``).

    ``tz``: the local zone of the hour-of-day profiles (default: the event timestamps' own)."""
    record = records[event.outage_id]
    # the customers hit: as of the start (also on restore, so the record does not change);
    # a notice, or a restore whose start was never seen: as if it started at the event
    at = record.start_ts if record.start_ts is not None and event.event != "notice" else event.ts
    impacts = lost(topology, record, records, at)
    # the load at the local hour the outage starts (a notice: the planned start, when given)
    when = record.planned_start if event.event == "notice" and record.planned_start is not None else at
    hour = (when.astimezone(tz) if tz is not None else when).hour
    affected = affected_customers(topology, impacts, est_kw, params, hour)
    n_supply = sum(1 for a in affected if a["impact"] == SUPPLY)
    n_redundancy = len(affected) - n_supply
    important_supply = sum(1 for a in affected if a["impact"] == SUPPLY and a["importance"] in IMPORTANT)
    evidence: dict[str, Any] = {
        "event": event.event,
        "customers_affected": len(affected),
        "loss_of_supply": n_supply,
        "loss_of_redundancy": n_redundancy,
        "important_loss_of_supply": important_supply,
        "important_loss_of_redundancy": sum(
            1 for a in affected if a["impact"] == REDUNDANCY and a["importance"] in IMPORTANT
        ),
        "est_kw_total": round(sum(a["est_kw"] or 0.0 for a in affected if a["impact"] == SUPPLY), 3),
        "revenue_at_risk_cny_per_h_total": round(
            sum(a["revenue_at_risk_cny_per_h"] or 0.0 for a in affected if a["impact"] == SUPPLY), 2
        ),
        "started_at": _iso(record.start_ts),
    }
    what = _scope_text(record)
    counts = (
        f"{n_supply} customers lose supply, {n_redundancy} lose redundancy "
        f"({important_supply} important lose supply)"
    )
    status = "open"
    if event.event == "notice":
        start = f" from {record.planned_start.isoformat()}" if record.planned_start else ""
        reason = f"planned work announced on {what}{start}: {counts.replace('lose', 'will lose')}"
    elif event.event == "start":
        reason = f"{'planned' if record.planned else 'fault'} outage on {what}: {counts}"
    else:
        status = "resolved"
        minutes = 0.0
        if record.start_ts is not None:
            minutes = max((event.ts - record.start_ts).total_seconds() / 60.0, 0.0)
        evidence["restored_at"] = event.ts.isoformat()
        evidence["start_known"] = record.start_ts is not None
        evidence["duration_min"] = round(minutes, 3)
        evidence["customer_minutes"] = round(n_supply * minutes, 3)
        reason = (
            f"{what} restored after {minutes:.0f} min: "
            f"{n_supply} customers without supply, {n_supply * minutes:.0f} customer-minutes"
        )
    return {
        "alert_id": alert_id_of(record.outage_id),
        "kind": "outage",
        "severity": severity(affected),
        "status": status,
        "ts": event.ts.isoformat(),
        "reason": reason,
        "evidence": evidence,
        "outage_id": record.outage_id,
        "scope": record.scope,
        "scope_id": record.scope_id,
        "planned": record.planned,
        "manager_ids": sorted({a["manager_id"] for a in affected if a["manager_id"] is not None}),
        "affected": affected,
        "planned_start": _iso(record.planned_start),
        "expected_restore": _iso(record.expected_restore),
        "cause": record.cause,
    }
