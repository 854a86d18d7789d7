"""Where a reading's time goes: run ``bench.run`` and watch its pipeline worker from outside.

    python -m bench.cpu_breakdown [--py-spy PROFILE] [--label L] -- <bench.run arguments>

e.g. ``python -m bench.cpu_breakdown --py-spy /tmp/p.txt -- --customers 20000 --intervals 4
--skip naive,quix,floor,raw,recovery,latency,outage,scaling --out /tmp/r.json``.

From the worker's first applied reading to its last (its /gridpulse/counters/, polled every
0.1 s): wall time; CPU seconds of the worker (/proc/<pid>/stat, and per thread), of the Kafka
broker (the java process) and of the whole machine (/proc/stat); the worker's own counters of
time spent waiting on faust's producer (``producer_*_ms``: streams.faust_patches). With
``--py-spy``, ``py-spy record --idle`` samples the worker for the same window (raw collapsed
stacks; ``--top`` prints the top frames by self and total samples). py-spy costs CPU on the
same cores: quote CPU figures from a run without it.

Prints one JSON object (also appended to bench/out/cpu_breakdown.jsonl).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
import urllib.request
from collections import Counter
from pathlib import Path
from typing import Any

from gridpulse.workerproc import ROOT

TCK = os.sysconf("SC_CLK_TCK")


def proc_cpu(pid: int | str) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TCK


def threads_cpu(pid: int) -> dict[str, float]:
    """CPU seconds per thread name (threads of one name summed)."""
    out: dict[str, float] = {}
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            name = (task / "comm").read_text().strip()
            out[name] = out.get(name, 0.0) + proc_cpu(f"{pid}/task/{task.name}")
        except OSError:
            continue
    return dict(out)


def machine_cpu() -> tuple[float, float]:
    """(busy, total) CPU seconds of the machine since boot."""
    vals = [int(x) for x in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    idle = vals[3] + vals[4]
    return (sum(vals[:8]) - idle) / TCK, sum(vals[:8]) / TCK


def find(pred: Any) -> int | None:
    for p in Path("/proc").iterdir():
        if not p.name.isdigit():
            continue
        try:
            cmd = (p / "cmdline").read_bytes().split(b"\0")
            if pred(p, cmd):
                return int(p.name)
        except OSError:
            continue
    return None


def environ(pid: int) -> dict[str, str]:
    pairs = (Path(f"/proc/{pid}/environ").read_bytes()).split(b"\0")
    return dict(x.decode(errors="replace").split("=", 1) for x in pairs if b"=" in x)


def is_pipeline_worker(p: Path, cmd: list[bytes]) -> bool:
    if b"gridpulse.cli" not in cmd or b"worker" not in cmd:
        return False
    app = environ(int(p.name)).get("GRIDPULSE_APP_ID", "")
    return app.startswith("gridpulse-bench-") and not app.endswith(("-idle", "-floor"))


def counters(port: str) -> dict[str, Any]:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/gridpulse/counters/", timeout=15) as resp:
        data: dict[str, Any] = json.loads(resp.read())["counters"]
        return data


def snapshot(worker: int, broker: int | None) -> dict[str, Any]:
    busy, total = machine_cpu()
    return {
        "t": time.perf_counter(),
        "worker": proc_cpu(worker),
        "threads": threads_cpu(worker),
        "broker": proc_cpu(broker) if broker else 0.0,
        "machine_busy": busy,
        "machine_total": total,
    }


def thread_of(frames: list[str]) -> str:
    """The thread a raw py-spy stack belongs to: the main thread (the worker's event loop), or
    another thread by its run function (faust's consumer thread, an executor's worker)."""
    if frames[0].startswith("Thread._bootstrap"):
        run = [f for f in frames[2:5] if not f.startswith("Thread.")]
        return "thread " + (run[0].split(" (")[0] if run else frames[-1])
    return "main"


def task_of(frames: list[str]) -> str:
    """What a main-thread sample was doing: waiting in the selector (idle), or the outermost
    frame the event loop's Handle._run called (a task's coroutine, a callback); stacks py-spy
    could not unwind to the thread's root are counted as such."""
    if frames[-1].startswith("EpollSelector.select"):
        return "idle (selector)"
    for i, f in enumerate(frames):
        if f.startswith("Handle._run") and i + 1 < len(frames):
            rest = [
                g for g in frames[i + 1 : i + 5] if not g.startswith(("Service._execute_task", "App._task"))
            ]
            return (rest or frames[i + 1 : i + 2])[0]
    if not frames[0].startswith("_run_module_as_main"):
        return "(stack not unwound to the root) " + frames[0]
    return "event loop itself: " + frames[-1]


def stage_of(frames: list[str]) -> str:
    """A main-thread sample by stage of the worker (first match in this order)."""
    stack = ";".join(frames)
    rules = [
        ("idle (selector)", lambda: frames[-1].startswith("EpollSelector.select")),
        (
            "readings agent (decode, state, document, its sends)",
            lambda: "streams/agents/readings.py" in stack,
        ),
        ("views following Kafka topics (streams/follow.py)", lambda: "TopicFollower" in stack),
        ("scoring", lambda: "streams/agents/scoring.py" in stack),
        ("credit alerts", lambda: "streams/agents/credit_alerts.py" in stack),
        (
            "producer (faust buffer hand-over, aiokafka accumulator and sender)",
            lambda: "aiokafka/producer" in stack or "ProducerBuffer" in stack or "publish_message" in stack,
        ),
        (
            "consumer (fetch, conductor, connection reads)",
            lambda: "etcher" in stack or "onductor" in stack or "aiokafka/conn.py" in stack,
        ),
        ("offset commits", lambda: "commit" in stack.lower()),
        ("event loop itself", lambda: task_of(frames).startswith("event loop itself")),
        ("stack not unwound to the root", lambda: task_of(frames).startswith("(stack not")),
    ]
    for name, test in rules:
        if test():
            return name
    return "other"


def top(profile: Path, n: int = 25) -> str:
    """The top frames of a raw (collapsed) py-spy profile by self and by total samples, per
    thread (percentages of that thread's samples)."""
    self_: dict[str, Counter[str]] = {}
    total: dict[str, Counter[str]] = {}
    samples: Counter[str] = Counter()
    tasks: Counter[str] = Counter()  # the main thread's samples by what the event loop ran
    stages: Counter[str] = Counter()
    for line in profile.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        c = int(count)
        frames = stack.split(";")
        th = thread_of(frames)
        samples[th] += c
        if th == "main":
            tasks[task_of(frames)] += c
            stages[stage_of(frames)] += c
        self_.setdefault(th, Counter())[frames[-1]] += c
        for f in set(frames):
            total.setdefault(th, Counter())[f] += c
    lines = [f"{sum(samples.values())} samples: " + ", ".join(f"{t} {c}" for t, c in samples.most_common())]
    lines += ["", "main: % by stage"]
    lines += [f"{100 * c / samples['main']:5.1f}  {t}" for t, c in stages.most_common()]
    lines += ["", "main: % by what the event loop was running"]
    lines += [f"{100 * c / samples['main']:5.1f}  {t}" for t, c in tasks.most_common(n)]
    for th, _ in samples.most_common(2):
        k = samples[th]
        lines += ["", f"{th}: self%  frame"]
        lines += [f"{100 * c / k:5.1f}  {f}" for f, c in self_[th].most_common(n)]
        lines += ["", f"{th}: total%  frame"]
        lines += [f"{100 * c / k:5.1f}  {f}" for f, c in total[th].most_common(n)]
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--py-spy", type=Path, help="record the worker with py-spy --idle to this file")
    ap.add_argument("--rate", type=int, default=100, help="py-spy samples per second")
    ap.add_argument("--label", default="")
    ap.add_argument("--top", type=Path, help="only print the top of this raw profile and exit")
    ap.add_argument("bench", nargs=argparse.REMAINDER)
    a = ap.parse_args()
    if a.top:
        print(top(a.top))
        return
    bench_args = [x for x in a.bench if x != "--"]
    b = argparse.ArgumentParser()
    b.add_argument("--customers", type=int, default=100_000)
    b.add_argument("--intervals", type=int, default=2)
    known, _ = b.parse_known_args(bench_args)
    expected = known.customers * known.intervals

    bench = subprocess.Popen([sys.executable, "-m", "bench.run", *bench_args], cwd=ROOT)
    broker = find(lambda p, cmd: cmd[0].endswith(b"java") and any(b"kafka" in c.lower() for c in cmd))
    worker = None
    while worker is None and bench.poll() is None:
        time.sleep(0.2)
        worker = find(is_pipeline_worker)
    if worker is None:
        raise SystemExit("bench.run ended before a pipeline worker appeared")
    port = environ(worker)["GRIDPULSE_WEB_PORT"]
    spy = None
    first = last = at_change = None
    last_n = -1
    while bench.poll() is None:
        try:
            c = counters(port)
            now = snapshot(worker, broker) | {"counters": c}
        except OSError:
            if first is not None and not Path(f"/proc/{worker}").exists():
                break  # bench.run stopped it: done at the last change (its rule, as below)
            time.sleep(0.2)
            continue
        n = int(c.get("readings_applied", 0))
        if first is None and n > 0:
            first = now
            if a.py_spy:
                spy_cmd = [str(Path(sys.executable).parent / "py-spy"), "record", "--idle", "--nonblocking"]
                spy_cmd += ["--format", "raw", "--rate", str(a.rate), "--pid", str(worker)]
                spy_cmd += ["--output", str(a.py_spy)]
                spy = subprocess.Popen(spy_cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        if n != last_n:
            last_n, at_change = n, now
        if n >= expected:
            last = now
            break
        time.sleep(0.1)
    if last is None and at_change is not None:
        # bench.run stopped the worker first (it polls too): done at the last change seen
        last = at_change
    if spy is not None:
        spy.send_signal(2)  # SIGINT: py-spy writes its output and exits
        spy.wait(60)
    bench.wait()
    if first is None or last is None:
        raise SystemExit("the worker never finished the readings")
    n = int(last["counters"]["readings_applied"]) - int(first["counters"]["readings_applied"])
    if n <= 0:
        raise SystemExit("the worker's end was not seen after its first reading (bench.run stopped it)")
    wall = max(last["t"] - first["t"], 1e-9)
    cw = {
        k: v - first["counters"].get(k, 0) for k, v in last["counters"].items() if isinstance(v, int | float)
    }
    threads = {k: round(v - first["threads"].get(k, 0.0), 2) for k, v in last["threads"].items()}
    out = {
        "label": a.label,
        "when": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "command": "python -m bench.cpu_breakdown " + " ".join(sys.argv[1:]),
        "readings": n,
        "wall_s": round(wall, 2),
        "readings_per_s": round(n / wall),
        "worker_cpu_s": round(last["worker"] - first["worker"], 2),
        "worker_cpu_us_per_reading": round(1e6 * (last["worker"] - first["worker"]) / n, 1),
        "worker_cpu_share_of_wall": round((last["worker"] - first["worker"]) / wall, 3),
        "worker_threads_cpu_s": threads,
        "broker_cpu_s": round(last["broker"] - first["broker"], 2),
        "broker_cpu_us_per_reading": round(1e6 * (last["broker"] - first["broker"]) / n, 1),
        "machine_busy_cores": round((last["machine_busy"] - first["machine_busy"]) / wall, 2),
        "worker_counters": cw,
        "py_spy": str(a.py_spy) if a.py_spy else None,
    }
    text = json.dumps(out, indent=2)
    print(text)
    log = ROOT / "bench" / "out" / "cpu_breakdown.jsonl"
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("a") as f:
        f.write(json.dumps(out) + "\n")
    if a.py_spy:
        print(top(a.py_spy))


if __name__ == "__main__":
    main()
