"""meter.readings -> per-customer load state -> stats.customer.

Batched: a batch of up to ``batch_max`` readings (or what arrived within ``batch_within_s``)
is decoded and validated, grouped by customer, applied to each customer's LoadState in one
call, and each changed customer is written to the table once and published once. A
customer's 4 readings an hour, or a backlog of thousands, cost one state write and one
snapshot per batch.

Exactly-once effect under at-least-once delivery: the LoadState remembers every
(meter_id, interval) inside the allowed lateness, so a reading redelivered after a crash
(its offset not yet committed, its effect already in the changelog) is a duplicate and
changes nothing; older than the lateness it is dead-lettered as ``late``.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import cast

import faust
from faust.streams import Stream

from schemas.models import MeterReading
from schemas.topics import METER_READINGS
from schemas.validation import check_reading
from streams.context import event_context
from streams.runtime import ENVIRONMENT_ERRORS, Runtime, fatal

log = logging.getLogger(__name__)


async def process_batch(rt: Runtime, events: Sequence[faust.EventT]) -> None:
    now = datetime.now(UTC)
    s = rt.settings
    groups: dict[str, list[tuple[faust.EventT, MeterReading]]] = {}
    for event in events:
        reading = await rt.decode_input(METER_READINGS, event, MeterReading)
        if reading is None:
            continue
        cid = reading.customer_id
        profile = rt.profile(cid)
        issue = check_reading(
            reading,
            now=now,
            contract_kva=profile.contract_kva if profile else None,
            future_tolerance_s=s.future_tolerance_s,
        )
        if issue is not None:
            await rt.dead_letter(METER_READINGS, event, issue.kind, issue.detail)
            continue
        groups.setdefault(cid, []).append((event, reading))

    docs = []
    for cid, items in groups.items():
        try:  # the computation, before anything is written or sent
            state = rt.load_state(cid)
            result = state.apply([r for _, r in items])
            new_state = state.to_bytes()
            doc = rt.stats_snapshot(cid, now, load=state)
        except ENVIRONMENT_ERRORS:
            raise
        except Exception as exc:  # a defect meeting these readings: they go to the DLQ, not lost
            await rt.processing_failed(METER_READINGS, [e for e, _ in items], exc)
            continue
        for i, status in enumerate(result.statuses):
            if status == "late":
                await rt.dead_letter(
                    METER_READINGS,
                    items[i][0],
                    "late",
                    f"interval older than the allowed lateness of {s.lateness_s} s behind the "
                    "customer's newest reading",
                )
            elif status == "invalid":
                await rt.dead_letter(
                    METER_READINGS, items[i][0], result.reasons.get(i, "schema"), "rejected by the load state"
                )
        applied, duplicate = result.count("applied"), result.count("duplicate")
        rt.counters["readings_applied"] += applied
        rt.counters["readings_duplicate"] += duplicate
        if not applied and not duplicate:
            continue
        if rt.profile(cid) is None:
            rt.counters["readings_unknown_customer"] += applied
        # A batch of duplicates is written and published again too: after a crash, the
        # replayed readings are duplicates of a state that may have reached the local store
        # but neither the changelog nor stats.customer. Rewriting converges both; for a
        # latest-value topic and table it changes nothing otherwise.
        # Write once per batch, filed under the customer's own partition (streams/context.py).
        with event_context(items[-1][0]):
            rt.load_table[cid.encode()] = new_state
        if doc is not None:
            docs.append(doc)
    await rt.publish_stats(docs)


def register(rt: Runtime) -> None:
    s = rt.settings

    @rt.app.agent(rt.topics.readings, name="readings", concurrency=1)
    async def readings(stream: faust.StreamT) -> None:
        batches = cast(Stream, stream).take_events(s.batch_max, within=s.batch_within_s)  # not in StreamT
        async for events in batches:
            started = time.perf_counter()
            try:
                await process_batch(rt, events)
            except Exception as exc:
                # Never let it out of the agent: take_events acks the whole batch on the way
                # out (faust/streams.py), its offsets would be committed and the batch lost.
                # Exit at once instead; a restarted worker replays from the last commit.
                first = events[0].message
                fatal(f"readings batch from partition {first.partition} offset {first.offset}", exc)
            rt.counters["readings_batches"] += 1
            rt.counters["readings_batch_ms"] += round((time.perf_counter() - started) * 1000)
