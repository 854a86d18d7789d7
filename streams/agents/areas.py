"""The inspection stage (issue 13): line loss per transformer area and its alerts, in the stream.

Inputs, outputs and where each piece runs:

- ``area.readings`` (key transformer_area; single or block form, ``schemas.blocks``): the
  summary meter into the area's :class:`inspection.area.AreaState`. Decoded and validated like
  ``meter.readings`` (``check_reading`` / ``check_block`` without a contract capacity); an
  unusable message or interval goes to ``area.readings.dlq`` with its context
  (``interval_index`` for a block's interval), as do intervals the state refuses (``late``,
  ``invalid``: ``interval_mismatch``, ``off_grid``, ...).
- **The repartition** ``<app_id>-area-energy`` (a Faust internal topic, as many partitions as
  the app's, key transformer_area; created by ``gridpulse worker`` before faust starts,
  ``streams.kafka.create_internal_topics``: a group assigned before faust created it ignored it
  and the area agent read nothing): the customers' energy reaches the area's owner through it.
  The readings agent (customer-keyed) sends, after applying a batch, one message per customer
  (and area) and batch: its meters' intervals that the batch applied, as runs of the block form
  (``[meter, start, interval_s, [kWh or null, ...]]``), and the newest tamper code seen
  (:func:`energy_messages`); a batch spanning more than a day (a backlog) is cut into day-long
  pieces sent oldest first across its customers (:func:`batch_energy_messages`). The customers
  agent sends membership: ``join`` (with what the customer rules read of the profile:
  importance, tariff class, manager) and ``leave`` (:func:`membership_messages`). An area
  agent applies both to the area's state.
- **The table** ``area-state`` (RocksDB, changelogged, key transformer_area bytes,
  ``use_partitioner=True``: written inside an event context of the area's own messages,
  ``streams.context``): ``GPW1``, the length of a JSON part (per member: its profile facts and
  newest tamper code), then the ``AreaState`` record. Decoded states are cached per area while
  the worker owns it (dropped on revocation).
- On every change of an area (once per batch): ``stats.area`` (key transformer_area;
  ``AreaState.stats_document``) and Redis ``gp:areas:<area>`` (``streams.sinks.RedisHashSink``:
  ``doc`` and ``ts``), sent before the batch's offsets commit.
- ``alerts.inspection``: the rules of ``inspection.rules`` on the area (area rules with ranked
  suspects, ``inspection.suspects``) and on each current member (customer rules), with the
  credit alerts' life cycle (``alerts.credit_rules.decide``).

**Exactly once.** A crash may replay readings whose effect already reached the local store:
LoadState then calls them duplicates. So the readings agent sends the intervals the batch
*applied or found duplicate* (LoadState's ``ApplyResult`` statuses), not only the newly applied:
a replay resends what the crash may have lost, and the area's per-(meter, interval) dedup
counts each once (the first value wins, as in LoadState). Late and invalid intervals are not
sent. Duplicates are rare outside a replay (the head-end's double deliveries), so this costs
little. Membership messages are resent for every profile message (idempotent: ``join`` merges,
``leave`` removes nothing twice), so a replayed profile change is told to the areas again.

**Membership and ordering (no energy lost).** ``customers`` and ``meter.readings`` are read by
two agents of the same worker (co-partitioned by customer), in no order between them. The
customer's area *over time* lives with the customer (:class:`streams.runtime.Runtime` table
``customer-areas``, only for customers that moved): a customer's first area counts it from the
beginning (``since`` 0); a move to area B takes effect at ``t`` = the later of the profile
message's timestamp and one second after the start of the customer's newest interval already
applied (``LoadState.watermark + 1``), so nothing the readings agent already sent to the old area
A lies after ``t`` (A's ``leave(t)`` removes nothing; what A counted stays counted there), and
every interval from ``t`` on goes to B. The readings agent routes each interval by the start it
has to the area the customer belonged to then, so a late reading of an interval before ``t`` still
goes to A after the move. Routing and sending happen in the readings agent without an await
between reading the customer's areas and ``send_soon``, and the customers agent records the move,
then sends ``leave`` and ``join`` in one synchronous step, so on the area topic (one producer,
per-partition order) B sees ``join`` before any energy of the customer routed to it.

**Readings before the profile.** A new customer's first readings, or a whole backlog read at a
fresh start beside the ``customers`` topic, may reach the readings agent before any profile of
the customer. The readings agent first waits (30 s at most) for the customers agent to apply its
co-partitioned ``customers`` partitions (``streams.agents.readings.wait_for_profiles``); what is
still applied without a profile has no area known yet. Its energy is held (table
``area-held-energy``, customer-keyed, changelogged; at most 7 days behind the customer's newest
interval, ``HOLD_S``) and sent, after
the ``join``, to the area the customer's first profile names (``hold_energy``,
``release_held``); the record is deleted once the producer has delivered those messages, so a
crash in between sends them again (counted once by the area) and never loses them. Not counted:
the energy of a customer whose profile names no transformer area, and held energy more than 7
days behind the customer's newest (both ``area_energy_no_area``). A deleted profile leaves the
customer in its area (no ``leave``); its later readings are held as a new customer's.

**A backlog loses no energy.** The summary meters (one hop) and the customers' energy (two hops)
may run days apart when a backlog of several days is loaded at once. ``AreaState`` keeps a
watermark per side: a summary-meter interval is late only more than the lateness (48 h) behind
the summary meter's newest, a member's only more than 48 h behind the members' newest, and a day
is sealed once both sides have passed it, so the side that lags still lands in open days.
Within the members' side the order matters: the readings agent sends a batch's energy oldest
day first across its customers (:func:`batch_energy_messages`), not one customer's days after
another's, and the area agent applies each batch's energy oldest data first across customers
(:func:`in_data_order`): faust hands over one partition's fetched records before another's, and
with few customers per partition one fetch holds days of data. What remains: customers of one
area whose energy reaches the area agent in *different batches* more than 48 h of data time
apart (two workers, or partitions of ``meter.readings``, far apart in a backlog); such energy is
refused and counted (``area_energy_late``); a watermark per source partition would remove it. The
price of the per-side watermark: while the summary meter lags or is silent, the area's days since
stay open (their per-interval detail in the record), for 7 days at most (``SUPPLY_HOLD_S``; its
older intervals are then late).

**Per-customer rules run on the area side.** ``stopped_reporting`` needs the area's summary
meter and its other meters, ``consumption_drop`` the area's complete days and loss, and the
suspects' flags are the members' open rules: the area agent sees all of them; the customer side
sees one customer. ``tamper_flag`` needs the quality codes, which only the readings carry: the
readings agent sends the newest tamper code with the energy.

**When the rules run (no storm on replayed history).** As the credit alerts
(``streams.agents.credit_alerts``): a changed area is evaluated once it has had no new input for
``AREA_SETTLE_S`` (15 s, 5 s longer than the area agents' batch window ``AREA_BATCH_WITHIN_S``,
setting ``area_batch_within_s``), so a backlog, a history load or a collection run is judged at
its end, once, not after each batch), on the wall clock, and at the latest ``AREA_SETTLE_MAX_S``
(60 s) after the first input it has not been judged on (inputs that keep coming do not put the
rules off for ever); a hold of ``decide`` is evaluated when it ends; every owned area again
every ``AREA_RECHECK_S`` (the history horizon moves on the wall clock; ``stopped_reporting``
itself is judged at the area's data time, the newest interval end of its summary meter and
meters). ``inspection.rules`` publishes nothing for days, drops, tamper codes or silences older
than ``recent_s`` (history opens nothing). Open alerts survive a restart as the credit alerts'
do: a follower reads the compacted ``alerts.inspection`` back before the first evaluation.

**Cost** (not measured yet: the benchmark's machine time was taken). On the customer side: one
compact message per customer and batch (not per reading), built from the batch's outcomes, and a
dictionary lookup of the customer's areas. On the area side, per area and batch: the state's
update (the core's 3-5 µs per interval), one record write (``to_bytes``, the core's ~2 ms for a
200-customer area) and one ``stats_document`` (~2 ms); the area agents batch over
``AREA_BATCH_WITHIN_S`` (10 s) so that a wave of quarter-hour readings is one update of its
area, not one per customer. Estimated from those figures, not measured: a 200-customer area's
quarter-hour wave (200 intervals) ~5 ms, ~25 µs a reading, against the pipeline's ~600 µs a
reading: ~4 %, if a wave fits in one area batch. The rules (customer days, suspects) run once
per settled change and per recheck. The decoded states of the owned areas are kept in memory
(the core's ~177 KB for 200 customers).
"""

from __future__ import annotations

import logging
import struct
import time
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import partial
from typing import Any, cast

import faust
import orjson
from faust.streams import Stream

from alerts.credit_rules import CustomerAlerts, is_open
from inspection.area import AreaState
from inspection.rules import (
    AREA_RULES,
    CUSTOMER_RULES,
    CustomerInputs,
    InspectionThresholds,
    TamperSeen,
    evaluate_area,
    evaluate_customer,
    tamper_codes,
)
from inspection.suspects import rank_area
from metering.load import APPLIED, DUPLICATE, LATE
from schemas.area_snapshot import AREA_KEY_PREFIX, CUSTOMER_DAYS_FIELD, customer_days_value
from schemas.blocks import ReadingBlock, decode_area_reading
from schemas.codec import DecodeError
from schemas.topics import ALERTS_INSPECTION, AREA_READINGS
from schemas.validation import Issue, check_block, check_reading
from streams.agents.credit_alerts import timing_from
from streams.app import rocksdb_options
from streams.context import event_context
from streams.faust_patches import take_events_adaptive
from streams.follow import TopicFollower
from streams.ownership import partition_of
from streams.runtime import ENVIRONMENT_ERRORS, ProfileFacts, Runtime, fatal, log_failure
from streams.sinks import RedisHashSink

log = logging.getLogger(__name__)

AREA_BATCH_MAX = 20_000
AREA_BATCH_WITHIN_S = 10.0
AREA_SETTLE_S = 15.0  # > AREA_BATCH_WITHIN_S: judged once a delivery has ended, not per batch
AREA_SETTLE_MAX_S = 60.0
AREA_RECHECK_S = 300.0
TICK_S = 1.0
SINCE_ALWAYS = 0  # a customer's first area counts it from the beginning
_WRAP = b"GPW1"
_LEN = struct.Struct("<I")

AreaSpan = tuple[str, int]  # (transformer_area, since epoch s)


# ---------------------------------------------------------------------- customer side


def area_at(areas: Sequence[AreaSpan], start: int) -> str | None:
    """The area the customer belonged to at ``start`` (``areas`` oldest first)."""
    found = None
    for area, since in areas:
        if since <= start:
            found = area
        else:
            break
    return found


@dataclass(slots=True)
class EnergyOut:
    """A customer's intervals of one batch to send, per meter: start -> (interval_s, kWh)."""

    meters: dict[str, dict[int, tuple[int, float]]] = field(default_factory=dict)
    tamper: TamperSeen | None = None

    def add(self, meter_id: str, start: int, interval_s: int, kwh: float, quality: Any = None) -> None:
        self.meters.setdefault(meter_id, {})[start] = (interval_s, kwh)
        if quality:
            codes = tamper_codes(quality, _THRESHOLDS)
            end = start + interval_s
            if codes and (self.tamper is None or end >= self.tamper.interval_end):
                self.tamper = TamperSeen(meter_id, end, tuple(codes))


def energy_messages(
    customer_id: str, areas: Sequence[AreaSpan], out: EnergyOut
) -> tuple[list[tuple[bytes, bytes]], int]:
    """The messages of one customer's batch: one per area its intervals belong to (one, unless
    the batch spans a move), each meter's intervals as runs ``[meter, start, interval_s,
    [kWh or null...]]``; and how many intervals had no area."""
    per_area: dict[str, list[Any]] = {}
    tamper_area: str | None = None
    no_area = 0
    for meter, cells in out.meters.items():
        runs: dict[str, list[Any]] = {}
        for start in sorted(cells):
            interval_s, kwh = cells[start]
            area = area_at(areas, start)
            if area is None:
                no_area += 1
                continue
            area_runs = runs.setdefault(area, [])
            last = area_runs[-1] if area_runs else None
            if last is not None and last[2] == interval_s:
                gap = (start - last[1]) // interval_s - len(last[3])
                if (start - last[1]) % interval_s == 0 and 0 <= gap <= 192:
                    last[3].extend([None] * gap)
                    last[3].append(kwh)
                    continue
            area_runs.append([meter, start, interval_s, [kwh]])
        for area, area_runs in runs.items():
            per_area.setdefault(area, []).extend(area_runs)
    if out.tamper is not None:
        tamper_area = area_at(areas, out.tamper.interval_end - 1)
    messages = []
    for area, area_list in per_area.items():
        body: dict[str, Any] = {"k": "e", "c": customer_id, "m": area_list}
        if tamper_area == area and out.tamper is not None:
            body["t"] = [out.tamper.meter_id, out.tamper.interval_end, list(out.tamper.codes)]
        messages.append((area.encode(), orjson.dumps(body)))
    if tamper_area is not None and tamper_area not in per_area and out.tamper is not None:
        body = {
            "k": "e",
            "c": customer_id,
            "m": [],
            "t": [out.tamper.meter_id, out.tamper.interval_end, list(out.tamper.codes)],
        }
        messages.append((tamper_area.encode(), orjson.dumps(body)))
    return messages, no_area


ENERGY_PIECE_S = 86400  # a batch's energy is sent in pieces of one day of intervals, oldest first


HOLD_S = 7 * 86400  # energy held for a customer without a profile: 7 days behind its newest interval


def held_merge(raw: bytes | None, out: EnergyOut, hold_s: int = HOLD_S) -> tuple[bytes, int, int]:
    """The held energy of a customer (``raw``, JSON ``{"m": {meter: [[start, interval_s, kWh],
    ...]}, "t": [meter, interval_end, [codes]] or null}``) with ``out`` added (a redelivered
    interval keeps its first value, as everywhere), cut to ``hold_s`` behind its newest interval.
    Returns the record, the intervals added and the intervals dropped by the cut."""
    held = held_energy(raw)
    added = 0
    for meter, cells in out.meters.items():
        mine = held.meters.setdefault(meter, {})
        for start, cell in cells.items():
            if start not in mine:
                mine[start] = cell
                added += 1
    if out.tamper is not None and (
        held.tamper is None or out.tamper.interval_end >= held.tamper.interval_end
    ):
        held.tamper = out.tamper
    starts = [start for cells in held.meters.values() for start in cells]
    dropped = 0
    if starts:
        cutoff = max(starts) - hold_s
        for cells in held.meters.values():
            old = [start for start in cells if start < cutoff]
            for start in old:
                del cells[start]
            dropped += len(old)
    body = {
        "m": {
            m: [[start, *cells[start]] for start in sorted(cells)]
            for m, cells in held.meters.items()
            if cells
        },
        "t": None
        if held.tamper is None
        else [held.tamper.meter_id, held.tamper.interval_end, list(held.tamper.codes)],
    }
    return orjson.dumps(body), added, dropped


def held_energy(raw: bytes | None) -> EnergyOut:
    """A held-energy record (``held_merge``) as the energy of a batch."""
    out = EnergyOut()
    if not raw:
        return out
    body = orjson.loads(raw)
    for meter, cells in body["m"].items():
        out.meters[meter] = {int(start): (int(interval_s), float(kwh)) for start, interval_s, kwh in cells}
    if body.get("t"):
        meter_id, end, codes = body["t"]
        out.tamper = TamperSeen(meter_id, int(end), tuple(codes))
    return out


def hold_energy(rt: Runtime, event: faust.EventT, customer_id: str, out: EnergyOut) -> None:
    """Keep the energy of a customer read before any profile of it (no area known yet) until its
    first profile names its area (``release_held``): ``customers`` and ``meter.readings`` are
    read in no order between them, so a new customer's first readings, or a whole backlog at a
    fresh start, may be applied before its profile. Written under the customer's event (its
    partition; changelogged), in the same synchronous step as the readings agent's check."""
    key = customer_id.encode()
    record, added, dropped = held_merge(rt.held_energy_table.get(key), out)
    with event_context(event):
        rt.held_energy_table[key] = record
    rt.counters["area_energy_held"] += added
    if dropped:
        rt.counters["area_energy_no_area"] += dropped


def release_held(rt: Runtime, customer_id: str, areas: Sequence[AreaSpan]) -> bool:
    """Send a customer's held energy to the areas it now has (after its ``join``: one
    producer, per-partition order). True when there was some: the caller deletes the record
    (``drop_held``) once the producer has delivered these messages, so a crash in between
    sends them again (the area counts each interval once) instead of losing them."""
    raw = rt.held_energy_table.get(customer_id.encode())
    if not raw:
        return False
    out = held_energy(raw)
    messages, no_area = energy_messages(customer_id, areas, out)
    for key, value in messages:
        rt.topics.area_energy.send_soon(key=key, value=value)
    rt.counters["area_energy_released"] += sum(len(cells) for cells in out.meters.values()) - no_area
    if no_area:
        rt.counters["area_energy_no_area"] += no_area
    return True


def drop_held(rt: Runtime, event: faust.EventT, customer_id: str) -> None:
    with event_context(event):
        del rt.held_energy_table[customer_id.encode()]


def batch_energy_messages(
    energies: Sequence[tuple[str, Sequence[AreaSpan], EnergyOut]],
) -> tuple[list[tuple[bytes, bytes]], int]:
    """The messages of a whole batch of the readings agent (per customer: its areas over time and
    its energy), oldest data first across the customers: each customer's intervals are cut into
    pieces of ``ENERGY_PIECE_S`` counted from the batch's oldest interval, and the pieces go out
    in order (piece 0 of every customer, then piece 1, ...), so an area receives a backlog day
    after day rather than one customer's days after another's (``AreaState`` judges the members'
    lateness against their newest interval: customer by customer, the second one's first days
    would be late). A batch within a day (the usual case) is one piece: one message per customer
    (and area), as `energy_messages`. Returns the messages and the intervals without an area."""
    starts = [start for _, _, out in energies for cells in out.meters.values() for start in cells]
    t0 = min(starts) if starts else 0
    pieces: list[tuple[int, int, list[tuple[bytes, bytes]]]] = []
    no_area = 0
    for order, (customer_id, areas, out) in enumerate(energies):
        split: dict[int, EnergyOut] = {}
        for meter, cells in out.meters.items():
            for start, cell in cells.items():
                piece = split.setdefault((start - t0) // ENERGY_PIECE_S, EnergyOut())
                piece.meters.setdefault(meter, {})[start] = cell
        if out.tamper is not None:  # with the piece of its interval (pieces start on the grid)
            at = (out.tamper.interval_end - 1 - t0) // ENERGY_PIECE_S if starts else 0
            split.setdefault(at, EnergyOut()).tamper = out.tamper
        for k, piece_out in split.items():
            messages, missing = energy_messages(customer_id, areas, piece_out)
            no_area += missing
            pieces.append((k, order, messages))
    pieces.sort(key=lambda p: (p[0], p[1]))
    return [m for _, _, messages in pieces for m in messages], no_area


def membership_messages(
    customer_id: str, areas: Sequence[AreaSpan], facts: ProfileFacts | None
) -> list[tuple[bytes, bytes]]:
    """What the areas must know of a customer's membership: ``leave`` of the area it left last
    (at the move), then ``join`` of its current area (since its move, with the facts the
    customer rules read). Resent for every profile message: idempotent."""
    if not areas:
        return []
    current, since = areas[-1]
    out = []
    if len(areas) > 1:
        previous = areas[-2][0]
        if previous != current:
            out.append((previous.encode(), orjson.dumps({"k": "l", "c": customer_id, "u": since})))
    f = None if facts is None else [facts.importance, facts.tariff_class, facts.manager_id]
    out.append((current.encode(), orjson.dumps({"k": "j", "c": customer_id, "s": since, "f": f})))
    return out


def moved_areas(history: Sequence[AreaSpan], new_area: str | None, at: int) -> tuple[AreaSpan, ...] | None:
    """The customer's areas after a profile naming ``new_area``: None when nothing changes
    (same area, or no area named: a customer is not taken out of its area by a profile that
    omits it), else the history with the move at ``at`` appended (the first area from
    ``SINCE_ALWAYS``; the last 8 moves kept)."""
    if new_area is None:
        return None
    if not history:
        return ((new_area, SINCE_ALWAYS),)
    if history[-1][0] == new_area:
        return None
    at = max(at, history[-1][1])
    return (*history, (new_area, at))[-8:]


def in_data_order(items: Sequence[tuple[faust.EventT, tuple[str, Any]]]) -> list[tuple[faust.EventT, Any]]:
    """An area's repartitioned messages of one batch in the order to apply them: membership
    first (in arrival order: joins and leaves carry their instants, so they may precede any
    energy), then the energy oldest data first across customers, each customer's messages in
    their arrival order (a re-sent interval keeps the first value, as in LoadState).

    The members' lateness is judged against their newest interval, and faust hands over one
    partition's fetched records before another's: in a backlog with few customers per
    partition, one fetch may carry days of one partition's customers ahead of another's. Applied
    in arrival order, the other partition's older days would be refused as late; in data order,
    within a batch, they are not (batches of up to ``AREA_BATCH_MAX`` messages)."""
    membership = [(e, item) for e, item in items if item[0] != "e"]
    energy: list[tuple[int, int, tuple[faust.EventT, Any]]] = []
    floor: dict[str, int] = {}  # per customer: its messages keep their order
    for n, (event, item) in enumerate(items):
        if item[0] != "e":
            continue
        body = item[1]
        runs = body.get("m") or []
        t = body.get("t")
        oldest = min((int(run[1]) for run in runs), default=int(t[1]) - 1 if t else 0)
        cid = str(body.get("c"))
        key = max(oldest, floor.get(cid, oldest))
        floor[cid] = key
        energy.append((key, n, (event, item)))
    energy.sort(key=lambda x: (x[0], x[1]))
    return membership + [x[2] for x in energy]


# ---------------------------------------------------------------------- area side


@dataclass(slots=True)
class Member:
    facts: tuple[str | None, str | None, str | None] | None = None  # importance, tariff, manager
    tamper: TamperSeen | None = None


@dataclass(slots=True)
class Area:
    """One area as the stage holds it: the loss state and, per member, what its rules read."""

    state: AreaState
    members: dict[str, Member] = field(default_factory=dict)

    def to_bytes(self) -> bytes:
        meta = {
            c: [
                m.facts,
                None
                if m.tamper is None
                else [m.tamper.meter_id, m.tamper.interval_end, list(m.tamper.codes)],
            ]
            for c, m in self.members.items()
        }
        head = orjson.dumps(meta)
        return _WRAP + _LEN.pack(len(head)) + head + self.state.to_bytes()

    @classmethod
    def from_bytes(cls, raw: bytes, rt: Runtime) -> Area:
        if raw[:4] != _WRAP:
            raise ValueError("not an area-state record")
        (n,) = _LEN.unpack_from(raw, 4)
        meta = orjson.loads(raw[8 : 8 + n])
        state = AreaState.from_bytes(raw[8 + n :], tz=rt.tz)
        members = {
            c: Member(
                None if facts is None else cast(Any, tuple(facts)),
                None if t is None else TamperSeen(t[0], int(t[1]), tuple(t[2])),
            )
            for c, (facts, t) in meta.items()
        }
        return cls(state, members)


_THRESHOLDS = InspectionThresholds()


class AreaStage:
    def __init__(self, rt: Runtime, area_readings: faust.TopicT, energy: faust.TopicT) -> None:
        self.rt = rt
        s = rt.settings
        self.area_readings = area_readings
        self.energy = energy
        self.thresholds = _THRESHOLDS
        self.timing = timing_from(s)
        self.table = rt.app.Table(
            "area-state",
            key_type=bytes,
            value_type=bytes,
            partitions=s.topic_partitions,
            use_partitioner=True,
            options=rocksdb_options(s),
            help="per transformer area: line-loss state and members (streams.agents.areas)",
        )
        self.areas: dict[str, Area] = {}  # decoded, while owned
        self.pending: dict[str, float] = {}  # area -> when to evaluate it
        self.unjudged_since: dict[str, float] = {}  # area -> its first input since it was judged
        self.held: dict[str, CustomerAlerts] = {}  # per area or customer id: open alerts, holds
        self.checked_at = 0.0
        self.batch_within_s = s.area_batch_within_s  # the area agents' batch window (AREA_BATCH_WITHIN_S)
        self.clock: Callable[[], float] = time.time
        # gp:areas:<area> (schemas.area_snapshot): doc and ts on every change; customer_days
        # (what explain reads beside the loss) when the suspects are ranked, by a sink of its
        # own (a sink keeps one pending entry per key)
        self.redis = RedisHashSink(s.redis_url, key_prefix=f"{s.topic_prefix}{AREA_KEY_PREFIX}")
        self.redis_days = RedisHashSink(s.redis_url, key_prefix=f"{s.topic_prefix}{AREA_KEY_PREFIX}")
        self.follower = TopicFollower(
            s,
            (s.topic(ALERTS_INSPECTION),),
            lambda rec: self.apply_record(rec.key, rec.value),
            label="inspection_alerts",
            counters=rt.counters,
        )
        self.ready = self.follower.ready
        rt.app.on_partitions_revoked.connect(self._on_revoked)

    async def _on_revoked(self, sender: Any, /, *args: Any, signal: Any, **kwargs: Any) -> None:
        self.areas.clear()
        self.pending.clear()

    # ------------------------------------------------------------------ state

    def area(self, name: str) -> Area:
        area = self.areas.get(name)
        if area is None:
            raw = self.table.get(name.encode())
            area = (
                Area(AreaState(tz=self.rt.tz, lateness_s=self.rt.settings.lateness_s))
                if raw is None
                else Area.from_bytes(raw, self.rt)
            )
            self.areas[name] = area
        return area

    # ------------------------------------------------------------------ the agents' batches

    async def supply_batch(self, events: Sequence[faust.EventT]) -> None:
        """``area.readings``: decode, validate, apply per area, write, publish."""
        now = datetime.now(UTC)
        s = self.rt.settings
        groups: dict[str, list[tuple[faust.EventT, Any]]] = {}
        dead: list[Callable[[], Awaitable[None]]] = []
        newest: dict[int, float] = {}  # per partition: the newest usable interval's end (event age)
        for event in events:
            msg = event.message
            try:
                value = decode_area_reading(msg.key, msg.value)
            except DecodeError as exc:
                dead.append(partial(self.rt.dead_letter, AREA_READINGS, event, exc.kind, exc.detail))
                continue
            if isinstance(value, ReadingBlock):
                issues = {i: Issue(kind, detail) for i, (kind, detail) in value.issues.items()}
                issues |= check_block(
                    value, now=now, contract_kva=None, future_tolerance_s=s.future_tolerance_s
                )
                for i in sorted(issues):
                    dead.append(
                        partial(
                            self.rt.dead_letter,
                            AREA_READINGS,
                            event,
                            issues[i].kind,
                            issues[i].detail,
                            interval_index=i,
                        )
                    )
                indices = [i for i in value.readable() if i not in issues]
                if indices:
                    kwh: list[float | None] = [None] * len(value.kwh)
                    for i in indices:
                        kwh[i] = value.kwh[i]
                    groups.setdefault(value.customer_id, []).append(
                        (event, ("s", value.start_s, value.interval_s, kwh, indices))
                    )
                    end = value.start_s + (indices[-1] + 1) * value.interval_s
                    newest[msg.partition] = max(end, newest.get(msg.partition, 0.0))
                continue
            issue = check_reading(value, now=now, contract_kva=None, future_tolerance_s=s.future_tolerance_s)
            if issue is not None:
                dead.append(partial(self.rt.dead_letter, AREA_READINGS, event, issue.kind, issue.detail))
                continue
            start = round(value.ts.timestamp()) - value.interval_s
            groups.setdefault(value.transformer_area, []).append(
                (event, ("s", start, value.interval_s, [value.kwh], None))
            )
            newest[msg.partition] = max(start + value.interval_s, newest.get(msg.partition, 0.0))
        if newest:
            self.rt.metrics.event_times(events[0].message.topic, newest)
        await self._apply_groups(groups, dead)

    async def energy_batch(self, events: Sequence[faust.EventT]) -> None:
        """``<app_id>-area-energy``: membership and customers' energy, per area."""
        groups: dict[str, list[tuple[faust.EventT, Any]]] = {}
        for event in events:
            msg = event.message
            try:
                body = orjson.loads(msg.value or b"")
                area = bytes(msg.key or b"").decode()
                kind = body["k"]
                if not area:
                    raise KeyError("key")
            except (orjson.JSONDecodeError, KeyError, TypeError, UnicodeDecodeError, AttributeError):
                self.rt.counters["area_energy_malformed"] += 1  # written by gridpulse only
                continue
            groups.setdefault(area, []).append((event, (kind, body)))
        await self._apply_groups({area: in_data_order(items) for area, items in groups.items()}, [])

    async def _apply_groups(
        self, groups: dict[str, list[tuple[faust.EventT, Any]]], dead: list[Callable[[], Awaitable[None]]]
    ) -> None:
        docs: list[tuple[str, dict[str, Any]]] = []
        wall = self.clock()
        for name, items in groups.items():
            try:
                area = self.area(name)
                rejected = self._apply(area, items)
                record = area.to_bytes()
                doc = area.state.stats_document(name) if area.state.watermark is not None else None
            except ENVIRONMENT_ERRORS:
                raise
            except Exception as exc:  # a defect meeting these inputs: to the DLQ (summary meter) or counted
                self.areas.pop(name, None)  # the cached state may be half-applied: re-read it
                supply = [e for e, item in items if item[0] == "s"]
                if supply:
                    dead.append(partial(self.rt.processing_failed, AREA_READINGS, _distinct(supply), exc))
                else:
                    self.rt.counters["area_energy_failed"] += len(items)
                    log_failure(f"area-energy: processing {len(items)} messages failed", exc)
                continue
            for event, index, kind, detail in rejected:
                dead.append(
                    partial(self.rt.dead_letter, AREA_READINGS, event, kind, detail, interval_index=index)
                )
            with event_context(items[-1][0]):
                self.table[name.encode()] = record
            if doc is not None:
                docs.append((name, doc))
            # a new input: settle (again), but not later than a minute after the first unjudged one
            first = self.unjudged_since.setdefault(name, wall)
            self.pending[name] = min(wall + self.settle_s, first + AREA_SETTLE_MAX_S)
        for name, doc in docs:
            raw = orjson.dumps(doc)
            self.rt.topics.stats_area.send_soon(key=name.encode(), value=raw)
            self.redis.add(name, doc, raw)
        self.rt.counters["stats_area_published"] += len(docs)
        if docs:
            await self.redis.flush()
        for send in dead:
            await send()

    def _apply(
        self, area: Area, items: list[tuple[faust.EventT, Any]]
    ) -> list[tuple[faust.EventT, int | None, str, str]]:
        """Apply one area's items in arrival order; the summary meter's refused intervals."""
        state, counters = area.state, self.rt.counters
        rejected: list[tuple[faust.EventT, int | None, str, str]] = []
        for event, (kind, *rest) in items:
            if kind == "s":
                start, interval_s, kwh, indices = rest
                result = state.apply_supply(start, kwh, interval_s)
                positions = indices if indices is not None else [None]
                for k, status in enumerate(result.statuses):
                    counters[f"area_supply_{status}"] += 1
                    if status not in (APPLIED, DUPLICATE):
                        why = result.reasons.get(k, status)
                        detail = (
                            f"interval older than the allowed lateness of {state.lateness_s} s behind the "
                            "area's newest summary-meter interval, or of a day the area has sealed"
                            if status == LATE
                            else "rejected by the area state"
                        )
                        rejected.append((event, positions[k], why if status != LATE else LATE, detail))
                continue
            body = rest[0]
            cid = str(body["c"])
            if kind == "j":
                state.join(cid, int(body["s"]))
                member = area.members.setdefault(cid, Member())
                f = body.get("f")
                member.facts = None if f is None else (f[0], f[1], f[2])
                counters["area_joins"] += 1
            elif kind == "l":
                state.leave(cid, int(body["u"]))
                counters["area_leaves"] += 1
            elif kind == "e":
                for meter, start, interval_s, kwh in body["m"]:
                    result = state.apply_customer(cid, str(meter), int(start), kwh, int(interval_s))
                    for status in result.statuses:
                        counters[f"area_energy_{status}"] += 1
                t = body.get("t")
                if t is not None:
                    seen = TamperSeen(str(t[0]), int(t[1]), tuple(t[2]))
                    member = area.members.setdefault(cid, Member())
                    if member.tamper is None or seen.interval_end >= member.tamper.interval_end:
                        member.tamper = seen
        kept = set(state.customers)
        for cid in [c for c in area.members if c not in kept]:
            del area.members[cid]  # its row went with the days it was a member in
        return rejected

    # ------------------------------------------------------------------ alerts

    def held_for(self, scope_id: str) -> CustomerAlerts:
        held = self.held.get(scope_id)
        if held is None:
            held = self.held[scope_id] = CustomerAlerts()
        return held

    def tidy(self, scope_id: str) -> None:
        held = self.held.get(scope_id)
        if held is not None and not held.published and not held.tracks:
            del self.held[scope_id]

    def publish(self, alerts: Iterable[dict[str, Any]]) -> None:
        for alert in alerts:
            self.rt.topics.alerts_inspection.send_soon(
                key=alert["alert_id"].encode(), value=orjson.dumps(alert)
            )
            self.rt.metrics.alert(alert)
            self.rt.counters[f"inspection_alerts_{alert['status']}"] += 1

    def _remember(self, scope_id: str, alert: dict[str, Any]) -> None:
        rule = str(alert["rule"])
        held = self.held_for(scope_id)
        if is_open(alert):
            held.published[rule] = dict(alert)
        else:
            held.published.pop(rule, None)

    def evaluate(self, name: str, now: float) -> float | None:
        """The rules of one area and its current members at ``now``; publishes; the earliest
        hold that ends, if any."""
        area = self.areas.get(name) or self.area(name)
        state = area.state
        if state.watermark is None:
            return None
        ts = (
            datetime.fromtimestamp(state.data_end, self.rt.tz).isoformat()
            if state.data_end
            else datetime.fromtimestamp(now, self.rt.tz).isoformat()
        )
        ordinal = datetime.fromtimestamp(now, self.rt.tz).date().toordinal()
        ordinal = min(ordinal, datetime.fromtimestamp(state.watermark, self.rt.tz).date().toordinal())
        days = state.days(ordinal)
        series = state.customer_days(ordinal)
        ends = state.meters_last_end()
        due: float | None = None
        flags: dict[str, set[str]] = {}
        managers: dict[str, str | None] = {}
        members = [c for c in state.customers if state.is_member(c, state.watermark)]
        member_ends = {c: list(ends[c].values()) for c in members if c in ends}
        for cid in members:
            member = area.members.get(cid, Member())
            importance, tariff, manager = member.facts or (None, None, None)
            managers[cid] = manager
            others = [e for c, mine in member_ends.items() if c != cid for e in mine]
            held = self.held_for(cid)
            result = evaluate_customer(
                cid,
                CustomerInputs(
                    series.get(cid, []), ends.get(cid, {}), member.tamper, importance, tariff, manager
                ),
                days,
                others,
                state.supply_end,
                held,
                now,
                ts=ts,
                thresholds=self.thresholds,
                timing=self.timing,
                tz=self.rt.tz,
            )
            for alert in result.messages:
                alert["transformer_area"] = name  # which area's owner judges it (read back)
                self._remember(cid, alert)
            self.publish(result.messages)
            open_rules = {r for r, a in held.published.items() if is_open(a) and r in CUSTOMER_RULES}
            if open_rules:
                flags[cid] = open_rules
            self.tidy(cid)
            if result.due is not None:
                due = result.due if due is None else min(due, result.due)
        suspects = rank_area({c: series[c] for c in members if c in series}, days, flags, managers)
        self.redis_days.add_fields(name, {CUSTOMER_DAYS_FIELD: customer_days_value(series).decode()})
        held = self.held_for(name)
        result = evaluate_area(
            name,
            days,
            suspects,
            held,
            now,
            ts=ts,
            thresholds=self.thresholds,
            timing=self.timing,
            tz=self.rt.tz,
        )
        for alert in result.messages:
            self._remember(name, alert)
        self.publish(result.messages)
        self.tidy(name)
        if result.due is not None:
            due = result.due if due is None else min(due, result.due)
        return due

    async def tick(self) -> None:
        """Evaluate the areas that settled, whose holds ended, and every owned area each
        ``AREA_RECHECK_S``."""
        app = self.rt.app
        recovered = app.tables.recovery.completed.is_set()  # type: ignore[attr-defined]
        if not self.ready.is_set() or not recovered or app.rebalancing:
            return
        now = self.clock()
        if now - self.checked_at >= AREA_RECHECK_S:
            self.checked_at = now
            for key in list(self.table.keys()):
                name = bytes(key).decode()
                if self.owns(name):
                    self.pending.setdefault(name, now)
        for name, at in list(self.pending.items()):
            if at > now:
                continue
            del self.pending[name]
            self.unjudged_since.pop(name, None)
            if not self.owns(name):
                continue
            try:
                due = self.evaluate(name, now)
            except ENVIRONMENT_ERRORS:
                raise
            except Exception as exc:  # a defect: this area waits for its next input or recheck
                self.rt.counters["inspection_alerts_failed"] += 1
                log_failure("inspection alerts: evaluating an area failed", exc)
                continue
            if due is not None:
                self.pending[name] = due
        self.rt.counters["inspection_areas_pending"] = len(self.pending)
        if self.redis_days.backlog:
            await self.redis_days.flush()

    @property
    def settle_s(self) -> float:
        """How long an area's input must have settled before it is judged: longer than the batch
        window (``AREA_SETTLE_S`` with the default window)."""
        return self.batch_within_s + AREA_SETTLE_S - AREA_BATCH_WITHIN_S

    def owns(self, area: str) -> bool:
        return partition_of(area, self.rt.settings.topic_partitions) in self.rt.ownership.partitions()

    def apply_record(self, key: bytes | None, value: bytes | None) -> None:
        """An ``alerts.inspection`` record read back (this worker's earlier life's, or another
        worker's)."""
        if value is None:
            if key:
                aid = key.decode("utf-8", "replace")
                for scope_id, held in list(self.held.items()):
                    for rule, alert in list(held.published.items()):
                        if alert.get("alert_id") == aid:
                            del held.published[rule]
                            held.tracks.pop(rule, None)
                    self.tidy(scope_id)
            return
        try:
            alert = orjson.loads(value)
            rule = str(alert["rule"])
            scope_id = str(
                alert["customer_id"] if alert.get("scope") == "customer" else alert["transformer_area"]
            )
            judged_by = str(alert.get("transformer_area") or scope_id)
        except (orjson.JSONDecodeError, KeyError, TypeError):
            return
        if rule not in (*AREA_RULES, *CUSTOMER_RULES):
            return
        if self.ready.is_set() and self.owns(judged_by):
            return  # this worker's own updates are newer than what it reads back
        held = self.held_for(scope_id)
        held.tracks.pop(rule, None)
        self._remember(scope_id, alert)
        self.tidy(scope_id)


def _distinct(events: Iterable[faust.EventT]) -> list[faust.EventT]:
    seen: set[int] = set()
    out = []
    for event in events:
        if id(event) not in seen:
            seen.add(id(event))
            out.append(event)
    return out


def register(rt: Runtime) -> AreaStage:
    stage = AreaStage(rt, rt.topics.area_readings, rt.topics.area_energy)

    def batches(stream: faust.StreamT) -> Any:
        return take_events_adaptive(cast(Stream, stream), AREA_BATCH_MAX, lambda: stage.batch_within_s)

    async def run(
        name: str, stream: faust.StreamT, process: Callable[[Sequence[faust.EventT]], Awaitable[None]]
    ) -> None:
        async for events in batches(stream):
            started = time.perf_counter()
            try:
                await process(events)
            except Exception as exc:
                # never out of the agent (its batch would be acked and lost): exit, replay
                first = events[0].message
                fatal(f"{name} batch from partition {first.partition} offset {first.offset}", exc)
            rt.counters[f"{name}_batches"] += 1
            rt.metrics.batch(name, events[0].message.topic, len(events), time.perf_counter() - started)

    @rt.app.agent(rt.topics.area_readings, name="area_readings", concurrency=1)
    async def area_readings(stream: faust.StreamT) -> None:
        await run("area_readings", stream, stage.supply_batch)

    @rt.app.agent(rt.topics.area_energy, name="area_energy", concurrency=1)
    async def area_energy(stream: faust.StreamT) -> None:
        await run("area_energy", stream, stage.energy_batch)

    rt.app.task(stage.follower.run_forever)
    rt.app.timer(interval=TICK_S, name="inspection.tick")(stage.tick)
    return stage


__all__ = [
    "AREA_BATCH_WITHIN_S",
    "Area",
    "AreaStage",
    "EnergyOut",
    "area_at",
    "batch_energy_messages",
    "energy_messages",
    "membership_messages",
    "moved_areas",
    "register",
]
