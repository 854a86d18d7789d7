"""Quix Streams running gridpulse's metering core (bench/quix_core_peer.py), the fair peer of
`make bench`: one output message per input message, and every customer's last document equals
the independent numpy reference (tests/reference.py), for single readings and for the same
readings as blocks (bench/blocks.py). And the Quix day peer (bench/quix_peer.py) on blocks: the
day statistics its single-reading form gives (test_bench_peers)."""

from __future__ import annotations

import importlib.util
import os
from collections import defaultdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import pytest

from bench.blocks import as_blocks
from bench.run import population, publish
from gridpulse.settings import Settings
from schemas import topics as contract
from streams.kafka import read_all
from tests.environment import in_ci
from tests.integration.helpers import cpu_plausible
from tests.stats_check import assert_stats_match, computed_at

pytestmark = [pytest.mark.integration, pytest.mark.timeout(420)]

CUSTOMERS = 5
INTERVALS = 2 * 96 + 8  # two days and two hours: the day window is not the d30 window


@pytest.fixture(autouse=True)
def _quix(monkeypatch: pytest.MonkeyPatch) -> None:
    if importlib.util.find_spec("quixstreams") is None:
        msg = "quixstreams is not installed (the `bench` extra: make setup)"
        if in_ci():
            pytest.fail(msg)
        pytest.skip(msg)
    if "libfaketime" in os.environ.get("LD_PRELOAD", ""):
        # under scripts/at_clock.sh the peer runs on the real clock: librdkafka's timed waits
        # hang under Debian 12's libfaketime (see test_bench_peers); this process keeps the fake one
        monkeypatch.delenv("LD_PRELOAD")


async def run_core_peer(
    settings: Settings, messages: list[tuple[bytes, bytes]], tmp_path: Path, *, blocks: bool
) -> tuple[Any, list[dict[str, Any]]]:
    """The peer over ``messages``: its rate and its output documents in partition order."""
    if "FAKETIME" in os.environ:
        # Under scripts/at_clock.sh the peer would run on the real clock (see `_quix`), but unlike
        # the plain and the day peer it reads the wall clock (future_timestamp, as_of): beside a
        # faked test it dead-letters every reading. Its metering core is the worker's, which runs
        # under the fake clocks in the other tests.
        pytest.skip("the Quix core peer reads the wall clock and cannot run under libfaketime 0.9.10")
    from bench.quix_core_peer import OUTPUT_TOPIC
    from bench.quix_peer import delete_peer_topics, measure_peer

    await publish(settings, contract.METER_READINGS, messages)
    group, output = f"{settings.app_id}-quix-core", settings.topic(OUTPUT_TOPIC)
    try:
        rate = await measure_peer(
            settings,
            len(messages),
            tmp_path,
            group=group,
            output_topic=output,
            timeout_s=240,
            blocks=blocks,
            module="bench.quix_core_peer",
        )
        records = await read_all(settings, output)
    finally:
        await delete_peer_topics(settings, group, output)
    docs = []
    for rec in sorted(records, key=lambda r: (r.partition, r.offset)):
        assert rec.value is not None
        doc = orjson.loads(rec.value)
        assert rec.key == doc["customer_id"].encode()
        docs.append(doc)
    return rate, docs


def customer_rows(readings: list[tuple[bytes, bytes]]) -> dict[str, list[dict[str, Any]]]:
    rows: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for _, value in readings:
        doc = orjson.loads(value)
        rows[doc["customer_id"]].append(doc)
    return rows


def assert_last_match_reference(
    docs: list[dict[str, Any]], rows: dict[str, list[dict[str, Any]]], settings: Settings, since: datetime
) -> None:
    last = {d["customer_id"]: d for d in docs}  # a customer's documents share a partition
    assert last.keys() == rows.keys()
    for cid, mine in rows.items():
        doc = last[cid]
        assert doc["d30"]["intervals"] == len(mine), cid
        assert doc["profile_known"] is False  # it reads no profiles, as the naive agent
        now = computed_at(doc, since)
        assert_stats_match(doc, mine, [], settings.tz, settings.lateness_s, now=now)


async def test_quix_core_peer_on_readings_matches_reference(topics: Settings, tmp_path: Path) -> None:
    since = datetime.now(UTC)
    readings, _ = population(topics, CUSTOMERS, INTERVALS, seed=5)
    rows = customer_rows(readings)
    rate, docs = await run_core_peer(topics, readings, tmp_path, blocks=False)

    assert cpu_plausible(rate) and rate.readings == len(readings) - 1  # counted after the first message
    assert len(docs) == len(readings)  # one document per reading
    for cid, mine in rows.items():  # each counts one interval more than the one before
        counts = [d["d30"]["intervals"] for d in docs if d["customer_id"] == cid]
        assert counts == list(range(1, len(mine) + 1)), cid
    assert_last_match_reference(docs, rows, topics, since)


async def test_quix_core_peer_on_blocks_matches_reference(topics: Settings, tmp_path: Path) -> None:
    since = datetime.now(UTC)
    readings, _ = population(topics, CUSTOMERS, INTERVALS, seed=5)
    rows = customer_rows(readings)
    blocks = as_blocks(readings, topics.tz)
    rate, docs = await run_core_peer(topics, blocks, tmp_path, blocks=True)

    first_block = len(orjson.loads(blocks[0][1])["kwh"])
    assert cpu_plausible(rate) and rate.readings == len(readings) - first_block  # after the first block
    assert len(docs) == len(blocks)  # one document per block
    assert_last_match_reference(docs, rows, topics, since)


async def test_quix_day_peer_on_blocks_matches_the_state(topics: Settings, tmp_path: Path) -> None:
    """The day load factor and PF peer fed blocks: one update per block, and every customer's
    last day equals the ``day`` window of gridpulse's state over the same readings."""
    from zoneinfo import ZoneInfo

    from bench.quix_peer import OUTPUT_TOPIC, delete_peer_topics, measure_peer
    from metering.load import LoadState

    tz: ZoneInfo = topics.tz
    readings, _ = population(topics, CUSTOMERS, INTERVALS, seed=5)
    rows = customer_rows(readings)
    blocks = as_blocks(readings, tz)
    await publish(topics, contract.METER_READINGS, blocks)
    group, output = f"{topics.app_id}-quix-day", topics.topic(OUTPUT_TOPIC)
    try:
        rate = await measure_peer(
            topics, len(blocks), tmp_path, group=group, output_topic=output, timeout_s=240, blocks=True
        )
        records = await read_all(topics, output)
    finally:
        await delete_peer_topics(topics, group, output)
    assert cpu_plausible(rate) and rate.readings > 0
    assert len(records) == len(blocks)  # an update per block
    last = {}
    for rec in sorted(records, key=lambda r: (r.partition, r.offset)):
        assert rec.value is not None
        doc = orjson.loads(rec.value)
        last[doc["customer_id"]] = doc["day"]
    assert last.keys() == rows.keys()
    for cid, mine in rows.items():
        state = LoadState(tz=tz)
        state.apply([dict(r, ts=datetime.fromisoformat(r["ts"])) for r in mine])
        ours = state.snapshot()["day"]
        for field in ("kwh", "kvarh", "max_kw", "hours", "load_factor", "power_factor", "intervals"):
            assert last[cid][field] == pytest.approx(ours[field], rel=1e-12), (cid, field)
