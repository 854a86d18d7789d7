"""Wait until a Kafka broker answers metadata requests (used by scripts/stack.sh).

    .venv/bin/python scripts/wait_kafka.py --bootstrap 127.0.0.1:9092 --timeout 90 [--pid N]

Exit 0 once a metadata response lists at least one broker; exit 1 on timeout, or at once when
the broker process given by ``--pid`` has died (no point waiting 90 s for a corpse).
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys
import time

from aiokafka.client import AIOKafkaClient


def _alive(pid: int | None) -> bool:
    if pid is None:
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


async def _metadata_once(bootstrap: str, request_timeout_s: float) -> int:
    """Number of brokers in one metadata response; raises when the broker does not answer."""
    client = AIOKafkaClient(
        bootstrap_servers=bootstrap,
        request_timeout_ms=int(request_timeout_s * 1000),
        client_id="gridpulse-wait-kafka",
    )
    try:
        await asyncio.wait_for(client.bootstrap(), request_timeout_s)
        cluster = await asyncio.wait_for(client.fetch_all_metadata(), request_timeout_s)
        return len(cluster.brokers())
    finally:
        await client.close()


async def wait(bootstrap: str, timeout_s: float, pid: int | None) -> str | None:
    """None when the broker answered in time, else why not."""
    deadline = time.monotonic() + timeout_s
    last_error = "no attempt made"
    while True:
        if not _alive(pid):
            return f"broker process {pid} exited"
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return f"no metadata from {bootstrap} within {timeout_s:g} s (last error: {last_error})"
        try:
            brokers = await _metadata_once(bootstrap, min(5.0, max(remaining, 0.5)))
        except Exception as exc:  # any failure just means "not yet"; reported on timeout
            last_error = f"{type(exc).__name__}: {exc}"
        else:
            if brokers > 0:
                return None
            last_error = "metadata lists no broker yet"
        await asyncio.sleep(min(0.5, max(deadline - time.monotonic(), 0)))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bootstrap", default="127.0.0.1:9092")
    parser.add_argument("--timeout", type=float, default=90.0, help="seconds")
    parser.add_argument("--pid", type=int, default=None, help="give up early when this pid is gone")
    parser.add_argument("--quiet", action="store_true")
    args = parser.parse_args(argv)
    # aiokafka logs every refused connection at ERROR while the broker is still starting
    logging.basicConfig(level=logging.CRITICAL)
    problem = asyncio.run(wait(args.bootstrap, args.timeout, args.pid))
    if problem is not None:
        if not args.quiet:
            print(f"wait_kafka: {problem}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
