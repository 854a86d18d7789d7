"""Shared fixtures. Unit tests need nothing running; integration tests (tests/integration)
need the stack from `make up` and fail loudly — not skip — when it is missing in CI."""

from __future__ import annotations

import os
import uuid

import pytest


@pytest.fixture
def unique_id() -> str:
    return uuid.uuid4().hex[:10]


def in_ci() -> bool:
    return os.environ.get("CI", "").lower() in ("1", "true", "yes")
