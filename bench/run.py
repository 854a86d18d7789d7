"""`make bench`: gridpulse against its ceiling and its peers, in one run on one broker.

    python -m bench.run [--customers 100000] [--intervals 2] [--with quixcore,blocks,day]
                        [--day-meters 1000000] [--skip naive,quix,...]

Every figure is measured in this run, on this machine and broker (local stack, or any Kafka via
GRIDPULSE_KAFKA_BOOTSTRAP and the SASL/SSL settings; see bench/RESULTS.md "Bigger cluster").
Beside every rate: CPU microseconds per reading of the consumer's process(es) over the same
span (psutil: user + system, children included; bench/proc.py).

throughput  the simulated head-end publishes ``--customers`` x ``--intervals`` readings (time
            order: every customer's interval, then the next — how a head-end sends them) to a
            fresh ``meter.readings``; then, one after the other, each reads it from the start:
            raw       a plain aiokafka consumer that only JSON-decodes (the ceiling);
            floor     a Faust agent that only decodes, batched like ours (bench/faust_floor.py);
            naive     a straightforward per-message Faust agent doing the same statistics
                      (bench/naive_faust.py);
            quix      daily load factor and PF in Quix Streams (bench/quix_peer.py);
            quixcore  Quix Streams running gridpulse's metering core: the same apply and the
                      same stats document per message, its own RocksDB state
                      (bench/quix_core_peer.py; --with quixcore);
            pipeline  the `gridpulse worker`: decode, validation, dedup/lateness, per-customer
                      state (RocksDB + changelog), stats.customer, Redis, rescoring.
blocks      (--with blocks) the same population as daily curves: one 96-interval block per
            meter (bench/blocks.py) on a fresh topic, through the pipeline, the ceiling (decode
            only), the naive agent, Quix and Quix with our core (each per block message);
day         (--with day) a utility's day: ``--day-meters`` meters' daily curves through one
            worker: wall time, CPU per reading, peak RSS, RocksDB on disk;
areas       (--with areas) the inspection stage (issue 13, bench/area_bench.py): its cost per
            reading (the same daily curves through a worker whose stage has nothing to do and
            one whose stage works), and a theft's data days and seconds to its alert;
memory      the worker's resident memory with every customer's state (minus an idle worker's)
            and the state bytes per customer (latest changelog record; RocksDB on disk);
recovery    the worker holding every customer's state is SIGKILLed and restarted; time from the
            restart until it has applied new readings: with its RocksDB kept (local) and wiped
            (rebuilt from the changelog);
latency     readings produced at ``--latency-rate`` per second to the running worker; per reading,
            its customer's next stats.customer minus its send time: p50/p95/p99;
outage      bench/outage_bench.py: outage start on a 5,000-customer feeder -> its alert;
scaling     two workers in one consumer group versus one, on a topic of ``--scale-partitions``.

Writes bench/results.json and bench/out/<run>/report.md, prints the tables. Compare ratios, not
absolute rates across machines or runs.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import shutil
import socket
import sys
import time
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import orjson
import psutil

from bench.blocks import DailyCurves, block_intervals, checked_block, day_start
from bench.machine import machine_facts
from bench.proc import FAUST_WORKER, Rate, Stopwatch, process_cpu_s, run_for_rate
from gridpulse.settings import Settings, get_settings
from gridpulse.workerproc import ROOT, WorkerProcess, worker_env
from metering.load import LoadState
from schemas import topics as contract
from simulator.clock import INTERVAL_S, align_down
from simulator.run import SimulationOptions, generate
from streams.kafka import (
    create_contract_topics,
    delete_topics,
    delete_topics_with_prefix,
    make_consumer,
    make_producer,
    read_all,
)

OUT = ROOT / "bench" / "out"
PHASES = ("raw", "floor", "naive", "quix", "pipeline", "recovery", "latency", "outage", "scaling")
# issue 12's phases, run when named in --with (`make bench` names them all): a run from before
# them, e.g. bench/cpu_breakdown.py's with its --skip list, does not grow by an hour
EXTRA_PHASES = ("quixcore", "blocks", "day", "areas")

Pairs = list[tuple[bytes, bytes]]


# ---------------------------------------------------------------------- data


async def publish(settings: Settings, topic: str, messages: Iterable[tuple[bytes, bytes]]) -> float:
    producer = make_producer(settings, linger_ms=50, max_batch_size=512 * 1024)
    await producer.start()
    t0 = time.perf_counter()
    try:
        futures = []
        for k, v in messages:
            futures.append(await producer.send(settings.topic(topic), key=k, value=v))
            if len(futures) >= 100_000:  # a generator of a million blocks: keep the acks bounded
                await asyncio.gather(*futures)
                futures.clear()
        await asyncio.gather(*futures)
    finally:
        await producer.stop()
    return time.perf_counter() - t0


def population(settings: Settings, customers: int, intervals: int, seed: int = 3) -> tuple[Pairs, Pairs]:
    """(readings, profiles) of a simulated population, in time order, ending far enough in the
    past that later probes (one interval further each) are not in the future."""
    end = align_down(int(time.time())) - 400 * INTERVAL_S
    opts = SimulationOptions(
        topic_prefix=settings.topic_prefix,
        customers=customers,
        days=intervals / 96,
        start=datetime.fromtimestamp(end - intervals * INTERVAL_S, UTC),
        bad_share=0.0,
        consumption_history_months=0,
        duplicate_share=0.0,
        late_share=0.0,
        billing=False,
        outages=False,
        seed=seed,
    )
    readings: Pairs = []
    profiles: Pairs = []
    for m in generate(opts):
        if m.topic == settings.topic(contract.METER_READINGS):
            readings.append((m.key, m.value))
        elif m.topic == settings.topic(contract.CUSTOMERS):
            profiles.append((m.key, m.value))
    return readings, profiles


class Probes:
    """New readings for existing customers: each customer's last reading moved on by one
    interval per step (so they are applied, not duplicates)."""

    def __init__(self, readings: Pairs) -> None:
        last: dict[bytes, dict[str, Any]] = {}
        for key, value in readings:
            last[key] = orjson.loads(value)
        self.last = last
        self.keys = sorted(last)
        self.step = 0

    def next(self, n: int) -> Pairs:
        self.step += 1
        out = []
        for key in self.keys[:n]:
            doc = dict(self.last[key])
            ts = datetime.fromisoformat(doc["ts"]) + timedelta(seconds=INTERVAL_S * self.step)
            doc["ts"] = ts.isoformat()
            out.append((key, orjson.dumps(doc)))
        return out


# ---------------------------------------------------------------------- baselines


async def raw_consumer_rps(settings: Settings, expected: int, *, blocks: bool = False) -> Rate:
    """The ceiling: read and JSON-decode every value, nothing else; ``expected`` messages
    (blocks: decoded and their intervals counted). CPU: this process over the same span."""
    from aiokafka import TopicPartition

    consumer = make_consumer(
        settings, max_partition_fetch_bytes=4 * 1024 * 1024, fetch_max_bytes=64 * 1024**2
    )
    await consumer.start()
    try:
        await consumer._client.force_metadata_update()
        topic = settings.topic(contract.METER_READINGS)
        tps = [TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic) or ())]
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        n = readings = 0
        kwh = 0.0
        clock = Stopwatch()
        clock.start()
        while n < expected:
            for records in (await consumer.getmany(timeout_ms=1000, max_records=10_000)).values():
                for rec in records:
                    if blocks:
                        readings += block_intervals(rec.value)
                    else:
                        kwh += orjson.loads(rec.value)["kwh"]
                        readings += 1
                    n += 1
        return clock.rate(readings)
    finally:
        await consumer.stop()


async def faust_floor_rps(settings: Settings, expected: int, out_dir: Path) -> Rate:
    """bench/faust_floor.py in its own process: Faust's per-event machinery and nothing else."""
    out_dir.mkdir(parents=True, exist_ok=True)  # noqa: ASYNC240 (a benchmark's own files, tiny)
    out = out_dir / "floor.txt"
    out.unlink(missing_ok=True)
    app_id = f"{settings.app_id}-floor"
    env = worker_env(
        settings,
        GP_FLOOR_APP=app_id,
        GP_FLOOR_TOPIC=settings.topic(contract.METER_READINGS),
        GP_FLOOR_N=str(expected),
        GP_FLOOR_OUT=str(out),
        GP_FLOOR_DATA=str(out_dir / "floor-data"),
    )
    try:
        return await run_for_rate(["bench.faust_floor", *FAUST_WORKER], env, out_dir / "floor.log", out, 1800)
    finally:
        await delete_topics(settings, [f"{app_id}-__assignor-__leader"])


# ---------------------------------------------------------------------- the worker


def rss_bytes(worker: WorkerProcess) -> int:
    assert worker.proc is not None
    for line in Path(f"/proc/{worker.proc.pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError("no VmRSS")


def peak_rss_bytes(worker: WorkerProcess) -> int:
    """The worker's peak resident memory so far (VmHWM)."""
    assert worker.proc is not None
    for line in Path(f"/proc/{worker.proc.pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError("no VmHWM")


def cpu_seconds(worker: WorkerProcess) -> float:
    """User + system CPU time the worker process (and any child of it) has used."""
    assert worker.proc is not None
    return process_cpu_s(psutil.Process(worker.proc.pid))


async def wait_idle(
    worker: WorkerProcess, below: float = 0.15, for_s: float = 5.0, within_s: float = 900
) -> float:
    """Wait until the worker has used less than ``below`` of a core over ``for_s`` seconds: it
    has caught up with everything (readings, its views, the scoring pass and its Redis writes).
    Returns the seconds waited."""
    t0 = time.monotonic()
    while time.monotonic() - t0 < within_s:
        before = cpu_seconds(worker)
        await asyncio.sleep(for_s)
        if (cpu_seconds(worker) - before) / for_s < below:
            return time.monotonic() - t0
    raise TimeoutError(f"the worker was still busy after {within_s:.0f} s")


class Window(NamedTuple):
    """The poll that first saw something counted (``n_first`` of them) to the one that saw the
    last (perf_counter seconds; ``n`` counted in all), and the CPU seconds the workers used in
    between. The rate counts what was applied in that span: ``n - n_first``."""

    t_first: float
    t_last: float
    n_first: int
    n: int
    cpu_s: float

    def rate(self) -> Rate:
        return Rate(readings=self.n - self.n_first, seconds=self.t_last - self.t_first, cpu_s=self.cpu_s)


class DeadLettered(RuntimeError):
    """The workers dead-letter the bench's (valid) messages: they cannot use them."""


async def counted_and_dead_lettered(workers: Sequence[WorkerProcess], name: str) -> tuple[int, int]:
    """(the workers' counter ``name``, their dead-lettered meter.readings messages): one
    request per worker."""
    total = bad = 0
    for w in workers:
        c = await w.counters()
        total += int(c["counters"].get(name, 0))
        bad += sum(c.get("dead_letters", {}).get(contract.METER_READINGS, {}).values())
    return total, bad


async def wait_applied(
    workers: Sequence[WorkerProcess],
    expected: int,
    within_s: float,
    poll_s: float = 0.1,
    counter: str = "readings_applied",
    dead_letter_limit: int | None = None,
) -> Window:
    """Poll until the workers together count ``expected`` (readings applied). With
    ``dead_letter_limit``, fail as soon as more than that many meter.readings messages went to
    the DLQ (a worker that cannot use what it is given)."""
    t_first: float | None = None
    deadline = time.monotonic() + within_s
    n = last_n = n_first = 0
    t_change = time.perf_counter()
    cpu_first = cpu_change = 0.0

    def cpu() -> float:
        return sum(cpu_seconds(w) for w in workers)

    while time.monotonic() < deadline:
        for w in workers:
            if not w.running:
                raise RuntimeError(f"worker exited:\n{w.log_tail()}")
        try:
            n, bad = await counted_and_dead_lettered(workers, counter)
            if dead_letter_limit is not None and bad > dead_letter_limit:
                raise DeadLettered(f"the workers dead-lettered {bad:,} meter.readings messages")
        except OSError:  # the web server is not up yet
            n = 0
        now = time.perf_counter()
        if t_first is None and n > 0:
            t_first, n_first, cpu_first = now, n, cpu()
        if n >= expected:
            assert t_first is not None
            return Window(t_first, now, n_first, n, cpu() - cpu_first)
        if n != last_n:
            last_n, t_change, cpu_change = n, now, cpu()
        elif t_first is not None and n >= 0.999 * expected and now - t_change > 20:
            # a reading or two rejected by validation (e.g. demand above 1.5 x contract kVA goes
            # to the DLQ): done at the last change, not after the wait
            return Window(t_first, t_change, n_first, n, cpu_change - cpu_first)
        await asyncio.sleep(poll_s)
    raise TimeoutError(f"workers counted {n:,} of {expected:,} {counter} within {within_s:.0f} s")


def worker_settings(settings: Settings, name: str, port_offset: int) -> Settings:
    """Another worker of the same app (consumer group): its own state directory and port."""
    return settings.model_copy(
        update={
            "data_dir": str(Path(settings.data_dir) / name),
            "web_port": settings.web_port + port_offset,
        }
    )


async def idle_rss(settings: Settings, out_dir: Path) -> int:
    """A worker with nothing to do (its own empty topics): the fixed part of the memory."""
    idle = settings.model_copy(
        update={
            "topic_prefix": settings.topic_prefix + "idle.",
            "app_id": settings.app_id + "-idle",
            "data_dir": str(Path(settings.data_dir) / "idle"),
            "web_port": settings.web_port + 40,
        }
    )
    await create_contract_topics(idle)
    w = WorkerProcess(idle, out_dir / "idle.log").start()
    try:
        await w.wait_ready(within_s=180)
        await asyncio.sleep(5.0)
        return rss_bytes(w)
    finally:
        w.stop()
        await delete_topics(idle, [idle.topic(t.name) for t in contract.CONTRACT_TOPICS])


async def state_size(settings: Settings) -> dict[str, float]:
    changelog = f"{settings.app_id}-load-state-changelog"
    latest: dict[bytes, int] = {}
    for rec in await read_all(settings, changelog, within_s=900):
        if rec.key is not None and rec.value is not None:
            latest[rec.key] = len(rec.value)
    disk = sum(f.stat().st_size for f in Path(settings.data_dir).rglob("*") if f.is_file())  # noqa: ASYNC240 (a benchmark's own files)
    n = max(len(latest), 1)
    return {
        "customers_in_state": len(latest),
        "state_bytes_per_customer": sum(latest.values()) / n,
        "rocksdb_disk_bytes_per_customer": disk / n,
    }


def full_state_bytes() -> int:
    """One customer after 26 months of consumption and then 35 days of 15-minute readings (one
    meter): what the state grows to in production (the bench's population is younger)."""
    from zoneinfo import ZoneInfo

    tz = ZoneInfo("Asia/Shanghai")
    state = LoadState(tz=tz)
    rng = np.random.default_rng(1)
    first = datetime(2024, 1, 15, tzinfo=tz)
    for m in range(26):  # one reading per month, so every month of the history has a row
        day = datetime(
            first.year + (first.month - 1 + m) // 12, (first.month - 1 + m) % 12 + 1, 15, tzinfo=tz
        )
        state.apply([{"meter_id": "m1", "ts": int(day.timestamp()), "interval_s": INTERVAL_S, "kwh": 10.0}])
    start = int(datetime(2026, 1, 28, tzinfo=tz).timestamp())
    for k in range(35 * 96):
        kwh, kvarh = (float(x) for x in rng.uniform(0, 5, 2))
        end = start + (k + 1) * INTERVAL_S
        state.apply([{"meter_id": "m1", "ts": end, "interval_s": INTERVAL_S, "kwh": kwh, "kvarh": kvarh}])
    return len(state.to_bytes())


# ---------------------------------------------------------------------- phases


async def pipeline_phase(
    settings: Settings,
    messages: Iterable[tuple[bytes, bytes]],
    expected: int,
    customers: int,
    out_dir: Path,
    name: str = "worker",
) -> tuple[WorkerProcess, Rate, float, int]:
    """The worker starts with the customer profiles in place (as in production: profiles long
    before readings) and has applied them; then the messages (single readings or blocks:
    ``expected`` readings in all) are published and it reads them. Returns the worker
    (running), its rate and CPU time, the publishing time and its RSS."""
    worker = WorkerProcess(settings, out_dir / f"{name}.log").start()
    try:
        t0 = time.perf_counter()
        await worker.wait_ready(within_s=300)
        applied = (await wait_applied([worker], customers, within_s=3600, counter="profiles_applied")).rate()
        print(
            f"{name}: ready and {customers:,} profiles applied in {time.perf_counter() - t0:,.1f} s "
            f"({applied.rps:,.0f} profiles/s, {applied.cpu_us_per_reading:.1f} CPU µs a profile, "
            "first to last applied)"
        )
        pub_s = await publish(settings, contract.METER_READINGS, messages)
        # the bench's data is valid: a worker dead-lettering more than a few readings cannot
        # use them (e.g. a worker without the block form), and the phase fails at once
        window = await wait_applied(
            [worker], expected, within_s=7200, dead_letter_limit=max(10, expected // 1000)
        )
    except BaseException:
        worker.stop()
        raise
    await asyncio.sleep(3.0)  # let the last batch's stats and the scoring catch up
    return worker, window.rate(), pub_s, rss_bytes(worker)


async def recovery_phase(
    settings: Settings,
    worker: WorkerProcess,
    probes: Probes,
    out_dir: Path,
    *,
    wipe: bool,
    n_probe: int = 500,
) -> tuple[WorkerProcess, float]:
    """SIGKILL the worker, restart it (optionally without its RocksDB), send new readings at
    once: seconds from the restart until all of them are applied."""
    worker.kill()
    if wipe:
        shutil.rmtree(settings.data_dir, ignore_errors=True)
    fresh = WorkerProcess(settings, out_dir / f"worker-{'wiped' if wipe else 'local'}.log")
    t0 = time.perf_counter()
    fresh.start()
    batch = probes.next(n_probe)  # fewer with fewer customers
    await publish(settings, contract.METER_READINGS, batch)
    window = await wait_applied([fresh], len(batch), within_s=1800, poll_s=0.05)
    return fresh, window.t_last - t0


async def latency_phase(settings: Settings, probes: Probes, rate: float, seconds: float) -> dict[str, float]:
    """Readings at ``rate``/s for ``seconds``, each for a different customer; latency = the
    customer's next stats.customer arrival minus the reading's send time."""
    n = int(rate * seconds)
    batch = probes.next(n)
    consumer = make_consumer(settings, settings.topic(contract.STATS_CUSTOMER), group_id=None)
    consumer._auto_offset_reset = "latest"  # only what is published from now on
    await consumer.start()
    sent: dict[bytes, float] = {}
    got: dict[bytes, float] = {}

    async def read() -> None:
        while len(got) < n:
            for records in (await consumer.getmany(timeout_ms=200)).values():
                now = time.perf_counter()
                for rec in records:
                    if rec.key in sent and rec.key not in got:
                        got[rec.key] = now

    producer = make_producer(settings, linger_ms=0)
    await producer.start()
    reader = asyncio.create_task(read())
    try:
        await asyncio.sleep(2.0)  # the reader's partitions assigned, at the end of the topic
        t0 = time.perf_counter()
        for i, (key, value) in enumerate(batch):
            due = t0 + i / rate
            if (wait := due - time.perf_counter()) > 0:
                await asyncio.sleep(wait)
            sent[key] = time.perf_counter()
            await producer.send(settings.topic(contract.METER_READINGS), key=key, value=value)
        await asyncio.wait_for(reader, timeout=120)
    finally:
        reader.cancel()
        await producer.stop()
        await consumer.stop()
    lat = np.array([got[k] - sent[k] for k in sent])
    return {
        "stats_latency_load_rps": rate,
        "stats_latency_readings": len(lat),
        "stats_latency_p50_s": round(float(np.percentile(lat, 50)), 3),
        "stats_latency_p95_s": round(float(np.percentile(lat, 95)), 3),
        "stats_latency_p99_s": round(float(np.percentile(lat, 99)), 3),
        "stats_latency_max_s": round(float(lat.max()), 3),
    }


async def scaling_phase(base: Settings, args: argparse.Namespace, out_dir: Path) -> dict[str, Any]:
    """One worker, then two in one group, each on topics of its own: the workers start first
    and settle their assignment, then the same readings (same seed) are published; rate from
    the first reading applied to the last (publishing overlaps the first seconds)."""
    rates = {}
    n_readings = 0
    for n_workers in (1, 2):
        settings = base.model_copy(
            update={
                "topic_prefix": f"{base.topic_prefix}scale{n_workers}.",
                "app_id": f"{base.app_id}-scale{n_workers}",
                "topic_partitions": args.scale_partitions,
            }
        )
        await create_contract_topics(settings)
        readings, profiles = population(settings, args.scale_customers, args.scale_intervals, seed=11)
        n_readings = len(readings)
        await publish(settings, contract.CUSTOMERS, profiles)
        workers = [
            WorkerProcess(
                worker_settings(settings, f"scale{n_workers}-w{i}", 20 + 2 * n_workers + i),
                out_dir / f"scale{n_workers}-{i}.log",
            ).start()
            for i in range(n_workers)
        ]
        try:
            for _ in range(2):  # ready, and still ready once the last joiner's rebalance is over
                for w in workers:
                    await w.wait_ready(within_s=300)
                await asyncio.sleep(settings.kafka_session_timeout_s)
            await wait_applied(workers, len(profiles), within_s=1800, counter="profiles_applied")
            await publish(settings, contract.METER_READINGS, readings)
            rates[n_workers] = (await wait_applied(workers, len(readings), within_s=7200)).rate().rps
        finally:
            for w in workers:
                w.stop()
            await delete_topics(settings, [settings.topic(t.name) for t in contract.CONTRACT_TOPICS])
        print(f"  scaling: {n_workers} worker(s): {rates[n_workers]:,.0f} readings/s")
    return {
        "scaling_partitions": args.scale_partitions,
        "scaling_readings": n_readings,
        "scaling_1_worker_rps": round(rates[1]),
        "scaling_2_workers_rps": round(rates[2]),
        "scaling_2_vs_1": round(rates[2] / rates[1], 2),
    }


# ---------------------------------------------------------------------- the consumers


# (key in results.json without "_rps", label): the consumers of both scenarios, in table order
CONSUMERS = (
    ("raw_consumer", "raw aiokafka consumer, decode only (ceiling)"),
    ("faust_floor", "Faust agent, decode only (Faust floor)"),
    ("naive_faust", "naive per-message Faust agent, same statistics"),
    ("quix", "Quix Streams, daily load factor and PF"),
    ("quix_core", "Quix Streams running gridpulse's metering core"),
    ("pipeline", "**gridpulse pipeline**"),
)


def record(r: dict[str, Any], key: str, rate: Rate, label: str) -> None:
    """A consumer's rate and CPU per reading into the results (``<key>_rps``,
    ``<key>_cpu_us_per_reading``), printed as it comes."""
    r[f"{key}_rps"] = round(rate.rps)
    r[f"{key}_cpu_us_per_reading"] = round(rate.cpu_us_per_reading, 1)
    print(f"{label:<50}{rate.rps:>12,.0f} readings/s {rate.cpu_us_per_reading:>9,.1f} CPU µs/reading")


async def baselines(
    settings: Settings, r: dict[str, Any], n: int, out_dir: Path, skip: set[str], *, blocks: bool
) -> None:
    """The ceiling and the peers, one after the other, each over the whole topic from the start
    (``n`` messages: readings, or blocks)."""
    from bench import quix_core_peer
    from bench.naive_faust import naive_faust_rps
    from bench.quix_peer import quix_rps

    key = "block_" if blocks else ""
    label = "blocks: " if blocks else ""
    if "raw" not in skip:
        rate = await raw_consumer_rps(settings, n, blocks=blocks)
        record(r, f"{key}raw_consumer", rate, f"{label}raw aiokafka consumer (decode only)")
    if "floor" not in skip and not blocks:
        record(r, "faust_floor", await faust_floor_rps(settings, n, out_dir), "Faust agent that only decodes")
    if "naive" not in skip:
        rate = await naive_faust_rps(settings, n, out_dir, blocks=blocks, timeout_s=7200)
        record(r, f"{key}naive_faust", rate, f"{label}naive per-message Faust agent")
    if "quix" not in skip:
        record(
            r, f"{key}quix", await quix_rps(settings, n, out_dir, blocks=blocks), f"{label}Quix daily LF/PF"
        )
    if "quixcore" not in skip:
        rate = await quix_rps(
            settings,
            n,
            out_dir,
            blocks=blocks,
            module="bench.quix_core_peer",
            output=quix_core_peer.OUTPUT_TOPIC,
        )
        record(r, f"{key}quix_core", rate, f"{label}Quix with gridpulse's metering core")


def scenario_settings(settings: Settings, name: str, out_dir: Path) -> Settings:
    """The run's settings for another scenario: topics under ``<run>.<name>.``, its own app
    (consumer group, changelogs) and state directory; deleted with the run's."""
    return settings.model_copy(
        update={
            "topic_prefix": f"{settings.topic_prefix}{name}.",
            "app_id": f"{settings.app_id}-{name}",
            "data_dir": str(out_dir / f"faust-{name}"),
        }
    )


def disk_bytes(path: str | Path) -> int:
    return sum(f.stat().st_size for f in Path(path).rglob("*") if f.is_file())


# ---------------------------------------------------------------------- the block scenario


async def block_scenario(
    settings: Settings, args: argparse.Namespace, out_dir: Path, r: dict[str, Any], skip: set[str]
) -> None:
    """The same population as daily curves: one 96-interval block per meter (bench/blocks.py),
    customer after customer, on a fresh ``meter.readings``; the pipeline, then the ceiling and
    the peers, each per block message."""
    bs = scenario_settings(settings, "blk", out_dir)
    await create_contract_topics(bs)
    t0 = time.perf_counter()
    curves = DailyCurves(args.customers, day_start(2, bs.tz, datetime.now(UTC)), bs.tz)
    n_blocks, n_readings = curves.pop.n, curves.readings
    r["block_blocks"], r["block_readings"] = n_blocks, n_readings
    print(
        f"blocks: drew {n_blocks:,} daily curves ({n_readings:,} readings) "
        f"in {time.perf_counter() - t0:.1f} s"
    )
    await publish(bs, contract.CUSTOMERS, curves.profiles())
    published = False
    if "pipeline" not in skip:
        try:
            worker, rate, pub_s, _ = await pipeline_phase(
                bs, curves.blocks(), n_readings, n_blocks, out_dir, name="worker-blocks"
            )
        except DeadLettered as exc:  # e.g. a worker without the block form: the peers still run
            r["block_pipeline_error"] = str(exc).splitlines()[0]
            print(f"blocks: gridpulse pipeline NOT MEASURED: {r['block_pipeline_error']}")
            await asyncio.sleep(1.0)
        else:
            worker.stop()
            print(
                f"blocks: published in {pub_s:.1f} s ({n_blocks / pub_s:,.0f} blocks/s), "
                "while the worker read them"
            )
            record(r, "block_pipeline", rate, "blocks: gridpulse pipeline")
        published = True
    if not published:
        await publish(bs, contract.METER_READINGS, curves.blocks())
    del curves
    await baselines(bs, r, n_blocks, out_dir, skip, blocks=True)


# ---------------------------------------------------------------------- a utility's day


def day_state_bytes(curves: DailyCurves, settings: Settings, sample: int = 1000) -> int:
    """The mean state record (LoadState bytes, what the table and its changelog hold) of the
    first ``sample`` meters after their day's curve."""
    sizes = []
    now = datetime.now(UTC)
    for _, (key, value) in zip(range(sample), curves.blocks(), strict=False):
        state = LoadState(tz=settings.tz, lateness_s=settings.lateness_s)
        checked_block(key, value, now=now, future_tolerance_s=settings.future_tolerance_s).apply(state)
        sizes.append(len(state.to_bytes()))
    return round(sum(sizes) / max(len(sizes), 1))


async def utility_day(settings: Settings, args: argparse.Namespace, out_dir: Path, r: dict[str, Any]) -> None:
    """``--day-meters`` meters' daily curves (one block each) through one worker that holds
    their profiles: wall time from its first applied reading to its last, CPU per reading,
    peak RSS, the state on disk and a meter's state record after its day."""
    ds = scenario_settings(settings, "day", out_dir)
    await create_contract_topics(ds)
    t0 = time.perf_counter()
    curves = DailyCurves(args.day_meters, day_start(2, ds.tz, datetime.now(UTC)), ds.tz)
    r["utility_day_meters"], r["utility_day_readings"] = curves.pop.n, curves.readings
    print(f"day: drew {curves.pop.n:,} daily curves in {time.perf_counter() - t0:.1f} s")
    r["utility_day_state_bytes_per_meter"] = day_state_bytes(curves, ds)
    await publish(ds, contract.CUSTOMERS, curves.profiles())
    t_start = time.perf_counter()
    worker, rate, pub_s, rss = await pipeline_phase(
        ds, curves.blocks(), curves.readings, curves.pop.n, out_dir, name="worker-day"
    )
    try:
        r["utility_day_s"] = round(rate.seconds, 1)
        r["utility_day_publish_s"] = round(pub_s, 1)
        r["utility_day_rps"] = round(rate.rps)
        r["utility_day_cpu_us_per_reading"] = round(rate.cpu_us_per_reading, 1)
        r["utility_day_peak_rss_bytes"] = peak_rss_bytes(worker)
        r["utility_day_rss_bytes"] = rss
        r["utility_day_rocksdb_disk_bytes"] = disk_bytes(ds.data_dir)
        r["utility_day_rocksdb_disk_bytes_per_meter"] = round(
            r["utility_day_rocksdb_disk_bytes"] / curves.pop.n
        )
    finally:
        worker.stop()
    print(
        f"day: {curves.pop.n:,} meters, {curves.readings:,} readings: {rate.seconds:,.1f} s "
        f"({rate.rps:,.0f} readings/s, {rate.cpu_us_per_reading:.1f} CPU µs/reading, peak RSS "
        f"{r['utility_day_peak_rss_bytes'] / 1e6:,.0f} MB; {time.perf_counter() - t_start:,.0f} s "
        "from the worker's start)"
    )


# ---------------------------------------------------------------------- the run


def port_free(port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def free_port_base(first: int) -> int:
    """The run's workers' web ports: a block of 42 (+0..+41, the workers of every phase) at
    ``first`` plus a random multiple of 100 whose ports are free now, so that two runs on one
    machine (started before either's workers bind) do not read each other's counters."""
    offsets = list(range(0, 3000, 100))
    random.shuffle(offsets)
    for off in offsets:
        if all(port_free(first + off + k) for k in range(42)):
            return first + off
    raise RuntimeError(f"no free block of 42 ports from {first}")


async def delete_run_topics(settings: Settings, run: str) -> None:
    """Every topic of the run: contract topics under its prefix, and the changelogs and
    assignor topics of its apps (all named after the run's app id)."""
    await delete_topics_with_prefix(settings, f"{run}.", f"{settings.app_id}-")


async def delete_run_redis_keys(settings: Settings, run: str) -> int:
    """The Redis keys the run's workers wrote (every key under the run's prefix: the customers'
    snapshots, scores, the value matrix): a 1,000,000-meter day leaves ~3 GB behind otherwise."""
    import redis.asyncio as aioredis

    client = aioredis.from_url(settings.redis_url)
    deleted = 0
    try:
        batch: list[bytes] = []
        async for key in client.scan_iter(match=f"{run}.*", count=10_000):
            batch.append(key)
            if len(batch) >= 10_000:
                deleted += await client.unlink(*batch)
                batch.clear()
        if batch:
            deleted += await client.unlink(*batch)
    finally:
        await client.aclose()
    return deleted


def run_settings(letter: str, partitions: int) -> tuple[str, Path, Settings]:
    """A run's name (``letter`` + epoch seconds), its output directory and its settings: its own
    topic prefix, app id, state directory and block of web ports, on ``partitions``."""
    base = get_settings()
    run = f"{letter}{int(time.time())}"
    out_dir = OUT / run
    settings = base.model_copy(
        update={
            "topic_prefix": f"{run}.",
            "app_id": f"gridpulse-bench-{run}",
            "data_dir": str(out_dir / "faust"),
            "web_port": free_port_base(base.web_port + 7),
            "topic_partitions": partitions,
        }
    )
    return run, out_dir, settings


async def main_async(args: argparse.Namespace) -> dict[str, Any]:
    skip = set(args.skip) | (set(EXTRA_PHASES) - set(args.with_))
    run, out_dir, settings = run_settings("b", args.partitions)
    r: dict[str, Any] = {
        "run": run,
        "when": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "command": "python -m bench.run " + " ".join(args.argv),
        "machine": machine_facts(settings),
        "customers": args.customers,
        "intervals_per_customer": args.intervals,
        "partitions": args.partitions,
    }
    (out_dir / "faust").mkdir(parents=True, exist_ok=True)
    await create_contract_topics(settings)
    t0 = time.perf_counter()
    readings, profiles = population(settings, args.customers, args.intervals)
    r["readings"] = len(readings)
    gen_s = time.perf_counter() - t0
    print(f"generated {len(readings):,} readings for {args.customers:,} customers in {gen_s:.1f} s")
    await publish(settings, contract.CUSTOMERS, profiles)  # PF standards and tariffs, as in production
    probes = Probes(readings)

    try:
        # the pipeline first: its worker applies the profiles, then the readings are published
        # to the topic and it reads them; the baselines then read the same topic from the start
        if "pipeline" not in skip:
            r["rss_idle_worker_bytes"] = await idle_rss(settings, out_dir)
            worker, rate, pub_s, rss = await pipeline_phase(
                settings, readings, len(readings), args.customers, out_dir
            )
            print(f"published in {pub_s:.1f} s ({len(readings) / pub_s:,.0f}/s), while the worker read them")
            record(r, "pipeline", rate, "gridpulse pipeline")
            r["rss_worker_bytes"] = rss
            r["rss_bytes_per_customer"] = round((rss - r["rss_idle_worker_bytes"]) / args.customers)
            r.update({k: round(v) for k, v in (await state_size(settings)).items()})
            r["state_bytes_per_customer_full"] = full_state_bytes()
            try:
                if "latency" not in skip:
                    # in steady state: the loaded worker has caught up with everything (its
                    # views, its scoring pass and the Redis writes), not while it catches up
                    await wait_applied([worker], 1, within_s=1800, counter="scoring_passes")
                    r["stats_latency_settle_s"] = round(await wait_idle(worker), 1)
                    r.update(await latency_phase(settings, probes, args.latency_rate, args.latency_seconds))
                    label = f"stats latency p99 at {args.latency_rate:g} readings/s"
                    print(f"{label:<50}{r['stats_latency_p99_s']:>12.3f} s")
                if "recovery" not in skip:
                    worker, r["recovery_local_s"] = await recovery_phase(
                        settings, worker, probes, out_dir, wipe=False
                    )
                    print(f"{'recovery, local RocksDB kept':<50}{r['recovery_local_s']:>12.1f} s")
                    worker, r["recovery_changelog_s"] = await recovery_phase(
                        settings, worker, probes, out_dir, wipe=True
                    )
                    print(f"{'recovery, rebuilt from the changelog':<50}{r['recovery_changelog_s']:>12.1f} s")
            finally:
                worker.stop()
        else:
            pub_s = await publish(settings, contract.METER_READINGS, readings)
            print(f"published in {pub_s:.1f} s ({len(readings) / pub_s:,.0f}/s)")
        # the baselines read exactly the original readings (the probes come after them)
        await baselines(settings, r, len(readings), out_dir, skip, blocks=False)
        del readings, probes
        if "blocks" not in skip:
            await block_scenario(settings, args, out_dir, r, skip)
        if "day" not in skip:
            await utility_day(settings, args, out_dir, r)
        if "areas" not in skip:
            from bench import area_bench

            await area_bench.run_phases(settings, args, out_dir, r)
        if "outage" not in skip:
            from bench.outage_bench import main_async as outage_main

            outage = await outage_main(argparse.Namespace(customers=5000, outages=20))
            r.update(outage)
            print(f"{'outage alert p99, 5,000-customer feeder':<50}{r['outage_alert_p99_s']:>12.3f} s")
        if "scaling" not in skip:
            r.update(await scaling_phase(settings, args, out_dir))
    finally:
        if not args.keep:
            await delete_run_topics(settings, run)
            await delete_run_redis_keys(settings, run)
            for d in out_dir.glob("faust*"):
                shutil.rmtree(d, ignore_errors=True)
    r["machine"]["load_average_at_end"] = [round(x, 2) for x in os.getloadavg()]
    for prefix in ("", "block_"):
        if f"{prefix}pipeline_rps" not in r:
            continue
        for key, _ in CONSUMERS[:-1]:
            if f"{prefix}{key}_rps" in r:
                ratio = r[f"{prefix}pipeline_rps"] / r[f"{prefix}{key}_rps"]
                r[f"{prefix}pipeline_vs_{key}"] = round(ratio, 3)
    return r


def report(r: dict[str, Any]) -> str:
    def cell(key: str, fmt: str = "{:,}") -> str:
        return fmt.format(r[key]) if key in r else "—"

    lines = [
        f"run {r['when']} (`{r.get('command', 'python -m bench.run')}`): {r['partitions']} partitions, "
        f"{r['machine']['cpus']} CPUs",
    ]
    scenarios = (
        (
            "",
            f"single readings: {r['customers']:,} customers x {r['intervals_per_customer']} "
            f"= {r.get('readings', 0):,} readings, time order",
        ),
        (
            "block_",
            f"blocks: {r.get('block_blocks', 0):,} daily curves of 96 intervals "
            f"= {r.get('block_readings', 0):,} readings",
        ),
    )
    for prefix, title in scenarios:
        if not any(f"{prefix}{key}_rps" in r for key, _ in CONSUMERS):
            continue
        lines += [
            "",
            title,
            "",
            "| consumer of the same topic | readings/s | CPU µs per reading | gridpulse / it |",
            "|---|---:|---:|---:|",
        ]
        for key, label in CONSUMERS:
            k = f"{prefix}{key}"
            if f"{k}_rps" not in r:
                continue
            ratio = "" if key == "pipeline" else cell(f"{prefix}pipeline_vs_{key}", "{:.3g}x")
            lines.append(
                f"| {label} | {cell(f'{k}_rps')} | {cell(f'{k}_cpu_us_per_reading', '{:,.1f}')} | {ratio} |"
            )
    lines += ["", "| measure | value |", "|---|---:|"]
    for key in (
        "utility_day_meters",
        "utility_day_readings",
        "utility_day_s",
        "utility_day_rps",
        "utility_day_cpu_us_per_reading",
        "utility_day_peak_rss_bytes",
        "utility_day_rocksdb_disk_bytes_per_meter",
        "utility_day_state_bytes_per_meter",
        "stats_latency_load_rps",
        "stats_latency_p50_s",
        "stats_latency_p95_s",
        "stats_latency_p99_s",
        "outage_alert_p50_s",
        "outage_alert_p95_s",
        "outage_alert_p99_s",
        "recovery_local_s",
        "recovery_changelog_s",
        "state_bytes_per_customer",
        "state_bytes_per_customer_full",
        "rocksdb_disk_bytes_per_customer",
        "rss_worker_bytes",
        "rss_idle_worker_bytes",
        "rss_bytes_per_customer",
        "scaling_1_worker_rps",
        "scaling_2_workers_rps",
        "scaling_2_vs_1",
    ):
        if key in r:
            v = r[key]
            lines.append(f"| {key} | {v:,.3f} |" if isinstance(v, float) else f"| {key} | {v:,} |")
    from bench import area_bench

    if any(key in r for key in area_bench.REPORT_KEYS):
        lines += ["", area_bench.report(r).rstrip("\n")]
    return "\n".join(lines) + "\n"


def main(argv: Sequence[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--customers", type=int, default=100_000, help="both scenarios (1,000,000 is an option)")
    ap.add_argument("--intervals", type=int, default=2, help="15-minute readings per customer (single form)")
    ap.add_argument("--partitions", type=int, default=4)
    ap.add_argument(
        "--day-meters",
        type=int,
        default=1_000_000,
        help="a utility's day: meters whose daily curves go through",
    )
    ap.add_argument("--latency-rate", type=float, default=200.0, help="readings/s during the latency phase")
    ap.add_argument("--latency-seconds", type=float, default=30.0)
    ap.add_argument("--scale-customers", type=int, default=20_000)
    ap.add_argument("--scale-intervals", type=int, default=8)
    ap.add_argument("--scale-partitions", type=int, default=8)
    ap.add_argument(
        "--skip",
        type=lambda s: [x for x in s.split(",") if x],
        default=[],
        help=f"phases to skip: {','.join(PHASES)}",
    )
    ap.add_argument(
        "--with",
        dest="with_",
        type=lambda s: [x for x in s.split(",") if x],
        default=[],
        help=f"phases to add: {','.join(EXTRA_PHASES)} (`make bench` adds them all)",
    )
    ap.add_argument("--keep", action="store_true", help="keep the run's topics and state")
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "results.json")
    from bench.area_bench import add_arguments

    add_arguments(ap)  # --with areas
    argv = list(sys.argv[1:] if argv is None else argv)
    args = ap.parse_args(argv)
    args.argv = argv
    unknown = (set(args.skip) | set(args.with_)) - set(PHASES) - set(EXTRA_PHASES)
    if unknown:
        ap.error(f"unknown phases {sorted(unknown)}; known: {', '.join(PHASES + EXTRA_PHASES)}")
    result = asyncio.run(main_async(args))
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    text = report(result)
    run_dir = OUT / result["run"]
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / "report.md").write_text(text)
    print()
    print(text)
    print(f"written: {args.out}")


if __name__ == "__main__":
    main()
