"""Running a baseline (Faust floor, naive Faust agent, Quix peer) as a process of its own that
writes its rate (readings/s) to a file and exits."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

from gridpulse.workerproc import ROOT

# a Faust baseline's worker runs at info: at warning, faust's start-up spinner turns the root
# logger to DEBUG (a record built per message sent), which the pipeline's worker does not pay
# either (gridpulse.cli.make_worker)
FAUST_WORKER = ["worker", "-l", "info"]


async def run_for_rate(
    args: list[str], env: dict[str, str], log_path: Path, out: Path, timeout_s: float
) -> float:
    """``python -m <args>`` with ``env``, output to ``log_path``; the rate it wrote to ``out``.
    Killed after ``timeout_s``; an exit without a rate raises with the log's tail."""
    out.unlink(missing_ok=True)  # noqa: ASYNC240 (a benchmark's own small files)
    with log_path.open("wb") as log:
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", *args, cwd=ROOT, env=env, stdout=log, stderr=asyncio.subprocess.STDOUT
        )
        try:
            await asyncio.wait_for(proc.wait(), timeout=timeout_s)
        finally:
            if proc.returncode is None:
                proc.kill()
                await proc.wait()
    if proc.returncode != 0 or not out.is_file():  # noqa: ASYNC240
        tail = "\n".join(log_path.read_text(errors="replace").splitlines()[-40:])  # noqa: ASYNC240
        raise RuntimeError(f"{args[0]} exited with {proc.returncode} and no rate:\n{tail}")
    return float(out.read_text())  # noqa: ASYNC240
