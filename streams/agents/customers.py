"""customers (compacted) -> the customer-profile table.

A null value is a delete (compaction tombstone). Invalid profiles go to ``customers.dlq``;
the customer keeps its previous valid profile (the rules: ``schemas.validation.profile_record``).
A profile change republishes the customer's statistics, since the PF standard and tariff
behind the month's money come from it.
"""

from __future__ import annotations

from datetime import UTC, datetime
from functools import partial

import faust

from schemas.topics import CUSTOMERS
from schemas.validation import Issue, profile_record
from streams.runtime import Runtime


async def process_event(rt: Runtime, event: faust.EventT) -> None:
    msg = event.message
    change = profile_record(msg.key, msg.value)  # the rules the views of customers follow too
    if change is None:  # a tombstone without a key
        return
    if isinstance(change, Issue):
        await rt.dead_letter(CUSTOMERS, event, change.kind, change.detail)
        return
    rt.set_profile(event, change.customer_id, change.profile)
    if change.profile is None:
        rt.counters["profiles_deleted"] += 1
        return
    rt.counters["profiles_applied"] += 1
    doc = rt.stats_snapshot(change.customer_id, datetime.now(UTC))
    if doc is not None:
        await rt.publish_stats([doc])


def register(rt: Runtime) -> None:
    @rt.app.agent(rt.topics.customers, name="customers", concurrency=1)
    async def customers(stream: faust.StreamT) -> None:
        async for event in stream.events():
            await rt.guarded(CUSTOMERS, event, partial(process_event, rt, event))
