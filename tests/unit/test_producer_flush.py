"""Faust's producer buffer flush, as faust commits offsets after it: it must return only once
every buffered message (table changelog writes, send_soon) has been handed to the Kafka client.

faust's own ProducerBuffer is used here, started as the service it is in a worker; only its
hand-over to the Kafka client is replaced by a slow one (a broker answering metadata or a
leader change in 0.3 s), because that hand-over is what the flush has to wait for.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any

import faust
import pytest
from faust.transport.producer import ProducerBuffer

from streams.faust_patches import complete_buffer_flush
from streams.worker import create_worker

HANDOVER_S = 0.3


@pytest.fixture
async def buffer() -> AsyncIterator[tuple[ProducerBuffer, list[Any]]]:
    app = faust.App("flush-test", broker="kafka://127.0.0.1:9")  # never connected
    buf: ProducerBuffer = app.producer.buffer
    handed: list[Any] = []

    async def slow_handover(fut: Any) -> None:
        await asyncio.sleep(HANDOVER_S)
        handed.append(fut)

    buf._send_pending = slow_handover  # type: ignore[method-assign]
    yield buf, handed
    await buf.stop()


async def test_faust_flush_returns_with_messages_still_buffered(
    buffer: tuple[ProducerBuffer, list[Any]],
) -> None:
    """Why the worker replaces it: faust's flush gives up after 0.1 s without a hand-over."""
    buf, handed = buffer
    await buf.start()
    for i in range(3):
        buf.put(f"changelog-{i}")  # type: ignore[arg-type]
    await buf.flush()
    assert len(handed) < 3 and buf.size > 0, (handed, buf.size)
    await asyncio.sleep(3 * HANDOVER_S)  # let the rest go before the fixture stops the buffer


async def test_complete_flush_returns_once_everything_is_handed_over(
    buffer: tuple[ProducerBuffer, list[Any]],
) -> None:
    buf, handed = buffer
    complete_buffer_flush(buf)
    await buf.start()
    for i in range(3):
        buf.put(f"changelog-{i}")  # type: ignore[arg-type]
    t0 = time.perf_counter()
    await buf.flush()
    assert handed == ["changelog-0", "changelog-1", "changelog-2"]
    assert buf.size == 0
    assert time.perf_counter() - t0 >= 3 * HANDOVER_S * 0.9  # it waited, in order


async def test_complete_flush_waits_for_the_message_being_handed_over(
    buffer: tuple[ProducerBuffer, list[Any]],
) -> None:
    """The queue is already empty while its last message is still in the hand-over."""
    buf, handed = buffer
    complete_buffer_flush(buf)
    await buf.start()
    buf.put("last")  # type: ignore[arg-type]
    await asyncio.sleep(0.05)  # the background task has taken it off the queue
    assert buf.size == 0 and handed == []
    await buf.flush()
    assert handed == ["last"]


async def test_complete_flush_of_an_empty_buffer_returns_at_once(
    buffer: tuple[ProducerBuffer, list[Any]],
) -> None:
    buf, handed = buffer
    complete_buffer_flush(buf)
    await buf.start()
    t0 = time.perf_counter()
    await buf.flush()
    assert time.perf_counter() - t0 < 0.05 and handed == []


def test_the_worker_app_uses_the_complete_flush() -> None:
    app = create_worker().app
    flush = app.producer.buffer.flush
    assert flush.__qualname__.startswith(complete_buffer_flush.__qualname__), flush.__qualname__
