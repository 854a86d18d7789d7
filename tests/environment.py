"""Where the tests run: in CI or not, and where the shared real data lies.

CI runs the whole suite and starts what it needs, so there a missing server or data file is a
failure; on a developer machine the tests that need it skip with the reason.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]

SHARED_DATA_ENV = "GRIDPULSE_SHARED_DATA"
"""The directory of the shared real data (the UCI household file, ...)."""
DEFAULT_SHARED_DATA = REPO.parent / "shared" / "data"
"""``../shared/data`` beside the checkout: where CI lays it."""


def in_ci() -> bool:
    return os.environ.get("CI", "").lower() in ("1", "true", "yes")


def missing(msg: str) -> None:
    """A test cannot run here: fail in CI, skip elsewhere."""
    if in_ci():
        pytest.fail(msg)
    pytest.skip(msg)


def shared_data_dir() -> Path:
    """``$GRIDPULSE_SHARED_DATA``, else ``../shared/data`` beside the checkout."""
    configured = os.environ.get(SHARED_DATA_ENV)
    return Path(configured) if configured else DEFAULT_SHARED_DATA


def shared_data_file(name: str) -> Path:
    """A file of the shared real data; skips the test (fails it in CI) when it is absent."""
    path = shared_data_dir() / name
    if not path.is_file():
        missing(
            f"real data {name} not found at {path.resolve()}: set {SHARED_DATA_ENV} to the "
            f"directory that holds it (default: ../shared/data beside the checkout)"
        )
    return path
