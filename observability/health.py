"""Liveness and readiness of one gridpulse process.

``/livez`` answers whether the process's event loop is alive: a heartbeat task stamps the loop
every ``beat_s``; a probe that finds the last stamp older than ``stall_s`` (the loop was blocked,
or the heartbeat task died) or a process marked failed (:meth:`Health.fail`: a fatal error the
process cannot recover from by itself) gets 503, and an orchestrator restarts it.

``/readyz`` answers whether the process should receive traffic / count as serving: every
registered check (assigned partitions, recovery, lag, Redis, PostgreSQL, ...) must pass. A check
is an async callable returning :class:`Check`; one that raises or exceeds its timeout fails with
the reason. Checks named in ``dependencies`` also set ``gridpulse_dependency_up{dependency}``.

The bodies are JSON: ``{"service", "live", "loop_lag_s", "reason"}`` and
``{"service", "ready", "checks": {name: {"ok", "detail"}}}``; status 200 or 503.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from observability.metrics import DEPENDENCY_UP, READY


@dataclass(frozen=True)
class Check:
    ok: bool
    detail: str = ""


CheckFn = Callable[[], Awaitable[Check]]


class Health:
    def __init__(
        self, service: str, *, beat_s: float = 1.0, stall_s: float = 10.0, refresh_s: float | None = 15.0
    ) -> None:
        self.service = service
        self.beat_s = beat_s
        self.stall_s = stall_s
        # the checks also run every refresh_s by themselves, so that gridpulse_dependency_up and
        # gridpulse_ready stay current on /metrics when nobody probes /readyz (None: only on probes)
        self.refresh_s = refresh_s
        self._refresh_task: asyncio.Task[None] | None = None
        self._checks: dict[str, tuple[CheckFn, float]] = {}
        self._dependencies: set[str] = set()
        self._last_beat = time.monotonic()
        self._max_lag_s = 0.0  # the worst loop lag of the last minute
        self._max_lag_at = 0.0
        self._failed: str | None = None
        self._task: asyncio.Task[None] | None = None

    # --- registration -------------------------------------------------------------------------
    def add_check(self, name: str, fn: CheckFn, *, timeout_s: float = 2.0, dependency: bool = False) -> None:
        """``dependency=True``: an outside server (redis, postgres, kafka); its result also sets
        ``gridpulse_dependency_up{dependency=name}``."""
        self._checks[name] = (fn, timeout_s)
        if dependency:
            self._dependencies.add(name)

    def fail(self, reason: str) -> None:
        """The process cannot recover by itself: /livez answers 503 from now on."""
        self._failed = reason

    # --- liveness -----------------------------------------------------------------------------
    def start(self) -> None:
        """Start the heartbeat on the running loop (idempotent)."""
        if self._task is None or self._task.done():
            self._last_beat = time.monotonic()
            self._task = asyncio.get_running_loop().create_task(
                self._beat(), name=f"{self.service}-heartbeat"
            )
        if self.refresh_s is not None and (self._refresh_task is None or self._refresh_task.done()):
            self._refresh_task = asyncio.get_running_loop().create_task(
                self._refresh(self.refresh_s), name=f"{self.service}-checks"
            )

    async def stop(self) -> None:
        """Stop the heartbeat and the periodic checks (at shutdown)."""
        for task in (self._task, self._refresh_task):
            if task is not None:
                task.cancel()
                try:
                    await task
                except asyncio.CancelledError:
                    pass
        self._task = self._refresh_task = None

    async def _refresh(self, every_s: float) -> None:
        while True:
            await asyncio.sleep(every_s)
            await self.ready()  # never raises: a failing check is a result

    async def _beat(self) -> None:
        while True:
            before = time.monotonic()
            await asyncio.sleep(self.beat_s)
            now = time.monotonic()
            # how late the loop woke us: a measure of how long it was blocked
            lag = max(0.0, now - before - self.beat_s)
            if lag >= self._max_lag_s or now - self._max_lag_at > 60.0:
                self._max_lag_s, self._max_lag_at = lag, now
            self._last_beat = now

    def live(self) -> tuple[bool, dict[str, Any]]:
        age = time.monotonic() - self._last_beat
        reason = ""
        if self._failed is not None:
            reason = self._failed
        elif self._task is None:
            reason = "heartbeat not started"
        elif self._task.done():
            reason = "heartbeat task ended"
        elif age > self.stall_s:
            reason = f"event loop stalled: last heartbeat {age:.1f} s ago (limit {self.stall_s:g} s)"
        ok = not reason
        return ok, {
            "service": self.service,
            "live": ok,
            "loop_lag_s": round(self._max_lag_s, 4),
            "reason": reason,
        }

    # --- readiness ----------------------------------------------------------------------------
    async def ready(self) -> tuple[bool, dict[str, Any]]:
        names = list(self._checks)
        results = await asyncio.gather(*(self._run(name) for name in names))
        checks = {name: {"ok": r.ok, "detail": r.detail} for name, r in zip(names, results, strict=True)}
        for name, r in zip(names, results, strict=True):
            if name in self._dependencies:
                DEPENDENCY_UP.labels(dependency=name).set(1 if r.ok else 0)
        ok = all(r.ok for r in results)
        READY.labels(service=self.service).set(1 if ok else 0)
        return ok, {"service": self.service, "ready": ok, "checks": checks}

    async def _run(self, name: str) -> Check:
        fn, timeout_s = self._checks[name]
        try:
            return await asyncio.wait_for(fn(), timeout_s)
        except TimeoutError:
            return Check(False, f"no answer within {timeout_s:g} s")
        except Exception as exc:  # a failed check is a result, never an error of the probe
            return Check(False, f"{type(exc).__name__}: {exc}"[:300])
