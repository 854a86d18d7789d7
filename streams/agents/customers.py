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

import time
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime
from functools import partial
from typing import Any, cast

import faust
from faust.streams import Stream

from schemas.models import CustomerProfile
from schemas.topics import CUSTOMERS
from schemas.validation import Issue, profile_record
from streams.agents.areas import SINCE_ALWAYS, drop_held, membership_messages, moved_areas, release_held
from streams.faust_patches import take_events_adaptive
from streams.runtime import ENVIRONMENT_ERRORS, Runtime, fatal

PROFILE_BATCH_MAX = 1_000


async def process_batch(rt: Runtime, events: Sequence[faust.EventT]) -> None:
    now = datetime.now(UTC)
    docs: list[dict[str, Any]] = []
    dead: list[Callable[[], Awaitable[None]]] = []
    released: list[tuple[faust.EventT, str]] = []
    for event in events:
        msg = event.message
        change = profile_record(msg.key, msg.value)  # the rules the views of customers follow too
        if change is None:  # a tombstone without a key
            continue
        if isinstance(change, Issue):
            dead.append(partial(rt.dead_letter, CUSTOMERS, event, change.kind, change.detail))
            continue
        try:
            first_area = not rt.areas_of(change.customer_id)
            areas = _areas(rt, event, change.customer_id, change.profile)
            rt.set_profile(event, change.customer_id, change.profile)
            # with the new profile's facts (the customer rules' importance, tariff, manager)
            for key, value in membership_messages(change.customer_id, areas, rt.profile(change.customer_id)):
                rt.topics.area_energy.send_soon(key=key, value=value)
            # its energy read before this first area was known, after its join
            if first_area and areas and release_held(rt, change.customer_id, areas):
                released.append((event, change.customer_id))
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
    if released:  # delivered first: a crash before the delete sends them again, never loses them
        await rt.app.producer.flush()
        for event, customer_id in released:
            drop_held(rt, event, customer_id)
    for send in dead:
        await send()


def _areas(
    rt: Runtime, event: faust.EventT, customer_id: str, profile: CustomerProfile | None
) -> tuple[tuple[str, int], ...]:
    """The customer's transformer areas after this profile (streams/agents/areas.py: why a
    move takes effect when it does); a move is recorded in the ``customer-areas`` table before
    the profile is written."""
    if profile is None:
        return ()  # a deleted profile leaves the customer where it was (its meters fall silent)
    history = rt.area_history(customer_id)
    if not history:
        previous = rt.profile(customer_id)
        if previous is not None and previous.transformer_area is not None:
            history = ((previous.transformer_area, SINCE_ALWAYS),)
    at = int(event.message.timestamp or 0)
    area = profile.transformer_area
    if history and area is not None and area != history[-1][0]:  # a move: its instant
        raw = rt.load_table.get(customer_id.encode())
        watermark = rt.load_state(customer_id).watermark if raw is not None else None
        if watermark is not None:
            at = max(at, watermark + 1)  # after every interval already sent to the old area
    moved = moved_areas(history, area, at)
    if moved is not None:
        if len(moved) > 1:
            rt.set_area_history(event, customer_id, moved)
            rt.counters["customers_moved"] += 1
        history = moved
    return history


def register(rt: Runtime) -> None:
    within_s = rt.settings.batch_within_s

    @rt.app.agent(rt.topics.customers, name="customers", concurrency=1)
    async def customers(stream: faust.StreamT) -> None:
        batches = take_events_adaptive(cast(Stream, stream), PROFILE_BATCH_MAX, lambda: within_s)
        async for events in batches:
            started = time.perf_counter()
            try:
                await process_batch(rt, events)
                for event in events:  # the readings agent waits for these (wait_for_profiles)
                    msg = event.message
                    rt.profiles_applied[msg.partition] = max(
                        rt.profiles_applied.get(msg.partition, 0), msg.offset + 1
                    )
            except Exception as exc:
                # Never let it out of the agent: take_events acks the whole batch on the way
                # out, its offsets would be committed and the batch lost. Exit at once instead;
                # a restarted worker replays from the last commit (the profile table is
                # latest-value, a replay changes nothing).
                first = events[0].message
                fatal(f"customers batch from partition {first.partition} offset {first.offset}", exc)
            rt.counters["profiles_batches"] += 1
            rt.metrics.batch("customers", events[0].message.topic, len(events), time.perf_counter() - started)
