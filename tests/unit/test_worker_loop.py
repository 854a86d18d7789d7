"""`gridpulse worker` runs on uvloop unless told otherwise (issue 12: the event loop's own cost per
message); the choice is made before anything creates a loop."""

from __future__ import annotations

import subprocess
import sys

from gridpulse.cli import build_parser
from gridpulse.workerproc import ROOT


def test_the_worker_defaults_to_uvloop_and_takes_asyncio() -> None:
    assert build_parser().parse_args(["worker"]).loop == "uvloop"
    assert build_parser().parse_args(["worker", "--loop", "asyncio"]).loop == "asyncio"


def test_mode_loop_use_uvloop_gives_uvloop_loops_to_faust() -> None:
    """What _cmd_worker does first, in a fresh interpreter: the policy makes uvloop loops, for
    the worker's own loop and for faust's consumer thread (mode's ServiceThread new_event_loop)."""
    code = (
        "import asyncio, mode.loop; mode.loop.use('uvloop'); "
        "import uvloop; assert isinstance(asyncio.new_event_loop(), uvloop.Loop); print('ok')"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0 and out.stdout.strip() == "ok", out.stderr
