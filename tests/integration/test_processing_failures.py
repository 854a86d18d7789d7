"""A defect met while processing a valid message, on the real stack: the message goes to the
DLQ as ``processing_failed`` with the exception, the other customers' messages are applied, and
the agent lives on. Nothing is acked past it unseen (faust itself would ack it and restart the
agent: the message would be lost).

The defect is real, not simulated in the code: a corrupt state record for one customer in a
table's changelog (as a bad disk, a bad deploy or a hand-edited topic leaves it). The worker
restores it into RocksDB at start-up and then fails to read it back.
"""

from __future__ import annotations

import base64
from datetime import UTC, datetime, timedelta

import orjson
import pytest
from aiokafka.admin import NewTopic

from gridpulse.settings import Settings
from schemas import topics as contract
from schemas.models import DeadLetter
from streams.kafka import make_admin, read_all, read_latest
from tests.integration.helpers import eventually, js, produce, produce_to, reading

pytestmark = [pytest.mark.integration, pytest.mark.timeout(240)]

CORRUPT = b"\x00not a state record"


async def plant_corrupt_state(settings: Settings, table: str, customer_id: str) -> None:
    """A garbage record for ``customer_id`` in ``table``'s changelog, before the worker starts
    (same partition count and key partitioner as the worker's table)."""
    name = f"{settings.app_id}-{table}-changelog"
    admin = make_admin(settings)
    await admin.start()
    try:
        await admin.create_topics(
            [
                NewTopic(
                    name=name,
                    num_partitions=settings.topic_partitions,
                    replication_factor=settings.topic_replication,
                    topic_configs={"cleanup.policy": "compact"},
                )
            ]
        )
    finally:
        await admin.close()
    await produce_to(settings, name, [(customer_id.encode(), CORRUPT)])


def bill(cid: str, event_id: str, ts: datetime) -> dict[str, object]:
    return {
        "event_id": event_id,
        "customer_id": cid,
        "ts": ts.isoformat(),
        "type": "bill",
        "amount": 500.0,
        "bill_id": f"B-{event_id}",
        "due_date": (ts + timedelta(days=20)).date().isoformat(),
        "period": "2026-10",
    }


async def test_a_corrupt_state_sends_its_messages_to_the_dlq_and_the_rest_goes_on(topics, worker_factory):
    settings = topics
    await plant_corrupt_state(settings, "load-state", "C2")
    await plant_corrupt_state(settings, "arrears-state", "C4")
    worker = worker_factory(settings).start()
    await worker.wait_ready()

    base = (datetime.now(UTC) - timedelta(hours=3)).replace(minute=0, second=0, microsecond=0)
    readings = [
        (cid.encode(), js(reading(cid, base + timedelta(minutes=15 * (i + 1)), 2.0 + i)))
        for i in range(3)
        for cid in ("C1", "C2", "C3")
    ]
    await produce(settings, contract.METER_READINGS, readings)
    await produce(
        settings,
        contract.BILLING_EVENTS,
        [(b"C4", js(bill("C4", "E1", base))), (b"C1", js(bill("C1", "E2", base)))],
    )

    async def settled() -> bool:
        c = (await worker.counters())["counters"]
        return (
            c.get("readings_applied", 0) == 6
            and c.get("billing_applied", 0) == 1
            and c.get("processing_failed", 0) == 4
        )

    await eventually(settled, 90, "6 readings and 1 bill applied, 4 messages failed")
    counters = await worker.counters()
    assert counters["dead_letters"][contract.METER_READINGS] == {"processing_failed": 3}
    assert counters["dead_letters"][contract.BILLING_EVENTS] == {"processing_failed": 1}

    # the DLQ holds C2's three readings and C4's bill, byte for byte, with the exception
    sent = {contract.METER_READINGS: sorted(v for k, v in readings if k == b"C2")}
    sent[contract.BILLING_EVENTS] = [js(bill("C4", "E1", base))]
    for topic, expected in sent.items():
        dlq = [orjson.loads(r.value) for r in await read_all(settings, settings.topic(contract.dlq(topic)))]
        for rec in dlq:
            DeadLetter.model_validate(rec)
            assert rec["error"] == "processing_failed"
            assert rec["detail"].startswith(("ValueError", "JSONDecodeError")), rec["detail"]
        assert sorted(base64.b64decode(rec["raw"]) for rec in dlq) == expected, topic

    # the other customers are untouched by it
    latest = await read_latest(settings, contract.STATS_CUSTOMER, "customer_id")
    assert latest["C1"]["d30"]["kwh"] == pytest.approx(2.0 + 3.0 + 4.0)
    assert latest["C3"]["d30"]["kwh"] == pytest.approx(2.0 + 3.0 + 4.0)
    assert latest["C1"]["arrears"]["outstanding"] == pytest.approx(500.0)  # its bill applied
    assert "C2" not in latest and "C4" not in latest

    # and the agents are alive: a later reading of C1 is applied
    await produce(
        settings, contract.METER_READINGS, [(b"C1", js(reading("C1", base + timedelta(minutes=60), 1.0)))]
    )

    async def one_more() -> bool:
        return (await worker.counters())["counters"]["readings_applied"] == 7

    await eventually(one_more, 30, "a reading after the failures is applied")
    assert worker.running
