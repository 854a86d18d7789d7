"""The head-end simulator: a pure message generator and a thin Kafka producer loop over it.

`generate(opts)` yields `Message(topic, key, value, outcome)` in the order a real system would
deliver them: every `customers` profile first, then readings step by step (15 minutes at a time,
with late delivery, duplicates and bad messages from bad.py), billing and outage events merged in
by their ts (events dated before the first reading, such as the billing history, come first).
`run_simulation(opts)` produces exactly that sequence to Kafka and returns the counts the
integration tests compare the pipeline against.

With ``blocks`` the readings are daily curves in the block form instead (simulator/blocks.py):
whole local days, one block per customer and day, delivered in each day's collection run after
local midnight (some hours late, some retried, some partly missing, some re-sent overlapping);
the bad/duplicate/late shares of single readings do not apply.
"""

from __future__ import annotations

import asyncio
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from typing import Any, NamedTuple
from zoneinfo import ZoneInfo

import numpy as np
import orjson

from schemas import topics
from simulator.bad import OUTCOMES, BadConfig, Reading, ReadingDelivery
from simulator.billing import plan_billing
from simulator.blocks import CollectionOptions, DayCurves, daily_blocks, day_curves, local_midnights
from simulator.clock import INTERVAL_S, add_months, align_down, local, month_start, rfc3339, to_epoch
from simulator.load import LoadModel
from simulator.outages import Outage, plan_outages, supply_loss_masks
from simulator.population import Population, make_population
from simulator.replay import UCI_CUSTOMER_ID, replay_profile, replay_readings


@dataclass
class SimulationOptions:
    bootstrap: str = "127.0.0.1:9092"
    topic_prefix: str = ""
    customers: int = 200
    days: float = 2.0  # simulated span; rounded to whole 15-minute intervals
    seconds: float | None = None  # wall-clock limit of run_simulation (None = no limit)
    rate: float = 0.0  # readings per second; 0 = as fast as possible
    start: datetime | None = None  # first interval start; None = the span ends at now (aligned)
    seed: int = 42
    bad_share: float = 0.02
    duplicate_share: float = 0.01
    late_share: float = 0.02
    max_lateness_s: int = 1800
    billing: bool = True
    billing_history_months: int = 6
    consumption_history_months: int = 25  # consumption.history before the start (YoY growth)
    outages: bool = True
    replay_uci: bool = False
    uci_path: str | None = None  # None = ../shared/data/uci-household-2007-02-01_02.txt
    tz: ZoneInfo = field(default_factory=lambda: ZoneInfo("Asia/Shanghai"))
    linger_ms: int = 20
    compression: str | None = None  # "lz4"/"zstd"/"snappy" need cramjam; "gzip" is slow
    max_batch_bytes: int = 512 * 1024
    kafka_security: dict[str, Any] = field(default_factory=dict)  # Settings.aiokafka_security()
    progress: bool | None = None  # None = a progress bar when stderr is a TTY
    blocks: bool = False  # daily curves in the block form (whole local days) instead of singles
    collection: CollectionOptions = field(default_factory=CollectionOptions)


class Message(NamedTuple):
    topic: str  # with opts.topic_prefix
    key: bytes
    value: bytes
    outcome: str  # valid, duplicate, or the DLQ kind the pipeline should give it


@dataclass
class SimulationSummary:
    start: str  # first interval start
    end: str  # last interval end
    customers: int
    intervals: int
    messages: dict[str, int] = field(default_factory=lambda: dict.fromkeys(topics.INPUTS, 0))
    outcomes: dict[str, dict[str, int]] = field(
        default_factory=lambda: {t: dict.fromkeys(OUTCOMES, 0) for t in topics.INPUTS}
    )
    elapsed_s: float = 0.0
    stopped_early: bool = False  # the wall-clock limit cut the run short

    def add(self, contract_topic: str, outcome: str) -> None:
        self.messages[contract_topic] += 1
        self.outcomes[contract_topic][outcome] += 1

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class Simulation:
    """Everything drawn for one run; `messages()` replays it as the delivered stream."""

    def __init__(self, opts: SimulationOptions, now: datetime | None = None) -> None:
        self.opts = opts
        tz = opts.tz
        self.intervals = max(1, round(opts.days * 86400 / INTERVAL_S))
        if opts.blocks:
            if opts.replay_uci:
                raise ValueError("the UCI replay is single readings: not with blocks")
            self._whole_days(opts, now)
        elif opts.start is None:
            now_s = to_epoch(now) if now is not None else int(time.time())
            self.end = align_down(now_s)
            self.start = self.end - self.intervals * INTERVAL_S
        else:
            self.start = align_down(to_epoch(opts.start))
            self.end = self.start + self.intervals * INTERVAL_S
        self.pop: Population = make_population(opts.customers, opts.seed)
        self.outages: list[Outage] = (
            plan_outages(self.pop, self.start, self.end, opts.seed, tz) if opts.outages else []
        )
        self.load = LoadModel(
            self.pop,
            opts.seed,
            tz,
            growth_ref=self.start,
            outages=self.outages,
            outage_masks=supply_loss_masks(self.pop, self.outages),
        )
        self.bad = BadConfig(
            bad_share=opts.bad_share,
            duplicate_share=opts.duplicate_share,
            late_share=opts.late_share,
            max_lateness_s=opts.max_lateness_s,
        )
        self.replay: list[dict[str, Any]] = []
        if opts.replay_uci:
            start_dt = datetime.fromtimestamp(self.start, tz)
            self.replay = [
                r
                for r in replay_readings(opts.uci_path, start=start_dt)
                if to_epoch(datetime.fromisoformat(r["ts"])) <= self.end
            ]
        self.billing = (
            plan_billing(
                self.pop,
                self.start,
                self.end,
                opts.seed,
                tz,
                self._period_kwh(),
                opts.billing_history_months,
            )
            if opts.billing
            else []
        )

    def _whole_days(self, opts: SimulationOptions, now: datetime | None) -> None:
        """Blocks cover whole local days: ``days`` of them (at least one), ending at the last
        local midnight (or starting at the local midnight of ``start``'s day)."""
        tz, days = opts.tz, max(1, round(opts.days))
        if opts.start is None:
            now_s = to_epoch(now) if now is not None else int(time.time())
            today = local(now_s, tz).date()
            first = today - timedelta(days=days)
        else:
            first = (opts.start if opts.start.tzinfo else opts.start.replace(tzinfo=tz)).astimezone(tz).date()
        last = first + timedelta(days=days)
        self.start = to_epoch(datetime(first.year, first.month, first.day, tzinfo=tz))
        self.end = to_epoch(datetime(last.year, last.month, last.day, tzinfo=tz))
        self.intervals = (self.end - self.start) // INTERVAL_S

    def _period_kwh(self) -> Callable[[int, int], np.ndarray]:
        """kWh over [t0, t1) per customer: the readings (as rounded on the wire) where the run
        has them, the load model's expectation before them. One numeric pass, no JSON."""
        by_month: dict[int, np.ndarray] = {}
        for s in range(self.start, self.end, INTERVAL_S):
            t = local(s, self.opts.tz)
            m = month_start(t.year, t.month, self.opts.tz)
            kwh = np.round(self.load.step(s).kwh, 4)
            by_month[m] = by_month[m] + kwh if m in by_month else kwh

        def period_kwh(t0: int, t1: int) -> np.ndarray:
            actual = by_month.get(t0, np.zeros(self.pop.n))
            before = self.load.expected_kwh(t0, min(t1, self.start))
            after = self.load.expected_kwh(max(t0, self.end), t1)
            return actual + before + after

        return period_kwh

    @property
    def expected_readings(self) -> int:
        """Reading messages before duplicates (blocks: one per customer and day)."""
        if self.opts.blocks:
            return len(local_midnights(self.start, self.end, self.opts.tz)) * self.pop.n
        return self.intervals * self.pop.n + len(self.replay)

    def _readings(self, s: int, ts: str) -> list[Reading]:
        r = self.load.step(s)
        kwh = np.round(r.kwh, 4).tolist()
        kvarh = np.round(r.kvarh, 4).tolist()
        export = np.round(r.kvarh_export, 4).tolist()
        demand = np.round(r.demand_kw, 3).tolist()
        estimated = r.estimated.tolist()
        power_fail = r.power_fail.tolist()
        out: list[Reading] = []
        for i, cid in enumerate(self.pop.customer_ids):
            kv, ex, dm = kvarh[i], export[i], demand[i]
            quality = ["power_fail"] if power_fail[i] else []
            if estimated[i]:
                quality.append("estimated")
            value = {
                "meter_id": self._meters[i],
                "customer_id": cid,
                "ts": ts,
                "interval_s": INTERVAL_S,
                "kwh": kwh[i],
                "kvarh": None if kv != kv else kv,  # NaN: no register
                "kvarh_export": None if ex != ex else ex,
                "demand_kw": None if dm != dm else dm,
                "quality": quality,
            }
            out.append((self._keys[i], value, orjson.dumps(value)))
        return out

    def messages(self) -> Iterator[Message]:
        opts = self.opts
        prefix = opts.topic_prefix
        t_read, t_bill = prefix + topics.METER_READINGS, prefix + topics.BILLING_EVENTS
        t_out, t_cust = prefix + topics.GRID_OUTAGES, prefix + topics.CUSTOMERS
        self._keys = [c.encode() for c in self.pop.customer_ids]
        self._meters = [self.pop.meter_id(i) for i in range(self.pop.n)]

        profiles = list(self.pop.profiles)
        if self.replay:
            profiles.append(replay_profile())
        for p in profiles:
            yield Message(t_cust, p["customer_id"].encode(), orjson.dumps(p), "valid")
        yield from self._consumption_history()

        side: list[tuple[int, int, str, bytes, bytes]] = []
        for k, (t, v) in enumerate(self.billing):
            side.append((t, k, t_bill, v["customer_id"].encode(), orjson.dumps(v)))
        for o in self.outages:
            for t, v in o.messages(opts.tz, self.end):
                side.append((t, len(side), t_out, o.outage_id.encode(), orjson.dumps(v)))
        side.sort()
        replay = {to_epoch(datetime.fromisoformat(r["ts"])) - INTERVAL_S: r for r in self.replay}
        replay_key = UCI_CUSTOMER_ID.encode()

        if opts.blocks:
            yield from self._block_messages(side, t_read)
            return
        delivery = ReadingDelivery(self.bad, opts.seed)
        j = 0
        for s in range(self.start, self.end, INTERVAL_S):
            end_s = s + INTERVAL_S
            while j < len(side) and side[j][0] <= end_s:
                yield Message(side[j][2], side[j][3], side[j][4], "valid")
                j += 1
            readings = self._readings(s, rfc3339(end_s, opts.tz))
            if s in replay:
                readings.append((replay_key, replay[s], orjson.dumps(replay[s])))
            for key, raw, outcome in delivery.push(s, readings):
                yield Message(t_read, key, raw, outcome)
        for key, raw, outcome in delivery.flush():
            yield Message(t_read, key, raw, outcome)
        for _t, _, topic, key, raw in side[j:]:
            yield Message(topic, key, raw, "valid")

    def _block_messages(
        self, side: list[tuple[int, int, str, bytes, bytes]], t_read: str
    ) -> Iterator[Message]:
        """Every day's blocks in delivery order (``daily_blocks``), the billing and outage
        events merged in by their time."""
        opts = self.opts
        previous: DayCurves | None = None
        j = 0
        for midnight in local_midnights(self.start, self.end, opts.tz):
            curves = day_curves(self.load, midnight, opts.tz)
            blocks = daily_blocks(
                curves, self.pop.customer_ids, self._meters, opts.tz, opts.seed, opts.collection, previous
            )
            for block in blocks:
                while j < len(side) and side[j][0] <= block.sent_at:
                    yield Message(side[j][2], side[j][3], side[j][4], "valid")
                    j += 1
                yield Message(t_read, block.key, block.value, block.outcome)
            previous = curves
        for _t, _, topic, key, raw in side[j:]:
            yield Message(topic, key, raw, "valid")

    def _consumption_history(self) -> Iterator[Message]:
        """The billing system's monthly kWh of the months before the run (the load model's
        expectation, with its growth), so year-over-year figures work from the first reading."""
        opts = self.opts
        topic = opts.topic_prefix + topics.CONSUMPTION_HISTORY
        first = local(self.start, opts.tz)
        for k in range(opts.consumption_history_months, 0, -1):
            y, m = add_months(first.year, first.month, -k)
            ny, nm = add_months(y, m, 1)
            kwh = np.round(
                self.load.expected_kwh(month_start(y, m, opts.tz), month_start(ny, nm, opts.tz)), 1
            )
            for i, cid in enumerate(self.pop.customer_ids):
                value = {
                    "customer_id": cid,
                    "period": f"{y:04d}-{m:02d}",
                    "kwh": float(kwh[i]),
                    "source": "simulated billing history",
                }
                yield Message(topic, self._keys[i], orjson.dumps(value), "valid")

    def new_summary(self) -> SimulationSummary:
        return SimulationSummary(
            start=rfc3339(self.start, self.opts.tz),
            end=rfc3339(self.end, self.opts.tz),
            customers=self.pop.n + (1 if self.replay else 0),
            intervals=self.intervals,
        )


def generate(opts: SimulationOptions) -> Iterator[Message]:
    """The simulated stream without Kafka: (topic, key, value bytes, expected outcome)."""
    return Simulation(opts).messages()


def summarize(sim: Simulation, messages: Iterator[Message] | None = None) -> SimulationSummary:
    """Counts of a whole generated stream (what run_simulation returns, without Kafka)."""
    summary = sim.new_summary()
    n = len(sim.opts.topic_prefix)
    for m in messages if messages is not None else sim.messages():
        summary.add(m.topic[n:], m.outcome)
    return summary


class _BatchingProducer:
    """Fills one aiokafka BatchBuilder per topic-partition and submits it when full or older than
    linger: far less per-message overhead than `send` (whose futures would also pile up).
    Partitioning is the default murmur2 of the key, as `send` would choose."""

    def __init__(self, producer: Any, linger_s: float) -> None:
        from aiokafka.partitioner import DefaultPartitioner

        self.producer = producer
        self.linger_s = linger_s
        self._partitioner = DefaultPartitioner()
        self._partitions: dict[str, list[int]] = {}
        self._pcache: dict[tuple[str, bytes], int] = {}
        self._batches: dict[tuple[str, int], Any] = {}
        self._futures: list[asyncio.Future[Any]] = []
        self._last_flush = time.monotonic()

    async def send(self, topic: str, key: bytes, value: bytes) -> None:
        part = self._pcache.get((topic, key))
        if part is None:
            if topic not in self._partitions:
                self._partitions[topic] = sorted(await self.producer.partitions_for(topic))
            all_p = self._partitions[topic]
            part = self._partitioner(key, all_p, all_p)
            self._pcache[(topic, key)] = part
        tp = (topic, part)
        batch = self._batches.get(tp)
        if batch is None:
            batch = self._batches[tp] = self.producer.create_batch()
        if batch.append(key=key, value=value, timestamp=None) is None:
            await self._submit(tp)
            batch = self._batches[tp] = self.producer.create_batch()
            if batch.append(key=key, value=value, timestamp=None) is None:
                raise ValueError(f"a {len(value)}-byte message does not fit an empty batch")
        if time.monotonic() - self._last_flush > self.linger_s:
            await self.flush_batches()

    async def _submit(self, tp: tuple[str, int]) -> None:
        batch = self._batches.pop(tp)
        if batch.record_count():
            fut = await self.producer.send_batch(batch, tp[0], partition=tp[1])
            self._futures.append(fut)
        if len(self._futures) > 256:  # surface delivery errors early, keep the list short
            done = [f for f in self._futures if f.done()]
            for f in done:
                f.result()
            self._futures = [f for f in self._futures if not f.done()]

    async def flush_batches(self) -> None:
        for tp in list(self._batches):
            await self._submit(tp)
        self._last_flush = time.monotonic()

    async def close(self) -> None:
        await self.flush_batches()
        await self.producer.flush()
        for f in self._futures:
            await f  # raises a delivery error
        self._futures.clear()


async def run_simulation(opts: SimulationOptions) -> SimulationSummary:
    """Produce the simulated stream to Kafka (topics from schemas/topics.py, prefixed)."""
    from aiokafka import AIOKafkaProducer
    from aiokafka.codec import has_lz4, has_snappy, has_zstd

    available = {"lz4": has_lz4(), "zstd": has_zstd(), "snappy": has_snappy(), "gzip": True}
    if opts.compression is not None and not available.get(opts.compression, False):
        raise ValueError(f"compression {opts.compression!r} needs the cramjam package (pip install cramjam)")
    sim = Simulation(opts)
    summary = sim.new_summary()
    producer = AIOKafkaProducer(
        bootstrap_servers=opts.bootstrap,
        acks="all",
        enable_idempotence=True,
        linger_ms=opts.linger_ms,
        compression_type=opts.compression,
        max_batch_size=opts.max_batch_bytes,
        **opts.kafka_security,
    )
    show = sys.stderr.isatty() if opts.progress is None else opts.progress
    from tqdm import tqdm

    bar = tqdm(total=sim.expected_readings, unit="reading", disable=not show, mininterval=0.5)
    prefix_len = len(opts.topic_prefix)
    t_read = opts.topic_prefix + topics.METER_READINGS
    t0 = time.monotonic()
    readings = 0
    await producer.start()
    try:
        out = _BatchingProducer(producer, opts.linger_ms / 1000)
        for m in sim.messages():
            await out.send(m.topic, m.key, m.value)
            summary.add(m.topic[prefix_len:], m.outcome)
            if m.topic != t_read:
                continue
            readings += 1
            if readings % 1000 == 0:
                bar.update(1000)
                elapsed = time.monotonic() - t0
                if opts.seconds is not None and elapsed >= opts.seconds:
                    summary.stopped_early = True
                    break
            if opts.rate > 0:
                ahead = readings / opts.rate - (time.monotonic() - t0)
                if ahead > 0.005:
                    await out.flush_batches()
                    await asyncio.sleep(ahead)
            elif readings % 5000 == 0:
                await asyncio.sleep(0)  # let the sender task run
        await out.close()
    finally:
        await producer.stop()
        bar.close()
    summary.elapsed_s = round(time.monotonic() - t0, 3)
    return summary
