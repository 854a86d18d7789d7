"""Shared fixtures. Unit tests need nothing running; integration tests (tests/integration)
need the stack from `make up` and fail loudly — not skip — when it is missing in CI."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest

from simulator.replay import UCI_FILE
from tests.environment import shared_data_file


@pytest.fixture
def unique_id() -> str:
    return uuid.uuid4().hex[:10]


@pytest.fixture
def uci_path() -> Path:
    """The real meter data (UCI household) in ``$GRIDPULSE_SHARED_DATA``, default ../shared/data
    beside the checkout. CI lays shared/ there, so in CI its absence is a failure, not a skip."""
    return shared_data_file(UCI_FILE)
