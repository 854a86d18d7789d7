"""`make bench`: throughput of the statistics pipeline on the real broker, with the ceiling.

One run, on the local stack (or any Kafka: GRIDPULSE_KAFKA_BOOTSTRAP), on topics of its own:

1. the simulated head-end publishes ``--customers`` x ``--intervals`` readings (time order, as
   a head-end sends them; a share of duplicates) to a fresh ``meter.readings``;
2. baseline, the ceiling: a raw aiokafka consumer reads the same topic from the beginning and
   only decodes each value (orjson) — nothing can consume faster in Python;
3. gridpulse: a `gridpulse worker` process (decode + validation + dedup + per-customer state
   + table/changelog writes + stats.customer + Redis) consumes the same topic from the start;
   timed from the first reading applied to the last;
4. state per customer: the latest load-state record per customer (changelog) and the
   worker's RocksDB directory on disk.

Reported as ratios to the baseline measured in the same run; written to bench/results.json
and printed as a table. Timings depend on the machine: compare ratios, not absolute numbers.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import shutil
import sys
import time
from pathlib import Path
from typing import Any

import orjson

from gridpulse.settings import Settings, get_settings
from gridpulse.workerproc import ROOT, WorkerProcess, worker_env
from schemas import topics as contract
from simulator.run import SimulationOptions, generate
from streams.kafka import create_contract_topics, delete_topics, make_consumer, make_producer, read_all

OUT = ROOT / "bench" / "out"


async def publish(settings: Settings, topic: str, messages: list[tuple[bytes, bytes]]) -> float:
    producer = make_producer(settings, linger_ms=50, max_batch_size=512 * 1024)
    await producer.start()
    t0 = time.perf_counter()
    try:
        futures = [await producer.send(settings.topic(topic), key=k, value=v) for k, v in messages]
        await asyncio.gather(*futures)
    finally:
        await producer.stop()
    return time.perf_counter() - t0


async def raw_consumer_rps(settings: Settings, expected: int) -> tuple[float, int]:
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
        return n / (time.perf_counter() - t0), n
    finally:
        await consumer.stop()


async def faust_floor_rps(settings: Settings, expected: int, out_dir: Path) -> float:
    """bench/faust_floor.py in its own process: Faust's per-event machinery and nothing else."""
    out_dir.mkdir(parents=True, exist_ok=True)  # noqa: ASYNC240 (a benchmark's own files, tiny)
    out = out_dir / "floor.txt"
    out.unlink(missing_ok=True)
    env = worker_env(
        settings,
        GP_FLOOR_TOPIC=settings.topic(contract.METER_READINGS),
        GP_FLOOR_N=str(expected),
        GP_FLOOR_OUT=str(out),
    )
    with (out_dir / "floor.log").open("wb") as log:
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "bench.faust_floor",
            "worker",
            "-l",
            "warn",
            cwd=ROOT,
            env=env,
            stdout=log,
            stderr=asyncio.subprocess.STDOUT,
        )
        try:
            await asyncio.wait_for(proc.wait(), timeout=900)
        finally:
            if proc.returncode is None:
                proc.kill()
    return float(out.read_text())


async def pipeline_rps(settings: Settings, expected_applied: int, log: Path) -> tuple[float, dict[str, Any]]:
    worker = WorkerProcess(settings, log).start()
    try:
        await worker.wait_ready(within_s=180)
        t_first = None
        last = 0
        deadline = time.monotonic() + 1800
        while time.monotonic() < deadline:
            c = await worker.counters()
            handled = c["counters"].get("readings_applied", 0) + c["counters"].get("readings_duplicate", 0)
            now = time.perf_counter()
            if t_first is None and handled > 0:
                t_first, first_n = now, handled
            if handled >= expected_applied:
                assert t_first is not None
                return (handled - first_n) / max(now - t_first, 1e-9), c
            if handled != last:
                last = handled
            await asyncio.sleep(0.1)
        raise TimeoutError(f"worker handled {last} of {expected_applied}")
    finally:
        worker.stop()


async def state_size(settings: Settings) -> dict[str, float]:
    changelog = f"{settings.app_id}-load-state-changelog"
    latest: dict[bytes, int] = {}
    for rec in await read_all(settings, changelog, within_s=600):
        if rec.key is not None and rec.value is not None:
            latest[rec.key] = len(rec.value)
    disk = sum(f.stat().st_size for f in Path(settings.data_dir).rglob("*") if f.is_file())  # noqa: ASYNC240 (a benchmark's own files, tiny)
    n = max(len(latest), 1)
    return {
        "customers_in_state": len(latest),
        "state_bytes_per_customer": sum(latest.values()) / n,
        "rocksdb_disk_bytes_per_customer": disk / n,
    }


async def main_async(args: argparse.Namespace) -> dict[str, Any]:
    base = get_settings()
    run = f"b{int(time.time())}"
    settings = base.model_copy(
        update={
            "topic_prefix": f"{run}.",
            "app_id": f"gridpulse-bench-{run}",
            "data_dir": str(OUT / run / "faust"),
            "web_port": base.web_port + 7,
            "topic_partitions": args.partitions,
        }
    )
    await create_contract_topics(settings)
    opts = SimulationOptions(
        topic_prefix=settings.topic_prefix,
        customers=args.customers,
        days=args.intervals / 96,
        bad_share=0.0,
        consumption_history_months=0,
        duplicate_share=0.01,
        late_share=0.0,
        billing=False,
        outages=False,
        seed=3,
    )
    t0 = time.perf_counter()
    generated = list(generate(opts))
    readings = [(m.key, m.value) for m in generated if m.topic == settings.topic(contract.METER_READINGS)]
    profiles = [(m.key, m.value) for m in generated if m.topic == settings.topic(contract.CUSTOMERS)]
    gen_s = time.perf_counter() - t0
    print(f"generated {len(readings):,} readings for {args.customers:,} customers in {gen_s:.1f} s")
    await publish(settings, contract.CUSTOMERS, profiles)  # PF standards and tariffs, as in production
    pub_s = await publish(settings, contract.METER_READINGS, readings)
    print(f"published in {pub_s:.1f} s ({len(readings) / pub_s:,.0f}/s)")

    raw_rps, _ = await raw_consumer_rps(settings, len(readings))
    print(f"raw aiokafka consumer (decode only): {raw_rps:,.0f} readings/s")
    floor_rps = await faust_floor_rps(settings, len(readings), OUT / run)
    print(f"faust agent that only decodes:       {floor_rps:,.0f} readings/s")
    rps, counters = await pipeline_rps(settings, len(readings), OUT / run / "worker.log")
    print(f"gridpulse statistics pipeline:       {rps:,.0f} readings/s")
    sizes = await state_size(settings)

    result = {
        "when": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "platform": platform.platform(),
        },
        "customers": args.customers,
        "intervals_per_customer": args.intervals,
        "readings": len(readings),
        "partitions": args.partitions,
        "raw_consumer_rps": round(raw_rps),
        "pipeline_rps": round(rps),
        "faust_floor_rps": round(floor_rps),
        "pipeline_vs_raw": round(rps / raw_rps, 3),
        "pipeline_vs_faust_floor": round(rps / floor_rps, 3),
        "worker_counters": counters["counters"],
        **{k: round(v, 1) for k, v in sizes.items()},
    }
    if not args.keep:
        names = [settings.topic(t.name) for t in contract.CONTRACT_TOPICS]
        await delete_topics(settings, names)
        shutil.rmtree(OUT / run / "faust", ignore_errors=True)
    return result


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--customers", type=int, default=20_000)
    ap.add_argument("--intervals", type=int, default=24, help="15-minute readings per customer")
    ap.add_argument("--partitions", type=int, default=4)
    ap.add_argument("--keep", action="store_true", help="keep the run's topics and state")
    args = ap.parse_args()
    result = asyncio.run(main_async(args))
    OUT.mkdir(parents=True, exist_ok=True)
    (ROOT / "bench" / "results.json").write_text(json.dumps(result, indent=2) + "\n")
    print()
    print(f"{'measure':<36}{'value':>16}")
    for key in (
        "raw_consumer_rps",
        "pipeline_rps",
        "pipeline_vs_raw",
        "state_bytes_per_customer",
        "rocksdb_disk_bytes_per_customer",
    ):
        print(f"{key:<36}{result[key]:>16,}")
    print("\nwritten: bench/results.json")


if __name__ == "__main__":
    main()
