"""Servers stopped under load: the Kafka broker under a running worker, PostgreSQL under the
alerts consumer.

1. "Kafka broker stopped and restarted mid-stream: the worker recovers without a restart".
   One worker; readings stream in; part-way through, the broker is stopped (``down``: SIGTERM,
   a controlled shutdown) or killed (``kill``: SIGKILL), stays away for a while and comes back;
   the rest of the stream follows. The same worker process must apply everything: every
   customer's final ``stats.customer`` equals the numpy reference of what was sent, no reading
   lost, none counted twice. Its ``/readyz`` is polled all along: 200 before the fault, 503 with
   the ``kafka`` check failing while the broker is away, 200 again once it is back (the times
   in the fault report; ``GRIDPULSE_READYZ_TIMELINE=<file>`` writes every answer there).
2. "PostgreSQL stopped during an alert burst: every alert stored once after it returns".
   The alerts consumer stores a burst of credit and outage alert messages; PostgreSQL is stopped
   in the middle of it while the burst goes on, then restarted. Every alert message ends up in
   the store once (row = its latest state, one history entry per state), every manager
   notification is queued once and delivered once.
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
import os
import time
import urllib.error
import urllib.request
from collections import Counter
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg
import pytest
import pytest_asyncio
from pydantic import SecretStr

from alerts.consumer import AlertsConsumer
from gridpulse.settings import Settings
from schemas import topics as contract
from simulator.run import Message
from streams.kafka import make_producer, read_latest
from tests.faults.helpers import Scale, stack
from tests.integration.alert_bursts import (
    all_committed,
    expected_notices,
    lifecycles,
    received,
    stored,
)
from tests.integration.helpers import eventually, js
from tests.integration.population import (
    SHANGHAI,
    distinct_intervals,
    seeds_by_customer,
    send,
    simulate,
    valid_by_customer,
)
from tests.stats_check import assert_stats_match, computed_at
from tests.webhook import WebhookServer

pytestmark = [pytest.mark.integration, pytest.mark.faults, pytest.mark.timeout(1200)]

Pair = tuple[bytes | None, bytes | None]


class PacedProducer:
    """Sends (key, value) pairs to one topic as a live stream: a chunk every ``every_s`` seconds,
    each acknowledged before the next, so ``sent`` always says exactly what went out."""

    def __init__(
        self, settings: Settings, topic: str, pairs: Sequence[Pair], chunks: int, every_s: float
    ) -> None:
        self.settings = settings
        self.topic = settings.topic(topic)
        self.pairs = pairs
        self.chunk = max(1, math.ceil(len(pairs) / chunks))
        self.every_s = every_s
        self.sent = 0

    async def run(self, until: int | None = None) -> int:
        """Send from ``sent`` up to ``until`` (default: the end)."""
        end = len(self.pairs) if until is None else until
        producer = make_producer(self.settings)
        await producer.start()
        try:
            while self.sent < end:
                batch = self.pairs[self.sent : min(end, self.sent + self.chunk)]
                futures = [await producer.send(self.topic, key=k, value=v) for k, v in batch]
                await asyncio.gather(*futures)
                self.sent += len(batch)
                await asyncio.sleep(self.every_s)
        finally:
            await producer.stop()
        return self.sent


# ---------------------------------------------------------------------------------------------
# 1. the broker goes away under a running worker


@dataclass(frozen=True)
class ReadyAnswer:
    at_s: float  # monotonic
    status: int  # 200, 503; 0: no answer
    kafka_ok: bool | None
    failing: tuple[str, ...]  # the checks that failed


class ReadyzWatch:
    """Polls a worker's ``/readyz`` every ``every_s`` seconds in a thread, keeping every answer."""

    def __init__(self, port: int, every_s: float = 0.5) -> None:
        self.url = f"http://127.0.0.1:{port}/readyz"
        self.every_s = every_s
        self.answers: list[ReadyAnswer] = []
        self._task: asyncio.Task[None] | None = None

    def _ask(self) -> ReadyAnswer:
        at = time.monotonic()
        try:
            with urllib.request.urlopen(self.url, timeout=15) as resp:
                status, body = resp.status, resp.read()
        except urllib.error.HTTPError as exc:
            status, body = exc.code, exc.read()
        except OSError:
            return ReadyAnswer(at, 0, None, ())
        checks = json.loads(body).get("checks", {})
        failing = tuple(sorted(name for name, c in checks.items() if not c["ok"]))
        return ReadyAnswer(at, status, checks.get("kafka", {}).get("ok"), failing)

    async def _run(self) -> None:
        while True:
            self.answers.append(await asyncio.to_thread(self._ask))
            await asyncio.sleep(self.every_s)

    def start(self) -> None:
        self._task = asyncio.create_task(self._run())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass

    async def until(
        self, status: int, within_s: float, since: float | None = None, kafka_ok: bool | None = None
    ) -> ReadyAnswer:
        """The first answer with ``status`` (and the kafka check's ``kafka_ok``, if given) asked
        at ``since`` (monotonic; default now) or later."""
        since = time.monotonic() if since is None else since
        deadline = time.monotonic() + within_s
        while time.monotonic() < deadline:
            for a in self.answers:
                if a.at_s >= since and a.status == status and kafka_ok in (None, a.kafka_ok):
                    return a
            await asyncio.sleep(0.1)
        recent = [a for a in self.answers if a.at_s >= since][-5:]
        raise AssertionError(f"/readyz never {status} within {within_s} s: {recent}")

    def timeline(self, t0: float, marks: dict[str, float]) -> str:
        """Every change of answer (and the marks), seconds from ``t0``."""
        lines, last = [], None
        events = [(a.at_s, a) for a in self.answers] + [(t, name) for name, t in marks.items()]
        for at, what in sorted(events, key=lambda e: e[0]):
            if isinstance(what, str):
                lines.append(f"{at - t0:8.1f} s  -- {what}")
            elif (what.status, what.failing) != last:
                last = (what.status, what.failing)
                failing = ", ".join(what.failing) or "-"
                lines.append(f"{at - t0:8.1f} s  /readyz {what.status or 'no answer'}  failing: {failing}")
        return "\n".join(lines) + "\n"


async def latest_stats(settings: Settings, expected: dict[str, int], within_s: float) -> dict[str, Any]:
    """The latest stats.customer per customer: as soon as each has ``expected`` d30 intervals,
    or whatever there is after ``within_s`` (the caller counts what is missing)."""
    latest: dict[str, Any] = {}
    deadline = time.monotonic() + within_s
    while True:
        try:
            latest = await read_latest(settings, contract.STATS_CUSTOMER, "customer_id")
        except Exception:  # the broker may still be settling: try again until the deadline
            if time.monotonic() > deadline:
                raise
        if all(cid in latest and latest[cid]["d30"]["intervals"] >= n for cid, n in expected.items()):
            return latest
        if time.monotonic() > deadline:
            return latest
        await asyncio.sleep(1.0)


@pytest.mark.parametrize("fault", ["down", "kill"])
async def test_broker_outage_worker_recovers_in_place(
    fault: str, scale: Scale, topics: Settings, worker_factory: Any, fault_report: Any
) -> None:
    settings = topics  # the production batch settings
    since = datetime.now(UTC)
    outage_s = 10.0 if scale.name == "small" else 20.0
    messages: list[Message] = simulate(
        settings,
        customers=scale.customers,
        days=scale.intervals / 96,
        seed=23,
        bad_share=0.0,
        duplicate_share=0.01,
        late_share=0.03,
        billing_history_months=2,
        consumption_history_months=13,
    )
    readings = valid_by_customer(messages, contract.METER_READINGS)
    billing = valid_by_customer(messages, contract.BILLING_EVENTS)
    seeds = seeds_by_customer(messages)
    expected = distinct_intervals(readings)
    total = sum(expected.values())
    reading_topic = settings.topic(contract.METER_READINGS)
    reading_pairs: list[Pair] = [(m.key, m.value) for m in messages if m.topic == reading_topic]

    worker = worker_factory(settings).start(loglevel="info")
    await worker.wait_ready()
    pid = worker.proc.pid
    # profiles, history and billing first (the order of a production stream), then readings
    await send(settings, [m for m in messages if m.topic != reading_topic])

    # the readings as a live stream; the broker goes away half-way through it
    stream = PacedProducer(settings, contract.METER_READINGS, reading_pairs, chunks=40, every_s=0.25)
    sent_before = await stream.run(until=len(reading_pairs) // 2)

    async def applied() -> int:
        return int((await worker.counters())["counters"].get("readings_applied", 0))

    async def under_way() -> bool:  # at full size the worker is still working off a backlog
        return await applied() >= total // 8

    await eventually(under_way, 300, "the worker an eighth through the readings")
    applied_before = await applied()
    # /readyz all along: ready before the fault (caught up within ready_max_lag: a live stream)
    watch = ReadyzWatch(settings.web_port)
    watch.start()
    t_watch = time.monotonic()
    ready_before = await watch.until(200, 60)

    t_fault = time.monotonic()
    await asyncio.to_thread(stack, fault, "kafka")
    t_down = time.monotonic()
    try:
        # not ready while the broker is away, the kafka check the one that says so
        down = await watch.until(503, 15 + outage_s, since=t_fault, kafka_ok=False)
        await asyncio.sleep(max(0.0, outage_s - (time.monotonic() - t_down)))
        assert worker.running, f"the worker died with the broker away:\n{worker.log_tail()}"
    finally:
        await asyncio.to_thread(stack, "up", "kafka")
    t_back = time.monotonic()
    back = await watch.until(200, 120, since=t_back)

    # the rest of the stream, once the broker is back
    await stream.run()
    assert stream.sent == len(reading_pairs)

    latest = await latest_stats(settings, expected, within_s=120 if scale.name == "small" else 600)
    t_done = time.monotonic()
    await watch.stop()
    marks = {
        f"stack.sh {fault} kafka": t_fault,
        "broker gone (stack.sh returned)": t_down,
        "stack.sh up kafka returned": t_back,
    }
    timeline = watch.timeline(t_watch, marks)
    if os.environ.get("GRIDPULSE_READYZ_TIMELINE"):
        heading = f"# {fault}: worker /readyz every {watch.every_s} s, seconds from the first poll\n"
        await asyncio.to_thread(Path(os.environ["GRIDPULSE_READYZ_TIMELINE"]).write_text, heading + timeline)
    try:
        counters: dict[str, Any] = (await worker.counters())["counters"]
    except OSError:  # not running, or not answering: reported below
        counters = {}

    # a crashed agent is restarted by faust with its batch skipped: a loss inside the process
    crashes = worker.log_path.read_text(errors="replace").count("Crashed reason=")
    got = {cid: (latest[cid]["d30"]["intervals"] if cid in latest else 0) for cid in expected}
    lost = sum(max(0, n - got[cid]) for cid, n in expected.items())
    duplicated = sum(max(0, got[cid] - n) for cid, n in expected.items())
    fault_report(
        sent=total,
        lost=lost,
        duplicated=duplicated,
        fault=f"kafka {fault}",
        readings_messages=len(reading_pairs),
        sent_before_fault=sent_before,
        applied_before_fault=applied_before,
        outage_s=round(t_back - t_fault, 1),
        caught_up_after_back_s=round(t_done - t_back, 1),
        readings_applied=counters.get("readings_applied"),
        readings_duplicate=counters.get("readings_duplicate"),
        customers_missing=sum(1 for cid in expected if cid not in latest),
        profiles_unknown=sum(1 for cid in expected if not latest.get(cid, {}).get("profile_known")),
        agent_crashes=crashes,
        worker_exit_code=worker.proc.poll(),
        readyz_200_before_fault_s=round(ready_before.at_s - t_fault, 1),
        readyz_503_after_fault_s=round(down.at_s - t_fault, 1),
        readyz_503_after_broker_gone_s=round(down.at_s - t_down, 1),
        readyz_failing_during=list(down.failing),
        readyz_200_after_back_s=round(back.at_s - t_back, 1),
    )
    assert worker.running and worker.proc.pid == pid, f"the worker did not survive:\n{worker.log_tail()}"
    assert lost == 0 and duplicated == 0, f"lost {lost}, duplicated {duplicated}\n{worker.log_tail()}"
    assert crashes == 0, f"an agent crashed (its batch skipped):\n{worker.log_tail()}"
    # /readyz: 200 before, 503 because of Kafka within 15 s of the broker gone, 200 again after
    assert ready_before.status == 200 and ready_before.at_s < t_fault, timeline
    assert down.status == 503 and down.kafka_ok is False and down.at_s - t_down <= 15, timeline
    assert back.status == 200 and back.at_s > t_back, timeline
    for cid, rows in readings.items():
        assert latest[cid]["profile_known"], cid  # the profiles sent before the readings
        now = computed_at(latest[cid], since)
        assert_stats_match(
            latest[cid], rows, billing.get(cid, []), SHANGHAI, settings.lateness_s, seeds[cid], now=now
        )
    # the same process throughout: each distinct reading applied exactly once, redeliveries
    # after the outage seen as duplicates
    assert counters["readings_applied"] == total, counters


# ---------------------------------------------------------------------------------------------
# 2. PostgreSQL goes away under the alerts consumer


def alert_burst(n_messages: int) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Credit and outage alert lifecycles (open, escalated, resolved; in order per alert), about
    ``n_messages`` messages in all."""
    per_alert_pair = 10 / 3  # lifecycles(): 1 + 1/2 + 1/3 credit and 1 + 1/2 outage messages
    return lifecycles(0, max(1, math.ceil(n_messages / per_alert_pair)))


@pytest_asyncio.fixture
async def webhook() -> AsyncIterator[WebhookServer]:
    srv = WebhookServer()
    yield srv
    await srv.close()


async def outbox(settings: Settings) -> Counter[tuple[str, str, str]]:
    """alert_notifications rows, (alert_id, manager_id, event) counted."""
    conn = await asyncpg.connect(settings.pg_dsn.get_secret_value())
    try:
        rows = await conn.fetch("SELECT alert_id, manager_id, event FROM alert_notifications")
    finally:
        await conn.close()
    return Counter((r["alert_id"], r["manager_id"], r["event"]) for r in rows)


def excess(got: Counter[Any], want: Counter[Any]) -> int:
    return sum(max(0, n - want[k]) for k, n in got.items())


async def test_postgres_stopped_during_alert_burst_every_alert_stored_once(
    scale: Scale,
    alert_settings: Settings,
    webhook: WebhookServer,
    fault_report: Any,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING, logger="alerts.consumer")
    url = await webhook.start()
    settings = alert_settings.model_copy(
        update={
            "alerts_notifier": "webhook",
            "alerts_webhook_url": SecretStr(url),
            "alerts_webhook_backoff_s": 0.05,
            "alerts_webhook_backoff_max_s": 0.5,
            "alerts_db_backoff_max_s": 1.0,
            "alerts_batch_max": 50,  # many transactions: one of them meets the shutdown
            "alerts_webhook_timeout_s": 60.0,  # requests held below must not time out
        }
    )
    # the managers of every outage alert answer only once the database is gone: their
    # notifications are delivered while it is away, and cannot be stamped then
    webhook.hang_for = {"MA"}
    credits, outages = alert_burst(scale.alerts)
    messages = credits + outages
    notices = expected_notices(messages)

    consumer = AlertsConsumer(settings)
    task = asyncio.create_task(consumer.run())
    try:
        await asyncio.wait_for(consumer.ready.wait(), timeout=60)
        # the burst: both topics at once, paced (4 s small, 20 s full) so that it is still going
        # when the database goes away
        chunks = 20 if scale.name == "small" else 100
        burst = [
            PacedProducer(settings, topic, [(m["alert_id"].encode(), js(m)) for m in msgs], chunks, 0.2)
            for topic, msgs in ((contract.ALERTS_CREDIT, credits), (contract.ALERTS_OUTAGE, outages))
        ]
        producing = asyncio.gather(*(p.run() for p in burst))

        async def a_third_stored() -> bool:
            return producing.done() or consumer.counters.stored >= len(messages) // 3

        await eventually(a_third_stored, 120, "a third of the burst stored")
        stored_before, sent_before = consumer.counters.stored, sum(p.sent for p in burst)
        t_fault = time.monotonic()
        await asyncio.to_thread(stack, "down", "postgres")
        webhook.release.set()
        try:
            stored_at_down, retries_at_down = consumer.counters.stored, consumer.counters.db_retries
            await producing  # the burst goes on with the database away
            await asyncio.sleep(5.0)
            retries_during = consumer.counters.db_retries - retries_at_down
            stored_during = consumer.counters.stored - stored_at_down
        finally:
            await asyncio.to_thread(stack, "up", "postgres")
        t_back = time.monotonic()

        async def settled() -> bool:
            return (
                await all_committed(settings)
                and received(webhook) == notices
                and (await stored(settings))[2] == 0
            )

        try:
            await eventually(settled, 120 if scale.name == "small" else 300, "the burst stored and notified")
        except AssertionError:
            pass  # counted below
        await asyncio.sleep(1.0)  # nothing more trickles in
        t_done = time.monotonic()
        rows, history, pending = await stored(settings)
        queued = await outbox(settings)
    finally:
        consumer.stop()
        (ended,) = await asyncio.wait_for(asyncio.gather(task, return_exceptions=True), timeout=60)

    latest: dict[str, dict[str, Any]] = {}
    for m in messages:
        latest[m["alert_id"]] = m  # in order per alert: the last is the newest
    states = Counter((m["alert_id"], m["status"], m["severity"]) for m in messages)
    delivered = received(webhook)
    stamps_delayed = sum("cannot stamp notification" in r.getMessage() for r in caplog.records)
    lost = sum(max(0, n - history[k]) for k, n in states.items())
    duplicated = excess(history, states) + excess(queued, notices) + excess(delivered, notices)
    wrong_state = [
        aid
        for aid, m in latest.items()
        if aid in rows and (rows[aid]["status"], rows[aid]["severity"]) != (m["status"], m["severity"])
    ]
    fault_report(
        sent=len(messages),
        lost=lost,
        duplicated=duplicated,
        fault="postgres down",
        alert_ids=len(latest),
        sent_before_fault=sent_before,
        stored_before_fault=stored_before,
        stored_while_down=stored_during,
        db_retries_while_down=retries_during,
        stamps_delayed=stamps_delayed,
        outage_s=round(t_back - t_fault, 1),
        settled_after_back_s=round(t_done - t_back, 1),
        ids_missing=len(set(latest) - set(rows)),
        wrong_latest_state=len(wrong_state),
        notifications_expected=sum(notices.values()),
        notifications_missing=sum(max(0, n - delivered[k]) for k, n in notices.items()),
        history_duplicated=excess(history, states),
        outbox_duplicated=excess(queued, notices),
        deliveries_duplicated=excess(delivered, notices),
        pending_outbox=pending,
        consumer_error=repr(ended) if ended is not None else None,
    )
    assert ended is None, f"the alerts consumer died: {ended!r}"
    assert lost == 0 and duplicated == 0, f"lost {lost}, duplicated {duplicated}"
    assert set(rows) == set(latest) and not wrong_state, wrong_state[:10]
    assert received(webhook) == notices and pending == 0
    assert retries_during > 0 and stored_during == 0  # the consumer did meet the outage
    assert stamps_delayed > 0  # and so did notifications delivered while it was away
