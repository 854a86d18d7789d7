"""The dashboard's reads and acknowledgements on the PostgreSQL alert store (alerts/store.py's
schema; ``alerts.store.acknowledge`` for the ack, so the effect is ``gridpulse alerts ack``'s).

The pool is made on first use and again after a failure; PostgreSQL away raises
``StoreUnavailable`` (the API answers 503 with its detail), nothing else of the dashboard
depends on it.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import asyncpg
import orjson

from alerts.store import acknowledge, migrate

log = logging.getLogger(__name__)

_COLUMNS = """alert_id, kind, severity, status, rule, customer_id, outage_id, transformer_area,
              manager_ids, reason, evidence, last_ts AS ts, first_ts AS opened_at, updated_at,
              acknowledged_at, acknowledged_by, acknowledged_severity"""


class StoreUnavailable(RuntimeError):
    """The alert store (PostgreSQL) does not answer."""


def _row(record: asyncpg.Record) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in record.items():
        if isinstance(value, datetime):
            out[key] = value.isoformat()
        elif key == "evidence" and isinstance(value, str):
            out[key] = orjson.loads(value)
        elif key == "manager_ids":
            out[key] = list(value or [])
        else:
            out[key] = value
    return out


class AlertStore:
    def __init__(self, dsn: str, *, timeout_s: float = 3.0) -> None:
        self._dsn = dsn
        self._timeout_s = timeout_s
        self._pool: asyncpg.Pool | None = None
        self._lock = asyncio.Lock()

    async def _get_pool(self) -> asyncpg.Pool:
        if self._pool is not None:
            return self._pool
        async with self._lock:
            if self._pool is None:
                pool = await asyncio.wait_for(
                    asyncpg.create_pool(
                        self._dsn, min_size=1, max_size=4, timeout=self._timeout_s, command_timeout=10.0
                    ),
                    self._timeout_s * 2,
                )
                async with pool.acquire() as conn:
                    await migrate(conn)
                self._pool = pool
            return self._pool

    async def _run(self, fn: Any) -> Any:
        try:
            pool = await self._get_pool()
            async with pool.acquire(timeout=self._timeout_s) as conn:
                return await fn(conn)
        except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError, TimeoutError) as exc:
            await self._drop_pool()
            log.warning("dashboard: alert store unavailable (%s)", type(exc).__name__)
            raise StoreUnavailable(
                f"alert store (PostgreSQL) unavailable: {type(exc).__name__}: {exc}"
            ) from exc

    async def _drop_pool(self) -> None:
        pool, self._pool = self._pool, None
        if pool is not None:
            pool.terminate()

    async def close(self) -> None:
        pool, self._pool = self._pool, None
        if pool is not None:
            await pool.close()

    async def alerts(
        self,
        *,
        kind: str | None = None,
        severity: str | None = None,
        status: str | None = None,
        manager: str | None = None,
        only_manager: str | None = None,
        limit: int = 1000,
    ) -> list[dict[str, Any]]:
        """Stored alerts, the latest event first; ``only_manager``: the role's restriction."""

        async def q(conn: asyncpg.Connection) -> list[dict[str, Any]]:
            rows = await conn.fetch(
                f"""
                SELECT {_COLUMNS} FROM alerts
                 WHERE ($1::text IS NULL OR kind = $1) AND ($2::text IS NULL OR severity = $2)
                   AND ($3::text IS NULL OR status = $3)
                   AND ($4::text IS NULL OR manager_ids @> ARRAY[$4::text])
                   AND ($5::text IS NULL OR manager_ids @> ARRAY[$5::text])
                 ORDER BY last_ts DESC, alert_id
                 LIMIT $6
                """,
                kind,
                severity,
                status,
                manager,
                only_manager,
                limit,
            )
            return [_row(r) for r in rows]

        result: list[dict[str, Any]] = await self._run(q)
        return result

    async def for_customer(self, customer_id: str, only_manager: str | None = None) -> list[dict[str, Any]]:
        """A customer's alerts (its own and the area alerts listing it as a suspect), newest
        first, each with its ``history`` (oldest first)."""

        async def q(conn: asyncpg.Connection) -> list[dict[str, Any]]:
            rows = [
                _row(r)
                for r in await conn.fetch(
                    f"""
                    SELECT {_COLUMNS} FROM alerts
                     WHERE (customer_id = $1 OR payload->'suspects' @>
                            jsonb_build_array(jsonb_build_object('customer_id', $1::text)))
                       AND ($2::text IS NULL OR manager_ids @> ARRAY[$2::text])
                     ORDER BY last_ts DESC, alert_id LIMIT 500
                    """,
                    customer_id,
                    only_manager,
                )
            ]
            history: dict[str, list[dict[str, Any]]] = {r["alert_id"]: [] for r in rows}
            if rows:
                for h in await conn.fetch(
                    "SELECT alert_id, ts, status, severity, reason, evidence, recorded_at"
                    " FROM alert_history WHERE alert_id = ANY($1::text[]) ORDER BY ts, id",
                    list(history),
                ):
                    entry = _row(h)
                    history[entry.pop("alert_id")].append(entry)
            for r in rows:
                r["history"] = history[r["alert_id"]]
            return rows

        result: list[dict[str, Any]] = await self._run(q)
        return result

    async def managers_of(self, alert_id: str) -> Sequence[str] | None:
        """The alert's managers; None when the store has no such alert."""

        async def q(conn: asyncpg.Connection) -> Sequence[str] | None:
            row = await conn.fetchrow("SELECT manager_ids FROM alerts WHERE alert_id = $1", alert_id)
            return None if row is None else list(row["manager_ids"] or [])

        result: Sequence[str] | None = await self._run(q)
        return result

    async def acknowledge(self, alert_id: str, who: str) -> bool:
        """``alerts.store.acknowledge``: False when already acknowledged at its severity."""

        async def q(conn: asyncpg.Connection) -> bool:
            return await acknowledge(conn, alert_id, who)

        result: bool = await self._run(q)
        return result
