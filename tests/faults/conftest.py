"""Fault scenarios (`make faults`, and at a small size inside `make test`).

Each scenario runs on the real stack, breaks something on purpose (SIGKILL a worker, stop the
broker, Redis or PostgreSQL), and ends with a check against an independent count of what it
sent. Every scenario records one line through the ``fault_report`` fixture: what it sent, what
was lost and what was counted twice (both must be 0). The lines are printed as a table at the
end of the session and written to ``bench/out/faults.json``.

Size: ``GRIDPULSE_FAULTS_SCALE`` = ``small`` (default; what CI runs) or ``full`` (`make faults`).

The scenarios stop and start the stack's own servers through ``scripts/stack.sh``; they honour
``GRIDPULSE_RUN_DIR`` and the port variables, so they can run against a second stack.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import pytest

from gridpulse.workerproc import ROOT
from tests.faults.helpers import SCALES, Scale
from tests.integration.fixtures import (  # noqa: F401  (registered here for the scenarios)
    alert_settings,
    pg_settings,
    redis_settings,
    settings,
    topics,
    worker_factory,
)

pytestmark = [pytest.mark.integration, pytest.mark.faults]

REPORT = ROOT / "bench" / "out" / "faults.json"


@pytest.fixture(scope="session")
def scale() -> Scale:
    name = os.environ.get("GRIDPULSE_FAULTS_SCALE", "small")
    if name not in SCALES:
        raise pytest.UsageError(f"GRIDPULSE_FAULTS_SCALE={name!r}: use one of {sorted(SCALES)}")
    return SCALES[name]


@dataclass
class FaultLine:
    scenario: str
    sent: int
    lost: int
    duplicated: int
    detail: dict[str, Any] = field(default_factory=dict)
    seconds: float = 0.0


_LINES: list[FaultLine] = []


@pytest.fixture
def fault_report(request: pytest.FixtureRequest, scale: Scale) -> Iterator[Any]:
    """Call ``fault_report(sent=..., lost=..., duplicated=..., **detail)`` once at the end of a
    scenario; it is recorded even when an assertion after it fails."""
    t0 = time.monotonic()

    def record(*, sent: int, lost: int, duplicated: int, **detail: Any) -> None:
        _LINES.append(
            FaultLine(
                scenario=request.node.name,
                sent=sent,
                lost=lost,
                duplicated=duplicated,
                detail={"scale": scale.name, **detail},
                seconds=round(time.monotonic() - t0, 1),
            )
        )

    yield record


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if not _LINES:
        return
    tr = terminalreporter
    tr.section("fault scenarios: sent / lost / duplicated")
    tr.write_line(f"{'scenario':<52}{'sent':>10}{'lost':>8}{'dup':>8}{'s':>8}")
    for line in _LINES:
        tr.write_line(
            f"{line.scenario[:51]:<52}{line.sent:>10,}{line.lost:>8}{line.duplicated:>8}{line.seconds:>8.1f}"
        )
    REPORT.parent.mkdir(parents=True, exist_ok=True)
    REPORT.write_text(json.dumps([asdict(x) for x in _LINES], indent=2) + "\n")
    tr.write_line(
        f"written: {REPORT.relative_to(Path.cwd()) if REPORT.is_relative_to(Path.cwd()) else REPORT}"
    )
