"""Wait until a Kafka broker answers metadata requests (used by scripts/stack.sh).

    .venv/bin/python scripts/wait_kafka.py --bootstrap 127.0.0.1:9092 --timeout 90 [--pid N] [--plaintext]

It connects the way every gridpulse client does: the GRIDPULSE_KAFKA_* security settings of
the environment (SASL_SSL, SCRAM user, password file, CA file; gridpulse.settings), unless
``--plaintext`` (the plain local stack's listener); ``--bootstrap`` replaces
GRIDPULSE_KAFKA_BOOTSTRAP. Exit 0 once a metadata response lists at least one broker; exit 1 on
timeout, at once when the broker process given by ``--pid`` has died (no point waiting 90 s for
a corpse), and at once when the broker refuses the client (wrong password, untrusted
certificate: streams.kafka.KafkaAccessError, said on stderr).
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys
import time

from pydantic import ValidationError

from gridpulse.settings import Settings
from streams.kafka import KafkaAccessError, probe_broker


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


def client_settings(bootstrap: str | None, plaintext: bool) -> Settings:
    """The settings the waiter connects with: the environment's (what the apps use), the
    bootstrap replaced when given; for ``plaintext`` none of the environment (defaults only:
    the plain stack's listener wants nothing)."""
    if plaintext:
        return Settings.model_construct(kafka_bootstrap=bootstrap or "127.0.0.1:9092")
    settings = Settings()
    return settings.model_copy(update={"kafka_bootstrap": bootstrap}) if bootstrap else settings


async def wait(settings: Settings, timeout_s: float, pid: int | None) -> str | None:
    """None when the broker answered in time, else why not (KafkaAccessError: at once)."""
    bootstrap = settings.kafka_bootstrap
    deadline = time.monotonic() + timeout_s
    last_error = "no attempt made"
    while True:
        if not _alive(pid):
            return f"broker process {pid} exited"
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return f"no metadata from {bootstrap} within {timeout_s:g} s (last error: {last_error})"
        try:
            brokers = await probe_broker(settings, min(5.0, max(remaining, 0.5)))
        except KafkaAccessError as exc:  # refused: waiting does not help
            return f"{bootstrap} refused the client: {exc}"
        except Exception as exc:  # any other failure just means "not yet"; reported on timeout
            last_error = f"{type(exc).__name__}: {exc}"
        else:
            if brokers > 0:
                return None
            last_error = "metadata lists no broker yet"
        await asyncio.sleep(min(0.5, max(deadline - time.monotonic(), 0)))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bootstrap", default=None, help="host:port (default GRIDPULSE_KAFKA_BOOTSTRAP)")
    parser.add_argument(
        "--plaintext", action="store_true", help="ignore the security settings: a PLAINTEXT listener"
    )
    parser.add_argument("--timeout", type=float, default=90.0, help="seconds")
    parser.add_argument("--pid", type=int, default=None, help="give up early when this pid is gone")
    parser.add_argument("--quiet", action="store_true")
    args = parser.parse_args(argv)
    # aiokafka logs every refused connection at ERROR while the broker is still starting
    logging.basicConfig(level=logging.CRITICAL)
    try:
        settings = client_settings(args.bootstrap, args.plaintext)
    except ValidationError as exc:
        print(f"wait_kafka: the GRIDPULSE_* settings are invalid: {exc}", file=sys.stderr)
        return 1
    problem = asyncio.run(wait(settings, args.timeout, args.pid))
    if problem is not None:
        if not args.quiet:
            print(f"wait_kafka: {problem}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
