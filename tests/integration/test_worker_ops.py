"""The worker's /metrics, /livez and /readyz on the real stack (issue 15): a `gridpulse worker`
process takes a small simulated run; its scrapes, taken while the run streams in and after,
must agree with what was sent (events in per topic, dead letters per topic), show its lag
going to 0 and a plausible event age, carry no customer id or name in any label, and its
/readyz and /livez answer 200 once it is caught up."""

from __future__ import annotations

import asyncio
import json
import os
import time
import urllib.error
import urllib.request
from collections import Counter
from pathlib import Path
from typing import Any

import orjson
import pytest
from prometheus_client.parser import text_string_to_metric_families

from observability.metrics import lint_exposition
from schemas import topics as contract
from simulator.run import SimulationOptions, generate
from tests.integration.helpers import eventually, produce
from tests.integration.population import send

pytestmark = [pytest.mark.integration, pytest.mark.timeout(150)]

# where the closing note's trimmed scrape goes when asked (GRIDPULSE_SAVE_SCRAPE=path)
SAVE_SCRAPE = os.environ.get("GRIDPULSE_SAVE_SCRAPE")


def get(port: int, path: str) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=15) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """A scrape as {(sample name, sorted labels): value}."""
    out = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def by_label(scrape: dict[tuple[str, Any], float], name: str, label: str) -> dict[str, float]:
    """The samples of ``name`` summed per value of ``label``."""
    out: Counter[str] = Counter()
    for (sample, labels), value in scrape.items():
        if sample == name:
            out[dict(labels)[label]] += value
    return dict(out)


async def test_worker_metrics_and_health_during_a_simulated_run(topics, redis_settings, worker_factory):
    # the area agents' batch window (10 s by default) would hold their lag up for seconds
    settings = topics.model_copy(update={"area_batch_within_s": 0.5})
    opts = SimulationOptions(
        bootstrap=settings.kafka_bootstrap,
        topic_prefix=settings.topic_prefix,
        customers=20,
        days=1.0,
        consumption_history_months=3,
    )
    messages = list(generate(opts))
    sent = Counter(m.topic for m in messages)
    dead = Counter(m.topic for m in messages if m.outcome not in ("valid", "duplicate"))
    ids = {m.key.decode() for m in messages if m.topic == settings.topic(contract.CUSTOMERS)}
    names = {
        orjson.loads(m.value)["name"]
        for m in messages
        if m.topic == settings.topic(contract.CUSTOMERS) and m.value and m.outcome == "valid"
    }
    assert len(ids) == 20 and names

    worker = worker_factory(settings).start()
    port = settings.web_port
    await worker.wait_ready()
    status, body = await asyncio.to_thread(get, port, "/livez")
    assert status == 200 and json.loads(body)["live"] is True

    # scrape all along while the run streams in
    scrapes: list[str] = []
    scrape_s: list[float] = []
    stop = asyncio.Event()

    async def scrape_all_along() -> None:
        while not stop.is_set():
            started = time.perf_counter()
            status, body = await asyncio.to_thread(get, port, "/metrics")
            scrape_s.append(time.perf_counter() - started)
            assert status == 200
            scrapes.append(body.decode())
            await asyncio.sleep(0.5)

    scraper = asyncio.create_task(scrape_all_along())
    t0 = time.monotonic()
    await send(settings, [m for m in messages if m.topic != settings.topic(contract.GRID_OUTAGES)])
    await send_outages(settings, messages)

    readings_topic = settings.topic(contract.METER_READINGS)

    async def all_taken() -> bool:
        text = (await asyncio.to_thread(get, port, "/metrics"))[1].decode()
        got = by_label(samples(text), "gridpulse_events_in_total", "topic")
        return all(got.get(topic, 0) >= n for topic, n in sent.items())

    await eventually(all_taken, 60, "every message sent counted in gridpulse_events_in_total")

    async def caught_up() -> bool:
        return (await asyncio.to_thread(get, port, "/readyz"))[0] == 200

    await eventually(caught_up, 30, "/readyz 200 once the run is taken")
    stop.set()
    await scraper
    took = time.monotonic() - t0

    final: dict[tuple[str, Any], float] = {}
    text = ""

    async def settled() -> bool:  # every input partition's lag and committed offset age 0
        nonlocal final, text
        text = (await asyncio.to_thread(get, port, "/metrics"))[1].decode()
        final = samples(text)
        lag_and_age = [
            v
            for k, v in final.items()
            if k[0] in ("gridpulse_consumer_lag_records", "gridpulse_committed_offset_age_seconds")
        ]
        return bool(lag_and_age) and not any(lag_and_age)

    await eventually(settled, 30, "lag and committed offset age 0 on every input partition")
    status, body = await asyncio.to_thread(get, port, "/readyz")
    ready = json.loads(body)
    assert status == 200 and ready["ready"] is True, ready
    assert set(ready["checks"]) == {"assigned", "recovered", "not_rebalancing", "caught_up", "kafka", "redis"}
    assert all(c["ok"] for c in ready["checks"].values()), ready
    status, body = await asyncio.to_thread(get, port, "/livez")
    assert status == 200, body

    counters = await worker.counters()
    refetched = counters["counters"].get("offsets_refetched", 0)

    # events in per topic: every message sent, once (a refetch after a hole redelivers some)
    events_in = by_label(final, "gridpulse_events_in_total", "topic")
    for topic, n in sent.items():
        if refetched:
            assert events_in[topic] >= n, (topic, events_in, refetched)
        else:
            assert events_in[topic] == n, (topic, events_in)
    # dead letters per topic: the bad ones the simulator sent, and what the counters page says
    dlq = by_label(final, "gridpulse_dead_letters_total", "topic")
    assert {t: int(n) for t, n in dlq.items() if n} == dict(dead)
    pages = {settings.topic(t): sum(kinds.values()) for t, kinds in counters["dead_letters"].items()}
    assert {t: n for t, n in pages.items() if n} == dict(dead)
    # the batch agents' histograms saw every reading and profile
    batch_counts = by_label(final, "gridpulse_batch_events_sum", "agent")
    assert batch_counts["readings"] == sent[readings_topic]
    assert batch_counts["customers"] == sent[settings.topic(contract.CUSTOMERS)]
    # caught up: no lag on any input partition; the readings' partitions all have an event age
    lag = {k: v for k, v in final.items() if k[0] == "gridpulse_consumer_lag_records"}
    assert lag and all(v == 0 for v in lag.values()), lag
    assert {dict(k[1])["consumer_group"] for k in lag} == {settings.app_id}
    ages = {
        int(dict(k[1])["partition"]): v
        for k, v in final.items()
        if k[0] == "gridpulse_event_age_seconds" and dict(k[1])["topic"] == readings_topic
    }
    assert set(ages) == set(range(settings.topic_partitions)), ages
    # the run ends at now, aligned to 15 minutes, and the worker took it within the test
    assert all(0 <= age <= 900 + took + 60 for age in ages.values()), ages
    commit_age = {k: v for k, v in final.items() if k[0] == "gridpulse_committed_offset_age_seconds"}
    assert commit_age and all(v == 0 for v in commit_age.values()), commit_age
    # state: the per-customer tables hold the customers (RocksDB's estimate)
    records = by_label(final, "gridpulse_state_records", "table")
    assert records["load-state"] >= 1 and records["customer-profiles"] >= 1, records
    assert by_label(final, "gridpulse_state_bytes", "table")["load-state"] > 0
    assert final[("gridpulse_dependency_up", (("dependency", "kafka"),))] == 1
    assert final[("gridpulse_dependency_up", (("dependency", "redis"),))] == 1
    assert final[("gridpulse_ready", (("service", "worker"),))] == 1
    assert sum(by_label(final, "gridpulse_redis_backlog_entries", "stage").values()) == 0
    outage_alerts = by_label(final, "gridpulse_alerts_published_total", "kind").get("outage", 0)
    assert outage_alerts == counters["counters"].get("outage_alerts_published", 0)

    # no customer in any label, gridpulse_* names in base units -- in every scrape of the run
    assert len(scrapes) >= 2
    forbidden = ids | names
    for scrape in [*scrapes, text]:
        assert lint_exposition(scrape, forbidden_values=forbidden) == []

    if SAVE_SCRAPE:  # the closing note's sample: the scrape with the most lag, and the last

        def lag_of(s: str) -> float:
            return sum(v for k, v in samples(s).items() if k[0] == "gridpulse_consumer_lag_records")

        during = max(scrapes, key=lag_of)
        took_ms = sorted(1000 * t for t in scrape_s)
        note = (
            f"# {len(scrapes)} scrapes during the run, each {took_ms[0]:.0f}-{took_ms[-1]:.0f} ms "
            f"(median {took_ms[len(took_ms) // 2]:.0f} ms) round trip\n"
            f"# during the run (lag {lag_of(during):.0f})\n{during}\n# after, caught up\n{text}"
        )
        await asyncio.to_thread(Path(SAVE_SCRAPE).write_text, note)


async def send_outages(settings: Any, messages: list[Any]) -> None:
    """The outage events last: their alerts name the customers the worker knows by then."""
    outages = [(m.key, m.value) for m in messages if m.topic == settings.topic(contract.GRID_OUTAGES)]
    if outages:
        await produce(settings, contract.GRID_OUTAGES, outages)
