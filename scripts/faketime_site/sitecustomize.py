"""Loaded by every Python process that scripts/at_clock.sh starts (it puts this directory first on
PYTHONPATH): works around libfaketime 0.9.10 (Debian 12) under FAKETIME_DONT_FAKE_MONOTONIC.

Python 3.11's ``time.sleep`` waits with ``clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME)``, and
that libfaketime moves the absolute monotonic deadline by the realtime offset even when monotonic
is not faked: the kernel gets a negative time and ``time.sleep`` raises ``OSError: [Errno 22]``
(wolfcw/libfaketime#426, fixed upstream in 2023 after 0.9.10). Where that happens, ``time.sleep``
waits in ``select`` instead (a relative timeout, real monotonic time, signals handled as
``time.sleep`` handles them, PEP 475). A fixed libfaketime passes the probe and nothing changes.
"""

from __future__ import annotations

import select
import time


def _sleep(seconds: float) -> None:
    if seconds < 0:
        raise ValueError("sleep length must be non-negative")
    select.select([], [], [], seconds)


def _install() -> None:
    try:
        time.sleep(1e-6)
    except OSError:
        time.sleep = _sleep


_install()
