"""The ``stats.customer`` document of one customer: state in, document out (CONTRACT.md).

Pure: the worker's agents (through ``streams.runtime.Runtime.stats_snapshot``, which reads the
state from its tables) and the benchmark's naive agent build the document with the same call,
and a unit test compares every field with the independent reference (tests/reference.py).
"""

from __future__ import annotations

from datetime import datetime
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


def stats_document(
    customer_id: str,
    load: LoadState,
    ledger: ArrearsLedger,
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
    ``gap_days`` local days.
    """
    if load.watermark is None and not ledger.has_events:
        return None
    standard = tariff = None
    if profile is not None:
        standard = pf_standard_for(
            profile.tariff_class, profile.contract_kva, profile.voltage_kv, profile.pf_standard
        )
        tariff = profile.tariff_cny_per_kwh
    windows = load.snapshot(now.timestamp(), pf_standard=standard, tariff_cny_per_kwh=tariff)
    arrears = ledger.snapshot(now)
    arrears["as_of"] = now.astimezone(tz).isoformat()  # ages and windows are as of this
    windows.pop("ts")  # the load's own event time; the document's counts billing events too
    newest = max(t for t in (load.data_end, ledger.newest_ts) if t is not None)
    ts = datetime.fromtimestamp(newest, tz).isoformat()
    # the key order is the published JSON's (orjson keeps insertion order)
    doc: dict[str, Any] = {"customer_id": customer_id, "ts": ts, **windows, "arrears": arrears}
    doc["profile_known"] = profile is not None
    doc["gaps"] = [
        {"date": g.day.isoformat(), "meter_id": g.meter_id, "expected": g.expected, "found": g.found}
        for g in load.gaps(days=gap_days)
    ]
    return doc
