"""The worker's log level is the one asked for: faust's start-up spinner must not turn the root
logger to DEBUG (then every debug call in faust, mode and aiokafka builds a record per message)."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest
from faust import Worker

from gridpulse.cli import make_worker
from streams.worker import create_worker


@pytest.fixture(autouse=True)
def restore_root_logger() -> Iterator[None]:
    root = logging.getLogger()
    level, handlers = root.level, list(root.handlers)
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


@pytest.mark.parametrize(("asked", "level"), [("warning", logging.WARNING), ("info", logging.INFO)])
def test_worker_logs_at_the_level_asked(asked: str, level: int) -> None:
    worker = make_worker(create_worker().app, asked, None)
    worker._setup_logging()
    assert logging.getLogger().level == level
    assert not logging.getLogger("faust.topics").isEnabledFor(logging.DEBUG)
    assert not logging.getLogger("mode").isEnabledFor(logging.DEBUG)


def test_faust_worker_alone_turns_the_root_logger_to_debug_at_warning() -> None:
    """Why make_worker drops the spinner (if faust changes this, the workaround can go)."""
    worker = Worker(create_worker().app, loglevel="warning", quiet=True)
    worker._setup_logging()
    assert logging.getLogger().level == logging.DEBUG
