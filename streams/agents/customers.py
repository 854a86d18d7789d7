"""customers (compacted) -> the customer-profile table.

A null value is a delete (compaction tombstone). Invalid profiles go to ``customers.dlq``;
the customer keeps its previous valid profile. A profile change republishes the customer's
statistics (once per customer per batch), since the PF standard and tariff behind the month's
money come from it.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import cast

import faust
from faust.streams import Stream

from schemas.models import CustomerProfile
from schemas.topics import CUSTOMERS
from schemas.validation import check_profile
from streams.runtime import Runtime


async def apply_event(rt: Runtime, event: faust.EventT) -> str | None:
    """Apply one profile message; the customer whose profile changed, or None."""
    msg = event.message
    if msg.value is None:
        if msg.key:
            cid = msg.key.decode("utf-8", "replace")
            rt.set_profile(event, cid, None)
            rt.counters["profiles_deleted"] += 1
            return cid
        return None
    profile = await rt.decode_input(CUSTOMERS, event, CustomerProfile)
    if profile is None:
        return None
    issue = check_profile(profile)
    if issue is not None:
        await rt.dead_letter(CUSTOMERS, event, issue.kind, issue.detail)
        return None
    rt.set_profile(event, profile.customer_id, profile)
    rt.counters["profiles_applied"] += 1
    return profile.customer_id


async def process_batch(rt: Runtime, events: Sequence[faust.EventT]) -> int:
    """Apply a batch of profile messages in order, then republish the statistics of every
    customer whose profile changed and who has statistics: once per customer per batch (a
    backlog of 100,000 profiles must not become 100,000 one-customer rescorings)."""
    changed: dict[str, None] = {}
    for event in events:
        cid = await apply_event(rt, event)
        if cid is not None:
            changed[cid] = None
    now = datetime.now(UTC)
    docs = [doc for cid in changed if (doc := rt.stats_snapshot(cid, now)) is not None]
    return await rt.publish_stats(docs)


def register(rt: Runtime) -> None:
    s = rt.settings

    @rt.app.agent(rt.topics.customers, name="customers", concurrency=1)
    async def customers(stream: faust.StreamT) -> None:
        batches = cast(Stream, stream).take_events(s.batch_max, within=s.batch_within_s)  # not in StreamT
        async for events in batches:
            await process_batch(rt, events)
