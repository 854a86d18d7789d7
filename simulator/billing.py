"""Monthly billing cycles: bills, payments, late fees, bounced payments, theft penalties.

One bill per customer per month, issued on the customer's cycle day (1st–5th of the next month,
morning, local time): amount = round(kWh of the month x tariff, 2), due 20 days after the bill.
The month's kWh comes from the caller (the simulated readings where they exist, the load model's
expectation before them), so bills agree with the readings.

Payer behaviour (population.PAYER_TYPES):
- punctual: pays the bill in full 2–18 days after it; usually names the bill.
- late: 80 % of months pays 10–120 days after the due date, sometimes in two parts; a `late_fee`
  (1 ‰/day residential, 2 ‰/day others, DOMAIN.md) is posted a second before each late payment,
  and the payment (naming no bill: oldest first) covers principal plus fee.
- bouncer: pays on time, but 35 % of payments are reversed 3–10 days later (`payment_reversal`,
  same amount, `reversed_event_id` names the payment) and paid again 5–40 days after that (with a
  late fee if then past due).
- thief: pays on time; in 8 % of months a `theft_penalty` (lognormal, median 20,000 CNY, so some
  exceed the 50,000 CNY dishonesty threshold) is posted and paid two weeks later.
Any customer: 1 % of bills get an `adjustment` (±2–10 %, a day after the bill); the payment then
covers the adjusted amount. Events after the simulated end are not emitted (still open).
event_id = "EV-<customer>-<period>-<kind><n>" is unique and stable under the seed.
"""

from __future__ import annotations

from collections.abc import Callable
from statistics import NormalDist
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np

from simulator.clock import add_months, date_str, local, month_start, rfc3339
from simulator.population import PAYER_TYPES, Population

DUE_DAYS = 20
DAY = 86400

BillingEvent = tuple[int, dict[str, Any]]  # (epoch, billing.events value)


def _event(
    event_id: str,
    customer_id: str,
    t: int,
    tz: ZoneInfo,
    type_: str,
    amount: float,
    bill_id: str | None = None,
    **extra: Any,
) -> BillingEvent:
    value = {
        "event_id": event_id,
        "customer_id": customer_id,
        "ts": rfc3339(t, tz),
        "type": type_,
        "amount": round(float(amount), 2),
        "bill_id": bill_id,
        "due_date": None,
        "period": None,
        **extra,
    }
    return t, value


def billed_months(start: int, end: int, tz: ZoneInfo, history_months: int) -> list[tuple[int, int]]:
    """(year, month) of every period from `history_months` before the start month to the month
    before the end month (a bill for the end month is not out yet)."""
    s = local(start, tz)
    e = local(end, tz)
    y, m = add_months(s.year, s.month, -history_months)
    months = []
    while (y, m) < (e.year, e.month):
        months.append((y, m))
        y, m = add_months(y, m, 1)
    return months


def plan_billing(
    pop: Population,
    start: int,
    end: int,
    seed: int,
    tz: ZoneInfo,
    period_kwh: Callable[[int, int], np.ndarray],
    history_months: int = 6,
) -> list[BillingEvent]:
    """Every billing event with ts <= end, sorted by ts. `period_kwh(t0, t1)` returns the kWh of
    every customer over [t0, t1)."""
    events: list[BillingEvent] = []
    residential = np.array([p["tariff_class"] == "residential" for p in pop.profiles])
    for y, m in billed_months(start, end, tz, history_months):
        t0 = month_start(y, m, tz)
        ny, nm = add_months(y, m, 1)
        t1 = month_start(ny, nm, tz)
        kwh = period_kwh(t0, t1)
        period = f"{y:04d}-{m:02d}"
        rng = np.random.default_rng([seed, 0xB111, y * 12 + m])
        n = pop.n
        cycle_day = rng.integers(0, 5, n)
        bill_minute = rng.integers(8 * 60, 10 * 60, n)
        draws = rng.random((n, 8))
        for i in range(n):
            amount = round(float(kwh[i] * pop.tariff[i]), 2)
            if amount < 0.01:
                continue
            events.extend(
                _customer_month(
                    pop,
                    i,
                    period,
                    amount,
                    t1 + int(cycle_day[i]) * DAY + int(bill_minute[i]) * 60,
                    draws[i],
                    0.001 if residential[i] else 0.002,
                    tz,
                )
            )
    events = [e for e in events if e[0] <= end]
    events.sort(key=lambda e: (e[0], e[1]["event_id"]))
    return events


def _customer_month(
    pop: Population,
    i: int,
    period: str,
    amount: float,
    bill_t: int,
    u: np.ndarray,
    fee_rate: float,
    tz: ZoneInfo,
) -> list[BillingEvent]:
    cid = pop.customer_ids[i]
    payer = PAYER_TYPES[pop.payer_idx[i]]
    bill_id = f"B-{cid}-{period}"
    due_t = bill_t + DUE_DAYS * DAY
    ev = f"EV-{cid}-{period}-"
    bill = _event(ev + "bill", cid, bill_t, tz, "bill", amount, bill_id)
    bill[1]["due_date"] = date_str(bill_t, tz, DUE_DAYS)
    bill[1]["period"] = period
    out = [bill]
    owed = amount
    if u[0] < 0.01:
        adj = round(amount * (0.02 + 0.08 * u[1]) * (1 if u[2] < 0.4 else -1), 2)
        if adj != 0:
            out.append(_event(ev + "adj1", cid, bill_t + DAY, tz, "adjustment", adj, bill_id))
            owed = round(owed + adj, 2)

    def fee(principal: float, paid_t: int) -> float:
        days_late = max(0, (paid_t - due_t) // DAY)
        return round(principal * fee_rate * days_late, 2)

    on_time_t = bill_t + int((2 + 16 * u[3]) * DAY)
    named = bill_id if u[4] < 0.7 else None
    if payer == "late" and u[5] < 0.8:
        first_t = due_t + int((10 + 110 * u[6]) * DAY)
        parts = [(owed, first_t)]
        if u[7] < 0.3:
            part = round(owed * (0.4 + 0.4 * u[1]), 2)
            second_t = first_t + int((10 + 50 * u[3]) * DAY)
            parts = [(part, first_t), (round(owed - part, 2), second_t)]
        for k, (principal, t) in enumerate(parts, start=1):
            f = fee(principal, t)
            if f >= 0.01:
                out.append(_event(f"{ev}fee{k}", cid, t - 1, tz, "late_fee", f))
            out.append(_event(f"{ev}pay{k}", cid, t, tz, "payment", principal + f))
    elif payer == "bouncer" and u[5] < 0.35:
        pay = _event(ev + "pay1", cid, on_time_t, tz, "payment", owed, named)
        rev_t = on_time_t + int((3 + 7 * u[6]) * DAY)
        again_t = rev_t + int((5 + 35 * u[7]) * DAY)
        out.append(pay)
        out.append(
            _event(
                ev + "rev1", cid, rev_t, tz, "payment_reversal", owed, named, reversed_event_id=ev + "pay1"
            )
        )
        f = fee(owed, again_t)
        if f >= 0.01:
            out.append(_event(ev + "fee1", cid, again_t - 1, tz, "late_fee", f))
        out.append(_event(ev + "pay2", cid, again_t, tz, "payment", owed + f, None if f else named))
    else:
        out.append(_event(ev + "pay1", cid, on_time_t, tz, "payment", owed, named))
    if payer == "thief" and u[2] < 0.08:
        theft_t = bill_t + int((1 + 25 * u[6]) * DAY)
        penalty = float(np.clip(np.exp(np.log(20_000) + 1.2 * _probit(u[7])), 500, 2_000_000))
        out.append(_event(ev + "theft1", cid, theft_t, tz, "theft_penalty", penalty))
        out.append(_event(ev + "pay9", cid, theft_t + 14 * DAY, tz, "payment", round(penalty, 2)))
    return out


def _probit(u: float) -> float:
    """Standard normal quantile of a uniform draw."""
    return NormalDist().inv_cdf(min(max(float(u), 1e-9), 1 - 1e-9))
