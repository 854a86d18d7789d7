"""`make bench`: gridpulse against its ceiling and its peers, in one run on one broker.

    python -m bench.run [--customers 100000] [--intervals 2] [--skip naive,quix,...]

Every figure is measured in this run, on this machine and broker (local stack, or any Kafka via
GRIDPULSE_KAFKA_BOOTSTRAP and the SASL/SSL settings; see bench/RESULTS.md "Bigger cluster"):

throughput  the simulated head-end publishes ``--customers`` x ``--intervals`` readings (time
            order: every customer's interval, then the next — how a head-end sends them) to a
            fresh ``meter.readings``; then, one after the other, each reads it from the start:
            raw       a plain aiokafka consumer that only JSON-decodes (the ceiling);
            floor     a Faust agent that only decodes, batched like ours (bench/faust_floor.py);
            naive     a straightforward per-message Faust agent doing the same statistics
                      (bench/naive_faust.py);
            quix      daily load factor and PF in Quix Streams (bench/quix_peer.py);
            pipeline  the `gridpulse worker`: decode, validation, dedup/lateness, per-customer
                      state (RocksDB + changelog), stats.customer, Redis, rescoring.
memory      the worker's resident memory with every customer's state (minus an idle worker's)
            and the state bytes per customer (latest changelog record; RocksDB on disk);
recovery    the worker holding every customer's state is SIGKILLed and restarted; time from the
            restart until it has applied new readings: with its RocksDB kept (local) and wiped
            (rebuilt from the changelog);
latency     readings produced at ``--latency-rate`` per second to the running worker; per reading,
            its customer's next stats.customer minus its send time: p50/p95/p99;
outage      bench/outage_bench.py: outage start on a 5,000-customer feeder -> its alert;
scaling     two workers in one consumer group versus one, on a topic of ``--scale-partitions``.

Writes bench/results.json and bench/out/<run>/report.md, prints the table. Compare ratios, not
absolute rates across machines or runs.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import shutil
import time
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import orjson

from bench.proc import FAUST_WORKER, run_for_rate
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

Pairs = list[tuple[bytes, bytes]]


# ---------------------------------------------------------------------- data


async def publish(settings: Settings, topic: str, messages: Sequence[tuple[bytes, bytes]]) -> float:
    producer = make_producer(settings, linger_ms=50, max_batch_size=512 * 1024)
    await producer.start()
    t0 = time.perf_counter()
    try:
        futures = [await producer.send(settings.topic(topic), key=k, value=v) for k, v in messages]
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


async def raw_consumer_rps(settings: Settings, expected: int) -> float:
    """The ceiling: read and JSON-decode every value, nothing else."""
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
        n = 0
        kwh = 0.0
        t0 = time.perf_counter()
        while n < expected:
            for records in (await consumer.getmany(timeout_ms=1000, max_records=10_000)).values():
                for rec in records:
                    kwh += orjson.loads(rec.value)["kwh"]
                    n += 1
        return n / (time.perf_counter() - t0)
    finally:
        await consumer.stop()


async def faust_floor_rps(settings: Settings, expected: int, out_dir: Path) -> float:
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


def cpu_seconds(worker: WorkerProcess) -> float:
    """User + system CPU time the worker process has used (/proc/<pid>/stat)."""
    assert worker.proc is not None
    fields = Path(f"/proc/{worker.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


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


async def counted(workers: Sequence[WorkerProcess], name: str = "readings_applied") -> int:
    total = 0
    for w in workers:
        c = await w.counters()
        total += int(c["counters"].get(name, 0))
    return total


async def wait_applied(
    workers: Sequence[WorkerProcess],
    expected: int,
    within_s: float,
    poll_s: float = 0.1,
    counter: str = "readings_applied",
) -> tuple[float, float]:
    """Poll until the workers together count ``expected`` (readings applied): (time of the
    first, time of the last), perf_counter seconds."""
    t_first: float | None = None
    deadline = time.monotonic() + within_s
    n = last_n = 0
    t_change = time.perf_counter()
    while time.monotonic() < deadline:
        for w in workers:
            if not w.running:
                raise RuntimeError(f"worker exited:\n{w.log_tail()}")
        try:
            n = await counted(workers, counter)
        except OSError:  # the web server is not up yet
            n = 0
        now = time.perf_counter()
        if t_first is None and n > 0:
            t_first = now
        if n >= expected:
            assert t_first is not None
            return t_first, now
        if n != last_n:
            last_n, t_change = n, now
        elif t_first is not None and n >= 0.999 * expected and now - t_change > 20:
            # a reading or two rejected by validation (e.g. demand above 1.5 x contract kVA goes
            # to the DLQ): done at the last change, not after the wait
            return t_first, t_change
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
    settings: Settings, readings: Pairs, customers: int, out_dir: Path
) -> tuple[WorkerProcess, float, float, int]:
    """The worker starts with the customer profiles in place (as in production: profiles long
    before readings) and has applied them; then the readings are published and it reads them.
    Returns the worker (running), its rate, the publishing time and its RSS."""
    worker = WorkerProcess(settings, out_dir / "worker.log").start()
    await worker.wait_ready(within_s=300)
    await wait_applied([worker], customers, within_s=1800, counter="profiles_applied")
    pub_s = await publish(settings, contract.METER_READINGS, readings)
    t_first, t_last = await wait_applied([worker], len(readings), within_s=7200)
    rps = (len(readings) - 1) / max(t_last - t_first, 1e-9)
    await asyncio.sleep(3.0)  # let the last batch's stats and the scoring catch up
    return worker, rps, pub_s, rss_bytes(worker)


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
    await publish(settings, contract.METER_READINGS, probes.next(n_probe))
    _, t_done = await wait_applied([fresh], n_probe, within_s=1800, poll_s=0.05)
    return fresh, t_done - t0


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
            t_first, t_last = await wait_applied(workers, len(readings), within_s=7200)
            rates[n_workers] = (len(readings) - 1) / max(t_last - t_first, 1e-9)
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


# ---------------------------------------------------------------------- the run


async def delete_run_topics(settings: Settings, run: str) -> None:
    """Every topic of the run: contract topics under its prefix, and the changelogs and
    assignor topics of its apps (all named after the run's app id)."""
    await delete_topics_with_prefix(settings, f"{run}.", f"{settings.app_id}-")


async def main_async(args: argparse.Namespace) -> dict[str, Any]:
    skip = set(args.skip)
    base = get_settings()
    run = f"b{int(time.time())}"
    out_dir = OUT / run
    settings = base.model_copy(
        update={
            "topic_prefix": f"{run}.",
            "app_id": f"gridpulse-bench-{run}",
            "data_dir": str(out_dir / "faust"),
            "web_port": base.web_port + 7,
            "topic_partitions": args.partitions,
        }
    )
    r: dict[str, Any] = {
        "run": run,
        "when": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "machine": {
            "cpus": os.cpu_count(),
            "memory_gb": round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 1024**3, 1),
            "python": platform.python_version(),
            "platform": platform.platform(),
            "kafka_bootstrap": settings.kafka_bootstrap,
            "load_average_at_start": [round(x, 2) for x in os.getloadavg()],
        },
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

    def show(name: str, value: float, unit: str = "readings/s") -> None:
        print(f"{name:<44}{value:>14,.0f} {unit}")

    try:
        # the pipeline first: its worker applies the profiles, then the readings are published
        # to the topic and it reads them; the baselines then read the same topic from the start
        if "pipeline" not in skip:
            r["rss_idle_worker_bytes"] = await idle_rss(settings, out_dir)
            worker, rps, pub_s, rss = await pipeline_phase(settings, readings, args.customers, out_dir)
            print(f"published in {pub_s:.1f} s ({len(readings) / pub_s:,.0f}/s), while the worker read them")
            r["pipeline_rps"] = round(rps)
            show("gridpulse pipeline", rps)
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
                    print(f"{label:<44}{r['stats_latency_p99_s']:>14.3f} s")
                if "recovery" not in skip:
                    worker, r["recovery_local_s"] = await recovery_phase(
                        settings, worker, probes, out_dir, wipe=False
                    )
                    print(f"{'recovery, local RocksDB kept':<44}{r['recovery_local_s']:>14.1f} s")
                    worker, r["recovery_changelog_s"] = await recovery_phase(
                        settings, worker, probes, out_dir, wipe=True
                    )
                    print(f"{'recovery, rebuilt from the changelog':<44}{r['recovery_changelog_s']:>14.1f} s")
            finally:
                worker.stop()
        else:
            pub_s = await publish(settings, contract.METER_READINGS, readings)
            print(f"published in {pub_s:.1f} s ({len(readings) / pub_s:,.0f}/s)")
        # the baselines read exactly the original readings (the probes come after them)
        n = len(readings)
        if "raw" not in skip:
            r["raw_consumer_rps"] = round(await raw_consumer_rps(settings, n))
            show("raw aiokafka consumer (decode only)", r["raw_consumer_rps"])
        if "floor" not in skip:
            r["faust_floor_rps"] = round(await faust_floor_rps(settings, n, out_dir))
            show("Faust agent that only decodes", r["faust_floor_rps"])
        if "naive" not in skip:
            from bench.naive_faust import naive_faust_rps

            r["naive_faust_rps"] = round(await naive_faust_rps(settings, n, out_dir))
            show("naive per-message Faust agent", r["naive_faust_rps"])
        if "quix" not in skip:
            from bench.quix_peer import quix_rps

            r["quix_rps"] = round(await quix_rps(settings, n, out_dir))
            show("Quix Streams daily LF/PF", r["quix_rps"])
        if "outage" not in skip:
            from bench.outage_bench import main_async as outage_main

            outage = await outage_main(argparse.Namespace(customers=5000, outages=20))
            r.update(outage)
            print(f"{'outage alert p99, 5,000-customer feeder':<44}{r['outage_alert_p99_s']:>14.3f} s")
        if "scaling" not in skip:
            r.update(await scaling_phase(settings, args, out_dir))
    finally:
        if not args.keep:
            await delete_run_topics(settings, run)
            shutil.rmtree(out_dir / "faust", ignore_errors=True)
    r["machine"]["load_average_at_end"] = [round(x, 2) for x in os.getloadavg()]
    for key in ("naive_faust_rps", "quix_rps", "raw_consumer_rps", "faust_floor_rps"):
        if key in r and "pipeline_rps" in r:
            r[f"pipeline_vs_{key.removesuffix('_rps')}"] = round(r["pipeline_rps"] / r[key], 3)
    return r


def report(r: dict[str, Any]) -> str:
    def rate(key: str) -> str:
        return f"{r[key]:,}" if key in r else "—"

    def ratio(key: str) -> str:
        k = f"pipeline_vs_{key.removesuffix('_rps')}"
        return f"{r[k]:.3g}x" if k in r else "—"

    lines = [
        f"run {r['when']}: {r['customers']:,} customers x {r['intervals_per_customer']} readings "
        f"= {r.get('readings', 0):,} readings, {r['partitions']} partitions, {r['machine']['cpus']} CPUs",
        "",
        "| consumer of the same topic | readings/s | gridpulse / it |",
        "|---|---:|---:|",
    ]
    for label, key in (
        ("raw aiokafka consumer, decode only (ceiling)", "raw_consumer_rps"),
        ("Faust agent, decode only (Faust floor)", "faust_floor_rps"),
        ("naive per-message Faust agent, same statistics", "naive_faust_rps"),
        ("Quix Streams, daily load factor and PF", "quix_rps"),
        ("**gridpulse pipeline**", "pipeline_rps"),
    ):
        lines.append(f"| {label} | {rate(key)} | {ratio(key) if key != 'pipeline_rps' else ''} |")
    lines += ["", "| measure | value |", "|---|---:|"]
    for key in (
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
    return "\n".join(lines) + "\n"


def main(argv: Sequence[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--customers", type=int, default=100_000)
    ap.add_argument("--intervals", type=int, default=2, help="15-minute readings per customer")
    ap.add_argument("--partitions", type=int, default=4)
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
    ap.add_argument("--keep", action="store_true", help="keep the run's topics and state")
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "results.json")
    args = ap.parse_args(argv)
    unknown = set(args.skip) - set(PHASES)
    if unknown:
        ap.error(f"unknown phases {sorted(unknown)}; known: {', '.join(PHASES)}")
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
