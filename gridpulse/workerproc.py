"""Run `gridpulse worker` as a child process, the way production runs it, and watch it.

Used by `gridpulse demo`, the integration tests (which kill it with SIGKILL) and the
benchmarks. The worker reports readiness and counters on its web port (streams/agents/web.py).
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

from gridpulse.settings import Settings

ROOT = Path(__file__).resolve().parents[1]


def worker_env(settings: Settings, **extra: str) -> dict[str, str]:
    """The environment that gives a child worker exactly these settings."""
    env = dict(os.environ)
    for name, value in settings.model_dump().items():
        if value is None:
            env.pop(f"GRIDPULSE_{name.upper()}", None)
            continue
        if hasattr(value, "get_secret_value"):
            value = value.get_secret_value()
        if isinstance(value, (list, dict)):  # pydantic-settings reads complex values as JSON
            value = json.dumps(value)
        env[f"GRIDPULSE_{name.upper()}"] = str(value)
    env.update(extra)
    return env


class WorkerProcess:
    def __init__(self, settings: Settings, log_path: Path, **env: str) -> None:
        self.settings = settings
        self.log_path = log_path
        self.env = worker_env(settings, **env)
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, loglevel: str = "warning", command: list[str] | None = None) -> WorkerProcess:
        """Start ``gridpulse worker`` (or another ``gridpulse`` subcommand, e.g.
        ``["alerts-consumer"]``) with this process's settings."""
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        args = command if command is not None else ["worker", "--loglevel", loglevel]
        with self.log_path.open("ab") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "gridpulse.cli", *args],
                cwd=ROOT,
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        return self

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def _get(self, path: str) -> dict[str, Any]:
        url = f"http://127.0.0.1:{self.settings.web_port}{path}"
        # a worker deep in a large batch answers late, not never
        with urllib.request.urlopen(url, timeout=15) as resp:
            data: dict[str, Any] = json.loads(resp.read())
            return data

    async def wait_ready(self, within_s: float = 120.0) -> None:
        """Until the worker says its partitions are assigned and its tables recovered."""
        deadline = time.monotonic() + within_s
        while time.monotonic() < deadline:
            if not self.running:
                code = self.proc.returncode if self.proc else None
                raise RuntimeError(f"worker exited with {code}:\n{self.log_tail()}")
            try:
                if (await asyncio.to_thread(self._get, "/gridpulse/health/")).get("ready"):
                    return
            except (OSError, ValueError):
                pass
            await asyncio.sleep(0.3)
        raise TimeoutError(f"worker not ready after {within_s:.0f} s:\n{self.log_tail()}")

    async def counters(self) -> dict[str, Any]:
        return await asyncio.to_thread(self._get, "/gridpulse/counters/")

    def kill(self) -> None:
        """SIGKILL, no goodbye: what a crash or an OOM kill looks like."""
        if self.running and self.proc is not None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(10)

    def stop(self, timeout: float = 30.0) -> None:
        if self.running and self.proc is not None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.kill()

    def log_tail(self, lines: int = 60) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"
