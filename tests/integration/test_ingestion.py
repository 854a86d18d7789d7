"""Ingestion on the real broker: valid, malformed, impossible and duplicate readings.

Every valid reading is counted exactly once (stats.customer kWh equals the sum of the valid
ones), every bad one is in meter.readings.dlq with its reason, raw bytes and offset, and the
worker is still running and processing afterwards.
"""

from __future__ import annotations

import base64
from collections import Counter
from datetime import UTC, datetime, timedelta

import orjson
import pytest

from schemas import topics as contract
from schemas.models import DeadLetter
from streams.kafka import read_all, read_latest
from tests.integration.helpers import eventually, js, produce

pytestmark = [pytest.mark.integration, pytest.mark.timeout(240)]


def reading(
    cid: str, end: datetime, kwh: float, meter: str | None = None, **extra: object
) -> dict[str, object]:
    return {
        "meter_id": f"M-{cid}",
        "customer_id": cid,
        "ts": end.isoformat(),
        "interval_s": 900,
        "kwh": kwh,
        "kvarh": kwh * 0.4,
        **extra,
    }


async def test_bad_input_goes_to_dlq_and_valid_is_counted_once(topics, worker_factory):
    settings = topics
    worker = worker_factory(settings).start()
    await worker.wait_ready()

    base = (datetime.now(UTC) - timedelta(hours=6)).replace(minute=0, second=0, microsecond=0)
    customers = ["C1", "C2", "C3"]
    messages: list[tuple[bytes | None, bytes | None]] = []
    expected_kwh: Counter[str] = Counter()
    for i in range(12):
        end = base + timedelta(minutes=15 * (i + 1))
        for n, cid in enumerate(customers):
            kwh = round(1.0 + 0.25 * i + n, 4)
            messages.append((cid.encode(), js(reading(cid, end, kwh))))
            expected_kwh[cid] += kwh
    valid = len(messages)
    # duplicates: head-end retries of readings already sent (and one out of order)
    duplicates = [messages[0], messages[5], messages[17], messages[3]]
    expected_dlq = {
        "decode": [(b"C1", b"not json at all"), (b"C2", b"\xff\xfe\x00garbage"), (b"C1", b"[1, 2, 3]")],
        "schema": [
            (b"C1", js({"meter_id": "M-C1", "customer_id": "C1", "ts": base.isoformat()})),  # no kwh
            (b"C2", js({**reading("C2", base, 1.0), "kwh": "lots"})),
            (b"C3", js({**reading("C3", base, 1.0), "interval_s": "900"})),
        ],
        "negative_energy": [(b"C1", js(reading("C1", base, -2.5)))],
        "future_timestamp": [(b"C2", js(reading("C2", base + timedelta(days=400), 1.0)))],
        "key_mismatch": [(b"C9", js(reading("C3", base, 1.0)))],
    }
    bad = [m for group in expected_dlq.values() for m in group]
    await produce(settings, contract.METER_READINGS, messages[:20] + bad[:4] + duplicates)
    await produce(settings, contract.METER_READINGS, messages[20:] + bad[4:])

    async def all_accounted() -> bool:
        c = await worker.counters()
        dl = sum(c["dead_letters"].get(contract.METER_READINGS, {}).values())
        got = c["counters"].get("readings_applied", 0) + c["counters"].get("readings_duplicate", 0)
        return got + dl >= valid + len(duplicates) + len(bad)

    await eventually(all_accounted, 90, "worker accounts for every reading")
    counters = await worker.counters()
    assert counters["counters"]["readings_applied"] == valid
    assert counters["counters"]["readings_duplicate"] == len(duplicates)
    assert counters["dead_letters"][contract.METER_READINGS] == {k: len(v) for k, v in expected_dlq.items()}

    # the DLQ holds each bad message byte for byte, with its context
    dlq = [
        orjson.loads(r.value)
        for r in await read_all(settings, settings.topic(contract.dlq(contract.METER_READINGS)))
    ]
    assert len(dlq) == len(bad)
    by_kind: dict[str, list[bytes]] = {}
    for rec in dlq:
        DeadLetter.model_validate(rec)
        assert rec["topic"] == settings.topic(contract.METER_READINGS)
        assert rec["offset"] >= 0 and 0 <= rec["partition"] < settings.topic_partitions
        assert rec["detail"]
        by_kind.setdefault(rec["error"], []).append(base64.b64decode(rec["raw"]))
    assert {k: sorted(v) for k, v in by_kind.items()} == {
        k: sorted(m[1] for m in v) for k, v in expected_dlq.items()
    }

    # every valid reading counted exactly once
    async def stats_complete() -> bool:
        latest = await read_latest(settings, contract.STATS_CUSTOMER, "customer_id")
        return all(c in latest and latest[c]["d30"]["intervals"] == 12 for c in customers)

    await eventually(stats_complete, 30, "stats for all customers")
    latest = await read_latest(settings, contract.STATS_CUSTOMER, "customer_id")
    for cid in customers:
        assert latest[cid]["d30"]["kwh"] == pytest.approx(expected_kwh[cid], rel=1e-12)
        assert latest[cid]["profile_known"] is False  # accepted and flagged, not dropped

    # the agent is alive: a new reading after all that is applied
    later = base + timedelta(minutes=15 * 13)
    await produce(settings, contract.METER_READINGS, [(b"C1", js(reading("C1", later, 7.0)))])

    async def applied_one_more() -> bool:
        return (await worker.counters())["counters"]["readings_applied"] == valid + 1

    await eventually(applied_one_more, 30, "a reading after the bad ones is applied")
    assert worker.running
