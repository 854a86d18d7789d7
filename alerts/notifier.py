"""Telling customer managers about alerts: the decision, the notifiers, the dispatcher.

- ``notice_event`` decides (a pure function) whether a stored alert state is news for its
  managers: a new alert, a higher severity, an escalation, a resolution of something they were
  told about. An acknowledged alert stays quiet until its severity rises above the acknowledged
  one. Redelivered or stale alert messages never change the state, so they are never news.
- A notifier is anything with ``async def notify(self, notification) -> None`` that raises when
  the notification did not get through. Built in: ``LogNotifier`` and ``WebhookNotifier`` (POST
  JSON, timeout, retries with capped exponential backoff and jitter). ``make_notifier`` builds
  the configured one, or a ``package.module:factory`` of your own (``factory(settings)``).
- ``NotificationDispatcher`` runs one task per notification under a bounded concurrency, so a
  slow or failing webhook never holds up the other notifications or the consumer loop.

Notifications carry ids, severities, reasons and the evidence numbers: never a customer's name
(alert messages carry none).
"""

from __future__ import annotations

import asyncio
import functools
import importlib
import logging
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any, Literal, Protocol

import aiohttp

from alerts.metrics import (
    KINDS,
    NOTIFICATION_SECONDS,
    NOTIFICATIONS,
    NOTIFICATIONS_IN_FLIGHT,
    SEVERITIES,
    bounded,
)

if TYPE_CHECKING:
    from gridpulse.settings import Settings

log = logging.getLogger(__name__)

SEVERITY_RANK = {"info": 0, "minor": 1, "major": 2, "critical": 3}
NoticeEvent = Literal["open", "escalated", "resolved"]


def notice_event(
    status: str,
    severity: str,
    notice_status: str | None,
    notice_severity: str | None,
    acknowledged_severity: str | None,
) -> NoticeEvent | None:
    """Is the alert's stored state (status, severity) news for its managers?

    ``notice_*`` is the state they were last told about, or that needed no telling (None: the
    alert is new to them); ``acknowledged_severity`` is the severity a manager acknowledged.
    """
    rank = SEVERITY_RANK[severity]
    acked = acknowledged_severity is not None
    above_ack = not acked or rank > SEVERITY_RANK[acknowledged_severity or "info"]
    if status == "resolved":
        # close the loop on what they were told, unless a manager has taken the alert on
        told = notice_status in ("open", "escalated")
        return "resolved" if told and not acked else None
    if not above_ack:
        return None  # acknowledged, and not worse than when acknowledged
    if notice_status is None or notice_status == "resolved" or notice_severity is None:
        return "open" if status == "open" else "escalated"  # new to them, or reopened
    if rank > SEVERITY_RANK[notice_severity]:
        return "escalated"
    if status == "escalated" and notice_status == "open":
        return "escalated"
    return None


def newcomer_event(status: str, severity: str, acknowledged_severity: str | None) -> NoticeEvent | None:
    """What a manager newly named by a live alert hears (an area alert's suspects changed while it
    stayed open), when the state itself is not news (``notice_event`` None): the alert as it is,
    ``open`` or ``escalated``; nothing once it is resolved or acknowledged at its severity."""
    if status == "resolved":
        return None
    if acknowledged_severity is not None and SEVERITY_RANK[severity] <= SEVERITY_RANK[acknowledged_severity]:
        return None
    return "open" if status == "open" else "escalated"


@dataclass(frozen=True)
class Notification:
    """One alert state for one customer manager (a row of alert_notifications)."""

    id: int
    manager_id: str
    alert_id: str
    event: NoticeEvent
    status: str
    severity: str
    ts: datetime
    alert: dict[str, Any] = field(repr=False)  # the alert message of that state

    @property
    def reason(self) -> str:
        return str(self.alert.get("reason", ""))

    def to_json(self) -> dict[str, Any]:
        return {
            "notification_id": self.id,
            "manager_id": self.manager_id,
            "event": self.event,
            "alert_id": self.alert_id,
            "kind": self.alert.get("kind"),
            "status": self.status,
            "severity": self.severity,
            "ts": self.ts.isoformat(),
            "reason": self.reason,
            "alert": self.alert,
        }


class Notifier(Protocol):
    async def notify(self, notification: Notification) -> None: ...


class NotificationFailed(RuntimeError):
    """A notifier gave up on a notification (after its own retries)."""

    def __init__(self, message: str, attempts: int = 1) -> None:
        super().__init__(message)
        self.attempts = attempts


class LogNotifier:
    """Notifications as log lines (the default; a webhook or your own notifier replaces it)."""

    def __init__(self, logger: logging.Logger | None = None) -> None:
        self._log = logger or logging.getLogger("gridpulse.notify")

    async def notify(self, notification: Notification) -> None:
        self._log.info(
            "notify manager=%s alert=%s event=%s severity=%s reason=%s",
            notification.manager_id,
            notification.alert_id,
            notification.event,
            notification.severity,
            notification.reason,
        )


def backoff_delay(attempt: int, base_s: float, cap_s: float, rng: random.Random | None = None) -> float:
    """Delay before retry ``attempt`` (1, 2, ...): exponential, capped, with "equal jitter"
    (half fixed, half random) so many failing notifications do not retry in step."""
    ceiling = min(cap_s, base_s * 2 ** (attempt - 1))
    return ceiling / 2 + (rng or random).uniform(0, ceiling / 2)


# HTTP answers worth another try; any other 4xx will not get better by repeating it
_RETRY_STATUS = frozenset({408, 425, 429, 500, 502, 503, 504})


@dataclass
class WebhookCounters:
    posted: int = 0  # HTTP attempts
    delivered: int = 0
    retried: int = 0
    given_up: int = 0


class WebhookNotifier:
    """POST each notification as JSON to one URL; retry transient failures with backoff."""

    def __init__(
        self,
        url: str,
        *,
        timeout_s: float = 10.0,
        attempts: int = 6,
        backoff_s: float = 1.0,
        backoff_max_s: float = 60.0,
        rng: random.Random | None = None,
    ) -> None:
        self.url = url
        self.timeout = aiohttp.ClientTimeout(total=timeout_s)
        self.attempts = attempts
        self.backoff_s = backoff_s
        self.backoff_max_s = backoff_max_s
        self.counters = WebhookCounters()
        self._rng = rng or random.Random()
        self._session: aiohttp.ClientSession | None = None

    async def notify(self, notification: Notification) -> None:
        if self._session is None:
            self._session = aiohttp.ClientSession(timeout=self.timeout)
        body = notification.to_json()
        last_error = ""
        for attempt in range(1, self.attempts + 1):
            self.counters.posted += 1
            try:
                async with self._session.post(self.url, json=body) as resp:
                    if resp.status < 300:
                        self.counters.delivered += 1
                        return
                    last_error = f"HTTP {resp.status}"
                    if resp.status not in _RETRY_STATUS:
                        break
            except (aiohttp.ClientError, TimeoutError) as exc:
                last_error = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
            if attempt < self.attempts:
                self.counters.retried += 1
                delay = backoff_delay(attempt, self.backoff_s, self.backoff_max_s, self._rng)
                log.warning(
                    "webhook: notification %s (alert %s, manager %s) failed (%s); retry %d in %.1f s",
                    notification.id,
                    notification.alert_id,
                    notification.manager_id,
                    last_error,
                    attempt,
                    delay,
                )
                await asyncio.sleep(delay)
        self.counters.given_up += 1
        log.error(
            "webhook: gave up on notification %s (alert %s, manager %s) after %d attempts: %s",
            notification.id,
            notification.alert_id,
            notification.manager_id,
            attempt,
            last_error,
        )
        raise NotificationFailed(last_error, attempts=attempt)

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None


def make_notifier(settings: Settings) -> Notifier:
    """The notifier named by GRIDPULSE_ALERTS_NOTIFIER: log, webhook, or package.module:factory."""
    kind = settings.alerts_notifier
    if kind == "log":
        return LogNotifier()
    if kind == "webhook":
        if settings.alerts_webhook_url is None:
            raise ValueError("GRIDPULSE_ALERTS_NOTIFIER=webhook needs GRIDPULSE_ALERTS_WEBHOOK_URL")
        return WebhookNotifier(
            settings.alerts_webhook_url.get_secret_value(),
            timeout_s=settings.alerts_webhook_timeout_s,
            attempts=settings.alerts_webhook_attempts,
            backoff_s=settings.alerts_webhook_backoff_s,
            backoff_max_s=settings.alerts_webhook_backoff_max_s,
        )
    module, sep, name = kind.partition(":")
    if not sep:
        raise ValueError(f"unknown notifier {kind!r}: log, webhook or package.module:factory")
    factory: Callable[[Settings], Notifier] = getattr(importlib.import_module(module), name)
    return factory(settings)


DoneCallback = Callable[[Notification, bool, int, str | None], Awaitable[None]]


@dataclass
class DispatchCounters:
    submitted: int = 0
    delivered: int = 0
    failed: int = 0


class NotificationDispatcher:
    """One task per notification, at most ``concurrency`` notifying at a time.

    ``submit`` never waits; ``on_done(notification, delivered, attempts, error)`` is awaited
    when a notification is delivered or given up (it stamps the outbox row).

    Metrics (``alerts.metrics``): ``gridpulse_notifications_total{outcome=sent|failed, kind,
    severity}``, ``gridpulse_notification_seconds{outcome}`` (the notifier's call, its retries
    included; the wait for a free slot is not) and ``gridpulse_notifications_in_flight``.
    """

    def __init__(self, notifier: Notifier, on_done: DoneCallback, *, concurrency: int = 16) -> None:
        self.notifier = notifier
        self.counters = DispatchCounters()
        self._on_done = on_done
        self._slots = asyncio.Semaphore(concurrency)
        self._tasks: dict[int, asyncio.Task[None]] = {}

    @property
    def in_flight(self) -> set[int]:
        """Ids of the notifications submitted and not finished."""
        return set(self._tasks)

    def submit(self, notification: Notification) -> bool:
        """Start notifying; False when this notification is already in flight."""
        if notification.id in self._tasks:
            return False
        self.counters.submitted += 1
        task = asyncio.create_task(self._run(notification), name=f"notify-{notification.id}")
        self._tasks[notification.id] = task
        NOTIFICATIONS_IN_FLIGHT.inc()
        task.add_done_callback(functools.partial(self._forget, notification.id))
        return True

    def _forget(self, notification_id: int, _task: asyncio.Task[None]) -> None:
        if self._tasks.pop(notification_id, None) is not None:
            NOTIFICATIONS_IN_FLIGHT.dec()

    async def _run(self, notification: Notification) -> None:
        async with self._slots:
            t0 = time.perf_counter()
            try:
                await self.notifier.notify(notification)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                error: str | None = str(exc) or type(exc).__name__
                self.counters.failed += 1
                attempts = exc.attempts if isinstance(exc, NotificationFailed) else 1
                log.error(
                    "notification %s (alert %s, manager %s) not delivered: %r",
                    notification.id,
                    notification.alert_id,
                    notification.manager_id,
                    exc,
                )
                delivered = False
            else:
                self.counters.delivered += 1
                delivered, attempts, error = True, 1, None
            outcome = "sent" if delivered else "failed"
            NOTIFICATION_SECONDS.labels(outcome=outcome).observe(time.perf_counter() - t0)
            NOTIFICATIONS.labels(
                outcome=outcome,
                kind=bounded(notification.alert.get("kind"), KINDS),
                severity=bounded(notification.severity, SEVERITIES),
            ).inc()
        try:
            await self._on_done(notification, delivered, attempts, error)
        except Exception:
            # the row stays pending and is sent again after a restart: at least once
            log.warning("could not record the outcome of notification %s", notification.id, exc_info=True)

    async def drain(self, timeout_s: float) -> bool:
        """Wait up to ``timeout_s`` for the notifications in flight; True when none is left."""
        if self._tasks:
            await asyncio.wait(list(self._tasks.values()), timeout=timeout_s)
        return not self._tasks

    async def close(self, timeout_s: float = 10.0) -> None:
        """Finish what is in flight (bounded), cancel the rest (it stays in the outbox)."""
        await self.drain(timeout_s)
        pending = list(self._tasks.values())
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)
        aclose = getattr(self.notifier, "aclose", None)
        if aclose is not None:
            await aclose()
