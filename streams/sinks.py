"""Redis snapshot sink: the latest per-customer snapshot as one hash per customer.

Redis is a lookup cache, not the system of record: the topics are. So the sink never blocks
or fails the pipeline. Snapshots are coalesced per customer (only the newest is kept) and
written in one pipeline per flush; when Redis is away they wait in memory — at most one
entry per customer — and the next flush after Redis returns catches up (the worker also
flushes a waiting backlog every second, so an idle pipeline catches up too:
streams/agents/__init__.py).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Mapping
from typing import Any, cast

import orjson
import redis.asyncio as aioredis
from redis.exceptions import RedisError

log = logging.getLogger(__name__)


def flatten(snapshot: Mapping[str, object], raw: bytes | None = None) -> dict[str, str]:
    """A snapshot as hash fields: ``doc`` (the whole document as JSON, exactly what the topic
    carried) and ``ts`` (its event time, for a cheap freshness check).

    ``HGET gp:stats:c1 doc`` gives the document. Two fields, not one per figure: packing ~80
    fields per customer per batch cost more than computing the statistics. ``raw``: the JSON
    already encoded for Kafka, so it is not encoded twice.
    """
    doc = (raw if raw is not None else orjson.dumps(snapshot)).decode()
    return {"doc": doc, "ts": str(snapshot.get("ts") or "")}


class RedisHashSink:
    def __init__(self, url: str, key_prefix: str, *, retry_after_s: float = 2.0) -> None:
        self._client = aioredis.from_url(url, socket_timeout=2.0, socket_connect_timeout=2.0)
        self._prefix = key_prefix
        self._pending: dict[str, Any] = {}  # entity id -> what _write needs (newest wins)
        self._retry_after_s = retry_after_s
        self._down_until = 0.0
        # one flush at a time: two snapshots of a customer written on two connections at once
        # could land out of order and leave the older one in Redis
        self._flushing = asyncio.Lock()
        self.written = 0
        self.failures = 0

    def key(self, entity_id: str) -> str:
        return f"{self._prefix}{entity_id}"

    def add(self, entity_id: str, snapshot: Mapping[str, object], raw: bytes | None = None) -> None:
        self._pending[entity_id] = flatten(snapshot, raw)

    def add_fields(self, entity_id: str, fields: Mapping[str, str]) -> None:
        """Other hash fields than the snapshot's (HSET leaves the others as they are)."""
        self._pending[entity_id] = dict(fields)

    @property
    def backlog(self) -> int:
        return len(self._pending)

    async def flush(self) -> bool:
        """Write everything pending; False (and keep it) when Redis does not answer."""
        async with self._flushing:
            return await self._flush()

    async def _flush(self) -> bool:
        if not self._pending or time.monotonic() < self._down_until:
            return not self._pending
        batch, self._pending = self._pending, {}
        try:
            async with self._client.pipeline(transaction=False) as pipe:
                self._write(pipe, batch)
                await pipe.execute()
        except (RedisError, OSError) as exc:
            # keep the newer snapshots that arrived meanwhile; re-queue the rest
            for entity_id, item in batch.items():
                self._pending.setdefault(entity_id, item)
            self.failures += 1
            self._down_until = time.monotonic() + self._retry_after_s
            log.warning("redis sink: %d snapshots wait for Redis (%s)", len(self._pending), exc)
            return False
        self.written += len(batch)
        return True

    def _write(self, pipe: Any, batch: Mapping[str, Any]) -> None:
        for entity_id, fields in batch.items():
            # every snapshot carries all its fields (None as null), so HSET
            # replaces the whole record without a DELETE a reader could observe
            pipe.hset(self.key(entity_id), mapping=cast(Mapping[Any, Any], fields))

    async def close(self) -> None:
        await self._client.aclose()
