"""Per-customer arrears ledger (欠费) from ``billing.events`` (DOMAIN.md sections 2 and 4).

Money is kept in integer fen so settlement leaves exact zeros; outputs are CNY floats.

Rules (CONTRACT.md: "payments settle the oldest open amount first unless they name a bill"):
- charges: a bill (due on its due_date), a late_fee (违约金), a theft_penalty (窃电) and a positive
  adjustment (all three due on the local date of their ts);
- a payment settles the named bill first (if it names one and it is open), then the oldest open
  charges by due date, then arrival order; the excess is an unapplied credit, which settles
  later charges as they arrive (so credit > 0 implies nothing is open). A negative adjustment is
  credit too;
- a payment_reversal (退票) names no payment, so it takes back the unapplied credit first (money
  not yet used for anything), then re-opens the most recently settled amounts (last settled,
  first re-opened) with their original due dates; a remainder nothing can absorb becomes a
  charge due at the reversal's date;
- an amount is overdue from the day after its due date (local zone); days past due = as_of's
  local date - due date. Buckets: ``0_30`` = 1..30 days past due, ``31_60``, ``61_90``,
  ``over_90`` = 91+; amounts not yet due are in ``outstanding`` but in no bucket;
- trailing 12 months (late_fees_12m, reversals_12m, theft_12m): events with ts <= as_of whose
  local date is after the same calendar day one year before as_of; 36-month sums (paid_36m =
  payments - reversals, due_36m = billed amounts, late_fee_amount_36m): the 36 local billing
  months ending with as_of's month, from monthly buckets;
- what does not age by itself, so an alert can name it (alerts.credit_rules): the oldest overdue
  open charge (``oldest_overdue_id``: the bill_id of a bill, the event_id of another charge; its
  type, due date and the amount still open on it; the most days past due, ties in arrival
  order), the amounts of the 12-month late fees and reversals, and ``last_event_ts``, the event
  time of the newest billing event applied (whether the customer's inputs are recent).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo

import orjson

from metering.local_time import month_index

DEFAULT_TZ = ZoneInfo("Asia/Shanghai")
EVENT_IDS_KEPT_DAYS = 400
SETTLED_KEPT_MONTHS = 36
CHARGE_TYPES = frozenset({"bill", "late_fee", "theft_penalty"})
EVENT_TYPES = frozenset({"bill", "payment", "late_fee", "payment_reversal", "theft_penalty", "adjustment"})

# charge layout: [key, type, due ordinal, amount fen, open fen]
KEY, TYPE, DUE, AMOUNT, OPEN = range(5)
# monthly bucket layout: [paid fen, billed fen, late fee fen]
PAID, BILLED, LATE_FEES = range(3)


@dataclass(slots=True)
class BillingEvent:
    event_id: str
    ts: datetime | float
    type: str
    amount: float
    bill_id: str | None = None
    due_date: date | str | None = None
    period: str | None = None

    @classmethod
    def from_mapping(cls, value: Mapping[str, Any]) -> BillingEvent:
        ts = value["ts"]
        return cls(
            event_id=value["event_id"],
            ts=datetime.fromisoformat(ts) if isinstance(ts, str) else ts,
            type=value["type"],
            amount=value["amount"],
            bill_id=value.get("bill_id"),
            due_date=value.get("due_date"),
            period=value.get("period"),
        )


def _fen(amount: float) -> int:
    return round(amount * 100)


def _cny(fen: int) -> float:
    return fen / 100


def _epoch(ts: datetime | float) -> float:
    if isinstance(ts, datetime):
        if ts.tzinfo is None:
            raise ValueError("billing event ts must carry an offset")
        return ts.timestamp()
    return float(ts)


def _year_before(day: date) -> date:
    try:
        return day.replace(year=day.year - 1)
    except ValueError:  # 29 February
        return day.replace(year=day.year - 1, day=28)


class ArrearsLedger:
    """Receivables, credit and trailing counts of one customer."""

    def __init__(self, tz: ZoneInfo = DEFAULT_TZ) -> None:
        self.tz = tz
        self._seen: dict[str, int] = {}  # event_id -> local date ordinal (pruned after 400 days)
        self._charges: list[list[Any]] = []  # arrival order
        self._settled: list[list[Any]] = []  # settlement stack: [charge key, fen]
        self._credit = 0
        self._monthly: dict[int, list[int]] = {}
        self._recent: list[list[Any]] = []  # [epoch, type, fen] of late fees, reversals, theft
        self._newest_day = 0
        self.newest_ts: float | None = None  # event time of the newest event applied, epoch s

    # ---------------------------------------------------------------- apply

    def apply(self, event: Any) -> bool:
        """Apply one event; False when its event_id was already applied (a redelivery)."""
        if isinstance(event, Mapping):
            event = BillingEvent.from_mapping(event)
        if event.type not in EVENT_TYPES:
            raise ValueError(f"unknown billing event type {event.type!r}")
        if event.event_id in self._seen:
            return False
        ts = _epoch(event.ts)
        local_day = datetime.fromtimestamp(ts, self.tz).date()
        fen = _fen(event.amount)
        if fen < 0 and event.type != "adjustment":
            raise ValueError(f"{event.type} amount must be > 0")
        self._seen[event.event_id] = local_day.toordinal()
        bucket = self._monthly.setdefault(month_index(local_day.year, local_day.month), [0, 0, 0])
        kind = event.type
        if kind == "bill":
            due = _due_ordinal(event.due_date, local_day)
            self._add_charge(event.bill_id or event.event_id, kind, due, fen)
            bucket[BILLED] += fen
        elif kind in CHARGE_TYPES or (kind == "adjustment" and fen > 0):
            self._add_charge(event.event_id, kind, local_day.toordinal(), fen)
            if kind == "late_fee":
                bucket[LATE_FEES] += fen
        elif kind == "payment":
            self._pay(fen, event.bill_id)
            bucket[PAID] += fen
        elif kind == "adjustment":
            self._pay(-fen, None)
        else:  # payment_reversal
            self._reverse(fen, event.event_id, local_day.toordinal())
            bucket[PAID] -= fen
        if kind in ("late_fee", "payment_reversal", "theft_penalty"):
            self._recent.append([ts, kind, fen])
        if self.newest_ts is None or ts > self.newest_ts:
            self.newest_ts = ts
        if local_day.toordinal() > self._newest_day:
            self._newest_day = local_day.toordinal()
            self._prune()
        return True

    def _add_charge(self, key: str, kind: str, due: int, fen: int) -> None:
        charge = [key, kind, due, fen, fen]
        self._charges.append(charge)
        if self._credit:
            self._pay(0, None)

    def _open_by_age(self) -> list[list[Any]]:
        # sort is stable: equal due dates keep arrival (bill) order
        return sorted((c for c in self._charges if c[OPEN] > 0), key=lambda c: c[DUE])

    def _pay(self, fen: int, bill_id: str | None) -> None:
        """Settle the named bill, then the oldest open charges, from the credit plus ``fen``."""
        available = self._credit + fen
        order = self._open_by_age()
        if bill_id is not None:
            order.sort(key=lambda c: c[KEY] != bill_id or c[TYPE] != "bill")  # stable
        for charge in order:
            if available == 0:
                break
            take = min(available, charge[OPEN])
            charge[OPEN] -= take
            available -= take
            self._settled.append([charge[KEY], take])
        self._credit = available

    def _reverse(self, fen: int, event_id: str, day: int) -> None:
        taken = min(self._credit, fen)
        self._credit -= taken
        fen -= taken
        by_key = {c[KEY]: c for c in self._charges}
        while fen and self._settled:
            entry = self._settled[-1]
            charge = by_key.get(entry[0])
            if charge is None:  # its charge was pruned: nothing left to re-open
                self._settled.pop()
                continue
            take = min(fen, entry[1])
            charge[OPEN] += take
            fen -= take
            entry[1] -= take
            if entry[1] == 0:
                self._settled.pop()
        if fen:  # a reversal of money we cannot trace any more: owed from today
            self._charges.append([event_id, "payment_reversal", day, fen, fen])

    def _prune(self) -> None:
        ids_horizon = self._newest_day - EVENT_IDS_KEPT_DAYS
        self._seen = {e: d for e, d in self._seen.items() if d >= ids_horizon}
        newest = date.fromordinal(self._newest_day)
        newest_month = month_index(newest.year, newest.month)
        settled_horizon = _months_back_ordinal(newest, SETTLED_KEPT_MONTHS)
        self._charges = [c for c in self._charges if c[OPEN] > 0 or c[DUE] >= settled_horizon]
        kept = {c[KEY] for c in self._charges}
        self._settled = [s for s in self._settled if s[0] in kept]
        self._monthly = {m: b for m, b in self._monthly.items() if m > newest_month - SETTLED_KEPT_MONTHS - 1}
        horizon_s = datetime(newest.year, newest.month, newest.day, tzinfo=self.tz).timestamp()
        self._recent = [r for r in self._recent if r[0] >= horizon_s - EVENT_IDS_KEPT_DAYS * 86400]

    @property
    def has_events(self) -> bool:
        return self.newest_ts is not None

    # ---------------------------------------------------------------- snapshot

    def snapshot(self, as_of: datetime | float) -> dict[str, Any]:
        """CONTRACT.md's ``arrears`` object as of ``as_of`` (ages advance with as_of alone)."""
        as_of_s = _epoch(as_of)
        today = datetime.fromtimestamp(as_of_s, self.tz).date()
        buckets = {"0_30": 0, "31_60": 0, "61_90": 0, "over_90": 0}
        oldest = 0
        oldest_charge: list[Any] | None = None
        outstanding = 0
        for charge in self._charges:
            if charge[OPEN] <= 0:
                continue
            outstanding += charge[OPEN]
            days_past_due = today.toordinal() - charge[DUE]
            if days_past_due >= 1:
                if days_past_due > oldest:  # strictly: the first of equal ages (arrival order)
                    oldest, oldest_charge = days_past_due, charge
                buckets[_bucket(days_past_due)] += charge[OPEN]
        year_ago = _year_before(today).toordinal()
        recent = [
            (kind, fen)
            for ts, kind, fen in self._recent
            if ts <= as_of_s and datetime.fromtimestamp(ts, self.tz).date().toordinal() > year_ago
        ]
        last_event = None if self.newest_ts is None else datetime.fromtimestamp(self.newest_ts, self.tz)
        month_now = month_index(today.year, today.month)
        window = [self._monthly.get(month_now - k) for k in range(SETTLED_KEPT_MONTHS)]
        months = [b for b in window if b is not None]
        return {
            "outstanding": _cny(outstanding),
            "oldest_overdue_days": oldest,
            "overdue_buckets": {k: _cny(v) for k, v in buckets.items()},
            "late_fees_12m": sum(1 for kind, _ in recent if kind == "late_fee"),
            "reversals_12m": sum(1 for kind, _ in recent if kind == "payment_reversal"),
            "theft_12m": _cny(sum(fen for kind, fen in recent if kind == "theft_penalty")),
            "paid_36m": _cny(sum(b[PAID] for b in months)),
            "due_36m": _cny(sum(b[BILLED] for b in months)),
            "late_fee_amount_36m": _cny(sum(b[LATE_FEES] for b in months)),
            "credit": _cny(self._credit),
            "bills_open": sum(1 for c in self._charges if c[TYPE] == "bill" and c[OPEN] > 0),
            "oldest_overdue_id": None if oldest_charge is None else oldest_charge[KEY],
            "oldest_overdue_type": None if oldest_charge is None else oldest_charge[TYPE],
            "oldest_overdue_due_date": (
                None if oldest_charge is None else date.fromordinal(oldest_charge[DUE]).isoformat()
            ),
            "oldest_overdue_open": _cny(0 if oldest_charge is None else oldest_charge[OPEN]),
            "late_fee_amount_12m": _cny(sum(fen for kind, fen in recent if kind == "late_fee")),
            "reversal_amount_12m": _cny(sum(fen for kind, fen in recent if kind == "payment_reversal")),
            "last_event_ts": None if last_event is None else last_event.isoformat(),
        }

    # ---------------------------------------------------------------- serialisation

    def to_bytes(self) -> bytes:
        return orjson.dumps(
            {
                "v": 1,
                "seen": self._seen,
                "charges": self._charges,
                "settled": self._settled,
                "credit": self._credit,
                "monthly": [[m, *b] for m, b in sorted(self._monthly.items())],
                "recent": self._recent,
                "newest": self._newest_day,
                "newest_ts": self.newest_ts,
            }
        )

    @classmethod
    def from_bytes(cls, data: bytes, tz: ZoneInfo = DEFAULT_TZ) -> ArrearsLedger:
        raw = orjson.loads(data)
        ledger = cls(tz)
        ledger._seen = raw["seen"]
        ledger._charges = raw["charges"]
        ledger._settled = raw["settled"]
        ledger._credit = raw["credit"]
        ledger._monthly = {m: b for m, *b in raw["monthly"]}
        ledger._recent = raw["recent"]
        ledger._newest_day = raw["newest"]
        ledger.newest_ts = raw.get("newest_ts")
        return ledger


def _bucket(days_past_due: int) -> str:
    if days_past_due <= 30:
        return "0_30"
    if days_past_due <= 60:
        return "31_60"
    if days_past_due <= 90:
        return "61_90"
    return "over_90"


def _due_ordinal(due_date: date | str | None, fallback: date) -> int:
    if due_date is None:
        return fallback.toordinal()  # contract requires it; a bill without one is due at once
    if isinstance(due_date, str):
        due_date = date.fromisoformat(due_date)
    return due_date.toordinal()


def _months_back_ordinal(day: date, months: int) -> int:
    index = month_index(day.year, day.month) - months
    return date(index // 12, index % 12 + 1, 1).toordinal()
