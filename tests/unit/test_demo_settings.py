"""`make demo`'s processes listen on ports of their own: the worker's web server and the alerts
consumer's ops server once both wanted 6067 (the demo's worker at web_port + 1), and the demo's
worker died at start with "address already in use"."""

from __future__ import annotations

from pathlib import Path

from gridpulse.demo import demo_settings
from gridpulse.settings import Settings


def test_the_demo_services_listen_on_distinct_ports_beside_the_default_ones() -> None:
    base = Settings(_env_file=None)  # type: ignore[call-arg]  # pydantic-settings' init kwarg
    demo = demo_settings(base, Path("/tmp/demo-run"))
    ports = [demo.web_port, demo.alerts_ops_port, demo.dashboard_port]
    assert len(set(ports)) == 3, ports
    # beside a worker and an alerts consumer on the defaults
    assert not {demo.web_port, demo.alerts_ops_port} & {base.web_port, base.alerts_ops_port}
    assert demo.app_id != base.app_id and demo.topic_prefix
    assert demo.data_dir == "/tmp/demo-run/faust"
