"""Shared fixtures. Unit tests need nothing running; integration tests (tests/integration)
need the stack from `make up` and fail loudly — not skip — when it is missing in CI."""

from __future__ import annotations

import os
import uuid
from pathlib import Path

import pytest


@pytest.fixture
def unique_id() -> str:
    return uuid.uuid4().hex[:10]


def in_ci() -> bool:
    return os.environ.get("CI", "").lower() in ("1", "true", "yes")


@pytest.fixture
def uci_path() -> Path:
    """The real meter data of ../shared/data. CI lays shared/ beside the clone, so there its
    absence is a failure, not a skip."""
    from simulator.replay import DEFAULT_UCI_PATH

    if not DEFAULT_UCI_PATH.is_file():
        msg = f"real data not found at {DEFAULT_UCI_PATH.resolve()}"
        if in_ci():
            pytest.fail(msg)
        pytest.skip(msg)
    return DEFAULT_UCI_PATH
