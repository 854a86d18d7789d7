"""Notifiers and the dispatcher against a real HTTP server on 127.0.0.1; the notice decision."""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import pytest
import pytest_asyncio

from alerts.notifier import (
    LogNotifier,
    Notification,
    NotificationDispatcher,
    NotificationFailed,
    WebhookNotifier,
    backoff_delay,
    make_notifier,
    notice_event,
)
from gridpulse.settings import Settings
from tests.webhook import WebhookServer


def note(nid: int, manager: str = "M07", severity: str = "major") -> Notification:
    return Notification(
        id=nid,
        manager_id=manager,
        alert_id=f"credit:C{nid}:overdue_30",
        event="open",
        status="open",
        severity=severity,
        ts=datetime(2026, 11, 1, tzinfo=UTC),
        alert={"alert_id": f"credit:C{nid}:overdue_30", "kind": "credit", "reason": "31 days overdue"},
    )


@pytest_asyncio.fixture
async def server() -> AsyncIterator[WebhookServer]:
    srv = WebhookServer()
    yield srv
    await srv.close()


def fast_webhook(url: str, **kw: float) -> WebhookNotifier:
    opts = {"timeout_s": 2.0, "attempts": 5, "backoff_s": 0.01, "backoff_max_s": 0.05, **kw}
    return WebhookNotifier(url, rng=random.Random(1), **opts)  # type: ignore[arg-type]


# --- the decision --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("state", "expected"),
    [
        # (status, severity, notice_status, notice_severity, acknowledged_severity)
        (("open", "major", None, None, None), "open"),  # new alert
        (("escalated", "critical", None, None, None), "escalated"),  # first seen escalated
        (("open", "major", "open", "major", None), None),  # nothing new (a redelivery)
        (("escalated", "critical", "open", "major", None), "escalated"),  # worse
        (("escalated", "major", "open", "major", None), "escalated"),  # escalated, same severity
        (("open", "minor", "open", "major", None), None),  # milder: not news
        (("resolved", "info", "escalated", "critical", None), "resolved"),  # close the loop
        (("resolved", "info", None, None, None), None),  # never told: nothing to close
        (("resolved", "info", "resolved", "info", None), None),
        (("open", "major", "resolved", "info", None), "open"),  # reopened
        # acknowledged: quiet until the severity rises above the acknowledged one
        (("escalated", "major", "open", "major", "major"), None),
        (("open", "major", None, None, "major"), None),
        (("escalated", "critical", "open", "major", "major"), "escalated"),
        (("escalated", "critical", "escalated", "critical", "major"), None),  # told already
        (("resolved", "info", "escalated", "critical", "major"), None),
    ],
)
def test_notice_event(
    state: tuple[str, str, str | None, str | None, str | None], expected: str | None
) -> None:
    assert notice_event(*state) == expected


def test_backoff_is_exponential_capped_and_jittered() -> None:
    rng = random.Random(7)
    for attempt, ceiling in [(1, 1.0), (2, 2.0), (3, 4.0), (6, 30.0), (20, 30.0)]:
        delays = [backoff_delay(attempt, 1.0, 30.0, rng) for _ in range(200)]
        assert all(ceiling / 2 <= d <= ceiling for d in delays)
        assert len(set(delays)) > 100  # jittered, not in step


# --- notifiers -------------------------------------------------------------------------------


async def test_log_notifier_logs_ids_severity_reason(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO, logger="gridpulse.notify"):
        await LogNotifier().notify(note(1))
    line = caplog.records[-1].getMessage()
    assert "manager=M07" in line and "alert=credit:C1:overdue_30" in line
    assert "severity=major" in line and "31 days overdue" in line


async def test_webhook_retries_until_the_server_answers(server: WebhookServer) -> None:
    server.fail_first = 3
    hook = fast_webhook(await server.start())
    try:
        await hook.notify(note(1))
    finally:
        await hook.aclose()
    assert server.requests == 4
    assert [b["alert_id"] for b in server.received] == ["credit:C1:overdue_30"]
    assert server.received[0]["manager_id"] == "M07" and server.received[0]["event"] == "open"
    assert (hook.counters.posted, hook.counters.retried, hook.counters.delivered) == (4, 3, 1)


async def test_webhook_gives_up_after_n_attempts(server: WebhookServer) -> None:
    server.fail_first = 100
    hook = fast_webhook(await server.start(), attempts=3)
    try:
        with pytest.raises(NotificationFailed) as failed:
            await hook.notify(note(1))
    finally:
        await hook.aclose()
    assert failed.value.attempts == 3 and "503" in str(failed.value)
    assert server.requests == 3 and hook.counters.given_up == 1 and not server.received


async def test_webhook_does_not_repeat_a_client_error(server: WebhookServer) -> None:
    server.status = 400
    hook = fast_webhook(await server.start())
    try:
        with pytest.raises(NotificationFailed):
            await hook.notify(note(1))
    finally:
        await hook.aclose()
    assert server.requests == 1


async def test_webhook_times_out_a_hanging_server_and_retries(server: WebhookServer) -> None:
    server.hang_for = {"M07"}
    hook = fast_webhook(await server.start(), timeout_s=0.3, attempts=2)
    started = time.monotonic()
    try:
        with pytest.raises(NotificationFailed) as failed:
            await hook.notify(note(1))
    finally:
        await hook.aclose()
    assert 0.6 <= time.monotonic() - started < 3.0
    assert server.requests == 2 and "Timeout" in str(failed.value)


# --- the dispatcher --------------------------------------------------------------------------


async def test_a_hanging_webhook_blocks_neither_the_caller_nor_other_notifications(
    server: WebhookServer,
) -> None:
    server.hang_for = {"M-slow"}
    done: list[tuple[int, bool]] = []
    ten_done = asyncio.Event()

    async def on_done(n: Notification, delivered: bool, attempts: int, error: str | None) -> None:
        done.append((n.id, delivered))
        if len(done) == 10:
            ten_done.set()

    hook = fast_webhook(await server.start(), timeout_s=30.0)
    dispatcher = NotificationDispatcher(hook, on_done, concurrency=4)
    started = time.monotonic()
    dispatcher.submit(note(1, manager="M-slow"))
    for i in range(2, 12):
        dispatcher.submit(note(i))
    assert time.monotonic() - started < 0.1  # submit never waits on the network

    await asyncio.wait_for(ten_done.wait(), timeout=5.0)
    assert sorted(done) == [(i, True) for i in range(2, 12)]
    assert dispatcher.in_flight == {1}  # still hanging, alone
    assert sorted(b["notification_id"] for b in server.received) == list(range(2, 12))

    await dispatcher.close(timeout_s=0.1)  # cancelled: stays in the outbox for the next start
    assert dispatcher.in_flight == set() and (1, True) not in done and (1, False) not in done


async def test_dispatcher_records_a_failure_and_continues(server: WebhookServer) -> None:
    server.fail_first = 2
    done: list[tuple[int, bool, int, str | None]] = []

    async def on_done(n: Notification, delivered: bool, attempts: int, error: str | None) -> None:
        done.append((n.id, delivered, attempts, error))

    hook = fast_webhook(await server.start(), attempts=1)
    dispatcher = NotificationDispatcher(hook, on_done, concurrency=1)
    for i in (1, 2, 3):
        dispatcher.submit(note(i))
    assert await dispatcher.drain(5.0)
    await dispatcher.close()
    assert sorted(done) == [(1, False, 1, "HTTP 503"), (2, False, 1, "HTTP 503"), (3, True, 1, None)]
    assert (dispatcher.counters.delivered, dispatcher.counters.failed) == (1, 2)


# --- configuration ---------------------------------------------------------------------------


class _Custom:
    async def notify(self, notification: Notification) -> None:
        return None


def custom_factory(settings: Settings) -> _Custom:
    return _Custom()


def test_make_notifier_builds_the_configured_one() -> None:
    assert isinstance(make_notifier(Settings()), LogNotifier)
    hook = make_notifier(
        Settings(
            alerts_notifier="webhook", alerts_webhook_url="http://127.0.0.1:1/hook", alerts_webhook_attempts=3
        )
    )
    assert isinstance(hook, WebhookNotifier) and hook.attempts == 3
    assert isinstance(make_notifier(Settings(alerts_notifier=f"{__name__}:custom_factory")), _Custom)
    with pytest.raises(ValueError, match="WEBHOOK_URL"):
        make_notifier(Settings(alerts_notifier="webhook"))
    with pytest.raises(ValueError, match="unknown notifier"):
        make_notifier(Settings(alerts_notifier="carrier-pigeon"))
