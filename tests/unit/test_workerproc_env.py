"""gridpulse.workerproc.worker_env: a child process gets exactly the parent's settings back."""

from __future__ import annotations

import os

import pytest
from pydantic import SecretStr

from gridpulse.settings import Settings
from gridpulse.workerproc import worker_env


def test_list_secret_and_none_settings_reach_the_child_as_the_same_settings(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    users = [{"user": "li", "password_hash": "pbkdf2_sha256$200000$c2FsdA$aGFzaA", "role": "viewer"}]
    parent = Settings(
        dashboard_users=users,
        pg_dsn=SecretStr("postgresql://gp@127.0.0.1:5432/x"),
        topic_prefix="t.",
        dashboard_users_file=None,
    )
    env = worker_env(parent)
    assert "GRIDPULSE_DASHBOARD_USERS_FILE" not in env
    # the child: pydantic-settings reads the environment it was started with
    for name in list(os.environ):
        monkeypatch.delenv(name)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    child = Settings(_env_file=None)  # type: ignore[call-arg]
    assert child.dashboard_users == users  # JSON, not a Python repr (the child failed to start)
    assert child.pg_dsn.get_secret_value() == "postgresql://gp@127.0.0.1:5432/x"
    assert child.topic_prefix == "t."
