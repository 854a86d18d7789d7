"""Running a baseline (Faust floor, naive Faust agent, Quix peers) as a process of its own that
writes its rate and CPU time to a file and exits; CPU time of a process and its children.

CPU-seconds per reading is measured for every consumer over the same window as its rate (from
its first reading to its last): user + system time of the process, of its children that have
ended, and of its live children (psutil), so librdkafka's and RocksDB's threads count, and a
consumer that forks helpers would too.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import psutil

from gridpulse.workerproc import ROOT

# a Faust baseline's worker runs at info: at warning, faust's start-up spinner turns the root
# logger to DEBUG (a record built per message sent), which the pipeline's worker does not pay
# either (gridpulse.cli.make_worker)
FAUST_WORKER = ["worker", "-l", "info"]


def process_cpu_s(proc: psutil.Process) -> float:
    """CPU seconds (user + system) of ``proc``, its ended children and its live children."""
    with proc.oneshot():
        t = proc.cpu_times()
        total = t.user + t.system + t.children_user + t.children_system
    for child in proc.children(recursive=True):
        try:
            c = child.cpu_times()
        except psutil.NoSuchProcess:
            continue
        total += c.user + c.system
    return total


@dataclass(frozen=True, slots=True)
class Rate:
    """A consumer's measurement: ``readings`` in ``seconds`` (first to last), ``cpu_s`` CPU
    seconds of its process(es) over the same window."""

    readings: int
    seconds: float
    cpu_s: float

    @property
    def rps(self) -> float:
        return self.readings / max(self.seconds, 1e-9)

    @property
    def cpu_us_per_reading(self) -> float:
        return self.cpu_s / max(self.readings, 1) * 1e6

    def to_json(self) -> str:
        return json.dumps({"readings": self.readings, "seconds": self.seconds, "cpu_s": self.cpu_s})

    @classmethod
    def from_json(cls, text: str) -> Rate:
        d = json.loads(text)
        return cls(readings=int(d["readings"]), seconds=float(d["seconds"]), cpu_s=float(d["cpu_s"]))


class Stopwatch:
    """Wall and CPU time of this process (and its children) from ``start()`` to ``rate()``."""

    def __init__(self) -> None:
        self._proc = psutil.Process()
        self.started = False
        self._t0 = self._cpu0 = 0.0

    def start(self) -> None:
        self.started = True
        self._cpu0 = process_cpu_s(self._proc)
        self._t0 = time.perf_counter()

    def rate(self, readings: int) -> Rate:
        seconds = time.perf_counter() - self._t0
        return Rate(readings=readings, seconds=seconds, cpu_s=process_cpu_s(self._proc) - self._cpu0)


async def run_for_rate(
    args: list[str], env: dict[str, str], log_path: Path, out: Path, timeout_s: float
) -> Rate:
    """``python -m <args>`` with ``env``, output to ``log_path``; the `Rate` it wrote to ``out``.
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
    return Rate.from_json(out.read_text())  # noqa: ASYNC240
