"""customers (compacted) -> the customer-profile table.

A null value is a delete (compaction tombstone). Invalid profiles go to ``customers.dlq``;
the customer keeps its previous valid profile (the rules: ``schemas.validation.profile_record``).
A profile change republishes the customer's statistics, since the PF standard and tariff
behind the month's money come from it.

Profiles are taken in batches (up to ``PROFILE_BATCH_MAX``, waiting at most the readings'
short window, ``batch_within_s``): each profile is applied and its customer's document computed
in arrival order, as one by one, and the batch's documents are published at once (one Redis
round trip and one call of the hooks, e.g. one vectorised rescoring, instead of one per
profile). No await sits between computing a document and publishing it: the dead letters of the
batch are sent after its documents (as in the readings agent), so the billing agent cannot
publish a newer document of the customer in between.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime
from functools import partial
from typing import Any, cast

import faust
from faust.streams import Stream

from schemas.topics import CUSTOMERS
from schemas.validation import Issue, profile_record
from streams.faust_patches import take_events_adaptive
from streams.runtime import ENVIRONMENT_ERRORS, Runtime, fatal

PROFILE_BATCH_MAX = 1_000


async def process_batch(rt: Runtime, events: Sequence[faust.EventT]) -> None:
    now = datetime.now(UTC)
    docs: list[dict[str, Any]] = []
    dead: list[Callable[[], Awaitable[None]]] = []
    for event in events:
        msg = event.message
        change = profile_record(msg.key, msg.value)  # the rules the views of customers follow too
        if change is None:  # a tombstone without a key
            continue
        if isinstance(change, Issue):
            dead.append(partial(rt.dead_letter, CUSTOMERS, event, change.kind, change.detail))
            continue
        try:
            rt.set_profile(event, change.customer_id, change.profile)
            if change.profile is None:
                rt.counters["profiles_deleted"] += 1
                continue
            rt.counters["profiles_applied"] += 1
            doc = rt.stats_snapshot(change.customer_id, now)
        except ENVIRONMENT_ERRORS:
            raise
        except Exception as exc:  # a defect meeting this profile: to the DLQ, not lost
            dead.append(partial(rt.processing_failed, CUSTOMERS, [event], exc))
            continue
        if doc is not None:
            docs.append(doc)
    if docs:
        await rt.publish_stats(docs)
    for send in dead:
        await send()


def register(rt: Runtime) -> None:
    within_s = rt.settings.batch_within_s

    @rt.app.agent(rt.topics.customers, name="customers", concurrency=1)
    async def customers(stream: faust.StreamT) -> None:
        batches = take_events_adaptive(cast(Stream, stream), PROFILE_BATCH_MAX, lambda: within_s)
        async for events in batches:
            try:
                await process_batch(rt, events)
            except Exception as exc:
                # Never let it out of the agent: take_events acks the whole batch on the way
                # out, its offsets would be committed and the batch lost. Exit at once instead;
                # a restarted worker replays from the last commit (the profile table is
                # latest-value, a replay changes nothing).
                first = events[0].message
                fatal(f"customers batch from partition {first.partition} offset {first.offset}", exc)
            rt.counters["profiles_batches"] += 1
