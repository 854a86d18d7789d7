"""A worker holding N customers' profiles and nothing else: its RSS per customer, and the
profiles' rate (issue 12, deliverable 4: the utility's day applies its meters' profiles first).

    python -m bench.profiles_rss --customers 1000000 --out /tmp/x.json

The profiles are the day scenario's population (``simulator.population.make_population``, as
``bench.blocks.DailyCurves`` draws them), published to the run's own ``customers`` topic before
the worker starts; an idle worker (its own empty topics) gives the fixed part of the RSS, as in
``bench.run``. The run's topics are deleted at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import time
from pathlib import Path
from typing import Any

import orjson

from bench.run import (
    create_contract_topics,
    delete_run_topics,
    idle_rss,
    peak_rss_bytes,
    publish,
    rss_bytes,
    run_settings,
    wait_applied,
)
from gridpulse.workerproc import WorkerProcess
from schemas import topics as contract
from simulator.population import make_population


async def main_async(args: argparse.Namespace) -> dict[str, Any]:
    run, out_dir, settings = run_settings("p", args.partitions)
    r: dict[str, Any] = {
        "run": run,
        "command": "python -m bench.profiles_rss " + " ".join(sys.argv[1:]),
        "load_average_at_start": [round(x, 2) for x in os.getloadavg()],
        "customers": args.customers,
    }
    (out_dir / "faust").mkdir(parents=True, exist_ok=True)
    try:
        await create_contract_topics(settings)
        t0 = time.perf_counter()
        pop = make_population(args.customers, 3)
        profiles = [(p["customer_id"].encode(), orjson.dumps(p)) for p in pop.profiles]
        del pop
        r["profile_json_bytes_mean"] = round(sum(len(v) for _, v in profiles) / len(profiles))
        print(f"drew {len(profiles):,} profiles in {time.perf_counter() - t0:.1f} s", flush=True)
        r["publish_s"] = round(await publish(settings, contract.CUSTOMERS, profiles), 1)
        n = len(profiles)
        del profiles
        print(f"published in {r['publish_s']} s", flush=True)
        r["rss_idle_worker_bytes"] = await idle_rss(settings, out_dir)
        worker = WorkerProcess(settings, out_dir / "worker.log").start()
        try:
            t0 = time.perf_counter()
            await worker.wait_ready(within_s=300)
            rate = (await wait_applied([worker], n, within_s=3600, counter="profiles_applied")).rate()
            r["ready_with_profiles_s"] = round(time.perf_counter() - t0, 1)
            r["profiles_per_s"] = round(rate.rps)
            r["cpu_us_per_profile"] = round(rate.cpu_us_per_reading, 1)
            await asyncio.sleep(10.0)  # the views catch up with the topic
            r["rss_worker_bytes"] = rss_bytes(worker)
            r["peak_rss_worker_bytes"] = peak_rss_bytes(worker)
        finally:
            worker.stop()
        r["rss_bytes_per_customer"] = round((r["rss_worker_bytes"] - r["rss_idle_worker_bytes"]) / n)
        r["load_average_at_end"] = [round(x, 2) for x in os.getloadavg()]
    finally:
        await delete_run_topics(settings, run)
    return r


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--customers", type=int, default=100_000)
    ap.add_argument("--partitions", type=int, default=4)
    ap.add_argument("--out", type=Path)
    args = ap.parse_args()
    r = asyncio.run(main_async(args))
    text = orjson.dumps(r, option=orjson.OPT_INDENT_2).decode()
    print(text)
    if args.out:
        args.out.write_text(text + "\n")


if __name__ == "__main__":
    main()
