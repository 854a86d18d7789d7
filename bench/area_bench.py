"""The inspection stage in `make bench` (issue 13, "Performance"): what the area stage costs per
reading on top of the pipeline, and how long a theft takes to become an alert when data arrives
daily.

    python -m bench.area_bench [--area-customers 20000] [--area-repeats 1] [--area-singles 0]
                               [--theft-customers 2000] [--skip overhead,theft] [--out FILE]

(``python -m bench.run --with areas`` runs the same phases inside the full benchmark; `make
bench` does.)

overhead  The same population (bench/blocks.py's daily curves: ``--area-customers`` meters, one
          96-interval block each, one local day) through two fresh workers of the same code,
          one after the other, each on topics and state of its own:
          off  the profiles without ``transformer_area`` and no ``area.readings``: the stage has
               nothing to do (the readings agent finds no area for a customer and counts its
               intervals as ``area_energy_no_area``);
          on   the profiles as the simulator draws them (every customer in a transformer area,
               ~42 customers an area) and the day's curve of every area's summary meter on
               ``area.readings`` (the members' sum x (1 + a technical loss of 2-5 %)), published
               and applied before the readings: the customers' energy goes through the
               repartition to the area agents, every area's state is updated and written,
               ``stats.area`` and Redis ``gp:areas:`` are published and the rules run.
          Each worker starts with its profiles applied and idle; the readings are then published
          while it reads them. Rate: readings applied from the first poll that saw any to the
          last (as bench.run's pipeline). CPU: the worker's user + system seconds from just
          before the readings are published until the last half second it was busy (over 0.15
          of a core) before ``QUIET_S`` idle, after every reading is applied and (on) every
          interval counted by its area: the area agents' 10 s batches, the stats and the
          rules' evaluation AREA_SETTLE_S after the last input are inside. ``--area-repeats`` alternates
          off/on that many times (medians reported). ``--area-singles N``: the same A/B on
          single readings (``--area-customers`` / 10 customers x N intervals, time order).
          Beside it, measured in this process: what the readings agent does for the stage in
          both variants (``EnergyOut.add`` per applied interval, which "off" pays too) and in
          "on" only (the batch's messages, ``batch_energy_messages``).
theft     simulator/areas.py's planned population (``--theft-customers``, 12 local days ending
          at the last local midnight; the theft 5 days before the end, so within the alerts'
          7-day horizon) delivered as data arrives daily: the profiles, then one local day of
          both topics at a time (every area's and every meter's curve of the day), each day
          once the one before is counted (the worker's ``area_supply_applied`` and
          ``area_energy_applied`` reach the intervals sent), and from the theft's first day on,
          waiting up to ``--alert-wait`` s after a day is counted for the thief's area's
          ``area_high_loss`` before sending the next. The worker runs with production's alert
          settings (``GRIDPULSE_CREDIT_OPEN_HOLD_S`` default 30 s). Reported: the data days from
          the theft's first day to the day whose publication the alert followed (1 = the
          theft's first day), the seconds from publishing that day to the alert's publication
          (its Kafka timestamp), split into the day's ingest (published -> counted) and the
          rest, the same for ``area_loss_jump``, and the thief's rank among the suspects.

Writes its keys into ``--out`` (default bench/results.json: the other keys stay as they are,
with ``area_run``/``area_when``/``area_command``/``area_machine`` saying which run these come
from), prints a table.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import orjson

from bench.blocks import DailyCurves, Pairs, day_start
from gridpulse.settings import Settings
from gridpulse.workerproc import ROOT, WorkerProcess
from schemas import topics as contract
from streams.agents.areas import AREA_SETTLE_S

QUIET_S = AREA_SETTLE_S + 8.0  # idle this long after the last input: the areas' settle and a tick are over
BUSY_CORES = 0.15  # a poll interval above this share of a core counts as busy
PHASES = ("overhead", "theft")
STALL_S = 60.0  # the areas counting nothing more this long after the readings: the stage is stuck


class StageStalled(RuntimeError):
    """The worker applied the readings but its areas stopped counting them (e.g. faust's
    consumer left the internal ``-area-energy`` topic out: "Ignoring missing topic" in the
    worker's log, when it was not in the broker's metadata yet at the subscription)."""


_PORTS = 30  # web ports +30.. of the run's block (bench.run uses +0..+25 and +40)


# ---------------------------------------------------------------------- pure helpers


def overhead_pct(on: float, off: float) -> float:
    """How much more ``on`` costs than ``off`` (CPU per reading), in per cent of ``off``."""
    if off <= 0:
        raise ValueError("the cost without the stage must be positive")
    return (on - off) / off * 100.0


def without_area(profiles: Pairs) -> Pairs:
    """The ``customers`` profiles without ``transformer_area``: the stage has nothing to do."""
    out = []
    for key, value in profiles:
        doc = orjson.loads(value)
        doc.pop("transformer_area", None)
        out.append((key, orjson.dumps(doc)))
    return out


def area_loss(areas: Sequence[str], seed: int) -> np.ndarray:
    """A technical loss per area, uniform in [2 %, 5 %] (simulator/areas.py's base range)."""
    return np.random.default_rng([seed, 0x1055]).uniform(0.02, 0.05, len(areas))


def summary_curves(kwh: np.ndarray, area_of: Sequence[str], loss: np.ndarray) -> tuple[list[str], np.ndarray]:
    """Every area's summary-meter curve from its members' curves: ``kwh`` [customer, interval]
    in kWh, ``area_of`` the area of each customer; the sum of the members x (1 + the area's
    ``loss``, in the order of the sorted areas), rounded to 4 decimals as the simulator's."""
    areas = sorted(set(area_of))
    index = {a: k for k, a in enumerate(areas)}
    rows = np.array([index[a] for a in area_of], dtype=np.int64)
    sums = np.zeros((len(areas), kwh.shape[1]))
    np.add.at(sums, rows, kwh)
    return areas, np.round(sums * (1 + loss[:, None]), 4)


def summary_blocks(curves: DailyCurves, seed: int = 3) -> Pairs:
    """``area.readings``: one daily curve per area of ``curves``' population (key the area)."""
    area_of = curves.pop.transformer_areas
    areas, sums = summary_curves(curves.kwh / 1e4, area_of, area_loss(sorted(set(area_of)), seed))
    start = datetime.fromtimestamp(curves.start, curves.tz).isoformat()
    out = []
    for area, row in zip(areas, sums, strict=True):
        value = {
            "meter_id": f"SUM-{area}",
            "transformer_area": area,
            "start": start,
            "interval_s": 900,
            "kwh": row.tolist(),
        }
        out.append((area.encode(), orjson.dumps(value)))
    return out


def summary_singles(readings: Pairs, area_of: dict[str, str], seed: int = 3) -> Pairs:
    """``area.readings`` for single readings: per area and interval end, the members' kWh x
    (1 + the area's loss), in time order."""
    sums: dict[tuple[str, str], float] = {}
    for _, value in readings:
        doc = orjson.loads(value)
        k = (doc["ts"], area_of[doc["customer_id"]])
        sums[k] = sums.get(k, 0.0) + float(doc["kwh"])
    areas = sorted(set(area_of.values()))
    loss = dict(zip(areas, area_loss(areas, seed).tolist(), strict=True))
    out = []
    for (ts, area), kwh in sorted(sums.items()):
        doc = {
            "meter_id": f"SUM-{area}",
            "transformer_area": area,
            "ts": ts,
            "interval_s": 900,
            "kwh": round(kwh * (1 + loss[area]), 4),
        }
        out.append((area.encode(), orjson.dumps(doc)))
    return out


def trigger_index(published_at: Sequence[float], alert_at: float) -> int | None:
    """The day whose publication an alert followed: the last day published at or before
    ``alert_at`` (``published_at`` ascending); None if it came before the first."""
    found = None
    for k, t in enumerate(published_at):
        if t <= alert_at:
            found = k
        else:
            break
    return found


def days_to_alert(days: Sequence[str], first_day: str, trigger_day: str) -> int:
    """Data days from ``first_day`` (the theft's first) to ``trigger_day`` (the day whose
    publication the alert followed), both counted: 1 = the alert came with the first day."""
    k0, k1 = days.index(first_day), days.index(trigger_day)
    if k1 < k0:
        raise ValueError(f"the alert came with {trigger_day}, before the theft's first day {first_day}")
    return k1 - k0 + 1


# ---------------------------------------------------------------------- following a worker


@dataclass
class Trace:
    """One variant's measurement: ``n`` readings applied, from ``t_first`` (the first poll that
    saw any, ``n_first`` then) to ``t_applied`` (every reading applied); ``t_area``: every
    applied interval counted by its area (None without the stage); ``cpu_s``: the worker's CPU
    from just before publishing to ``t_end``, its last busy moment; perf_counter seconds."""

    t0: float
    n: int
    n_first: int
    t_first: float
    t_applied: float
    t_area: float | None
    t_end: float
    cpu_s: float
    counters: dict[str, Any]
    idle_cores: float = 0.0  # the worker's CPU while idle just before (its timers, the polls)

    @property
    def net_cpu_s(self) -> float:
        """The CPU above the idle worker's over the same span: what the readings cost."""
        return self.cpu_s - self.idle_cores * (self.t_end - self.t0)

    @property
    def rps(self) -> float:
        return (self.n - self.n_first) / max(self.t_applied - self.t_first, 1e-9)

    @property
    def cpu_us_per_reading(self) -> float:
        return self.net_cpu_s / max(self.n, 1) * 1e6

    @property
    def raw_cpu_us_per_reading(self) -> float:
        return self.cpu_s / max(self.n, 1) * 1e6


async def _counters(worker: WorkerProcess) -> dict[str, Any]:
    try:
        return dict((await worker.counters())["counters"])
    except OSError:  # the web server answers late under load
        return {}


async def wait_quiet(
    worker: WorkerProcess, quiet_s: float = QUIET_S, within_s: float = 600, poll_s: float = 0.25
) -> float:
    """Until the worker has used less than ``BUSY_CORES`` for ``quiet_s`` seconds in a row
    (its counters polled as `follow` polls them); its CPU in cores over those seconds."""
    from bench.run import cpu_seconds

    deadline = time.monotonic() + within_s
    t_prev, cpu_prev = time.perf_counter(), cpu_seconds(worker)
    since, cpu_since = t_prev, cpu_prev
    while time.monotonic() < deadline:
        await _counters(worker)
        await asyncio.sleep(poll_s)
        t, cpu = time.perf_counter(), cpu_seconds(worker)
        if (cpu - cpu_prev) / (t - t_prev) > BUSY_CORES:
            since, cpu_since = t, cpu
        t_prev, cpu_prev = t, cpu
        if t - since >= quiet_s:
            return (cpu - cpu_since) / (t - since)
    raise TimeoutError(f"the worker was still busy after {within_s:.0f} s")


async def follow(
    worker: WorkerProcess,
    expected: int,
    t0: float,
    cpu0: float,
    *,
    areas: bool,
    within_s: float = 3600,
    poll_s: float = 0.25,
) -> Trace:
    """Poll the worker until it has applied ``expected`` readings (or 99.9 % and nothing more
    for 20 s: a reading or two the validation refuses), (``areas``) its areas have counted every
    applied interval, and it has been idle for ``QUIET_S``."""
    from bench.run import cpu_seconds

    deadline = time.monotonic() + within_s
    n = n_first = 0
    t_first = t_applied = None
    t_area: float | None = None
    t_prev, cpu_prev = t0, cpu0
    t_busy, cpu_busy = t0, cpu0
    t_change, last_n = t0, -1
    t_area_change, last_area = t0, -1
    counters: dict[str, Any] = {}
    while time.monotonic() < deadline:
        if not worker.running:
            raise RuntimeError(f"worker exited:\n{worker.log_tail()}")
        counters = await _counters(worker) or counters
        t, cpu = time.perf_counter(), cpu_seconds(worker)
        if (cpu - cpu_prev) / max(t - t_prev, 1e-9) > BUSY_CORES:
            t_busy, cpu_busy = t, cpu
        t_prev, cpu_prev = t, cpu
        n = int(counters.get("readings_applied", 0))
        if n and t_first is None:
            t_first, n_first = t, n
        if n != last_n:
            t_change, last_n = t, n
        if t_applied is None and n and (n >= expected or (n >= 0.999 * expected and t - t_change > 20)):
            t_applied = t if n >= expected else t_change
        area_n = int(counters.get("area_energy_applied", 0))
        if area_n != last_area:
            t_area_change, last_area = t, area_n
        if t_applied is not None and areas and t_area is None:
            if area_n >= n:
                t_area = t
            elif t - max(t_area_change, t_applied) > STALL_S:
                raise StageStalled(
                    f"the areas counted {area_n:,} of {n:,} intervals and nothing more for {STALL_S:.0f} s "
                    f"(worker log: {worker.log_path}): {counters}"
                )
        if t_applied is not None and (t_area is not None or not areas) and t - t_busy >= QUIET_S:
            assert t_first is not None
            return Trace(t0, n, n_first, t_first, t_applied, t_area, t_busy, cpu_busy - cpu0, counters)
        await asyncio.sleep(poll_s)
    raise TimeoutError(
        f"the worker applied {n:,} of {expected:,} readings within {within_s:.0f} s: {counters}"
    )


# ---------------------------------------------------------------------- overhead


def variant_settings(settings: Settings, name: str, out_dir: Path, port: int) -> Settings:
    from bench.run import scenario_settings

    return scenario_settings(settings, name, out_dir).model_copy(
        update={"web_port": settings.web_port + port}
    )


async def run_variant(
    r: dict[str, Any],
    settings: Settings,
    name: str,
    *args: Any,
    **kwargs: Any,
) -> Trace:
    """`measure_variant`, once more (under a new name) if the worker's stage stalled: the stall
    is recorded in ``area_stage_stalls``, not hidden."""
    try:
        return await measure_variant(settings, name, *args, **kwargs)
    except StageStalled as exc:
        print(f"  {name}: STAGE STALLED, measured again: {str(exc)[:200]}")
        r.setdefault("area_stage_stalls", []).append(f"{name}: {str(exc)[:300]}")
        return await measure_variant(settings, f"{name}r", *args, **kwargs)


async def measure_variant(
    settings: Settings,
    name: str,
    out_dir: Path,
    profiles: Pairs,
    supply: Pairs,
    readings: Pairs,
    expected: int,
    port: int,
    py_spy: Path | None = None,
) -> Trace:
    """One worker of its own: profiles applied, (``supply``) the summary meters applied, idle;
    then the readings published while it reads them, followed to the end."""
    from bench.run import cpu_seconds, publish, wait_applied
    from streams.kafka import create_contract_topics

    s = variant_settings(settings, name, out_dir, port)
    await create_contract_topics(s)
    await publish(s, contract.CUSTOMERS, profiles)
    worker = WorkerProcess(s, out_dir / f"worker-{name}.log").start()
    try:
        await worker.wait_ready(within_s=300)
        await wait_applied([worker], len(profiles), within_s=1800, counter="profiles_applied")
        if supply:
            await publish(s, contract.AREA_READINGS, supply)
            n_supply = sum(len(orjson.loads(v)["kwh"]) if b'"start"' in v else 1 for _, v in supply)
            await wait_applied([worker], n_supply, within_s=600, counter="area_supply_applied")
        idle = await wait_quiet(worker)
        spy = start_py_spy(worker, py_spy) if py_spy is not None else None
        t0, cpu0 = time.perf_counter(), cpu_seconds(worker)
        follower = asyncio.create_task(follow(worker, expected, t0, cpu0, areas=bool(supply)))
        pub_s = await publish(s, contract.METER_READINGS, readings)
        trace = replace(await follower, idle_cores=idle)
        if spy is not None:
            spy.send_signal(signal.SIGINT)
            spy.wait(60)
        lag = "" if trace.t_area is None else f"; areas done {trace.t_area - trace.t_applied:.1f} s after"
        print(
            f"  {name}: {trace.n:,} readings, {trace.rps:,.0f} readings/s, "
            f"{trace.cpu_us_per_reading:.2f} CPU µs/reading above idle ({idle:.3f} cores; "
            f"{trace.raw_cpu_us_per_reading:.2f} in all), published in {pub_s:.1f} s{lag}"
        )
        return trace
    finally:
        worker.stop()
        shutil.rmtree(s.data_dir, ignore_errors=True)


def start_py_spy(worker: WorkerProcess, out: Path) -> subprocess.Popen[bytes]:
    """``py-spy record`` of the worker's Python threads (on-CPU samples only, 100 Hz) into
    ``out`` (collapsed stacks), until SIGINT. Run it on a run of its own: its sampling pauses
    the worker."""
    assert worker.proc is not None
    spy = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
    cmd = [spy, "record", "-r", "100", "-f", "raw", "-o", str(out), "-p", str(worker.proc.pid)]
    return subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


# where a sample's stack says it is (the first that matches, innermost frames first)
COST_PARTS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("readings agent: energy for the areas", ("energy_of (", "route_energy (")),
    ("area: AreaState apply (members' intervals, summary meter)", ("apply_customer (", "apply_supply (")),
    (
        "area: state record (AreaState/Area to_bytes, from_bytes)",
        ("to_bytes (inspection", "from_bytes (inspection"),
    ),
    ("area: stats_document", ("stats_document (inspection",)),
    (
        "area: evaluate (customer days, rules, suspects, the explain snapshot)",
        ("inspection/rules.py", "inspection/suspects.py", "evaluate (streams"),
    ),
    ("area: the agents' rest (decode, table, Redis, stats.area)", ("streams/agents/areas.py",)),
)


MAIN_THREAD = "_run_module_as_main ("
LOOP_IDLE = "Worker.execute_from_commandline ("


def cost_parts(collapsed: str) -> dict[str, float]:
    """Shares of py-spy's collapsed stacks (``frame;frame;... count`` lines, outermost first) of
    the event loop's thread, where every agent runs (stacks from ``_run_module_as_main``), by
    `COST_PARTS`, the rest "pipeline (everything else)"; samples of the loop waiting in its
    selector (innermost frame the worker's ``execute_from_commandline``) left out."""
    totals: dict[str, int] = {}
    n = 0
    for line in collapsed.splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack.startswith(MAIN_THREAD) or not count.isdigit():
            continue
        if stack.rsplit(";", 1)[-1].startswith(LOOP_IDLE):
            continue
        k = int(count)
        n += k
        part = "pipeline (everything else)"
        for name, needles in COST_PARTS:
            if any(needle in stack for needle in needles):
                part = name
                break
        totals[part] = totals.get(part, 0) + k
    if not n:
        return {}
    return {part: round(k / n, 4) for part, k in sorted(totals.items(), key=lambda x: -x[1])}


def customer_side_cost(curves: DailyCurves, sample: int = 2000) -> dict[str, float]:
    """What the readings agent does for the stage per applied interval, in this process, on the
    first ``sample`` daily curves: ``EnergyOut.add`` (both variants pay it: ``energy_of`` runs
    before the agent asks for the customer's area) and ``batch_energy_messages`` (only "on")."""
    from streams.agents.areas import EnergyOut, batch_energy_messages

    n = min(sample, curves.pop.n)
    areas = curves.pop.transformer_areas
    rows = [
        (curves.pop.customer_ids[i], curves.pop.meter_id(i), (curves.kwh[i] / 1e4).tolist()) for i in range(n)
    ]
    quality = [None] * 96
    t0 = time.perf_counter()
    outs = []
    for _cid, meter, kwh in rows:
        out = EnergyOut()
        for k, v in enumerate(kwh):
            out.add(meter, curves.start + 900 * k, 900, v, quality[k])
        outs.append(out)
    t1 = time.perf_counter()
    batch_energy_messages(
        [(cid, ((areas[i], 0),), out) for i, ((cid, _, _), out) in enumerate(zip(rows, outs, strict=True))]
    )
    t2 = time.perf_counter()
    intervals = n * 96
    return {
        "area_customer_side_add_us_per_reading": round((t1 - t0) / intervals * 1e6, 3),
        "area_customer_side_messages_us_per_reading": round((t2 - t1) / intervals * 1e6, 3),
    }


async def overhead_phase(
    settings: Settings, args: argparse.Namespace, out_dir: Path, r: dict[str, Any]
) -> None:
    t0 = time.perf_counter()
    curves = DailyCurves(args.area_customers, day_start(2, settings.tz, datetime.now(UTC)), settings.tz)
    profiles = curves.profiles()
    bare = without_area(profiles)
    supply = summary_blocks(curves)
    blocks = list(curves.blocks())
    n = curves.readings
    print(
        f"areas: {curves.pop.n:,} daily curves ({n:,} readings), {len(supply):,} areas' summary meters, "
        f"drawn in {time.perf_counter() - t0:.1f} s"
    )
    r.update(
        {
            "area_customers": curves.pop.n,
            "area_areas": len(supply),
            "area_readings": n,
            "area_repeats": args.area_repeats,
        }
    )
    r.update(customer_side_cost(curves))
    del curves
    spy_out = None if getattr(args, "py_spy", None) is None else Path(args.py_spy)
    traces = await ab_pairs(
        r, settings, out_dir, "area", (bare, profiles), supply, blocks, n, _PORTS, args.area_repeats, spy_out
    )
    summarize(r, "area", traces)
    if spy_out is not None and spy_out.is_file():
        r["area_cpu_parts"] = cost_parts(spy_out.read_text())
        print("areas: py-spy shares of the on worker's samples:")
        for part, share in r["area_cpu_parts"].items():
            print(f"  {share:6.1%}  {part}")
    if args.area_singles > 0:
        await singles_ab(settings, args, out_dir, r)


async def ab_pairs(
    r: dict[str, Any],
    settings: Settings,
    out_dir: Path,
    name: str,
    profiles: tuple[Any, Any],
    supply: Any,
    readings: Any,
    n: int,
    ports: int,
    repeats: int,
    spy_out: Path | None = None,
) -> dict[str, list[Trace]]:
    """``repeats`` off/on pairs, alternating: *off* with ``profiles[0]`` (no areas) and no
    summary meters, *on* with ``profiles[1]`` and ``supply``; web ports ``ports`` (off) and
    ``ports + 1`` (on); the first *on* worker recorded by py-spy into ``spy_out`` if given."""
    traces: dict[str, list[Trace]] = {"off": [], "on": []}
    for k in range(repeats):
        for variant in ("off", "on"):
            on = variant == "on"
            traces[variant].append(
                await run_variant(
                    r,
                    settings,
                    f"{name}{variant}{k}",
                    out_dir,
                    profiles[1] if on else profiles[0],
                    supply if on else [],
                    readings,
                    n,
                    ports + (1 if on else 0),
                    py_spy=spy_out if on and k == 0 else None,
                )
            )
    return traces


def summarize(r: dict[str, Any], key: str, traces: dict[str, list[Trace]]) -> None:
    """Medians of the variants' rates and CPU per reading, the overhead, and the first "on"
    worker's stage counters."""
    off_cpu = statistics.median(t.cpu_us_per_reading for t in traces["off"])
    on_cpu = statistics.median(t.cpu_us_per_reading for t in traces["on"])
    r[f"{key}_off_rps"] = round(statistics.median(t.rps for t in traces["off"]))
    r[f"{key}_pipeline_rps"] = round(statistics.median(t.rps for t in traces["on"]))
    r[f"{key}_off_cpu_us_per_reading"] = round(off_cpu, 2)
    r[f"{key}_on_cpu_us_per_reading"] = round(on_cpu, 2)
    r[f"{key}_stage_overhead_pct"] = round(overhead_pct(on_cpu, off_cpu), 1)
    # a run too small to measure a rate (every reading applied within the first poll: rps 0)
    # has no rate change, rather than a ZeroDivisionError after minutes of measuring
    off_rps = r[f"{key}_off_rps"]
    r[f"{key}_rps_change_pct"] = (
        round((r[f"{key}_pipeline_rps"] - off_rps) / off_rps * 100.0, 1) if off_rps > 0 else None
    )
    r[f"{key}_runs"] = [
        {
            "variant": v,
            "rps": round(t.rps),
            "cpu_us_per_reading": round(t.cpu_us_per_reading, 2),
            "raw_cpu_us_per_reading": round(t.raw_cpu_us_per_reading, 2),
            "cpu_s": round(t.cpu_s, 2),
            "idle_cores": round(t.idle_cores, 3),
            "applied_s": round(t.t_applied - t.t_first, 1),
            "area_lag_s": None if t.t_area is None else round(t.t_area - t.t_applied, 1),
            "tail_s": round(t.t_end - t.t_applied, 1),
        }
        for v in ("off", "on")
        for t in traces[v]
    ]
    c = traces["on"][0].counters
    r[f"{key}_counters"] = {
        name: c.get(name, 0)
        for name in (
            "readings_applied",
            "area_energy_sent",
            "area_energy_batches",
            "area_energy_applied",
            "area_supply_applied",
            "area_readings_batches",
            "stats_area_published",
            "inspection_alerts_open",
        )
    }
    r[f"{key}_counters"]["off_area_energy_no_area"] = traces["off"][0].counters.get("area_energy_no_area", 0)
    print(
        f"{key}: off {off_cpu:.2f} CPU µs/reading, on {on_cpu:.2f}: stage overhead "
        f"{r[f'{key}_stage_overhead_pct']:+.1f} % "
        f"(rate {r[f'{key}_off_rps']:,} -> {r[f'{key}_pipeline_rps']:,}/s)"
    )


async def singles_ab(settings: Settings, args: argparse.Namespace, out_dir: Path, r: dict[str, Any]) -> None:
    """The same A/B on single readings: ``--area-customers`` / 10 customers x ``--area-singles``
    intervals in time order."""
    from bench.run import population

    customers = max(args.area_customers // 10, 100)
    readings, profiles = population(settings, customers, args.area_singles)
    area_of = {orjson.loads(v)["customer_id"]: orjson.loads(v)["transformer_area"] for _, v in profiles}
    supply = summary_singles(readings, area_of)
    bare = without_area(profiles)
    r["area_singles_customers"], r["area_singles_readings"] = customers, len(readings)
    traces = await ab_pairs(
        r,
        settings,
        out_dir,
        "areas",
        (bare, profiles),
        supply,
        readings,
        len(readings),
        _PORTS + 2,
        args.area_repeats,
    )
    summarize(r, "area_singles", traces)


# ---------------------------------------------------------------------- theft to alert


@dataclass
class Seen:
    alert_id: str
    status: str
    published: float  # the record's Kafka timestamp, epoch s
    doc: dict[str, Any]


async def watch_alerts(settings: Settings, seen: list[Seen], stop: asyncio.Event) -> None:
    """Every record of ``alerts.inspection`` from the beginning, as it comes."""
    from streams.kafka import make_consumer

    consumer = make_consumer(settings, settings.topic(contract.ALERTS_INSPECTION), group_id=None)
    await consumer.start()
    try:
        while not stop.is_set():
            for records in (await consumer.getmany(timeout_ms=200)).values():
                for rec in records:
                    if rec.value is not None:
                        doc = orjson.loads(rec.value)
                        seen.append(Seen(doc["alert_id"], doc["status"], rec.timestamp / 1000, doc))
    finally:
        await consumer.stop()


def first_open(seen: Sequence[Seen], alert_id: str) -> Seen | None:
    return next((a for a in seen if a.alert_id == alert_id and a.status != "resolved"), None)


async def theft_phase(settings: Settings, args: argparse.Namespace, out_dir: Path, r: dict[str, Any]) -> None:
    """`theft_run`, once more if the worker's stage stalled (recorded in ``theft_stage_stalls``)."""
    try:
        await theft_run(settings, args, out_dir, r, "theft")
    except StageStalled as exc:
        print(f"theft: STAGE STALLED, run again: {str(exc)[:200]}")
        r["theft_stage_stalls"] = [str(exc)[:300]]
        await theft_run(settings, args, out_dir, r, "theftr")


async def theft_run(
    settings: Settings, args: argparse.Namespace, out_dir: Path, r: dict[str, Any], name: str
) -> None:
    from bench.run import publish, wait_applied
    from simulator.area_run import area_simulation
    from simulator.areas import plan_scenarios
    from simulator.run import SimulationOptions
    from streams.kafka import create_contract_topics

    s = variant_settings(settings, name, out_dir, _PORTS + (5 if name == "theft" else 6))
    await create_contract_topics(s)
    opts = SimulationOptions(
        topic_prefix=s.topic_prefix,
        customers=args.theft_customers,
        days=12,
        seed=7,
        blocks=True,
        outages=False,
        tz=s.tz,
    )
    sim, _ = area_simulation(opts, datetime.now(UTC))
    bare = replace(sim, scenarios=())
    plan = plan_scenarios(bare, event_day=sim.days - 5)  # within the 7-day horizon at the end
    sim = replace(bare, scenarios=plan)
    thief = next(p for p in plan if p.case == "theft")
    assert thief.expected is not None and thief.expected.from_day is not None
    area = thief.expected.transformer_area
    high, jump = f"inspection:{area}:area_high_loss", f"inspection:{area}:area_loss_jump"
    theft_day = thief.expected.from_day
    days = [datetime.fromtimestamp(m, s.tz).date().isoformat() for m in sim.midnights]
    r["theft_customers"], r["theft_areas"], r["theft_share"] = sim.pop.n, len(sim.areas), thief.share
    hold = s.credit_open_hold_s
    print(
        f"theft: {sim.pop.n:,} customers, {len(sim.areas)} areas; {area}'s thief from {theft_day}; "
        f"open hold {hold:g} s"
    )

    await publish(s, contract.CUSTOMERS, [(m.key, m.value) for m in sim.profile_messages(s.topic_prefix)])
    worker = WorkerProcess(s, out_dir / f"worker-{name}.log").start()
    seen: list[Seen] = []
    stop = asyncio.Event()
    watcher = asyncio.create_task(watch_alerts(s, seen, stop))
    published_at: list[float] = []
    counted_at: list[float] = []
    try:
        await worker.wait_ready(within_s=300)
        await wait_applied([worker], sim.pop.n, within_s=600, counter="profiles_applied")
        n_supply = n_energy = 0
        for day in sim.all_days():
            iso = datetime.fromtimestamp(day.start, s.tz).date().isoformat()
            supply = [
                (v["transformer_area"].encode(), orjson.dumps(v)) for v in sim.area_values(day, "block")
            ]
            meters = [(v["customer_id"].encode(), orjson.dumps(v)) for v in sim.meter_values(day, "block")]
            n_supply += sum(1 for _, v in supply for x in orjson.loads(v)["kwh"] if x is not None)
            n_energy += sum(1 for _, v in meters for x in orjson.loads(v)["kwh"] if x is not None)
            published_at.append(time.time())
            await publish(s, contract.AREA_READINGS, supply)
            await publish(s, contract.METER_READINGS, meters)
            try:
                await wait_applied([worker], n_supply, within_s=300, counter="area_supply_applied")
                await wait_applied([worker], n_energy, within_s=300, counter="area_energy_applied")
            except TimeoutError as exc:
                raise StageStalled(f"day {iso} not counted (worker log: {worker.log_path}): {exc}") from None
            counted_at.append(time.time())
            print(f"  {iso}: counted {counted_at[-1] - published_at[-1]:.1f} s after publishing")
            if iso < theft_day:
                continue
            deadline = time.monotonic() + args.alert_wait
            while time.monotonic() < deadline and first_open(seen, high) is None:  # noqa: ASYNC110 (a list the watcher fills)
                await asyncio.sleep(0.2)
            if first_open(seen, high) is not None:
                await asyncio.sleep(2.0)  # its sibling area_loss_jump, published with it
                break
        counters = (await worker.counters())["counters"]
    finally:
        stop.set()
        await asyncio.gather(watcher, return_exceptions=True)
        worker.stop()
        shutil.rmtree(s.data_dir, ignore_errors=True)
    r["theft_open_hold_s"] = hold
    r["theft_days_delivered"] = len(published_at)
    r["theft_day_ingest_s"] = round(
        statistics.median(c - p for p, c in zip(published_at, counted_at, strict=True)), 1
    )
    r["theft_area_energy_late"] = counters.get("area_energy_late", 0)
    for rule, aid in (("area_high_loss", high), ("area_loss_jump", jump)):
        alert = first_open(seen, aid)
        key = "theft_to_alert" if rule == "area_high_loss" else "theft_to_jump_alert"
        if alert is None:
            r[f"{key}_days"] = None
            print(f"theft: no {rule} on {area} within {len(published_at)} days")
            continue
        k = trigger_index(published_at, alert.published)
        assert k is not None
        r[f"{key}_days"] = days_to_alert(days, theft_day, days[k])
        r[f"{key}_s"] = round(alert.published - published_at[k], 1)
        r[f"{key}_after_counted_s"] = round(alert.published - counted_at[k], 1)
        if rule == "area_high_loss":
            suspects = [x["customer_id"] for x in alert.doc.get("suspects", [])]
            r["theft_thief_rank"] = (
                suspects.index(thief.customer_id) + 1 if thief.customer_id in suspects else None
            )
            r["theft_alert_severity"] = alert.doc.get("severity")
        print(
            f"theft: {rule} with day {r[f'{key}_days']} of the theft ({days[k]}), "
            f"{r[f'{key}_s']:.1f} s after publishing it "
            f"({r[f'{key}_after_counted_s']:.1f} s after it was counted)"
        )
    others = sorted({(a.alert_id, a.status) for a in seen if a.alert_id not in (high, jump)})
    r["theft_other_alerts"] = [f"{aid} {status}" for aid, status in others]


# ---------------------------------------------------------------------- the run


async def run_phases(settings: Settings, args: argparse.Namespace, out_dir: Path, r: dict[str, Any]) -> None:
    """The phases of ``args`` (bench.run calls this with its run's settings)."""
    skip = set(getattr(args, "area_skip", ()))
    if "overhead" not in skip:
        await overhead_phase(settings, args, out_dir, r)
    if "theft" not in skip:
        await theft_phase(settings, args, out_dir, r)


def code_state() -> dict[str, Any]:
    """The commit and the stage's files with uncommitted changes (what was measured)."""

    def git(*a: str) -> str:
        return subprocess.run(["git", *a], cwd=ROOT, capture_output=True, text=True, check=False).stdout

    dirty = [
        line[3:]
        for line in git(
            "status", "--short", "--", "streams", "inspection", "metering", "schemas"
        ).splitlines()
    ]
    return {"commit": git("rev-parse", "--short", "HEAD").strip(), "uncommitted": dirty}


async def main_async(args: argparse.Namespace) -> dict[str, Any]:
    from bench.run import delete_run_redis_keys, delete_run_topics, run_settings

    run, out_dir, settings = run_settings("a", args.partitions)
    r: dict[str, Any] = {
        "area_run": run,
        "area_when": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "area_command": "python -m bench.area_bench " + " ".join(args.argv),
        "area_machine": {
            "cpus": os.cpu_count(),
            "load_average_at_start": [round(x, 2) for x in os.getloadavg()],
            **code_state(),
        },
    }
    (out_dir / "faust").mkdir(parents=True, exist_ok=True)
    try:
        await run_phases(settings, args, out_dir, r)
    finally:
        if not args.keep:
            await delete_run_topics(settings, run)
            await delete_run_redis_keys(settings, run)
            for d in out_dir.glob("faust*"):
                shutil.rmtree(d, ignore_errors=True)
    r["area_machine"]["load_average_at_end"] = [round(x, 2) for x in os.getloadavg()]
    return r


def add_arguments(ap: argparse.ArgumentParser) -> None:
    """The phases' options (bench.run takes them too)."""
    ap.add_argument("--area-customers", type=int, default=20_000, help="overhead: meters' daily curves")
    ap.add_argument("--area-repeats", type=int, default=1, help="overhead: off/on pairs (medians)")
    ap.add_argument(
        "--area-singles", type=int, default=0, help="overhead on single readings too: intervals (0: not run)"
    )
    ap.add_argument("--theft-customers", type=int, default=2_000)
    ap.add_argument(
        "--py-spy",
        default=None,
        help="overhead: record the first 'on' worker with py-spy into this file and report "
        "where its samples are (its sampling slows the worker: not for the measured run)",
    )
    ap.add_argument(
        "--alert-wait", type=float, default=120.0, help="theft: s to wait for the alert after a day"
    )


REPORT_KEYS = (
    "area_customers",
    "area_areas",
    "area_readings",
    "area_off_rps",
    "area_pipeline_rps",
    "area_rps_change_pct",
    "area_off_cpu_us_per_reading",
    "area_on_cpu_us_per_reading",
    "area_stage_overhead_pct",
    "area_customer_side_add_us_per_reading",
    "area_customer_side_messages_us_per_reading",
    "area_singles_readings",
    "area_singles_off_rps",
    "area_singles_pipeline_rps",
    "area_singles_off_cpu_us_per_reading",
    "area_singles_on_cpu_us_per_reading",
    "area_singles_stage_overhead_pct",
    "theft_customers",
    "theft_open_hold_s",
    "theft_day_ingest_s",
    "theft_to_alert_days",
    "theft_to_alert_s",
    "theft_to_alert_after_counted_s",
    "theft_to_jump_alert_days",
    "theft_to_jump_alert_s",
    "theft_thief_rank",
)


def report(r: dict[str, Any]) -> str:
    lines = ["| inspection stage (issue 13) | value |", "|---|---:|"]
    for key in REPORT_KEYS:
        if key in r and r[key] is not None:
            v = r[key]
            lines.append(f"| {key} | {v:,.2f} |" if isinstance(v, float) else f"| {key} | {v:,} |")
    return "\n".join(lines) + "\n"


def main(argv: Sequence[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_arguments(ap)
    ap.add_argument("--partitions", type=int, default=4)
    ap.add_argument(
        "--skip",
        dest="area_skip",
        type=lambda s: [x for x in s.split(",") if x],
        default=[],
        help=f"phases to skip: {','.join(PHASES)}",
    )
    ap.add_argument("--keep", action="store_true", help="keep the run's topics and state")
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "results.json")
    argv = list(sys.argv[1:] if argv is None else argv)
    args = ap.parse_args(argv)
    args.argv = argv
    if unknown := set(args.area_skip) - set(PHASES):
        ap.error(f"unknown phases {sorted(unknown)}; known: {', '.join(PHASES)}")
    result = asyncio.run(main_async(args))
    merged = json.loads(args.out.read_text()) if args.out.is_file() else {}
    stale = [k for k in merged if k.startswith(("area_", "theft_"))]
    for k in stale:  # this run's keys replace the last run's, every one of them
        del merged[k]
    merged.update(result)
    args.out.write_text(json.dumps(merged, indent=2) + "\n")
    print()
    print(report(result))
    print(f"written: {args.out}")


if __name__ == "__main__":
    main()
