"""The dashboard's performance (issue 14, "Performance (make bench)"), against a real
``gridpulse dashboard`` process on the local stack:

    python -m bench.dashboard_bench [--customers 100000] [--clients 50] [--rate 1000] [--seconds 30]

1. Population: ``--customers`` customers simulated as bench.scoring_bench does, scored by the
   real model (``scoring.score_arrays``) and turned into ``scores.customer`` documents by the
   function the scoring agent publishes with (``scoring.model.to_documents``, value_origin
   included), plus a full ``stats.customer`` document per customer built from the same arrays
   (its d30 kWh is the point size). Published with aiokafka to topics of a unique prefix
   (``streams.kafka.create_contract_topics``), deleted at the end unless ``--keep``.
2. ``gridpulse dashboard`` started as production runs it (``gridpulse.workerproc.WorkerProcess``,
   a viewer user with a ``dashboard.auth.hash_password`` hash, a free port); load time = start
   of the process until /healthz says the feed is ready and /api/overview and /api/matrix hold
   every customer scored, with its 30-day kWh.
3. Value matrix in Debian's headless Chromium (Playwright, ``/usr/bin/chromium``, no browser
   download): per run a new browser context (a first visit: no cache), signed in through
   ``POST /api/login``, then ``page.goto("/matrix")``. Measured by the page itself
   (``window.gpMatrix``): ``firstRenderMs`` = ``performance.now()`` (whose origin is the
   navigation start) when ECharts reports ``finished`` for the first draw, which is the draw of
   the whole /api/matrix answer; the run counts only when that draw holds every customer
   (``count`` == ``points`` == customers, ``draws`` == 1). Median of ``--renders`` runs.
4. Live stream: ``--clients`` SSE clients (aiohttp, each signed in, ``/events?kinds=scores``)
   in ONE separate process, and a publisher process sending ``--rate`` score updates a second
   for ``--seconds`` (each the real score document of a random customer with ``ts`` = its
   publication wall time, RFC 3339 with microseconds). Each client takes delay = receive wall
   time - ts for every event; the dashboard coalesces per client (only the latest version of a
   key is kept while a client is behind), so delivered / published is reported too. The
   dashboard's CPU (psutil, user + system over the publishing span, in cores) and RSS.
5. One JSON object printed and written to ``--out``.

The pure helpers (percentiles, document builders, the SSE parser) are unit-tested in
tests/unit/test_dashboard_bench.py.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import functools
import json
import math
import os
import random
import secrets
import signal
import socket
import statistics
import subprocess
import sys
import time
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import psutil

from bench.machine import CHROMIUM, CHROMIUM_ARGS, machine_facts
from gridpulse.settings import Settings
from gridpulse.workerproc import ROOT, WorkerProcess, worker_env
from schemas import topics as contract
from scoring import ModelConfig, Population, score_arrays
from scoring.model import to_documents

VIEWPORT = {"width": 1366, "height": 900}
USER = "bench"
SEED = 0
STATS_AS_OF = "2026-11-01T00:00:00+08:00"
# what the page says about its first draw, and the navigation's own milestones (ms since its start)
READ_MATRIX = """(() => {
  const g = window.gpMatrix;
  const nav = performance.getEntriesByType("navigation")[0];
  return {count: g.count, points: g.points, draws: g.draws, firstRenderMs: g.firstRenderMs,
          fetchMs: g.fetchMs, buildMs: g.buildMs, renderMs: g.renderMs,
          domContentLoadedMs: nav ? nav.domContentLoadedEventEnd : null,
          loadEventMs: nav ? nav.loadEventEnd : null,
          // [startTime, responseEnd] of the page's requests (the stream's never ends: absent)
          resources: Object.fromEntries(performance.getEntriesByType("resource")
            .map((e) => [new URL(e.name).pathname, [Math.round(e.startTime), Math.round(e.responseEnd)]]))};
})()"""


# ---------------------------------------------------------------------- pure helpers


def percentile(values: Sequence[float], q: float) -> float | None:
    """The q-th percentile (0..100) with linear interpolation between the closest ranks
    (numpy's default); None for no values."""
    if not 0.0 <= q <= 100.0:
        raise ValueError("q must be within 0..100")
    if len(values) == 0:
        return None
    s = sorted(values)
    pos = (len(s) - 1) * q / 100.0
    lo = math.floor(pos)
    hi = min(lo + 1, len(s) - 1)
    return s[lo] + (s[hi] - s[lo]) * (pos - lo)


def delay_summary(delays_s: Sequence[float] | np.ndarray) -> dict[str, float | int | None]:
    """p50/p95/p99/max (and min, mean) of delays given in seconds, in milliseconds."""
    a = np.asarray(delays_s, dtype=np.float64)
    if a.size == 0:
        return {
            "n": 0,
            "p50_ms": None,
            "p95_ms": None,
            "p99_ms": None,
            "max_ms": None,
            "min_ms": None,
            "mean_ms": None,
        }
    p50, p95, p99 = np.percentile(a, [50, 95, 99]) * 1000.0
    return {
        "n": int(a.size),
        "p50_ms": round(float(p50), 1),
        "p95_ms": round(float(p95), 1),
        "p99_ms": round(float(p99), 1),
        "max_ms": round(float(a.max()) * 1000.0, 1),
        "min_ms": round(float(a.min()) * 1000.0, 1),
        "mean_ms": round(float(a.mean()) * 1000.0, 1),
    }


def rfc3339_us(epoch_s: float) -> str:
    """An epoch time as RFC 3339 in UTC with microseconds: 2026-12-01T23:45:00.123456+00:00."""
    return datetime.fromtimestamp(epoch_s, UTC).isoformat(timespec="microseconds")


@functools.lru_cache(maxsize=1 << 16)
def ts_epoch(text: str) -> float:
    """An RFC 3339 time (with an offset) as epoch seconds; cached (50 clients see each ts)."""
    dt = datetime.fromisoformat(text)
    if dt.tzinfo is None:
        raise ValueError("ts has no offset")
    return dt.timestamp()


def event_ts(data: bytes) -> float | None:
    """The ``doc.ts`` of an ``update`` event's data (``{"kind","key","doc":{...}}``) as epoch
    seconds, without parsing the whole document; None when it has none."""
    start = data.find(b'"doc":')
    if start < 0:
        return None
    at = data.find(b'"ts":"', start)
    if at < 0:
        return None
    at += 6
    end = data.find(b'"', at)
    if end < 0:
        return None
    try:
        return ts_epoch(data[at:end].decode())
    except ValueError:
        return None


UPDATE_HEAD = b"event: update\ndata: "


class SseParser:
    """Incremental text/event-stream parser: ``feed(chunk)`` -> [(event name, data bytes)] of
    the events completed by the chunk; comments (``: ping``) and ``retry:`` lines skipped;
    multi-line data joined by newlines (the SSE rules, for LF line ends)."""

    def __init__(self) -> None:
        self._buf = b""

    def feed(self, chunk: bytes) -> list[tuple[str, bytes]]:
        # one split per chunk (linear: a chunk of a fast stream holds hundreds of events)
        blocks = (self._buf + chunk).split(b"\n\n")
        self._buf = blocks.pop()
        out: list[tuple[str, bytes]] = []
        for block in blocks:
            if block.startswith(UPDATE_HEAD) and b"\n" not in block[len(UPDATE_HEAD) :]:
                out.append(("update", block[len(UPDATE_HEAD) :]))  # the hub's one-line updates
                continue
            name = "message"
            data: list[bytes] = []
            for line in block.split(b"\n"):
                if line.startswith(b":"):
                    continue
                field, _, value = line.partition(b":")
                if value.startswith(b" "):
                    value = value[1:]
                if field == b"event":
                    name = value.decode()
                elif field == b"data":
                    data.append(value)
            if data:
                out.append((name, b"\n".join(data)))
        return out


def socket_queues(ss_output: str, port: int) -> dict[str, int]:
    """From ``ss -tnH`` lines (Recv-Q, Send-Q, local, peer): bytes waiting in the kernel on the
    connections to ``port``: unread by the clients (their Recv-Q) and not yet taken by them
    (the server side's Send-Q)."""
    recv = send = 0
    for line in ss_output.splitlines():
        parts = line.split()
        if len(parts) < 4 or not (parts[0].isdigit() and parts[1].isdigit()):
            continue
        local, peer = parts[2].rsplit(":", 1)[1], parts[3].rsplit(":", 1)[1]
        if peer == str(port):
            recv += int(parts[0])
        elif local == str(port):
            send += int(parts[1])
    return {"client_recv_q": recv, "server_send_q": send}


def stats_documents(pop: Population, *, as_of: str = STATS_AS_OF) -> list[dict[str, Any]]:
    """A full ``stats.customer`` document per customer of ``pop``, as the worker publishes them
    (windows, arrears with buckets, 26 months of consumption, the hour-of-day curve), with the
    figures scoring reads taken from the population (a missing d30 kWh is 0 kWh: a window's
    energy is never null), the rest drawn from them with a fixed seed."""
    rng = np.random.default_rng(len(pop))
    n = len(pop)
    shape = rng.uniform(0.3, 1.7, (n, 24))
    months = [f"{y}-{m:02d}" for y in (2024, 2025, 2026) for m in range(1, 13)][-26 - 2 : -2]
    seasonal = rng.uniform(0.7, 1.3, (n, len(months)))
    docs: list[dict[str, Any]] = []
    for i in range(n):
        kwh = float(pop.d30_kwh[i]) if math.isfinite(pop.d30_kwh[i]) else 0.0
        lf = float(pop.load_factor[i]) if kwh > 0 and math.isfinite(pop.load_factor[i]) else None
        pf = float(pop.power_factor[i]) if kwh > 0 and math.isfinite(pop.power_factor[i]) else None
        avg = kwh / 720.0
        due = _finite(pop.due_36m[i])
        paid = _finite(pop.paid_36m[i])
        outstanding = max(0.0, due - paid)
        overdue = int(pop.oldest_overdue_days[i]) if math.isfinite(pop.oldest_overdue_days[i]) else 0
        hourly = (shape[i] / shape[i].mean() * avg).tolist()

        def window(
            e: float, hours: float, intervals: int, lf: float | None = lf, pf: float | None = pf
        ) -> dict[str, Any]:
            a = e / hours if hours else 0.0
            return {
                "kwh": e,
                "kvarh": e * 0.3,
                "avg_kw": a,
                "max_kw": a / lf if lf else 0.0,
                "load_factor": lf if e > 0 else None,
                "power_factor": pf if e > 0 else None,
                "intervals": intervals,
                "hours": hours,
            }

        docs.append(
            {
                "customer_id": pop.customer_id[i],
                "ts": pop.ts[i],
                "day": {**window(kwh / 30.0, 24.0, 96), "date": "2026-10-31"},
                "d30": {**window(kwh, 720.0, 2880), "from": "2026-10-02", "to": "2026-10-31"},
                "month": {
                    **window(kwh, 744.0, 2976),
                    "period": "2026-10",
                    "pf_standard": 0.9,
                    "pf_adjustment_pct": None if pf is None else round((0.9 - pf) * 10.0, 2),
                },
                "arrears": {
                    "outstanding": outstanding,
                    "oldest_overdue_days": overdue,
                    "overdue_buckets": _buckets(outstanding, overdue),
                    "late_fees_12m": int(_finite(pop.late_fees_12m[i])),
                    "reversals_12m": int(_finite(pop.reversals_12m[i])),
                    "paid_36m": paid,
                    "due_36m": due,
                    "late_fee_amount_36m": _finite(pop.late_fee_amount_36m[i]),
                    "theft_12m": _finite(pop.theft_12m[i]),
                    "as_of": as_of,
                },
                "consumption": {m: kwh * float(s) for m, s in zip(months, seasonal[i], strict=True)},
                "yoy_growth_rate": _or_none(pop.yoy_growth_rate[i]),
                "yoy_growth_kwh": _or_none(pop.yoy_growth_kwh[i]),
                "hourly_kw": hourly if kwh > 0 else None,
                "profile_known": True,
                "gaps": [],
            }
        )
    return docs


def _finite(x: Any) -> float:
    f = float(x)
    return f if math.isfinite(f) else 0.0


def _or_none(x: Any) -> float | None:
    f = float(x)
    return f if math.isfinite(f) else None


def _buckets(outstanding: float, oldest_days: int) -> dict[str, float]:
    b = {"0_30": 0.0, "31_60": 0.0, "61_90": 0.0, "over_90": 0.0}
    key = (
        "0_30"
        if oldest_days <= 30
        else "31_60"
        if oldest_days <= 60
        else "61_90"
        if oldest_days <= 90
        else "over_90"
    )
    b[key] = outstanding
    return b


def population(customers: int, seed: int = SEED) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(stats documents, scores documents) of ``customers`` simulated customers, the scores by
    the real model as the scoring agent publishes them."""
    from bench.scoring_bench import simulate

    pop = simulate(customers, seed)
    scores = to_documents(pop, score_arrays(pop, ModelConfig()))
    return stats_documents(pop), scores


def update_of(score: dict[str, Any], epoch_s: float) -> bytes:
    """A score document republished at ``epoch_s``: its ``ts`` is that wall time."""
    return orjson.dumps({**score, "ts": rfc3339_us(epoch_s)})


# ---------------------------------------------------------------------- Kafka


async def _publish_population(
    settings: Settings, stats: list[dict[str, Any]], scores: list[dict[str, Any]]
) -> None:
    from streams.kafka import make_producer

    producer = make_producer(settings, linger_ms=50, max_batch_size=1 << 20)
    await producer.start()
    try:
        for topic, docs in ((contract.STATS_CUSTOMER, stats), (contract.SCORES_CUSTOMER, scores)):
            name = settings.topic(topic)
            pending = []
            for d in docs:
                pending.append(
                    await producer.send(name, key=d["customer_id"].encode(), value=orjson.dumps(d))
                )
                if len(pending) >= 5000:
                    await asyncio.gather(*pending)
                    pending = []
            await asyncio.gather(*pending)
    finally:
        await producer.stop()


async def _publisher(rate: float, seconds: float, customers: int, seed: int, marker: Path) -> dict[str, Any]:
    """``rate`` score updates a second for ``seconds``; each a real score document of a random
    customer with ``ts`` = the wall time it is handed to the producer. ``marker`` is written
    when the documents are built and sending starts (the parent's CPU span starts there)."""
    from bench.scoring_bench import simulate
    from streams.kafka import make_producer

    settings = Settings()
    pop = simulate(customers, seed)
    scores = to_documents(pop, score_arrays(pop, ModelConfig()))
    name = settings.topic(contract.SCORES_CUSTOMER)
    rnd = random.Random(seed + 1)
    producer = make_producer(settings, linger_ms=5)
    await producer.start()
    marker.write_text("sending")  # noqa: ASYNC240 (once, a few bytes)
    sent = 0
    futures: list[asyncio.Future[Any]] = []
    behind_max = 0.0
    try:
        t0 = time.monotonic()
        wall0 = time.time()
        total = int(rate * seconds)
        tick = 0.01  # a batch every 10 ms
        while sent < total:
            due = min(total, int((time.monotonic() - t0) * rate) + 1)
            while sent < due:
                doc = scores[rnd.randrange(len(scores))]
                futures.append(
                    await producer.send(
                        name, key=doc["customer_id"].encode(), value=update_of(doc, time.time())
                    )
                )
                sent += 1
            behind_max = max(behind_max, (time.monotonic() - t0) - sent / rate)
            if len(futures) > 5000:
                await asyncio.gather(*futures)
                futures = []
            next_at = t0 + sent / rate
            await asyncio.sleep(max(0.0, min(tick, next_at - time.monotonic())))
        spent = time.monotonic() - t0
        await asyncio.gather(*futures)
        acked_s = time.monotonic() - t0
    finally:
        await producer.stop()
    return {
        "sent": sent,
        "seconds": round(spent, 3),
        "rate": round(sent / spent, 1),
        "all_acked_after_s": round(acked_s, 3),
        "behind_schedule_max_s": round(max(0.0, behind_max), 3),
        "first_wall": wall0,
    }


# ---------------------------------------------------------------------- SSE clients


async def _clients(url: str, password: str, n: int, ready_file: Path, quiet_s: float) -> dict[str, Any]:
    """``n`` signed-in SSE clients on /events?kinds=scores; on SIGINT (the publisher is done)
    they stop once nothing arrived for ``quiet_s``. Per client: events and delays."""
    import aiohttp

    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    loop.add_signal_handler(signal.SIGINT, stop.set)
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    delays: list[list[float]] = [[] for _ in range(n)]
    counts = [0] * n
    resets = [0] * n
    no_ts = [0] * n
    connected = 0
    last_event = [time.monotonic()]
    me = psutil.Process()

    async def one(i: int, session: aiohttp.ClientSession) -> None:
        nonlocal connected
        async with session.post(f"{url}/api/login", json={"user": USER, "password": password}) as r:
            r.raise_for_status()
        async with session.get(f"{url}/events", params={"kinds": "scores"}) as resp:
            resp.raise_for_status()
            connected += 1
            if connected == n:
                ready_file.write_text("ready")  # noqa: ASYNC240 (once)
            parser = SseParser()
            mine = delays[i]
            async for chunk in resp.content.iter_any():
                now = time.time()
                for name, data in parser.feed(chunk):
                    if name == "update":
                        counts[i] += 1
                        ts = event_ts(data)
                        if ts is None:
                            no_ts[i] += 1
                        else:
                            mine.append(now - ts)
                    elif name == "reset":
                        resets[i] += 1
                last_event[0] = time.monotonic()

    sessions = [
        aiohttp.ClientSession(
            cookie_jar=aiohttp.CookieJar(unsafe=True),  # a cookie for 127.0.0.1 (an IP host)
            timeout=aiohttp.ClientTimeout(total=None, sock_read=None),
        )
        for _ in range(n)
    ]
    tasks = [asyncio.create_task(one(i, s)) for i, s in enumerate(sessions)]
    cpu0 = me.cpu_times()
    t0 = time.monotonic()
    try:
        waiter = asyncio.create_task(stop.wait())
        done, _ = await asyncio.wait({waiter, *tasks}, return_when=asyncio.FIRST_COMPLETED)
        for t in done:
            if t is not waiter and t.exception() is not None:
                raise RuntimeError(f"an SSE client failed: {t.exception()!r}")
        while time.monotonic() - last_event[0] < quiet_s and time.monotonic() - t0 < 3600:  # noqa: ASYNC110
            await asyncio.sleep(0.1)  # until the clients have been quiet for quiet_s
    finally:
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        for s in sessions:
            await s.close()
    cpu1 = me.cpu_times()
    wall = time.monotonic() - t0
    everything = np.concatenate([np.asarray(d, dtype=np.float64) for d in delays]) if n else np.array([])
    return {
        "clients": n,
        "events": counts,
        "resets": resets,
        "events_without_ts": sum(no_ts),
        "delay": delay_summary(everything),
        "per_client_p99_ms": [delay_summary(d)["p99_ms"] for d in delays],
        "cpu_cores_over_its_life": round((cpu1.user + cpu1.system - cpu0.user - cpu0.system) / wall, 3),
        "wall_s": round(wall, 2),
    }


# ---------------------------------------------------------------------- the run


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _git(*args: str) -> str:
    try:
        return subprocess.run(
            ["git", *args], cwd=ROOT, capture_output=True, text=True, check=True
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return ""


def _sample_queues(port: int) -> dict[str, int]:
    try:
        out = subprocess.run(
            ["ss", "-tnH", "state", "established"], capture_output=True, text=True, timeout=5
        )
    except (OSError, subprocess.TimeoutExpired):
        return {"client_recv_q": 0, "server_send_q": 0}
    return socket_queues(out.stdout, port)


def _sched_s(pid: int) -> tuple[float, float]:
    """(on CPU, runnable but waiting for a CPU) seconds of the process's live threads, from
    /proc/<pid>/task/*/schedstat: the wait is what a process loses to the others on a shared
    machine."""
    run = wait = 0.0
    for stat in Path(f"/proc/{pid}/task").glob("*/schedstat"):
        try:
            fields = stat.read_text().split()
        except OSError:
            continue  # a thread that ended
        run += int(fields[0]) / 1e9
        wait += int(fields[1]) / 1e9
    return run, wait


def _vm_hwm_mb(pid: int) -> float | None:
    """The process's peak resident set (VmHWM), MB."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return round(int(line.split()[1]) / 1024, 1)
    except OSError:
        pass
    return None


def _wait_loaded(url: str, password: str, n: int, dash: WorkerProcess, timeout_s: float) -> dict[str, Any]:
    import httpx

    deadline = time.monotonic() + timeout_s
    client: httpx.Client | None = None
    last: Any = None
    try:
        while time.monotonic() < deadline:
            if not dash.running:
                raise RuntimeError(f"gridpulse dashboard exited:\n{dash.log_tail()}")
            try:
                if client is None:
                    client = httpx.Client(base_url=url, timeout=30.0)
                    client.post("/api/login", json={"user": USER, "password": password}).raise_for_status()
                health = client.get("/healthz").json()
                scored = client.get("/api/overview").json()["customers_scored"]
                last = (health, scored)
                if health.get("feed_ready") and scored == n:
                    m = client.get("/api/matrix").json()
                    last = (health, scored, sum(k is not None for k in m["kwh30"]))
                    if len(m["ids"]) == n and last[2] == n:
                        return {"healthz": health, "customers_scored": scored}
            except (httpx.HTTPError, KeyError, ValueError) as exc:
                last = repr(exc)
                client = None
            time.sleep(0.5)
    finally:
        if client is not None:
            client.close()
    raise RuntimeError(f"the dashboard did not hold {n} customers within {timeout_s} s (last: {last})")


def _collect(errors: list[str], exc: Any) -> None:
    errors.append(str(exc))


def _render_runs(url: str, password: str, n: int, runs: int) -> dict[str, Any]:
    from playwright.sync_api import sync_playwright

    samples: list[dict[str, Any]] = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS)
        version = browser.version
        try:
            for k in range(runs):
                context = browser.new_context(viewport=VIEWPORT)  # type: ignore[arg-type]  # a first visit: no cache
                try:
                    r = context.request.post(f"{url}/api/login", data={"user": USER, "password": password})
                    if r.status != 200:
                        raise RuntimeError(f"sign-in failed: {r.status}")
                    page = context.new_page()
                    errors: list[str] = []
                    page.on("pageerror", functools.partial(_collect, errors))
                    t0 = time.perf_counter()
                    page.goto(f"{url}/matrix")
                    page.wait_for_function("window.gpMatrix && window.gpMatrix.draws >= 1", timeout=120_000)
                    seen_s = time.perf_counter() - t0
                    m = page.evaluate(READ_MATRIX)
                    if errors:
                        raise RuntimeError(f"the matrix page raised: {errors[:3]}")
                    if not (m["count"] == m["points"] == n and m["draws"] == 1):
                        raise RuntimeError(f"the first draw was not the full matrix: {m}")
                    m["wall_goto_to_seen_ms"] = round(seen_s * 1000.0, 1)
                    samples.append({k2: (round(v, 1) if isinstance(v, float) else v) for k2, v in m.items()})
                    print(f"matrix render {k + 1}/{runs}: {samples[-1]}", file=sys.stderr)
                finally:
                    context.close()
        finally:
            browser.close()
    first = [s["firstRenderMs"] for s in samples]
    return {
        "median_ms": round(statistics.median(first), 1),
        "min_ms": min(first),
        "max_ms": max(first),
        "runs": samples,
        "chromium": version,
    }


def _sse_phase(
    settings: Settings, url: str, password: str, dash: WorkerProcess, args: argparse.Namespace, out_dir: Path
) -> dict[str, Any]:
    import httpx

    assert dash.proc is not None
    dproc = psutil.Process(dash.proc.pid)
    ready = out_dir / "clients.ready"
    ready.unlink(missing_ok=True)
    clients_out = out_dir / "clients.json"
    publisher_out = out_dir / "publisher.json"
    env = worker_env(settings)
    me = [sys.executable, "-m", "bench.dashboard_bench"]
    with (out_dir / "clients.log").open("wb") as log:
        clients = subprocess.Popen(
            [*me, "_clients", "--url", url, "--password", password, "--clients", str(args.clients),
             "--ready-file", str(ready), "--out", str(clients_out)],
            cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
        )  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        while not ready.exists():
            if clients.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(
                    f"the SSE clients did not connect: {(out_dir / 'clients.log').read_text()[-2000:]}"
                )
            time.sleep(0.1)
        sse_seen = httpx.get(f"{url}/healthz", timeout=10).json()["sse_clients"]
        if sse_seen < args.clients:
            raise RuntimeError(f"the dashboard sees {sse_seen} SSE clients, not {args.clients}")
        time.sleep(1.0)
        rss_samples: list[float] = []
        queues: list[dict[str, int]] = []
        port = int(url.rsplit(":", 1)[1])
        with (out_dir / "publisher.log").open("wb") as log:
            publisher = subprocess.Popen(
                [*me, "_publish", "--rate", str(args.rate), "--seconds", str(args.seconds),
                 "--customers", str(args.customers), "--out", str(publisher_out)],
                cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
            )  # fmt: skip
        # the publisher builds its population first (a few seconds): CPU from its first send
        while publisher.poll() is None and not publisher_out.with_suffix(".sending").exists():
            time.sleep(0.05)
        cproc = psutil.Process(clients.pid)
        cpu0, ccpu0 = dproc.cpu_times(), cproc.cpu_times()
        sched0, csched0 = _sched_s(dproc.pid), _sched_s(cproc.pid)
        t0 = time.monotonic()
        profilers: list[subprocess.Popen[bytes]] = []
        profiles: list[str] = []
        if args.py_spy:  # both processes, idle samples included (the share of time waiting shows)
            ext = "speedscope.json" if args.py_spy == "speedscope" else "svg"
            for who, pid in (("dashboard", dproc.pid), ("clients", clients.pid)):
                profile = out_dir / f"{who}-sse.{ext}"
                spy = [str(Path(sys.executable).parent / "py-spy"), "record", "--pid", str(pid), "--idle"]
                spy += ["--rate", "100", "--duration", str(int(args.seconds)), "--nonblocking"]
                spy += ["--format", args.py_spy, "-o", str(profile)]
                with (out_dir / f"py-spy-{who}.log").open("wb") as spy_log:
                    profilers.append(subprocess.Popen(spy, stdout=spy_log, stderr=subprocess.STDOUT))
                profiles.append(str(profile.relative_to(ROOT)))
        while publisher.poll() is None:
            rss_samples.append(dproc.memory_info().rss / 2**20)
            queues.append(_sample_queues(port))
            time.sleep(0.5)
        cpu1, ccpu1 = dproc.cpu_times(), cproc.cpu_times()
        sched1, csched1 = _sched_s(dproc.pid), _sched_s(cproc.pid)
        span = time.monotonic() - t0
        if publisher.returncode != 0:
            raise RuntimeError(f"the publisher failed: {(out_dir / 'publisher.log').read_text()[-2000:]}")
        clients.send_signal(signal.SIGINT)
        clients.wait(120)
        if clients.returncode != 0:
            raise RuntimeError(f"the SSE clients failed: {(out_dir / 'clients.log').read_text()[-2000:]}")
        for profiler in profilers:
            profiler.wait(60)
    finally:
        if clients.poll() is None:
            clients.kill()
            clients.wait(10)
    pub = json.loads(publisher_out.read_text())
    cl = json.loads(clients_out.read_text())
    delivered = [c / pub["sent"] for c in cl["events"]]
    return {
        "publisher": pub,
        "clients": cl,
        "dashboard_cpu_cores": round((cpu1.user + cpu1.system - cpu0.user - cpu0.system) / span, 3),
        "client_process_cpu_cores": round((ccpu1.user + ccpu1.system - ccpu0.user - ccpu0.system) / span, 3),
        # time runnable but not running (another process had the CPU), per second of the span
        "dashboard_runqueue_wait_per_s": round((sched1[1] - sched0[1]) / span, 3),
        "client_process_runqueue_wait_per_s": round((csched1[1] - csched0[1]) / span, 3),
        "dashboard_rss_mb_during": {
            "max": round(max(rss_samples), 1) if rss_samples else None,
            "median": round(statistics.median(rss_samples), 1) if rss_samples else None,
        },
        "delivered_ratio": {
            "mean": round(statistics.mean(delivered), 4),
            "min": round(min(delivered), 4),
            "max": round(max(delivered), 4),
        },
        "cpu_span_s": round(span, 2),
        # bytes in the kernel between the dashboard and its clients, sampled every 0.5 s
        "socket_queues_mb": {
            side: {
                "median": round(statistics.median(q[side] for q in queues) / 2**20, 2) if queues else None,
                "max": round(max(q[side] for q in queues) / 2**20, 2) if queues else None,
            }
            for side in ("client_recv_q", "server_send_q")
        },
        "py_spy_profiles": profiles,
    }


def run(args: argparse.Namespace) -> dict[str, Any]:
    from dashboard.auth import hash_password
    from streams.kafka import create_contract_topics, delete_topics

    tag = f"{int(time.time())}-{uuid.uuid4().hex[:6]}"
    out_dir = ROOT / "bench" / "out" / f"dashboard-{tag}"
    out_dir.mkdir(parents=True, exist_ok=True)
    password = secrets.token_urlsafe(16)
    port = _free_port()
    settings = Settings().model_copy(
        update={
            "topic_prefix": f"dbench{tag}.",
            "app_id": f"dashboard-bench-{tag}",
            "dashboard_users": [{"user": USER, "password_hash": hash_password(password), "role": "viewer"}],
            "dashboard_users_file": None,
            "dashboard_host": "127.0.0.1",
            "dashboard_port": port,
        }
    )
    result: dict[str, Any] = {
        "bench": "dashboard",
        "run": tag,
        "when": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "command": "python -m bench.dashboard_bench " + " ".join(args.argv),
        "machine": {
            **machine_facts(settings),
            "commit": _git("rev-parse", "--short", "HEAD"),
            "dashboard_code_uncommitted": _git("status", "--porcelain", "--", "dashboard"),
        },
        "customers": args.customers,
    }
    t = time.perf_counter()
    stats, scores = population(args.customers)
    result["population_built_s"] = round(time.perf_counter() - t, 1)
    result["stats_doc_bytes_mean"] = round(statistics.mean(len(orjson.dumps(d)) for d in stats[:1000]))
    result["score_doc_bytes_mean"] = round(statistics.mean(len(orjson.dumps(d)) for d in scores[:1000]))
    print(f"population: {args.customers:,} customers in {result['population_built_s']} s", file=sys.stderr)
    topics = asyncio.run(create_contract_topics(settings))
    dash: WorkerProcess | None = None
    try:
        t = time.perf_counter()
        asyncio.run(_publish_population(settings, stats, scores))
        result["population_published_s"] = round(time.perf_counter() - t, 1)
        del stats, scores
        print(f"published in {result['population_published_s']} s", file=sys.stderr)
        dash = WorkerProcess(settings, out_dir / "dashboard.log")
        url = f"http://127.0.0.1:{port}"
        t = time.perf_counter()
        dash.start(command=["dashboard", "--loglevel", "warning"])
        loaded = _wait_loaded(url, password, args.customers, dash, timeout_s=900)
        result["dashboard_load_s"] = round(time.perf_counter() - t, 1)
        result["dashboard_records_read"] = loaded["healthz"].get("records")
        assert dash.proc is not None
        result["dashboard_rss_mb_loaded"] = round(psutil.Process(dash.proc.pid).memory_info().rss / 2**20, 1)
        print(f"dashboard loaded in {result['dashboard_load_s']} s", file=sys.stderr)
        if args.renders > 0:
            r = _render_runs(url, password, args.customers, args.renders)
            result["matrix_render_ms"] = r
            result["matrix_render_target_ms"] = 2000
            print(f"matrix render median {r['median_ms']} ms", file=sys.stderr)
        if args.seconds > 0 and args.clients > 0:
            s = _sse_phase(settings, url, password, dash, args, out_dir)
            d = s["clients"]["delay"]
            result.update(
                {
                    "sse_clients": args.clients,
                    "sse_rate": args.rate,
                    "sse_seconds": args.seconds,
                    "sse_published": s["publisher"]["sent"],
                    "sse_publisher_rate": s["publisher"]["rate"],
                    "sse_delay_p50_ms": d["p50_ms"],
                    "sse_delay_p95_ms": d["p95_ms"],
                    "sse_delay_p99_ms": d["p99_ms"],
                    "sse_delay_max_ms": d["max_ms"],
                    "sse_delay_target_p99_ms": 1000,
                    "sse_delivered_ratio": s["delivered_ratio"]["mean"],
                    "sse_delivered_ratio_min": s["delivered_ratio"]["min"],
                    "dashboard_cpu_cores": s["dashboard_cpu_cores"],
                    "dashboard_rss_mb": s["dashboard_rss_mb_during"]["max"],
                    "sse_client_process_cpu_cores": s["client_process_cpu_cores"],
                    "dashboard_runqueue_wait_per_s": s["dashboard_runqueue_wait_per_s"],
                    "sse": s,
                }
            )
        assert dash.proc is not None
        result["dashboard_rss_mb_peak"] = _vm_hwm_mb(dash.proc.pid)
    finally:
        if dash is not None:
            dash.stop()
        if not args.keep:
            asyncio.run(delete_topics(settings, list(topics)))
    result["machine"]["load_average_at_end"] = [round(x, 2) for x in os.getloadavg()]
    return result


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] == "_publish":
        ap = argparse.ArgumentParser()
        ap.add_argument("--rate", type=float, required=True)
        ap.add_argument("--seconds", type=float, required=True)
        ap.add_argument("--customers", type=int, required=True)
        ap.add_argument("--out", type=Path, required=True)
        a = ap.parse_args(argv[1:])

        marker = a.out.with_suffix(".sending")
        marker.unlink(missing_ok=True)
        res = asyncio.run(_publisher(a.rate, a.seconds, a.customers, SEED, marker))
        a.out.write_text(json.dumps(res))
        return 0
    if argv and argv[0] == "_clients":
        ap = argparse.ArgumentParser()
        ap.add_argument("--url", required=True)
        ap.add_argument("--password", required=True)
        ap.add_argument("--clients", type=int, required=True)
        ap.add_argument("--ready-file", type=Path, required=True)
        ap.add_argument("--out", type=Path, required=True)
        ap.add_argument("--quiet-s", type=float, default=2.0)
        a = ap.parse_args(argv[1:])
        res = asyncio.run(_clients(a.url, a.password, a.clients, a.ready_file, a.quiet_s))
        a.out.write_text(json.dumps(res))
        return 0
    ap = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    ap.add_argument("--customers", type=int, default=100_000)
    ap.add_argument("--clients", type=int, default=50)
    ap.add_argument("--rate", type=float, default=1000.0, help="score updates published a second")
    ap.add_argument("--seconds", type=float, default=30.0, help="how long the updates are published")
    ap.add_argument("--renders", type=int, default=3, help="value-matrix renders (median); 0: none")
    ap.add_argument(
        "--py-spy",
        choices=("speedscope", "flamegraph"),
        default=None,
        help="record the dashboard's stacks during the SSE phase into bench/out/ (slows it)",
    )
    ap.add_argument("--keep", action="store_true", help="keep the run's topics")
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "dashboard_results.json")
    args = ap.parse_args(argv)
    args.argv = argv
    result = run(args)
    text = json.dumps(result, indent=2)
    print(text)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text + "\n")
    return 0


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        sys.exit(main())
