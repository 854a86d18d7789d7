"""Small helpers the integration tests share: producing raw messages, waiting on counters."""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

import orjson

from gridpulse.settings import Settings
from streams.kafka import make_admin, make_producer
from tests.samples import reading as reading  # re-exported: one way of writing a reading


async def produce(
    settings: Settings, topic: str, messages: Iterable[tuple[bytes | None, bytes | None]]
) -> int:
    """Send (key, value) pairs to a contract topic (prefix applied) and wait for every ack."""
    return await produce_to(settings, settings.topic(topic), messages)


async def produce_to(
    settings: Settings, name: str, messages: Iterable[tuple[bytes | None, bytes | None]]
) -> int:
    """Send (key, value) pairs to the topic named exactly ``name`` and wait for every ack."""
    producer = make_producer(settings)
    await producer.start()
    n = 0
    try:
        futures = []
        for key, value in messages:
            futures.append(await producer.send(name, key=key, value=value))
            n += 1
        await asyncio.gather(*futures)
    finally:
        await producer.stop()
    return n


async def committed_offsets(settings: Settings, topic: str) -> dict[int, int]:
    """Partition -> the worker's consumer group's committed offset in ``topic`` (the full name)."""
    admin = make_admin(settings)
    await admin.start()
    try:
        offsets = await admin.list_consumer_group_offsets(settings.app_id)
    finally:
        await admin.close()
    return {tp.partition: m.offset for tp, m in offsets.items() if tp.topic == topic and m.offset >= 0}


def js(obj: Any) -> bytes:
    return orjson.dumps(obj)


async def eventually(check: Callable[[], Awaitable[bool]], within_s: float, what: str) -> None:
    deadline = time.monotonic() + within_s
    while time.monotonic() < deadline:
        if await check():
            return
        await asyncio.sleep(0.3)
    raise AssertionError(f"not within {within_s} s: {what}")


def cpu_plausible(rate: Any) -> bool:
    """A bench rate's CPU time is measured and possible: between 0 and every core busy for its
    span. Not > 0: psutil reads the kernel's 10-ms ticks, so a span of a few milliseconds (a
    tiny test population) can read 0."""
    cores = os.cpu_count() or 1
    return bool(0.0 <= rate.cpu_s <= rate.seconds * cores + 0.05)
