"""The alert store on the real PostgreSQL: migrations, idempotent upserts, history, ack."""

from __future__ import annotations

from collections.abc import AsyncIterator

import asyncpg
import orjson
import pytest
import pytest_asyncio

from alerts.store import MIGRATIONS, acknowledge, migrate, upsert_alert
from gridpulse.settings import Settings

pytestmark = pytest.mark.integration


@pytest_asyncio.fixture
async def conn(pg_settings: Settings, unique_id: str) -> AsyncIterator[asyncpg.Connection]:
    """A connection whose search_path is a schema of this test's own, dropped afterwards."""
    c = await asyncpg.connect(pg_settings.pg_dsn.get_secret_value())
    schema = f"t_{unique_id}"
    await c.execute(f"CREATE SCHEMA {schema}")
    await c.execute(f"SET search_path TO {schema}")
    try:
        yield c
    finally:
        await c.execute(f"DROP SCHEMA {schema} CASCADE")
        await c.close()


def alert(status: str, severity: str, ts: str, days: int) -> dict[str, object]:
    return {
        "alert_id": "credit:C1:overdue_30",
        "kind": "credit",
        "severity": severity,
        "status": status,
        "ts": ts,
        "reason": f"oldest bill {days} days overdue",
        "evidence": {"oldest_overdue_days": days, "outstanding": 1234.5},
        "customer_id": "C1",
        "rule": "overdue_30",
        "manager_id": "M07",
    }


async def test_migrations_apply_once(conn: asyncpg.Connection) -> None:
    every = sorted(p.stem for p in MIGRATIONS.glob("[0-9][0-9][0-9]_*.sql"))
    assert every[0] == "001_alert_store"
    assert await migrate(conn) == every
    assert await migrate(conn) == []
    assert await conn.fetchval("SELECT count(*) FROM schema_migrations") == len(every)


async def test_upsert_is_idempotent_and_keeps_history(conn: asyncpg.Connection) -> None:
    await migrate(conn)
    first = await upsert_alert(conn, alert("open", "major", "2026-11-01T08:00:00+08:00", 31))
    again = await upsert_alert(conn, alert("open", "major", "2026-11-01T08:00:00+08:00", 31))
    worse = await upsert_alert(conn, alert("escalated", "critical", "2026-12-30T08:00:00+08:00", 91))
    assert (first.created, first.changed) == (True, True)
    assert (again.created, again.changed) == (False, False)
    assert (worse.created, worse.changed) == (False, True)

    row = await conn.fetchrow("SELECT * FROM alerts WHERE alert_id = 'credit:C1:overdue_30'")
    assert (row["status"], row["severity"], row["manager_ids"]) == ("escalated", "critical", ["M07"])
    history = await conn.fetch("SELECT status, severity FROM alert_history ORDER BY ts")
    assert [(h["status"], h["severity"]) for h in history] == [("open", "major"), ("escalated", "critical")]

    # a late redelivery of the first state does not roll the alert back
    await upsert_alert(conn, alert("open", "major", "2026-11-01T08:00:00+08:00", 31))
    assert await conn.fetchval("SELECT status FROM alerts") == "escalated"


async def test_refreshed_evidence_is_history_but_no_change(conn: asyncpg.Connection) -> None:
    """An open alert re-published with new evidence (same status, severity and event time: no
    new input, a count moved) is a history entry of its own; redelivered, it is still one."""
    await migrate(conn)
    await upsert_alert(conn, alert("open", "major", "2026-11-01T08:00:00+08:00", 31))
    refresh = alert("open", "major", "2026-11-01T08:00:00+08:00", 31)
    refresh["evidence"] = {"oldest_overdue_days": 31, "outstanding": 600.0}
    first = await upsert_alert(conn, refresh)
    again = await upsert_alert(conn, refresh)
    assert (first.created, first.changed) == (False, False)
    assert (again.created, again.changed) == (False, False)
    outstanding = [
        orjson.loads(r["evidence"])["outstanding"]
        for r in await conn.fetch("SELECT evidence FROM alert_history ORDER BY id")
    ]
    assert outstanding == [1234.5, 600.0]
    row = await conn.fetchrow("SELECT evidence FROM alerts")
    assert orjson.loads(row["evidence"])["outstanding"] == 600.0


async def test_acknowledge_once(conn: asyncpg.Connection) -> None:
    await migrate(conn)
    await upsert_alert(conn, alert("open", "major", "2026-11-01T08:00:00+08:00", 31))
    assert await acknowledge(conn, "credit:C1:overdue_30", "M07") is True
    assert await acknowledge(conn, "credit:C1:overdue_30", "M07") is False
    assert await acknowledge(conn, "no-such-alert", "M07") is False
    nxt = await upsert_alert(conn, alert("open", "major", "2026-11-02T08:00:00+08:00", 32))
    assert nxt.acknowledged
