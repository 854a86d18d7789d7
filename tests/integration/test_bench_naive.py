"""The naive per-message Faust baseline of `make bench` (bench/naive_faust.py) computes the
same statistics as the pipeline: every customer's last document against the independent numpy
reference (tests/reference.py), and one state write and one document per message, for single
readings and for the same readings as blocks (bench/blocks.py)."""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import pytest

from bench.blocks import as_blocks
from bench.naive_faust import STATS_TOPIC, app_topics, changelog_topic, naive_faust_rps
from bench.run import population, publish
from gridpulse.settings import Settings
from schemas import topics as contract
from streams.kafka import delete_topics, read_all
from tests.integration.helpers import cpu_plausible
from tests.reference import reference_load
from tests.stats_check import assert_stats_match, close, computed_at, reading_row

pytestmark = [pytest.mark.integration, pytest.mark.timeout(420)]

CUSTOMERS = 5
INTERVALS = 2 * 96 + 8  # two days and two hours: the day window is not the d30 window


async def test_naive_agent_matches_reference(topics: Settings, tmp_path: Path) -> None:
    settings = topics
    since = datetime.now(UTC)
    readings, _ = population(settings, CUSTOMERS, INTERVALS, seed=5)
    rows: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for _, value in readings:
        doc = orjson.loads(value)
        rows[doc["customer_id"]].append(doc)
    assert len(rows) == CUSTOMERS and len(readings) == CUSTOMERS * INTERVALS
    await publish(settings, contract.METER_READINGS, readings)

    app_id = f"{settings.app_id}-naive"
    try:
        rate = await naive_faust_rps(settings, len(readings), tmp_path / "naive", app_id=app_id, keep=True)
        stats = await read_all(settings, settings.topic(STATS_TOPIC))
        changelog = await read_all(settings, changelog_topic(app_id))
    finally:
        await delete_topics(settings, app_topics(settings, app_id))
    assert rate.readings == len(readings) and rate.rps > 0 and cpu_plausible(rate)
    assert not list((tmp_path / "naive").glob("naive-data-*")), "its RocksDB directory is removed"

    # per message: one state write (changelog record) and one document
    assert len(changelog) == len(readings)
    assert len(stats) == len(readings)
    docs: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for rec in sorted(stats, key=lambda r: (r.partition, r.offset)):
        doc = orjson.loads(rec.value)
        assert rec.key == doc["customer_id"].encode()
        docs[doc["customer_id"]].append(doc)
    assert docs.keys() == rows.keys()

    for cid, customer_rows in rows.items():
        assert len(docs[cid]) == len(customer_rows), cid
        last = docs[cid][-1]
        # the document after each reading counts one interval more
        assert [d["d30"]["intervals"] for d in docs[cid]] == list(range(1, len(customer_rows) + 1)), cid
        now = computed_at(last, since)  # the month is closed or open as of the worker's clock
        ref = reference_load(
            [[reading_row(r) for r in customer_rows]], settings.tz, settings.lateness_s, now=now.timestamp()
        )
        for window in ("day", "d30"):
            for field in ("kwh", "load_factor", "power_factor", "intervals"):
                assert close(last[window][field], ref[window][field]), (cid, window, field, last[window])
        assert last["day"]["intervals"] < last["d30"]["intervals"] == len(customer_rows), cid
        assert last["profile_known"] is False  # it reads no profiles
        # and the whole document, field by field, as the pipeline's test checks it
        assert_stats_match(last, customer_rows, [], settings.tz, settings.lateness_s, now=now)


async def test_naive_agent_on_blocks_matches_reference(topics: Settings, tmp_path: Path) -> None:
    """The same population as blocks (a meter's local day per block): one state write and one
    document per block, and every customer's last document equals the reference of its readings."""
    settings = topics
    since = datetime.now(UTC)
    readings, _ = population(settings, CUSTOMERS, INTERVALS, seed=5)
    rows: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for _, value in readings:
        doc = orjson.loads(value)
        rows[doc["customer_id"]].append(doc)
    blocks = as_blocks(readings, settings.tz)
    days = {
        (cid, datetime.fromtimestamp(reading_row(r)["ts"] - r["interval_s"], settings.tz).date())
        for cid, customer_rows in rows.items()
        for r in customer_rows
    }
    assert len(blocks) == len(days) >= 3 * CUSTOMERS  # a block per meter (one each) and local day
    await publish(settings, contract.METER_READINGS, blocks)

    app_id = f"{settings.app_id}-naive-blocks"
    try:
        rate = await naive_faust_rps(
            settings, len(blocks), tmp_path / "naive", app_id=app_id, keep=True, blocks=True
        )
        stats = await read_all(settings, settings.topic(STATS_TOPIC))
        changelog = await read_all(settings, changelog_topic(app_id))
    finally:
        await delete_topics(settings, app_topics(settings, app_id))
    assert rate.readings == len(readings) and cpu_plausible(rate)  # the rate counts the intervals

    assert len(changelog) == len(stats) == len(blocks)
    last: dict[str, dict[str, Any]] = {}
    for rec in sorted(stats, key=lambda r: (r.partition, r.offset)):
        doc = orjson.loads(rec.value)
        last[doc["customer_id"]] = doc
    assert last.keys() == rows.keys()
    for cid, customer_rows in rows.items():
        doc = last[cid]
        assert doc["d30"]["intervals"] == len(customer_rows), cid
        now = computed_at(doc, since)
        assert_stats_match(doc, customer_rows, [], settings.tz, settings.lateness_s, now=now)
