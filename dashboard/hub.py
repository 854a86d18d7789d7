"""Server-Sent Events fan-out: one multiplexed stream per page, a coalescing queue per client.

``Hub.publish`` never waits: it puts the (already encoded) event into every interested client's
queue and returns. A client's queue keeps only the latest event per (kind, key), so a slow
client receives the newest state of what changed, not a backlog; beyond ``bound`` distinct keys
it is dropped and the client is sent ``event: reset`` (refetch everything). A client's
queue is removed when its stream ends (disconnect, or the server stops).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass

import orjson

from dashboard.metrics import SSE_EVENTS_COALESCED, SSE_EVENTS_SENT, SSE_RESETS

PING_S = 15.0
RESET = b"event: reset\ndata: {}\n\n"
PING = b": ping\n\n"


def update_event(kind: str, key: str, raw: bytes | None) -> bytes:
    """``event: update`` with ``{"kind", "key", "doc"}``; ``raw`` is the document's one-line JSON
    (None: removed, doc null)."""
    head = orjson.dumps({"kind": kind, "key": key})[:-1]
    return b"event: update\ndata: " + head + b',"doc":' + (raw if raw is not None else b"null") + b"}\n\n"


def overview_event(body: bytes) -> bytes:
    return b"event: overview\ndata: " + body + b"\n\n"


@dataclass(frozen=True)
class Subscription:
    kinds: frozenset[str]
    customer: str | None = None

    def wants(self, kind: str, key: str, customer_id: str | None) -> bool:
        if kind not in self.kinds:
            return False
        if self.customer is None or kind in ("reliability", "area", "overview"):
            return True
        return customer_id == self.customer


class ClientQueue:
    """Pending events of one client: latest per (kind, key), in first-change order."""

    def __init__(self, bound: int) -> None:
        self.bound = bound
        self.pending: dict[tuple[str, str], bytes] = {}
        self.reset = False
        self.wakeup = asyncio.Event()
        self.coalesced = 0
        self.resets = 0

    def put(self, kind: str, key: str, event: bytes) -> None:
        slot = (kind, key)
        if slot in self.pending:
            self.coalesced += 1
            SSE_EVENTS_COALESCED.inc()
            self.pending[slot] = event
        elif self.reset:
            return  # the client refetches everything after the reset anyway
        elif len(self.pending) >= self.bound:
            self.pending.clear()
            self.reset = True
            self.resets += 1
            SSE_RESETS.inc()
        else:
            self.pending[slot] = event
        self.wakeup.set()

    def take(self) -> list[bytes]:
        """Everything pending (a reset first, alone), emptying the queue."""
        self.wakeup.clear()
        if self.reset:
            self.reset = False
            return [RESET]
        events = list(self.pending.values())
        self.pending.clear()
        return events

    def __len__(self) -> int:
        return len(self.pending)


class Hub:
    def __init__(self, bound: int = 10_000) -> None:
        self.bound = bound
        self.clients: dict[ClientQueue, Subscription] = {}
        self.published = 0

    def subscribe(self, subscription: Subscription) -> ClientQueue:
        queue = ClientQueue(self.bound)
        self.clients[queue] = subscription
        return queue

    def unsubscribe(self, queue: ClientQueue) -> None:
        self.clients.pop(queue, None)

    def publish(self, kind: str, key: str, raw: bytes | None, customer_id: str | None = None) -> None:
        """An update to every client that wants it; encoded once, never waits."""
        event: bytes | None = None
        for queue, sub in self.clients.items():
            if sub.wants(kind, key, customer_id):
                if event is None:
                    event = update_event(kind, key, raw)
                queue.put(kind, key, event)
        self.published += 1

    def publish_overview(self, body: bytes) -> None:
        event = overview_event(body)
        for queue, sub in self.clients.items():
            if "overview" in sub.kinds:
                queue.put("overview", "", event)

    async def stream(self, queue: ClientQueue, first: Iterable[bytes] = ()) -> AsyncIterator[bytes]:
        """The SSE body of one client; unsubscribes it when the stream ends."""
        try:
            yield b"retry: 3000\n\n"
            for chunk in first:
                SSE_EVENTS_SENT.inc()
                yield chunk
            while True:
                if not len(queue) and not queue.reset:
                    try:
                        await asyncio.wait_for(queue.wakeup.wait(), PING_S)
                    except TimeoutError:
                        yield PING
                        continue
                events = queue.take()
                if events:
                    SSE_EVENTS_SENT.inc(len(events))
                    yield b"".join(events)
        finally:
            self.unsubscribe(queue)
