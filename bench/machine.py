"""What every benchmark records about where it ran, and Debian's headless Chromium as the
dashboard's benchmark and its browser tests launch it (one place for both)."""

from __future__ import annotations

import os
import platform
from pathlib import Path
from typing import Any

from gridpulse.settings import Settings

# Debian's chromium (scripts/bootstrap.sh installs it); never a browser downloaded by a tool
CHROMIUM = Path("/usr/bin/chromium")
# the machine has no internet: without these Chromium keeps trying to reach Google's hosts
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def machine_facts(settings: Settings) -> dict[str, Any]:
    """Cores, memory, Python, platform, the broker and the load average when the run started:
    timings on a shared 2-core machine mean little without the load beside them."""
    return {
        "cpus": os.cpu_count(),
        "memory_gb": round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 1024**3, 1),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "kafka_bootstrap": settings.kafka_bootstrap,
        "load_average_at_start": [round(x, 2) for x in os.getloadavg()],
    }
