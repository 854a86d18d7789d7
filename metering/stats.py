"""The ``stats.customer`` document of one customer: state in, document out (CONTRACT.md).

Pure: the worker's agents (through ``streams.runtime.Runtime.stats_snapshot``, which reads the
state from its tables) and the benchmark's naive agent build the document with the same call,
and a unit test compares every field with the independent reference (tests/reference.py).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from typing import Any, Protocol
from zoneinfo import ZoneInfo

from metering.arrears import ArrearsLedger
from metering.load import LoadState
from metering.pf_tariff import pf_standard_for


class ProfileTerms(Protocol):
    """What the document reads of a customer profile (``schemas.models.CustomerProfile`` has it):
    the fields that decide the PF standard, and the tariff behind the PF adjustment's money."""

    @property
    def tariff_class(self) -> str: ...

    @property
    def contract_kva(self) -> float | None: ...

    @property
    def voltage_kv(self) -> float | None: ...

    @property
    def pf_standard(self) -> float | None: ...

    @property
    def tariff_cny_per_kwh(self) -> float | None: ...


@dataclass(frozen=True, slots=True)
class ArrearsBlock:
    """A ledger's ``arrears`` block (without ``as_of``) and the instants between which it is the
    block of every ``now``: ``valid_from <= now < valid_until`` (epoch seconds).

    ``ArrearsLedger.snapshot(now)`` reads ``now`` only through its local date (ages, 12-month and
    36-month windows) and through ``event ts <= now``: once every event is at or before ``now``,
    the block is the same until the local day ends. A ledger without events has the same block
    at every instant (:data:`NO_BILLING`). The worker keeps these per customer instead of reading
    and decoding the ledger for every reading (streams.runtime.Runtime.arrears)."""

    block: dict[str, Any]
    has_events: bool
    newest_ts: float | None
    valid_from: float
    valid_until: float

    def holds_at(self, now: datetime) -> bool:
        return self.valid_from <= now.timestamp() < self.valid_until


def arrears_block(ledger: ArrearsLedger, now: datetime, tz: ZoneInfo) -> ArrearsBlock:
    """``ledger``'s block as of ``now`` and how long it holds (:class:`ArrearsBlock`)."""
    if not ledger.has_events:
        return NO_BILLING
    t = now.timestamp()
    block = ledger.snapshot(now)
    newest = ledger.newest_ts
    assert newest is not None  # has_events
    if newest > t:  # an event after now (within the future tolerance): good for this instant only
        return ArrearsBlock(block, True, newest, t, math.nextafter(t, math.inf))
    day = now.astimezone(tz).date()
    # local midnights as instants; a midnight that does not exist or repeats (a DST change at
    # 00:00) resolves with fold=0 to the earlier instant, so the window can only be shorter
    start = datetime.combine(day, time(0), tzinfo=tz).timestamp()
    end = datetime.combine(day + timedelta(days=1), time(0), tzinfo=tz).timestamp()
    return ArrearsBlock(block, True, newest, max(start, newest), end)


# the block of every customer without billing state, at every instant
NO_BILLING = ArrearsBlock(
    ArrearsLedger(tz=ZoneInfo("UTC")).snapshot(datetime(2000, 1, 1, tzinfo=UTC)),
    False,
    None,
    -math.inf,
    math.inf,
)


def stats_document(
    customer_id: str,
    load: LoadState,
    ledger: ArrearsLedger | ArrearsBlock,
    profile: ProfileTerms | None,
    now: datetime,
    tz: ZoneInfo,
    gap_days: int,
) -> dict[str, Any] | None:
    """The ``stats.customer`` document, or None while nothing is known of the customer (no
    reading and no billing event).

    ``now`` (aware) is when the document is made: it decides whether the month is still open
    (projection) and is the ``arrears.as_of`` the overdue ages are measured at. ``ts`` is the
    event time of the newest input (interval end or billing event), in ``tz``. Without a
    profile the PF standard and tariff are unknown (``profile_known: false``): the month's PF
    adjustment and its money stay null. ``gaps``: meter-days short of intervals among the last
    ``gap_days`` local days. ``ledger`` may be given as its :class:`ArrearsBlock` (holding at
    ``now``: ValueError otherwise).
    """
    if isinstance(ledger, ArrearsBlock):
        if not ledger.holds_at(now):
            raise ValueError("the arrears block does not hold at now")
        arrears_of = ledger
    else:
        arrears_of = arrears_block(ledger, now, tz)
    if load.watermark is None and not arrears_of.has_events:
        return None
    standard = tariff = None
    if profile is not None:
        standard = pf_standard_for(
            profile.tariff_class, profile.contract_kva, profile.voltage_kv, profile.pf_standard
        )
        tariff = profile.tariff_cny_per_kwh
    windows = load.snapshot(now.timestamp(), pf_standard=standard, tariff_cny_per_kwh=tariff)
    # the block may be shared (a cache): the document gets its own dicts
    arrears = {**arrears_of.block, "overdue_buckets": dict(arrears_of.block["overdue_buckets"])}
    arrears["as_of"] = now.astimezone(tz).isoformat()  # ages and windows are as of this
    windows.pop("ts")  # the load's own event time; the document's counts billing events too
    newest = max(t for t in (load.data_end, arrears_of.newest_ts) if t is not None)
    ts = datetime.fromtimestamp(newest, tz).isoformat()
    # the key order is the published JSON's (orjson keeps insertion order)
    doc: dict[str, Any] = {"customer_id": customer_id, "ts": ts, **windows, "arrears": arrears}
    doc["profile_known"] = profile is not None
    doc["gaps"] = [
        {"date": g.day.isoformat(), "meter_id": g.meter_id, "expected": g.expected, "found": g.found}
        for g in load.gaps(days=gap_days)
    ]
    return doc
