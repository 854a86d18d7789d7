"""customers (compacted) -> the customer-profile table.

A null value is a delete (compaction tombstone). Invalid profiles go to ``customers.dlq``;
the customer keeps its previous valid profile. A profile change republishes the customer's
statistics, since the PF standard and tariff behind the month's money come from it.
"""

from __future__ import annotations

from datetime import UTC, datetime
from functools import partial

import faust

from schemas.models import CustomerProfile
from schemas.topics import CUSTOMERS
from schemas.validation import check_profile
from streams.runtime import Runtime


async def process_event(rt: Runtime, event: faust.EventT) -> None:
    msg = event.message
    if msg.value is None:
        if msg.key:
            rt.set_profile(event, msg.key.decode("utf-8", "replace"), None)
            rt.counters["profiles_deleted"] += 1
        return
    profile = await rt.decode_input(CUSTOMERS, event, CustomerProfile)
    if profile is None:
        return
    issue = check_profile(profile)
    if issue is not None:
        await rt.dead_letter(CUSTOMERS, event, issue.kind, issue.detail)
        return
    rt.set_profile(event, profile.customer_id, profile)
    rt.counters["profiles_applied"] += 1
    doc = rt.stats_snapshot(profile.customer_id, datetime.now(UTC))
    if doc is not None:
        await rt.publish_stats([doc])


def register(rt: Runtime) -> None:
    @rt.app.agent(rt.topics.customers, name="customers", concurrency=1)
    async def customers(stream: faust.StreamT) -> None:
        async for event in stream.events():
            await rt.guarded(CUSTOMERS, event, partial(process_event, rt, event))
