"""Structured logs (issue 15): with ``log_format = "json"`` every process writes one JSON object
a line, so a log shipper needs no parsing rules.

Fields: ``ts`` (RFC 3339, UTC, milliseconds), ``level``, ``logger``, ``msg``, ``service`` (the
``gridpulse`` subcommand: worker, alerts-consumer, dashboard, ...), ``pid``; ``exc`` (the
formatted exception, one string) when there is one; every ``extra=`` field our code passes
(``topic``, ``partition``, ``offset``, ``error``, ...); and in the worker ``topic``,
``partition``, ``offset`` of faust's current event (:class:`FaustEventFilter`) when a record is
made while an agent handles a message and has none of its own.

Where it is wired (docs/operations.md, "Logs"): ``gridpulse.cli.main`` (every subcommand, the
alerts consumer included), the faust worker (:func:`worker_logging_config`, given to faust's
Worker, which replaces the root logger's handlers at its start) and uvicorn
(:func:`logging_config` as its ``log_config``). ``log_format = "text"`` keeps the plain lines.
"""

from __future__ import annotations

import json
import logging
import logging.config
import sys
from datetime import UTC, datetime
from typing import Any, Literal

LogFormat = Literal["text", "json"]

TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"

# the attributes every LogRecord has: what is left on a record is an ``extra=`` field
_RECORD_ATTRS = frozenset(logging.LogRecord("", 0, "", 0, "", None, None).__dict__) | {
    "message",
    "asctime",
    "taskName",
    # uvicorn passes its message again with terminal colours, for its own formatter
    "color_message",
}


def _jsonable(value: Any) -> Any:
    """A field's value as JSON has it; anything else as its ``str``."""
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    return str(value)


class JsonFormatter(logging.Formatter):
    """One log record as one line of JSON (no newline inside: a traceback is one string)."""

    def __init__(self, service: str = "gridpulse") -> None:
        super().__init__()
        self.service = service

    def format(self, record: logging.LogRecord) -> str:
        event: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC)
            .isoformat(timespec="milliseconds")
            .replace("+00:00", "Z"),
            "level": record.levelname,
            "logger": record.name,
            "msg": record.getMessage(),
            "service": self.service,
            "pid": record.process,
        }
        for key, value in record.__dict__.items():
            if key not in _RECORD_ATTRS and key not in event and not key.startswith("_"):
                event[key] = _jsonable(value)
        if record.exc_info:
            event["exc"] = self.formatException(record.exc_info)
        elif record.exc_text:
            event["exc"] = record.exc_text
        if record.stack_info:
            event["stack"] = self.formatStack(record.stack_info)
        return json.dumps(event, ensure_ascii=False, default=str)


class FaustEventFilter(logging.Filter):
    """Adds ``topic``, ``partition`` and ``offset`` of faust's current event (the message the
    agent's stream delivered last in this task; in a batch agent the batch's newest) to a record
    that has none of its own. A process without faust imported has no event: nothing is imported
    for it, so the dashboard and the alerts consumer do not load faust for their logs."""

    def filter(self, record: logging.LogRecord) -> bool:
        if "topic" in record.__dict__:
            return True
        streams = sys.modules.get("faust.streams")
        if streams is None:
            return True
        event = streams.current_event()
        if event is not None:
            message = event.message
            record.topic = message.topic
            record.partition = message.partition
            record.offset = message.offset
        return True


def logging_config(
    log_format: LogFormat,
    service: str,
    level: int | str = logging.INFO,
    logfile: str | None = None,
) -> dict[str, Any]:
    """A :func:`logging.config.dictConfig` dict: the root logger at ``level`` with one handler
    (stderr, as ``logging.basicConfig``: a command's output on stdout stays clean; or ``logfile``)
    in ``log_format``; other loggers propagate to it (existing ones
    stay enabled). aiokafka's chatter from WARNING on."""
    if isinstance(level, str):
        level = logging.getLevelName(level.upper())
    handler: dict[str, Any] = {"formatter": log_format, "filters": ["faust_event"]}
    if logfile:
        handler.update({"class": "logging.FileHandler", "filename": logfile})
    else:
        handler.update({"class": "logging.StreamHandler", "stream": "ext://sys.stderr"})
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {
            "json": {"()": JsonFormatter, "service": service},
            "text": {"format": TEXT_FORMAT},
        },
        "filters": {"faust_event": {"()": FaustEventFilter}},
        "handlers": {"default": handler},
        "root": {"level": level, "handlers": ["default"]},
        "loggers": {"aiokafka": {"level": logging.WARNING}},
    }


def configure(log_format: LogFormat, service: str, level: int | str = logging.INFO) -> None:
    """Set up this process's logging. json replaces the root logger's handlers; text is
    :func:`logging.basicConfig` as before (nothing when the root logger has a handler already)."""
    if log_format == "json":
        logging.config.dictConfig(logging_config(log_format, service, level))
        logging.captureWarnings(True)  # a library's warning a JSON line too, not a bare stderr one
        return
    logging.basicConfig(level=level, format=TEXT_FORMAT)
    logging.getLogger("aiokafka").setLevel(logging.WARNING)  # client chatter, not our news


def worker_logging_config(
    log_format: LogFormat, level: int | str, logfile: str | None
) -> dict[str, Any] | None:
    """What faust's Worker gets as ``logging_config``: None for text (faust's own coloured
    lines), else :func:`logging_config`. The root logger keeps ``level``: faust raises it to
    DEBUG only for its spinner, which ``gridpulse.cli.make_worker`` removes."""
    if log_format == "text":
        return None
    return logging_config(log_format, "worker", level, logfile)
