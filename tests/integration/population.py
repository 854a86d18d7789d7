"""A simulated population for the statistics tests on the real stack: generate it, send it in
the order a production stream has, and read back every customer's final ``stats.customer``
(tests/integration/test_statistics.py and the fault scenarios)."""

from __future__ import annotations

from collections import defaultdict
from typing import Any
from zoneinfo import ZoneInfo

import orjson

from gridpulse.settings import Settings
from schemas import topics as contract
from simulator.blocks import block_readings
from simulator.run import Message, SimulationOptions, generate
from streams.kafka import read_latest
from tests.integration.helpers import eventually, produce

SHANGHAI = ZoneInfo("Asia/Shanghai")


def simulate(settings: Settings, **kw: Any) -> list[Message]:
    opts = SimulationOptions(
        bootstrap=settings.kafka_bootstrap, topic_prefix=settings.topic_prefix, outages=False, **kw
    )
    return list(generate(opts))


def valid_by_customer(messages: list[Message], topic: str) -> dict[str, list[dict[str, Any]]]:
    """The messages a correct pipeline uses (valid and duplicates), per customer, in order."""
    out: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for m in messages:
        if m.topic.endswith(topic) and m.outcome in ("valid", "duplicate"):
            value = orjson.loads(m.value)
            out[value["customer_id"]].append(value)
    return out


async def send(settings: Settings, messages: list[Message]) -> None:
    by_topic: dict[str, list[tuple[bytes | None, bytes | None]]] = defaultdict(list)
    for m in messages:
        by_topic[m.topic[len(settings.topic_prefix) :]].append((m.key, m.value))
    # profiles first, billing before readings: the order a production stream has
    order = (
        contract.CUSTOMERS,
        contract.CONSUMPTION_HISTORY,
        contract.BILLING_EVENTS,
        contract.METER_READINGS,
    )
    for topic in order:
        if by_topic.get(topic):
            await produce(settings, topic, by_topic[topic])


async def final_stats(
    settings: Settings, expected: dict[str, int], window: str, within_s: float
) -> dict[str, Any]:
    """The latest stats.customer per customer, once each has ``expected`` intervals in ``window``."""
    latest: dict[str, Any] = {}

    async def complete() -> bool:
        nonlocal latest
        latest = await read_latest(settings, contract.STATS_CUSTOMER, "customer_id")
        return all(cid in latest and latest[cid][window]["intervals"] >= n for cid, n in expected.items())

    await eventually(complete, within_s, f"stats.customer {window} complete for every customer")
    return latest


def seeds_by_customer(messages: list[Message]) -> dict[str, dict[str, float]]:
    return {
        cid: {h["period"]: h["kwh"] for h in rows}
        for cid, rows in valid_by_customer(messages, contract.CONSUMPTION_HISTORY).items()
    }


def block_readings_by_customer(messages: list[Message]) -> dict[str, list[dict[str, Any]]]:
    """The single readings of the blocks a correct pipeline uses (``simulate(blocks=True)``),
    per customer, in delivery order (each block's intervals in order; those not read left out)."""
    out: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for m in messages:
        if m.topic.endswith(contract.METER_READINGS) and m.outcome in ("valid", "duplicate"):
            for r in block_readings(orjson.loads(m.value)):
                out[r["customer_id"]].append(r)
    return out


def distinct_intervals(readings: dict[str, list[dict[str, Any]]]) -> dict[str, int]:
    return {cid: len({(r["meter_id"], r["ts"]) for r in rs}) for cid, rs in readings.items()}
