"""A new deployment publishes scores within seconds of its first statistics (issue 11, 2).

The worker starts on empty topics with the production pass interval (300 s): its first
population pass used to see an empty view and sleep the whole interval, so dashboards saw no
score for five minutes. Now a pass runs as soon as the view holds customers, and again when the
population has grown by half. Measured on the broker's record timestamps (both topics are
written by the worker): per customer, its first score no later than a few seconds after its
first statistics, for the first customers and for a second wave that doubles the population.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from schemas import topics as contract
from streams.kafka import read_all
from tests.integration.helpers import eventually, js, produce, reading

pytestmark = [pytest.mark.integration, pytest.mark.timeout(240)]
WAVE = 30
WITHIN_S = 5.0  # "within seconds": the batch window, the pass's poll, the pass itself


def population(first: int, n: int, now: datetime) -> dict[str, list[tuple[bytes, bytes]]]:
    out: dict[str, list[tuple[bytes, bytes]]] = {contract.CUSTOMERS: [], contract.METER_READINGS: []}
    quarter = now.replace(minute=now.minute - now.minute % 15, second=0, microsecond=0)  # on the grid
    for r in range(first, first + n):
        c = f"N{r:03d}"
        profile = {
            "customer_id": c,
            "tariff_class": "general_industrial",
            "voltage_kv": 10.0,
            "feeders": [f"F{r % 4}"],
            "emergency_generator": False,
            "importance": "none",
        }
        out[contract.CUSTOMERS].append((c.encode(), js(profile)))
        # eight quarter-hours ending an hour ago, a different size per customer
        for i in range(8):
            end = quarter - timedelta(hours=1) - timedelta(minutes=15 * (7 - i))
            out[contract.METER_READINGS].append((c.encode(), js(reading(c, end, 2.0 + r + (i % 3)))))
    return out


async def first_publication(settings: Any, topic: str) -> dict[str, float]:
    """Per customer (key), the timestamp of its first record on ``topic``, seconds."""
    first: dict[str, float] = {}
    for rec in await read_all(settings, settings.topic(topic)):
        if rec.key is not None and rec.value is not None:
            first.setdefault(rec.key.decode(), rec.timestamp / 1000.0)
    return first


async def scores_follow_stats(settings: Any, customers: set[str]) -> dict[str, float]:
    """Wait until every customer has a score; its delay after the customer's first stats."""

    async def all_scored() -> bool:
        return customers <= set(await first_publication(settings, contract.SCORES_CUSTOMER))

    await eventually(all_scored, 60, f"a score for each of {len(customers)} customers")
    stats = await first_publication(settings, contract.STATS_CUSTOMER)
    scores = await first_publication(settings, contract.SCORES_CUSTOMER)
    return {c: scores[c] - stats[c] for c in customers}


async def test_a_new_deployment_scores_within_seconds(topics, worker_factory):
    settings = topics
    # the production interval: only the new scheduling can make scores appear within seconds
    worker = worker_factory(settings, GRIDPULSE_SCORING_INTERVAL_S="300").start()
    await worker.wait_ready()
    now = datetime.now(UTC)

    first = population(0, WAVE, now)
    for topic, batch in first.items():  # profiles before readings, as in production
        await produce(settings, topic, batch)
    delays = await scores_follow_stats(settings, {f"N{r:03d}" for r in range(WAVE)})
    late = {c: round(d, 2) for c, d in delays.items() if d > WITHIN_S}
    assert not late, f"scores more than {WITHIN_S} s after the statistics: {late}"
    assert min(delays.values()) >= 0.0  # a score is never ahead of its statistics

    passes = (await worker.counters())["counters"]["scoring_passes"]

    # a second wave doubles the population: scored at once against the first state, and the
    # population ranked again within seconds, not after the 300-s interval
    second = population(WAVE, WAVE, now)
    for topic, batch in second.items():
        await produce(settings, topic, batch)
    delays = await scores_follow_stats(settings, {f"N{r:03d}" for r in range(WAVE, 2 * WAVE)})
    late = {c: round(d, 2) for c, d in delays.items() if d > WITHIN_S}
    assert not late, f"second wave: scores more than {WITHIN_S} s after the statistics: {late}"

    async def ranked_again() -> bool:
        return (await worker.counters())["counters"]["scoring_passes"] > passes

    await eventually(ranked_again, 20, "a population pass after the population doubled")
