"""What the fault scenarios share besides fixtures: their sizes and the stack's own script."""

from __future__ import annotations

import subprocess
from dataclasses import dataclass

from gridpulse.workerproc import ROOT

STACK = ROOT / "scripts" / "stack.sh"


@dataclass(frozen=True)
class Scale:
    name: str
    customers: int
    intervals: int  # 15-minute readings per customer
    kills: int  # SIGKILLs in the kill scenario
    alerts: int  # alerts in the PostgreSQL burst

    @property
    def readings(self) -> int:
        return self.customers * self.intervals


SCALES = {
    "small": Scale("small", customers=40, intervals=96, kills=2, alerts=200),
    "full": Scale("full", customers=2_000, intervals=96, kills=4, alerts=5_000),
}


def stack(action: str, component: str, timeout_s: float = 180) -> None:
    """`scripts/stack.sh <action> <component>` (up, down, kill) on the stack the tests use."""
    proc = subprocess.run(
        ["bash", str(STACK), action, component],
        capture_output=True,
        text=True,
        timeout=timeout_s,
        check=False,
    )
    if proc.returncode != 0:
        raise AssertionError(f"stack.sh {action} {component} failed:\n{proc.stdout}\n{proc.stderr}")
