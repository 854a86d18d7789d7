"""IEEE 1366 reliability indices (``reliability.indices``) as a pure function of the year's
outage records and the topology: deterministic, and rebuildable from ``grid.outages``.

For every restored outage i that started in the year (local time zone): N_i = the customers
that LOST SUPPLY when it started (with the other outages then active: overlapping feeder
outages take a dual-circuit customer's supply; losing redundancy is not an interruption), and
r_i = its minutes from start to restore. Sustained interruptions (r_i > 5 minutes) count in

    SAIFI = sum N_i / N_T,   SAIDI = sum r_i N_i / N_T,   CAIDI = SAIDI / SAIFI

(SAIFI and SAIDI null when N_T = 0; CAIDI null without interruptions); shorter ones add N_i to
``momentary_interruptions``. Per feeder, N_i and N_T are restricted to the customers the
feeder serves (those listing it among their feeders); system-wide they are all customers.

Approximations, documented: the topology is today's (customers served, who was hit), not the
one on the day of each outage; a customer whose supply went with the second of two
overlapping outages counts in that outage, for its whole duration.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, tzinfo
from typing import Any

from alerts.outage_impact import SUPPLY, OutageRecord, Topology, lost

SUSTAINED_MORE_THAN_MIN = 5.0


@dataclass(frozen=True, slots=True)
class Interruption:
    outage_id: str
    minutes: float
    customers: frozenset[str]  # those that lost supply
    restored_at: datetime


def year_of(record: OutageRecord, tz: tzinfo) -> int | None:
    ts = record.start_ts or record.restore_ts
    return None if ts is None else ts.astimezone(tz).year


def interruptions(
    records: Mapping[str, OutageRecord], topology: Topology, year: int, tz: tzinfo
) -> list[Interruption]:
    """The restored outages that started in ``year`` (local), in start order."""
    done = [
        r
        for r in records.values()
        if r.start_ts is not None and r.restore_ts is not None and r.start_ts.astimezone(tz).year == year
    ]
    out = []
    for r in sorted(done, key=lambda r: (r.start_ts, r.outage_id)):
        assert r.start_ts is not None and r.restore_ts is not None  # for mypy: filtered above
        minutes = max((r.restore_ts - r.start_ts).total_seconds() / 60.0, 0.0)
        hit = frozenset(c for c, impact in lost(topology, r, records, r.start_ts).items() if impact == SUPPLY)
        out.append(Interruption(r.outage_id, minutes, hit, r.restore_ts))
    return out


def indices(
    events: Iterable[Interruption],
    served: set[str] | None,
    n_served: int,
    *,
    scope: str,
    scope_id: str,
    year: int,
) -> dict[str, Any]:
    """A ``ReliabilityIndices`` document; ``served`` restricts N_i (None: everyone)."""
    n_int = 0
    cmin = 0.0
    momentary = 0
    newest: datetime | None = None
    for e in events:
        n = len(e.customers if served is None else e.customers & served)
        if n == 0:
            continue
        newest = e.restored_at if newest is None or e.restored_at > newest else newest
        if e.minutes > SUSTAINED_MORE_THAN_MIN:
            n_int += n
            cmin += n * e.minutes
        else:
            momentary += n
    saifi = n_int / n_served if n_served else None
    saidi = cmin / n_served if n_served else None
    return {
        "scope": scope,
        "scope_id": scope_id,
        "year": year,
        "customers_served": n_served,
        "customer_interruptions": n_int,
        "customer_minutes": round(cmin, 6),
        "SAIFI": saifi,
        "SAIDI": saidi,
        "CAIDI": (cmin / n_int) if n_int else None,
        "momentary_interruptions": momentary,
        "ts": None if newest is None else newest.isoformat(),
    }


def feeder_indices(
    records: Mapping[str, OutageRecord], topology: Topology, feeder: str, year: int, tz: tzinfo
) -> dict[str, Any]:
    served = topology.on_feeder(feeder)
    events = interruptions(records, topology, year, tz)
    return indices(events, served, len(served), scope="feeder", scope_id=feeder, year=year)


def system_indices(
    records: Mapping[str, OutageRecord], topology: Topology, year: int, tz: tzinfo
) -> dict[str, Any]:
    events = interruptions(records, topology, year, tz)
    return indices(events, None, len(topology), scope="system", scope_id="system", year=year)


def after_restore(
    records: Mapping[str, OutageRecord], topology: Topology, outage_id: str, tz: tzinfo
) -> list[dict[str, Any]]:
    """What a restore changes: the indices of every feeder serving a customer the outage cut
    (and of the outage's own feeder), then the system's, for the outage's year."""
    record = records[outage_id]
    year = year_of(record, tz)
    if year is None:
        return []
    events = interruptions(records, topology, year, tz)
    feeders: set[str] = {record.scope_id} if record.scope == "feeder" else set()
    for e in events:
        if e.outage_id == outage_id:
            for cid in e.customers:
                feeders |= topology.customers[cid].feeders
    docs = [
        indices(
            events, topology.on_feeder(f), len(topology.on_feeder(f)), scope="feeder", scope_id=f, year=year
        )
        for f in sorted(feeders)
    ]
    docs.append(indices(events, None, len(topology), scope="system", scope_id="system", year=year))
    return docs
