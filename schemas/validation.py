"""Reading validation beyond the schema (the "V" of VEE, as meter data management systems do it).

Pure functions the agents call after ``schemas.codec.decode``; each returns the first
:class:`Issue` found or None. An issue's ``kind`` is the dead-letter ``error`` of the message.
Head-end quality codes (estimated, power_fail, ...) are carried through, never errors.
Duplicates and lateness need per-customer state and are not handled here.

:func:`profile_record` is the one reading of a ``customers`` record (tombstone, decode, key,
check) for the customers agent and for every view of that topic (scoring, outages).
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Final

from schemas.blocks import ReadingBlock
from schemas.codec import DecodeError, decode_keyed
from schemas.models import AreaReading, BillingEvent, CustomerProfile, MeterReading

ISSUE_KINDS: Final = (
    "negative_energy",  # reading: kwh / kvarh / kvarh_export / demand_kw < 0 (normally the schema's)
    "interval_length",  # reading: interval_s not allowed, or ts not on an interval boundary
    "future_timestamp",  # reading: ts later than now + tolerance (clock skew)
    "impossible_demand",  # reading: kW above contract kVA x margin
    "incomplete_bill",  # billing: a bill without due_date or bill_id
    "bad_amount",  # billing: amount <= 0 (adjustment: == 0)
    "bad_due_date",  # billing: due date long before the bill, or absurdly far after it
    "bad_contract_kva",  # profile: contract_kva < 0
    "bad_voltage",  # profile: voltage_kv < 0
    "bad_feeders",  # profile: an empty or duplicated feeder id
    "bad_pf_standard",  # profile: pf_standard not 0.80 / 0.85 / 0.90
    "bad_tariff",  # profile: tariff_cny_per_kwh < 0
)

ALLOWED_INTERVALS: Final = (60, 300, 600, 900, 1800, 3600)
DEMAND_MARGIN: Final = 1.5
"""Interval demand may exceed the contract capacity by this factor before it is impossible.

kW <= kVA since PF <= 1, so kW above contract kVA already means an overload; transformers carry
short overloads (and a 1-minute demand peak is well above the 15-minute mean), hence 1.5. A
reading far above it is a wrong CT/PT ratio, a unit error (Wh as kWh) or a meter fault.
"""
PF_STANDARDS: Final = (0.80, 0.85, 0.90)

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_US = timedelta(microseconds=1)
_INF = float("inf")


@dataclass(frozen=True, slots=True)
class Issue:
    """Why a message cannot be used: ``kind`` (machine-readable) and ``detail`` (for people)."""

    kind: str
    detail: str


def check_reading(
    r: MeterReading | AreaReading,
    *,
    now: datetime,
    contract_kva: float | None,
    future_tolerance_s: int = 300,
    allowed_intervals: Collection[int] = ALLOWED_INTERVALS,
    demand_margin: float = DEMAND_MARGIN,
) -> Issue | None:
    """The first problem of an interval reading (a customer's meter, or an area's summary meter),
    or None.

    ``now`` is the processing time (aware). ``contract_kva`` is the customer's contract capacity
    when its profile is known (None or 0 skips the demand check; None for a summary meter).
    Interval alignment is checked in UTC seconds since the epoch (a 15-minute reading ends at :00,
    :15, :30 or :45 in any zone whose offset is a whole number of hours).
    """
    return check_interval(
        r.ts,
        r.interval_s,
        r.kwh,
        r.kvarh,
        r.kvarh_export,
        r.demand_kw,
        now=now,
        contract_kva=contract_kva,
        future_tolerance_s=future_tolerance_s,
        allowed_intervals=allowed_intervals,
        demand_margin=demand_margin,
    )


def check_interval(
    ts: datetime,
    interval_s: int,
    kwh: float,
    kvarh: float | None,
    kvarh_export: float | None,
    demand_kw: float | None,
    *,
    now: datetime,
    contract_kva: float | None,
    future_tolerance_s: int = 300,
    allowed_intervals: Collection[int] = ALLOWED_INTERVALS,
    demand_margin: float = DEMAND_MARGIN,
) -> Issue | None:
    """:func:`check_reading` on the values of one interval (a single reading's, or a block's)."""
    for name, value in (
        ("kwh", kwh),
        ("kvarh", kvarh),
        ("kvarh_export", kvarh_export),
        ("demand_kw", demand_kw),
    ):
        if value is not None and value < 0:
            return Issue("negative_energy", f"{name} = {value} < 0")

    if interval_s not in allowed_intervals:
        allowed = sorted(allowed_intervals)
        return Issue("interval_length", f"interval_s = {interval_s} is not one of {allowed}")
    offset = (ts - _EPOCH) % timedelta(seconds=interval_s)
    if offset:
        return Issue(
            "interval_length",
            f"ts {ts.isoformat()} is {offset.total_seconds():g} s past a {interval_s} s boundary",
        )

    if ts > now + timedelta(seconds=future_tolerance_s):
        ahead = (ts - now).total_seconds()
        return Issue("future_timestamp", f"ts {ts.isoformat()} is {ahead:g} s in the future")

    if contract_kva:
        limit_kw = contract_kva * demand_margin
        interval_kw = kwh * 3600.0 / interval_s
        if interval_kw > limit_kw:
            return Issue(
                "impossible_demand",
                f"interval demand {interval_kw:g} kW > contract {contract_kva:g} kVA x {demand_margin:g}",
            )
        if demand_kw is not None and demand_kw > limit_kw:
            return Issue(
                "impossible_demand",
                f"demand_kw {demand_kw:g} kW > contract {contract_kva:g} kVA x {demand_margin:g}",
            )
    return None


def check_block(
    block: ReadingBlock,
    *,
    now: datetime,
    contract_kva: float | None,
    future_tolerance_s: int = 300,
    allowed_intervals: Collection[int] = ALLOWED_INTERVALS,
    demand_margin: float = DEMAND_MARGIN,
) -> dict[int, Issue]:
    """:func:`check_reading` of every readable interval of a block (``schemas.blocks``): the
    issue of each interval that has one, by position; the same issue, detail included, as the
    single reading stamped with the interval's ``ts`` would get.

    Arithmetic on the block's integers first (the interval length and alignment are the block's,
    the ``ts`` are ``start + (i+1)*interval_s``); :func:`check_interval` only for the intervals
    that fail a test, to say why in the single reading's words.
    """
    interval_s = block.interval_s
    step_us = interval_s * 1_000_000
    everyone = interval_s not in allowed_intervals or block.start_us % step_us != 0
    future_us = (now - _EPOCH) // _US + future_tolerance_s * 1_000_000
    limit_kw = contract_kva * demand_margin if contract_kva else _INF
    demand = block.demand_kw
    issues: dict[int, Issue] = {}
    first_ts_us = block.start_us + step_us
    for i, kwh in enumerate(block.kwh):
        if kwh is None:
            continue
        if not (
            everyone
            or first_ts_us + i * step_us > future_us
            or kwh * 3600.0 / interval_s > limit_kw
            or (demand is not None and (d := demand[i]) is not None and d > limit_kw)
        ):
            continue
        issue = check_interval(
            block.ts(i),
            interval_s,
            kwh,
            block.kvarh[i] if block.kvarh is not None else None,
            block.kvarh_export[i] if block.kvarh_export is not None else None,
            demand[i] if demand is not None else None,
            now=now,
            contract_kva=contract_kva,
            future_tolerance_s=future_tolerance_s,
            allowed_intervals=allowed_intervals,
            demand_margin=demand_margin,
        )
        if issue is not None:
            issues[i] = issue
    return issues


def check_billing(
    e: BillingEvent, *, due_before_bill_days: int = 31, due_after_bill_days: int = 366
) -> Issue | None:
    """The first problem of a billing event, or None.

    A bill needs a due date and a bill id. Amounts are positive, except an adjustment (any
    sign, not zero). A bill's due date may precede the bill's own date (``ts``, in its own
    offset) by at most ``due_before_bill_days`` (re-issued bills) and follow it by at most
    ``due_after_bill_days``.
    """
    if e.type == "bill":
        missing = [f for f in ("bill_id", "due_date") if getattr(e, f) is None]
        if missing:
            return Issue("incomplete_bill", f"a bill needs {' and '.join(missing)}")
    if e.type == "adjustment":
        if e.amount == 0:
            return Issue("bad_amount", "adjustment amount = 0")
    elif e.amount <= 0:
        return Issue("bad_amount", f"{e.type} amount = {e.amount:g} <= 0")
    if e.type == "bill" and e.due_date is not None:
        bill_date = e.ts.date()
        if e.due_date < bill_date - timedelta(days=due_before_bill_days):
            return Issue(
                "bad_due_date",
                f"due_date {e.due_date} more than {due_before_bill_days} days before the bill ({bill_date})",
            )
        if e.due_date > bill_date + timedelta(days=due_after_bill_days):
            return Issue(
                "bad_due_date",
                f"due_date {e.due_date} more than {due_after_bill_days} days after the bill ({bill_date})",
            )
    return None


def check_profile(p: CustomerProfile) -> Issue | None:
    """The first problem of a customer profile, or None. Details never contain the name."""
    if p.contract_kva is not None and p.contract_kva < 0:
        return Issue("bad_contract_kva", f"contract_kva = {p.contract_kva:g} < 0")
    if p.voltage_kv is not None and p.voltage_kv < 0:
        return Issue("bad_voltage", f"voltage_kv = {p.voltage_kv:g} < 0")
    seen: set[str] = set()
    for i, feeder in enumerate(p.feeders):
        if not feeder.strip():
            return Issue("bad_feeders", f"feeders[{i}] is blank")
        if feeder in seen:
            # a repeated feeder would pass for a dual circuit (safety grade A/B)
            return Issue("bad_feeders", f"feeders[{i}] repeats {feeder!r}")
        seen.add(feeder)
    if p.pf_standard is not None and round(p.pf_standard, 2) not in PF_STANDARDS:
        return Issue("bad_pf_standard", f"pf_standard = {p.pf_standard:g} is not one of 0.80, 0.85, 0.90")
    if p.tariff_cny_per_kwh is not None and p.tariff_cny_per_kwh < 0:
        return Issue("bad_tariff", f"tariff_cny_per_kwh = {p.tariff_cny_per_kwh:g} < 0")
    return None


@dataclass(frozen=True, slots=True)
class ProfileChange:
    """What a usable ``customers`` record does: set the customer's profile, or delete it
    (``profile`` None: a tombstone)."""

    customer_id: str
    profile: CustomerProfile | None


def profile_record(
    key: bytes | bytearray | None, value: bytes | bytearray | None
) -> ProfileChange | Issue | None:
    """The rules of a ``customers`` record (compacted, keyed by customer_id).

    - a null value is a tombstone: the key's customer is deleted; without a key it says nothing
      (None);
    - otherwise the value must decode as a profile keyed by its own customer_id and pass
      :func:`check_profile`; an :class:`Issue` (``kind`` from ``schemas.codec.decode``, ``key_mismatch``
      or :func:`check_profile`) says why not, and the customer keeps its previous profile.
    """
    if value is None:
        return ProfileChange(bytes(key).decode("utf-8", "replace"), None) if key else None
    try:
        profile = decode_keyed(CustomerProfile, key, value)
    except DecodeError as exc:
        return Issue(exc.kind, exc.detail)
    issue = check_profile(profile)
    return issue if issue is not None else ProfileChange(profile.customer_id, profile)
