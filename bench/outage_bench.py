"""Outage alert latency: `start` on a feeder of N customers -> its alert on alerts.outage.

    python -m bench.outage_bench [--customers 5000] [--outages 20]

A worker process (the production entry point) with N customers on one feeder (a tenth of them
dual-circuit with a second feeder, some important); the outages are started and restored
one after another; latency = the alert's arrival at a consumer minus the moment the `start`
was acknowledged by the broker. Prints p50/p95/p99 and writes bench/outage_results.json.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import orjson

from gridpulse.settings import get_settings
from gridpulse.workerproc import ROOT, WorkerProcess
from schemas import topics as contract
from streams.kafka import create_contract_topics, delete_topics, make_consumer, make_producer

OUT = ROOT / "bench" / "out"
IMPORTANCE = ("none",) * 90 + ("level2",) * 6 + ("level1",) * 3 + ("special",)


def profiles(n: int) -> list[dict[str, Any]]:
    rng = np.random.default_rng(5)
    out = []
    for i in range(n):
        dual = i % 10 == 0
        out.append(
            {
                "customer_id": f"B{i:06d}",
                "name": f"bench customer {i}",
                "tariff_class": "commercial",
                "contract_kva": 200.0,
                "voltage_kv": 10.0,
                "importance": IMPORTANCE[int(rng.integers(len(IMPORTANCE)))],
                "feeders": ["F-BENCH", "F-SPARE"] if dual else ["F-BENCH"],
                "transformer_area": f"TA{i // 100:04d}",
                "emergency_generator": bool(i % 7 == 0),
                "manager_id": f"M{i % 20:02d}",
                "tariff_cny_per_kwh": 0.8,
            }
        )
    return out


async def main_async(args: argparse.Namespace) -> dict[str, Any]:
    base = get_settings()
    run = f"o{int(time.time())}"
    settings = base.model_copy(
        update={
            "topic_prefix": f"{run}.",
            "app_id": f"gridpulse-obench-{run}",
            "data_dir": str(OUT / run / "faust"),
            "web_port": base.web_port + 9,
        }
    )
    await create_contract_topics(settings)
    producer = make_producer(settings, linger_ms=5)
    await producer.start()
    worker = WorkerProcess(settings, OUT / run / "worker.log").start()
    consumer = make_consumer(settings, settings.topic(contract.ALERTS_OUTAGE), group_id=f"{run}-reader")
    latencies: list[float] = []
    try:
        futures = [
            await producer.send(
                settings.topic(contract.CUSTOMERS), key=p["customer_id"].encode(), value=orjson.dumps(p)
            )
            for p in profiles(args.customers)
        ]
        await asyncio.gather(*futures)
        await worker.wait_ready(within_s=180)
        await consumer.start()
        await asyncio.sleep(5.0)  # the worker's topology view catches up with the profiles
        t0 = datetime.now(UTC) - timedelta(hours=2)
        for k in range(args.outages):
            outage_id = f"{run}-{k}"
            start = {
                "outage_id": outage_id,
                "event": "start",
                "ts": (t0 + timedelta(minutes=3 * k)).isoformat(),
                "scope": "feeder",
                "scope_id": "F-BENCH",
                "planned": False,
                "cause": "bench",
            }
            await (
                await producer.send(
                    settings.topic(contract.GRID_OUTAGES), key=outage_id.encode(), value=orjson.dumps(start)
                )
            )
            acked = time.perf_counter()
            got = None
            deadline = acked + 60
            while got is None and time.perf_counter() < deadline:
                for records in (await consumer.getmany(timeout_ms=200)).values():
                    for rec in records:
                        doc = orjson.loads(rec.value)
                        if doc.get("outage_id") == outage_id and doc.get("status") == "open":
                            got = time.perf_counter()
            if got is None:
                raise TimeoutError(f"no alert for {outage_id}: {worker.log_tail()}")
            latencies.append(got - acked)
            restore = {**start, "event": "restore", "ts": (t0 + timedelta(minutes=3 * k + 2)).isoformat()}
            await (
                await producer.send(
                    settings.topic(contract.GRID_OUTAGES), key=outage_id.encode(), value=orjson.dumps(restore)
                )
            )
            await asyncio.sleep(0.5)
    finally:
        await consumer.stop()
        await producer.stop()
        worker.stop()
        names = [settings.topic(t.name) for t in contract.CONTRACT_TOPICS]
        await delete_topics(settings, names)
        from bench.run import delete_run_redis_keys

        await delete_run_redis_keys(settings, run)
    lat = np.array(latencies)
    return {
        "customers_on_feeder": args.customers,
        "outages": len(lat),
        "outage_alert_p50_s": round(float(np.percentile(lat, 50)), 3),
        "outage_alert_p95_s": round(float(np.percentile(lat, 95)), 3),
        "outage_alert_p99_s": round(float(np.percentile(lat, 99)), 3),
        "outage_alert_max_s": round(float(lat.max()), 3),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--customers", type=int, default=5000)
    ap.add_argument("--outages", type=int, default=20)
    result = asyncio.run(main_async(ap.parse_args()))
    (ROOT / "bench" / "outage_results.json").write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
