"""docker-compose.yml as a deployment (issue 15): the invariants `docker compose up -d --scale
worker=N` and the probes rely on, read from the file itself (PyYAML resolves its anchors and
merge keys the way Compose does). Nothing here runs a container."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from gridpulse.settings import Settings

yaml = pytest.importorskip("yaml")  # a dev dependency (pyproject): present in CI

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = ROOT / "docker-compose.yml"
DOCKERFILE = ROOT / "infra" / "docker" / "Dockerfile"

# the gridpulse services and the port of their /readyz inside the container
PROBED = {"worker": 6066, "alerts-consumer": 6067, "dashboard": 8080}
GRIDPULSE = {*PROBED, "topics"}


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    doc: dict[str, Any] = yaml.safe_load(COMPOSE.read_text())
    return doc


def env(service: dict[str, Any]) -> dict[str, str]:
    e = service.get("environment", {})
    assert isinstance(e, dict), "environment as a mapping (the anchor merges into it)"
    return {k: str(v) for k, v in e.items()}


def test_every_gridpulse_service_starts_from_the_shared_environment(compose):
    shared = {k: str(v) for k, v in compose["x-gridpulse-env"].items()}
    assert set(compose["services"]) >= GRIDPULSE
    for name in GRIDPULSE:
        service = compose["services"][name]
        assert service["image"] == "gridpulse:dev", name
        mine = env(service)
        assert {k: mine.get(k) for k in shared} == shared, name
    # and the shared block names settings that exist
    fields = set(Settings.model_fields)
    for key in shared:
        assert key.startswith("GRIDPULSE_") and key[len("GRIDPULSE_") :].lower() in fields, key


def test_worker_scales_no_container_name_no_host_port_own_state(compose):
    worker = compose["services"]["worker"]
    assert "container_name" not in worker
    assert "ports" not in worker  # several replicas cannot share a host port
    assert not any("gridpulse" in str(v) for v in worker.get("volumes", []))  # state stays per container
    assert env(worker)["GRIDPULSE_WEB_BIND"] == "0.0.0.0"
    assert env(worker)["GRIDPULSE_DATA_DIR"].startswith("/")
    for name in PROBED:
        assert "container_name" not in compose["services"][name], name


def test_every_service_has_a_healthcheck_and_gridpulse_ones_ask_readyz(compose):
    for name, service in compose["services"].items():
        if name == "topics":  # one-shot: its exit code is its health
            assert service["restart"] == "no"
            continue
        assert "healthcheck" in service, name
    for name, port in PROBED.items():
        test = compose["services"][name]["healthcheck"]["test"]
        assert test[:2] == ["CMD", "python"], (name, test)  # the image has python, no curl
        code = test[-1]
        assert re.search(rf"urlopen\('http://127\.0\.0\.1:{port}/readyz'", code), (name, code)
        # urlopen raises on a 503 (HTTPError): the probe's exit code follows /readyz
        compile(code, name, "exec")


def test_ops_endpoints_reachable_from_other_containers(compose):
    services = compose["services"]
    assert env(services["alerts-consumer"])["GRIDPULSE_ALERTS_OPS_BIND"] == "0.0.0.0"
    assert env(services["alerts-consumer"]).get("GRIDPULSE_ALERTS_OPS_PORT", "6067") == "6067"
    assert env(services["dashboard"])["GRIDPULSE_DASHBOARD_HOST"] == "0.0.0.0"
    assert services["dashboard"]["ports"] == ["127.0.0.1:8080:8080"]
    assert env(services["dashboard"])["GRIDPULSE_DASHBOARD_USERS_FILE"] == "/run/secrets/dashboard_users"
    assert "dashboard_users" in services["dashboard"]["secrets"]
    defaults = Settings.model_fields
    assert defaults["alerts_ops_port"].default == 6067 and defaults["web_port"].default == 6066


def test_topics_before_the_services_that_read_them(compose):
    for name in PROBED:
        deps = compose["services"][name]["depends_on"]
        assert deps["topics"]["condition"] == "service_completed_successfully", name


def test_image_carries_the_dashboard_front_end():
    text = DOCKERFILE.read_text()
    assert "npm ci" in text and "echarts.min.js" in text
    assert re.search(r"EXPOSE .*6066.*6067.*8080", text)
