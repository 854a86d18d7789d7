"""Structured logs (observability.logs): the JSON line, the faust event's place on a record made
inside an agent (faust's own ``test_context``), and the wiring of the worker (faust's Worker)
and of the dashboard (uvicorn's log_config)."""

from __future__ import annotations

import io
import json
import logging
import os
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from gridpulse.cli import make_worker
from observability.logs import FaustEventFilter, JsonFormatter, logging_config
from schemas.topics import BILLING_EVENTS
from streams.worker import create_worker
from tests.unit.worker_harness import js, worker_under_test

pytestmark = pytest.mark.timeout(60)


@pytest.fixture(autouse=True)
def restore_logging() -> Iterator[None]:
    """The tests set up the root logger as a process would; pytest's own handlers come back."""
    root = logging.getLogger()
    level, handlers = root.level, list(root.handlers)
    uvicorn_loggers = {
        name: (lg.level, list(lg.handlers), lg.propagate)
        for name in ("uvicorn", "uvicorn.error", "uvicorn.access")
        for lg in [logging.getLogger(name)]
    }
    yield
    root.handlers[:] = handlers
    root.setLevel(level)
    for name, (lvl, hs, prop) in uvicorn_loggers.items():
        lg = logging.getLogger(name)
        lg.setLevel(lvl)
        lg.handlers[:] = hs
        lg.propagate = prop


class Lines:
    """A handler as a process's would be: our formatter and filter, into a buffer."""

    def __init__(self, logger: logging.Logger, service: str = "test") -> None:
        self.buffer = io.StringIO()
        self.handler = logging.StreamHandler(self.buffer)
        self.handler.setFormatter(JsonFormatter(service))
        self.handler.addFilter(FaustEventFilter())
        self.logger = logger
        self.old_level = logger.level

    def __enter__(self) -> Lines:
        self.logger.addHandler(self.handler)
        self.logger.setLevel(logging.DEBUG)
        return self

    def __exit__(self, *exc: object) -> None:
        self.logger.removeHandler(self.handler)
        self.logger.setLevel(self.old_level)

    def events(self) -> list[dict[str, Any]]:
        return [json.loads(line) for line in self.buffer.getvalue().splitlines()]


def test_a_record_is_one_json_line_with_its_fields() -> None:
    log = logging.getLogger("gridpulse.test.json")
    with Lines(log, "alerts-consumer") as lines:
        log.info(
            "stored %d alerts for 供电所 %s", 3, "东区", extra={"topic": "alerts.credit", "batch": (1, 2)}
        )
        try:
            raise ValueError("bad\nthing")
        except ValueError:
            log.exception("failed", extra={"partition": 2, "offset": 41, "obj": object()})
    raw = lines.buffer.getvalue().splitlines()
    assert len(raw) == 2  # the traceback's newlines stay inside its string
    first, second = lines.events()
    assert first["msg"] == "stored 3 alerts for 供电所 东区" and "供电所" in raw[0]  # UTF-8, not \u escapes
    assert first["level"] == "INFO" and first["logger"] == "gridpulse.test.json"
    assert first["service"] == "alerts-consumer" and first["pid"] == os.getpid()
    assert first["topic"] == "alerts.credit" and first["batch"] == [1, 2]
    assert "exc" not in first and "partition" not in first
    ts = datetime.fromisoformat(first["ts"])
    assert first["ts"].endswith("Z") and ts.utcoffset() == timedelta(0)
    assert abs(datetime.now(UTC) - ts) < timedelta(seconds=30)
    assert second["level"] == "ERROR" and second["partition"] == 2 and second["offset"] == 41
    assert second["exc"].startswith("Traceback") and "ValueError: bad\nthing" in second["exc"]
    assert second["obj"].startswith("<object object")  # not JSON: its str


def test_uvicorn_colour_copy_and_record_internals_are_not_fields() -> None:
    log = logging.getLogger("uvicorn.error")
    with Lines(log) as lines:
        log.info("Started server process [%d]", 7, extra={"color_message": "Started \x1b[36m%d\x1b[0m"})
    (event,) = lines.events()
    assert set(event) == {"ts", "level", "logger", "msg", "service", "pid"}


async def test_a_record_made_by_an_agent_carries_its_events_topic_partition_offset(tmp_path: Path) -> None:
    """faust's own test_context delivers real events (message topic, partition, offset) to an
    agent of the worker's app: a log call in the agent body gets their place; one outside an
    agent none; a record's own ``extra`` wins over the event's."""
    log = logging.getLogger("gridpulse.test.agent")
    async with worker_under_test(tmp_path) as w:
        topic = w.worker.app.topic("unit-logs.in")

        @w.worker.app.agent(topic)
        async def agent(stream: Any) -> Any:
            async for value in stream:
                if value == b"own":
                    log.warning("told", extra={"topic": "elsewhere", "partition": 9, "offset": 99})
                else:
                    log.info("seen %s", value.decode())
                yield value

        with Lines(log) as lines:
            log.info("before")
            async with agent.test_context() as ctx:
                await ctx.put(b"a", partition=1)
                await ctx.put(b"b", partition=1)
                await ctx.put(b"own", partition=3)
            log.info("after")
    before, a, b, own, after = lines.events()
    assert "topic" not in before and "topic" not in after
    assert (a["msg"], a["topic"], a["partition"], a["offset"]) == ("seen a", "unit-logs.in", 1, 0)
    assert (b["topic"], b["partition"], b["offset"]) == ("unit-logs.in", 1, 1)
    assert (own["topic"], own["partition"], own["offset"]) == ("elsewhere", 9, 99)


async def test_a_dead_letter_is_logged_with_its_place_and_kind_not_its_content(tmp_path: Path) -> None:
    """The worker's own billing agent (faust test_context, tables in memory)."""
    name = "王秀英-unit-log-check"
    bad = js({"event_id": "x", "customer_id": "c1", "name": name})  # schema: no ts, type, amount
    with Lines(logging.getLogger("streams")) as lines:
        async with worker_under_test(tmp_path) as w:
            async with w.agent("billing").test_context() as ctx:
                await w.put(ctx, b"c1", js({"event_id": "y"}), partition=2)
                await w.put(ctx, b"c1", bad, partition=2)
        assert w.dead_letter_kinds(BILLING_EVENTS) == ["schema", "schema"]
    dead = [e for e in lines.events() if e["msg"].startswith("dead letter")]
    assert [(e["topic"], e["partition"], e["offset"], e["error"]) for e in dead] == [
        ("unit-billing.events", 2, 0, "schema"),
        ("unit-billing.events", 2, 1, "schema"),
    ]
    assert dead[0]["level"] == "WARNING" and dead[0]["interval_index"] is None
    assert name not in lines.buffer.getvalue() and "c1" not in lines.buffer.getvalue()


@pytest.mark.parametrize("asked", ["warning", "info"])
def test_the_json_worker_logs_json_at_the_level_asked(asked: str) -> None:
    """faust's Worker replaces the root logger's handlers at its start: with log_format json it
    installs ours, at the level asked (not DEBUG: faust's spinner trap, test_worker_logging)."""
    worker = make_worker(create_worker().app, asked, None, "json")
    worker._setup_logging()
    root = logging.getLogger()
    assert root.level == logging.getLevelName(asked.upper())
    (handler,) = root.handlers
    assert isinstance(handler.formatter, JsonFormatter) and handler.formatter.service == "worker"
    assert any(isinstance(f, FaustEventFilter) for f in handler.filters)
    assert isinstance(handler, logging.StreamHandler)
    handler.setStream(buffer := io.StringIO())  # was stderr
    logging.getLogger("faust.worker").warning("Ready %s", "now")
    logging.getLogger("faust.worker").debug("not at this level")
    events = [json.loads(line) for line in buffer.getvalue().splitlines()]
    assert [(e["logger"], e["msg"], e["service"]) for e in events] == [
        ("faust.worker", "Ready now", "worker")
    ]


def test_the_text_worker_keeps_fausts_own_setup() -> None:
    worker = make_worker(create_worker().app, "info", None, "text")
    assert worker.logging_config is None


def test_the_dashboard_config_takes_uvicorns_loggers_to_the_json_root() -> None:
    """uvicorn.Config applies its log_config and log level as `gridpulse dashboard` runs it."""
    import uvicorn

    uvicorn.Config(lambda *a: None, log_config=logging_config("json", "dashboard", "info"), log_level="info")
    (handler,) = logging.getLogger().handlers
    assert isinstance(handler, logging.StreamHandler) and not logging.getLogger("uvicorn.error").handlers
    handler.setStream(buffer := io.StringIO())  # was stderr
    logging.getLogger("uvicorn.error").info("Uvicorn running on %s", "http://127.0.0.1:1")
    logging.getLogger("dashboard.feed").info("feed caught up")
    events = [json.loads(line) for line in buffer.getvalue().splitlines()]
    assert [(e["logger"], e["service"]) for e in events] == [
        ("uvicorn.error", "dashboard"),
        ("dashboard.feed", "dashboard"),
    ]
    assert events[0]["msg"] == "Uvicorn running on http://127.0.0.1:1"
