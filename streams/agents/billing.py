"""billing.events -> per-customer arrears ledger -> stats.customer; the aging timer.

Billing is low-volume, so events are handled one by one. The ledger remembers event_ids, so
an event delivered twice (or replayed after a crash) is applied once.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from datetime import UTC, datetime
from functools import partial
from zoneinfo import ZoneInfo

import faust

from metering.arrears import ArrearsLedger
from schemas.models import BillingEvent
from schemas.topics import BILLING_EVENTS
from schemas.validation import check_billing
from streams.runtime import Runtime

log = logging.getLogger(__name__)


async def process_event(rt: Runtime, event: faust.EventT) -> None:
    bill_event = await rt.decode_input(BILLING_EVENTS, event, BillingEvent)
    if bill_event is None:
        return
    cid = bill_event.customer_id
    issue = check_billing(bill_event)
    if issue is not None:
        await rt.dead_letter(BILLING_EVENTS, event, issue.kind, issue.detail)
        return
    ledger = rt.ledger(cid)
    try:
        applied = ledger.apply(bill_event)
    except ValueError as exc:
        await rt.dead_letter(BILLING_EVENTS, event, "rejected", str(exc))
        return
    # a duplicate is written and published again, like a replayed reading (streams/agents/readings.py)
    rt.counters["billing_applied" if applied else "billing_duplicate"] += 1
    rt.set_ledger(cid, ledger)  # the table, and the runtime's arrears cache
    doc = rt.stats_snapshot(cid, datetime.now(UTC), ledger=ledger)
    if doc is not None:
        await rt.publish_stats([doc])


AgingMark = tuple[int, tuple[float, ...], tuple[float, ...]]


def aging_changes(
    ledgers: Iterable[tuple[bytes, bytes]], now: datetime, tz: ZoneInfo, last: dict[str, AgingMark]
) -> list[str]:
    """Customers whose oldest overdue age, overdue buckets or 12-month counts differ from
    ``last`` as of ``now`` (``last`` is updated). They move once a local day at most, so most
    looks change nothing."""
    changed = []
    for key, raw in ledgers:
        cid = key.decode()
        arrears = ArrearsLedger.from_bytes(raw, tz=tz).snapshot(now)
        # the 12-month counts age out without events too (credit warnings resolve on them)
        mark = (
            arrears["oldest_overdue_days"],
            tuple(arrears["overdue_buckets"].values()),
            (arrears["late_fees_12m"], arrears["reversals_12m"], arrears["theft_12m"]),
        )
        if last.get(cid) != mark:
            last[cid] = mark
            changed.append(cid)
    return changed


async def reevaluate_aging(rt: Runtime, now: datetime | None = None) -> int:
    """Publish stats for every local customer whose overdue ages or buckets moved since the
    last look, with no event needed: an unpaid bill turns 31 days overdue on its own."""
    now = now or datetime.now(UTC)
    changed = aging_changes(list(rt.arrears_table.items()), now, rt.tz, rt.published_aging)
    docs = [doc for cid in changed if (doc := rt.stats_snapshot(cid, now)) is not None]
    return await rt.publish_stats(docs)


def register(rt: Runtime) -> None:
    @rt.app.agent(rt.topics.billing, name="billing", concurrency=1)
    async def billing(stream: faust.StreamT) -> None:
        async for event in stream.events():
            await rt.guarded(BILLING_EVENTS, event, partial(process_event, rt, event))

    @rt.app.timer(interval=rt.settings.aging_interval_s)
    async def aging() -> None:
        n = await reevaluate_aging(rt)
        if n:
            log.info("aging: re-published %d customers whose overdue ages moved", n)
