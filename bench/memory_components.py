"""What the worker's in-memory structures hold per customer, one by one (issue 12, deliverable 4):
the profile cache, scoring's population view, the outage view, the arrears cache's set and
scoring's digests, built as the worker builds them from N customers' profiles (the bench's
population) and their statistics documents after two readings each (as in ``bench.run
--intervals 2``). tracemalloc counts the allocations each structure keeps (dict tables
included); RocksDB (memtables, block cache) and the batch peaks are outside Python's heap and
are what remains of the RSS measured by ``bench.run``.

    python -m bench.memory_components --customers 100000
"""

from __future__ import annotations

import argparse
import gc
import time
import tracemalloc
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import orjson

from metering.arrears import ArrearsLedger
from metering.load import LoadState
from metering.stats import stats_document
from schemas.codec import dumps_kept
from schemas.models import CustomerProfile, MeterReading
from simulator.population import make_population
from streams.agents.outages import OutageView
from streams.agents.scoring import PopulationView, score_digest, trim_profile
from streams.runtime import ProfileFacts

TZ = ZoneInfo("Asia/Shanghai")


def kept_bytes(build: Callable[[], Any]) -> tuple[float, Any]:
    gc.collect()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        kept = build()
        gc.collect()
        after = tracemalloc.get_traced_memory()[0]
    finally:
        tracemalloc.stop()
    return after - before, kept


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--customers", type=int, default=100_000)
    args = ap.parse_args()
    n = args.customers
    t0 = time.perf_counter()
    pop = make_population(n, 3)
    raw = [(p["customer_id"].encode(), orjson.dumps(p)) for p in pop.profiles]
    del pop
    profiles = [CustomerProfile.model_validate_json(v) for _, v in raw]
    facts = [ProfileFacts.of(p) for p in profiles]
    now = datetime.now(UTC)
    end = now.replace(minute=0, second=0, microsecond=0) - timedelta(hours=2)
    ledger = ArrearsLedger(tz=TZ)
    docs = []
    for p, f in zip(profiles, facts, strict=True):
        state = LoadState(tz=TZ, lateness_s=3600)
        state.apply(
            [
                MeterReading(
                    meter_id=f"M-{p.customer_id}",
                    customer_id=p.customer_id,
                    ts=end + timedelta(minutes=15 * k),
                    interval_s=900,
                    kwh=1.5 + k,
                    kvarh=0.5,
                )
                for k in (1, 2)
            ]
        )
        doc = stats_document(p.customer_id, state, ledger, f, now, TZ, 3)
        assert doc is not None
        docs.append(orjson.loads(orjson.dumps(doc)))  # as the views get it
    print(f"{n:,} customers' profiles and documents in {time.perf_counter() - t0:.1f} s")

    def ids() -> list[str]:
        return [bytes(k).decode() for k, _ in raw]  # the worker's keys: strings of its own

    rows: list[tuple[str, float]] = []

    def measure(name: str, build: Callable[[], Any]) -> None:
        size, kept = kept_bytes(build)
        rows.append((name, size / n))
        del kept

    measure(
        "profile cache, CustomerProfile (before)",
        lambda: {cid: CustomerProfile.model_validate_json(v) for cid, (_, v) in zip(ids(), raw, strict=True)},
    )
    measure(
        "profile cache, ProfileFacts (now)",
        lambda: {
            cid: ProfileFacts.of(CustomerProfile.model_validate_json(v))
            for cid, (_, v) in zip(ids(), raw, strict=True)
        },
    )
    measure("customers without billing state (a set)", lambda: set(ids()))

    def scoring_view(profiles_too: bool, before: bool = False) -> PopulationView:
        view = PopulationView()
        for d in docs:
            view.put_own(d)
        if profiles_too:
            for k, v in raw:
                view.apply_profile_message(k, v)
            if before:  # the trimmed JSON the view kept before
                view._profiles = {p.customer_id: dumps_kept(trim_profile(p)) for p in profiles}  # type: ignore[misc]
        return view

    measure("scoring view: statistics", lambda: scoring_view(False))
    size_all, _ = kept_bytes(lambda: scoring_view(True))
    size_stats, _ = kept_bytes(lambda: scoring_view(False))
    rows.append(
        ("scoring view: profiles, (voltage, feeders, generator) shared (now)", (size_all - size_stats) / n)
    )
    size_before, _ = kept_bytes(lambda: {p.customer_id: dumps_kept(trim_profile(p)) for p in profiles})
    rows.append(("scoring view: profiles, trimmed JSON (before)", size_before / n))
    measure(
        "scoring: digests of the published scores",
        lambda: {cid: score_digest({"customer_id": cid, "x": i}) for i, cid in enumerate(ids())},
    )

    def outage_view(profiles_too: bool, stats_too: bool) -> OutageView:
        view = OutageView("c", "s", "o")
        if profiles_too:
            for k, v in raw:
                view.apply_profile_message(k, v)
        if stats_too:
            for d in docs:
                view.put_own(d)
        return view

    measure("outage view: topology (now)", lambda: outage_view(True, False))
    measure("outage view: load estimates", lambda: outage_view(False, True))
    print(f"\n| structure ({n:,} customers) | bytes a customer |\n|---|---:|")
    for name, per in rows:
        print(f"| {name} | {per:,.0f} |")


if __name__ == "__main__":
    main()
