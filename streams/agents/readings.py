"""meter.readings -> per-customer load state -> stats.customer.

Batched: a batch of up to ``batch_max`` readings (or what arrived within ``batch_within_s``)
is decoded and validated, grouped by customer, applied to each customer's LoadState in one
call, and each changed customer is written to the table once and published once. A
customer's 4 readings an hour, or a backlog of thousands, cost one state write and one
snapshot per batch.

Both forms of the topic (docs/CONTRACT.md): a block (a meter's consecutive intervals, e.g. a
daily curve) is decoded into lists in one pass (``schemas.blocks``), judged interval by interval
(a bad interval is dead-lettered with its ``interval_index``, the others apply) and applied in
one ``LoadState.apply_block`` call, in arrival order with the customer's single readings of the
batch: still one state write and one document per customer and batch.

Exactly-once effect under at-least-once delivery: the LoadState remembers every
(meter_id, interval) inside the allowed lateness, so a reading redelivered after a crash
(its offset not yet committed, its effect already in the changelog) is a duplicate and
changes nothing; older than the lateness it is dead-lettered as ``late``.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import partial
from typing import Any, cast

import faust
from faust.streams import Stream

from metering.load import APPLIED, DUPLICATE, LoadState
from schemas.blocks import ReadingBlock, decode_reading
from schemas.codec import DecodeError
from schemas.models import MeterReading
from schemas.topics import METER_READINGS
from schemas.validation import Issue, check_block, check_reading
from streams.agents.areas import AreaSpan, EnergyOut, batch_energy_messages, hold_energy
from streams.context import event_context
from streams.faust_patches import take_events_adaptive
from streams.runtime import ENVIRONMENT_ERRORS, Runtime, fatal

log = logging.getLogger(__name__)


@dataclass(slots=True)
class _Block:
    """A block's intervals to apply (the others were dead-lettered or not read)."""

    block: ReadingBlock
    indices: list[int]


async def process_batch(rt: Runtime, events: Sequence[faust.EventT]) -> None:
    await wait_for_profiles(rt, events)
    now = datetime.now(UTC)
    s = rt.settings
    # per customer, in arrival order: (event, a single reading or a block's usable intervals)
    groups: dict[str, list[tuple[faust.EventT, MeterReading | _Block]]] = {}
    # per partition: the newest usable reading's time (event age); singles compared as datetimes
    # (0.2 µs a reading; .timestamp() for each was 1.5 µs), converted once per partition
    newest: dict[int, float] = {}
    newest_single: dict[int, datetime] = {}
    for event in events:
        msg = event.message
        try:
            value = decode_reading(msg.key, msg.value)
        except DecodeError as exc:
            await rt.dead_letter(METER_READINGS, event, exc.kind, exc.detail)
            continue
        cid = value.customer_id
        profile = rt.profile(cid)
        contract_kva = profile.contract_kva if profile else None
        if isinstance(value, ReadingBlock):
            rt.counters["reading_blocks"] += 1
            issues = {i: Issue(kind, detail) for i, (kind, detail) in value.issues.items()}
            issues |= check_block(
                value, now=now, contract_kva=contract_kva, future_tolerance_s=s.future_tolerance_s
            )
            for i in sorted(issues):
                await rt.dead_letter(
                    METER_READINGS, event, issues[i].kind, issues[i].detail, interval_index=i
                )
            indices = [i for i in value.readable() if i not in issues]
            if indices:
                groups.setdefault(cid, []).append((event, _Block(value, indices)))
                end = value.start_s + (indices[-1] + 1) * value.interval_s
                if end > newest.get(msg.partition, 0.0):
                    newest[msg.partition] = end
            continue
        issue = check_reading(
            value, now=now, contract_kva=contract_kva, future_tolerance_s=s.future_tolerance_s
        )
        if issue is not None:
            await rt.dead_letter(METER_READINGS, event, issue.kind, issue.detail)
            continue
        groups.setdefault(cid, []).append((event, value))
        if value.ts > newest_single.get(msg.partition, _NEVER):
            newest_single[msg.partition] = value.ts
    for partition, ts in newest_single.items():
        newest[partition] = max(ts.timestamp(), newest.get(partition, 0.0))
    if newest:
        rt.metrics.event_times(events[0].message.topic, newest)

    docs = []
    # The dead letters of this loop are sent after the documents: the loop does not await, so no
    # other agent (billing) can publish a customer's newer document between the computation of
    # its document here and its publication (the stale one would be the latest until the next).
    dead: list[Callable[[], Awaitable[None]]] = []
    energies: list[tuple[str, Sequence[AreaSpan], EnergyOut]] = []
    for cid, items in groups.items():
        try:  # the computation, before anything is written or sent
            state = rt.load_state(cid)
            outcomes = _apply(state, items)
            new_state = state.to_bytes()
            doc = rt.stats_snapshot(cid, now, load=state)
        except ENVIRONMENT_ERRORS:
            raise
        except Exception as exc:  # a defect meeting these readings: they go to the DLQ, not lost
            dead.append(partial(rt.processing_failed, METER_READINGS, _distinct(e for e, _ in items), exc))
            continue
        applied = duplicate = 0
        for event, interval_index, status, reason in outcomes:
            if status == "applied":
                applied += 1
            elif status == "duplicate":
                duplicate += 1
            elif status == "late":
                dead.append(
                    partial(
                        rt.dead_letter,
                        METER_READINGS,
                        event,
                        "late",
                        f"interval older than the allowed lateness of {s.lateness_s} s behind the "
                        "customer's newest reading",
                        interval_index=interval_index,
                    )
                )
            elif status == "invalid":
                dead.append(
                    partial(
                        rt.dead_letter,
                        METER_READINGS,
                        event,
                        reason,
                        "rejected by the load state",
                        interval_index=interval_index,
                    )
                )
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
        # the customer's energy to its area's owner (streams/agents/areas.py), with the areas
        # it belonged to: sent after the loop, oldest data first across the batch's customers;
        # no await between reading its areas and sending
        energy = energy_of(items, outcomes)
        if energy.meters or energy.tamper is not None:
            areas = rt.areas_of(cid)
            if areas:
                energies.append((cid, areas, energy))
            elif rt.profile(cid) is None:  # read before its profile: held for its first area
                hold_energy(rt, items[-1][0], cid, energy)
            else:  # its profile names no transformer area: not counted in any
                rt.counters["area_energy_no_area"] += sum(len(c) for c in energy.meters.values())
        if doc is not None:
            docs.append(doc)
    route_energy(rt, energies)
    await rt.publish_stats(docs)
    for send in dead:
        await send()


_NEVER = datetime.min.replace(tzinfo=UTC)

Outcome = tuple[faust.EventT, int | None, str, str]
"""(the message, the interval of a block or None, status, DLQ kind when invalid)."""


def _apply(state: LoadState, items: list[tuple[faust.EventT, MeterReading | _Block]]) -> list[Outcome]:
    """Apply a customer's singles and blocks in arrival order: each run of single readings in
    one `LoadState.apply`, each block in one `LoadState.apply_block` (the same row logic, so a
    block and the same intervals as single readings give the same state)."""
    outcomes: list[Outcome] = []
    run: list[tuple[faust.EventT, MeterReading]] = []

    def flush() -> None:
        if run:
            result = state.apply([r for _, r in run])
            for k, status in enumerate(result.statuses):
                outcomes.append((run[k][0], None, status, result.reasons.get(k, "schema")))
            run.clear()

    for event, item in items:
        if isinstance(item, _Block):
            flush()
            b = item.block
            result = state.apply_block(
                b.meter_id, b.start_s, b.interval_s, b.kwh, b.kvarh, b.kvarh_export, b.demand_kw, item.indices
            )
            for k, status in enumerate(result.statuses):
                outcomes.append((event, item.indices[k], status, result.reasons.get(k, "schema")))
        else:
            run.append((event, item))
    flush()
    return outcomes


def energy_of(items: list[tuple[faust.EventT, MeterReading | _Block]], outcomes: list[Outcome]) -> EnergyOut:
    """The intervals of a customer's batch that its area must count: those LoadState applied or
    found duplicate (a replay after a crash resends what may not have reached the area; the
    area's dedup counts each once), with their quality codes. ``outcomes`` are `_apply`'s, in
    the items' order (one per single reading, one per usable interval of a block)."""
    out = EnergyOut()
    k = 0
    for _event, item in items:
        if isinstance(item, _Block):
            b = item.block
            for i in item.indices:
                if outcomes[k][2] in _COUNTED:
                    kwh = b.kwh[i]
                    assert kwh is not None
                    quality = b.quality[i] if b.quality is not None else None
                    out.add(b.meter_id, b.start_s + i * b.interval_s, b.interval_s, kwh, quality)
                k += 1
        else:
            if outcomes[k][2] in _COUNTED:
                interval_s = item.interval_s or 900
                start = round(item.ts.timestamp()) - interval_s
                out.add(item.meter_id, start, interval_s, item.kwh, item.quality)
            k += 1
    return out


_COUNTED = frozenset({APPLIED, DUPLICATE})


def route_energy(rt: Runtime, energies: Sequence[tuple[str, Sequence[AreaSpan], EnergyOut]]) -> None:
    """The batch's energy to the areas' owners: one message per customer, area and day-piece
    of the batch (one per customer and area while the batch is within a day), oldest first
    (`streams.agents.areas.batch_energy_messages`)."""
    if not energies:
        return
    messages, no_area = batch_energy_messages(energies)
    for key, value in messages:
        rt.topics.area_energy.send_soon(key=key, value=value)
    rt.counters["area_energy_sent"] += len(messages)
    if no_area:
        rt.counters["area_energy_no_area"] += no_area


def _distinct(events: Iterable[faust.EventT]) -> list[faust.EventT]:
    seen: set[int] = set()
    out = []
    for event in events:
        if id(event) not in seen:
            seen.add(id(event))
            out.append(event)
    return out


PROFILE_WAIT_S = 30.0  # how long a batch with customers without a profile waits for the profiles


async def wait_for_profiles(
    rt: Runtime, events: Sequence[faust.EventT], within_s: float = PROFILE_WAIT_S
) -> None:
    """Before a batch with readings of customers that have no profile here, wait (at most
    ``within_s``) until the customers agent has applied what its co-partitioned ``customers``
    partitions hold. faust reads the two topics in no order between them: at a fresh start, or
    when a new customer's profile and first readings come close together, the readings would
    run ahead of the profiles (no contract capacity for the demand check, no transformer area
    for the inspection stage: their energy held, ``streams.agents.areas.hold_energy``, and sent
    to the area days of data later, behind its lateness in a backlog). A customer the profiles
    do not know once they are caught up does not wait."""
    partitions = {
        e.message.partition
        for e in events
        if e.message.key and rt.profile(bytes(e.message.key).decode("utf-8", "replace")) is None
    }
    if not partitions:
        return
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within_s
    waited = False
    while any(rt.profiles_behind(p) for p in partitions):
        if loop.time() >= deadline:
            rt.counters["readings_profile_wait_expired"] += 1
            break
        waited = True
        await asyncio.sleep(0.05)
    if waited:
        rt.counters["readings_waited_for_profiles"] += 1


class BatchWindow:
    """How long the readings agent waits to fill a batch: ``short_s`` while it is caught up (a
    reading's statistics go out within about that), ``long_s`` while it is behind by
    ``behind`` readings or more (a backlog, a collection run, a restart): a batch then holds
    more readings, up to ``batch_max``, and a customer's readings in it cost one state write
    and one document. The lag is what the consumer's fetches say is left after the newest
    message of each partition in the last batch (faust's ``Consumer.highwater``)."""

    def __init__(self, app: faust.App, short_s: float, long_s: float, behind: int) -> None:
        self.app = app
        self.short_s = short_s
        self.long_s = max(long_s, short_s)
        self.behind = behind
        self.lag = 0

    def observe(self, events: Sequence[faust.EventT]) -> None:
        last: dict[Any, int] = {}
        for event in events:
            msg = event.message
            last[msg.tp] = max(msg.offset, last.get(msg.tp, -1))
        lag = 0
        consumer = self.app.consumer
        for tp, offset in last.items():
            try:
                high = consumer.highwater(tp)
            except Exception:  # no fetch for it yet (a fresh assignment): unknown, not behind
                high = None
            if high is not None:
                lag += max(0, int(high) - offset - 1)
        self.lag = lag

    def seconds(self) -> float:
        return self.long_s if self.lag >= self.behind else self.short_s


def register(rt: Runtime) -> None:
    s = rt.settings

    window = BatchWindow(rt.app, s.batch_within_s, s.batch_catchup_s, s.batch_catchup_lag)

    @rt.app.agent(rt.topics.readings, name="readings", concurrency=1)
    async def readings(stream: faust.StreamT) -> None:
        # faust's take_events with the window asked anew before each batch (streams.faust_patches)
        batches = take_events_adaptive(cast(Stream, stream), s.batch_max, window.seconds)
        async for events in batches:
            window.observe(events)
            started = time.perf_counter()
            try:
                await process_batch(rt, events)
            except Exception as exc:
                # Never let it out of the agent: take_events acks the whole batch on the way
                # out (faust/streams.py), its offsets would be committed and the batch lost.
                # Exit at once instead; a restarted worker replays from the last commit.
                first = events[0].message
                fatal(f"readings batch from partition {first.partition} offset {first.offset}", exc)
            elapsed = time.perf_counter() - started
            rt.counters["readings_batches"] += 1
            rt.counters["readings_batch_ms"] += round(elapsed * 1000)
            rt.metrics.batch("readings", events[0].message.topic, len(events), elapsed)
