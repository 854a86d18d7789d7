"""Structured logs on a full run (issue 15): the worker, the alerts consumer and the dashboard as
their own processes and the simulator as a subprocess, all with ``GRIDPULSE_LOG_FORMAT=json``
at log level info, on a small simulated population (its bad readings and bills go to the
DLQs, its outages and arrears to the alert store and the log notifier). Then:

- every line every process wrote is one JSON object with ts, level, logger, msg, service, pid;
- no simulated customer's name (read back from the ``customers`` topic) is in any log, nor in
  the alert topics the notifier's lines come from; no customer id in any log line but the log
  notifier's (its alert ids name the customer: ``credit:<customer_id>:<family>``);
- every dead letter has its line, with the message's topic, partition and offset as fields.
"""

from __future__ import annotations

import re
import subprocess
import sys
from collections import Counter
from datetime import datetime
from pathlib import Path
from typing import Any

import orjson
import pytest

from gridpulse.settings import Settings
from gridpulse.workerproc import ROOT, WorkerProcess, worker_env
from schemas import topics as contract
from simulator.bad import DLQ_KINDS
from streams.kafka import read_all
from tests.integration.dashboard_client import (
    DashboardProcess,
    start_dashboard,
)
from tests.integration.helpers import eventually

pytestmark = [pytest.mark.integration, pytest.mark.timeout(180)]
CUSTOMERS = 12
JSON_LOGS = {"GRIDPULSE_LOG_FORMAT": "json"}
FIELDS = {"ts", "level", "logger", "msg", "service", "pid"}


def json_lines(path: Path) -> list[dict[str, Any]]:
    """Every line of a process's log (stdout and stderr) as JSON; a line that is not fails."""
    events = []
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        try:
            event = orjson.loads(line)
        except orjson.JSONDecodeError:
            raise AssertionError(f"{path.name} line {n} is not JSON: {line[:300]!r}") from None
        assert isinstance(event, dict) and FIELDS <= set(event), f"{path.name} line {n}: {line[:300]}"
        datetime.fromisoformat(event["ts"])
        events.append(event)
    return events


def simulate(settings: Settings, log: Path) -> dict[str, Any]:
    """``gridpulse simulate`` as the head-end runs it: its log lines to ``log``, its summary."""
    with log.open("wb") as err:
        out = subprocess.run(
            [
                sys.executable,
                "-m",
                "gridpulse.cli",
                "simulate",
                "--customers",
                str(CUSTOMERS),
                "--days",
                "1",
                "--history-months",
                "3",
                "--bad-share",
                "0.05",
                "--topic-prefix",
                settings.topic_prefix,
                "--bootstrap",
                settings.kafka_bootstrap,
            ],
            cwd=ROOT,
            env=worker_env(settings, **JSON_LOGS),
            stdout=subprocess.PIPE,
            stderr=err,
            stdin=subprocess.DEVNULL,
            timeout=90,
            check=False,
        )
    assert out.returncode == 0, log.read_text(errors="replace")[-3000:]
    summary: dict[str, Any] = orjson.loads(out.stdout)
    return summary


async def test_a_json_logged_run_names_no_customer_and_places_every_dead_letter(
    alert_settings: Settings, worker_factory: Any, dashboards: list[DashboardProcess], tmp_path: Path
) -> None:
    settings = alert_settings  # the test's topics and a database of its own
    worker = worker_factory(settings, GRIDPULSE_SCORING_INTERVAL_S="2", **JSON_LOGS).start(loglevel="info")
    consumer = WorkerProcess(settings, tmp_path / "alerts-consumer.log", **JSON_LOGS)
    dash = start_dashboard(settings, tmp_path, dashboards, **JSON_LOGS)
    try:
        consumer.start(command=["alerts-consumer"])
        await worker.wait_ready()
        await dash.wait_feed_ready()
        summary = simulate(settings, tmp_path / "simulate.log")

        # every unusable message dead-lettered (the simulator says which it sent)
        expected = {
            topic: {kind: n for kind, n in outcomes.items() if kind in DLQ_KINDS and n}
            for topic, outcomes in summary["outcomes"].items()
        }
        expected = {topic: kinds for topic, kinds in expected.items() if kinds}
        assert expected.get(contract.METER_READINGS), summary  # the run has dead letters to look at
        counters: dict[str, Any] = {}

        async def all_dead_lettered() -> bool:
            counters.update(await worker.counters())
            return bool(counters["dead_letters"] == expected)

        await eventually(all_dead_lettered, 60, f"dead letters {expected} (worker: {counters})")
        stored: list[Any] = []

        async def alerts_stored() -> bool:
            import asyncpg

            conn = await asyncpg.connect(settings.pg_dsn.get_secret_value())
            try:
                stored[:] = await conn.fetch("SELECT alert_id FROM alerts LIMIT 1")
            finally:
                await conn.close()
            return bool(stored)

        if summary["messages"][contract.GRID_OUTAGES]:
            await eventually(alerts_stored, 30, "an outage alert in the alert store")
    finally:
        worker.stop()
        consumer.stop()
        for d in dashboards:
            d.stop()

    logs = {
        "worker": worker.log_path,
        "alerts-consumer": consumer.log_path,
        "dashboard": dash.log_path,
        "simulate": tmp_path / "simulate.log",
    }
    events = {service: json_lines(path) for service, path in logs.items()}
    for service, lines in events.items():
        # the simulator has nothing to say at info on a good run; the servers start up at least
        assert lines or service == "simulate", f"{service} logged nothing"
        assert {e["service"] for e in lines} <= {service}, service

    # (b) no customer's name in any log, nor in the alerts the notifier tells of
    profiles = [orjson.loads(r.value) for r in await read_all(settings, settings.topic(contract.CUSTOMERS))]
    names = {p["name"] for p in profiles if p.get("name")}
    assert len(names) >= CUSTOMERS // 2, names
    text = {service: path.read_text(encoding="utf-8") for service, path in logs.items()}
    leaks = {(service, name) for service, body in text.items() for name in names if name in body}
    assert not leaks, leaks
    # nor a customer id, but in the log notifier's alert ids (credit:<customer>:<family>)
    ids = {p["customer_id"] for p in profiles}
    told = [e["msg"] for lines in events.values() for e in lines if e["logger"] != "gridpulse.notify"]
    assert not {cid for cid in ids for msg in told if re.search(rf"\b{re.escape(cid)}\b", msg)}
    alerts = []
    for topic in (contract.ALERTS_CREDIT, contract.ALERTS_OUTAGE, contract.ALERTS_INSPECTION):
        alerts += [r.value for r in await read_all(settings, settings.topic(topic)) if r.value]
    assert not [n for n in names for value in alerts if n.encode() in value]
    if stored:
        notices = [e for e in events["alerts-consumer"] if e["logger"] == "gridpulse.notify"]
        assert notices, "alerts stored, none told by the log notifier"

    # (c) a line per dead letter, with the message's place as fields
    dead = [e for e in events["worker"] if e["msg"].startswith("dead letter")]
    by_topic_kind = Counter((e["topic"][len(settings.topic_prefix) :], e["error"]) for e in dead)
    assert by_topic_kind == Counter({(t, k): n for t, kinds in expected.items() for k, n in kinds.items()})
    for e in dead:
        assert e["level"] == "WARNING" and e["topic"].startswith(settings.topic_prefix)
        assert isinstance(e["partition"], int) and 0 <= e["partition"] < settings.topic_partitions
        assert isinstance(e["offset"], int) and e["offset"] >= 0
    assert len({(e["topic"], e["partition"], e["offset"], e["interval_index"]) for e in dead}) == len(dead)
