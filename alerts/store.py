"""The alert store in PostgreSQL (asyncpg): migrations, idempotent upserts, acknowledgement.

Migrations are the numbered ``alerts/migrations/NNN_*.sql`` files, applied once each, in
order, under an advisory lock (several consumers may start together), and recorded in
``schema_migrations``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import asyncpg

MIGRATIONS = Path(__file__).with_name("migrations")
_LOCK_ID = 0x67726964  # "grid": one advisory lock for gridpulse migrations


async def migrate(conn: asyncpg.Connection) -> list[str]:
    """Apply the migrations not applied yet; returns their names."""
    applied: list[str] = []
    async with conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock($1)", _LOCK_ID)
        await conn.execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations ("
            " version text PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())"
        )
        done = {r["version"] for r in await conn.fetch("SELECT version FROM schema_migrations")}
        for path in sorted(MIGRATIONS.glob("[0-9][0-9][0-9]_*.sql")):
            if path.stem in done:
                continue
            await conn.execute(path.read_text(encoding="utf-8"))
            await conn.execute("INSERT INTO schema_migrations (version) VALUES ($1)", path.stem)
            applied.append(path.stem)
    return applied


@dataclass(frozen=True)
class UpsertResult:
    created: bool  # the alert was not in the store before
    changed: bool  # its status or severity changed (a new history row)
    acknowledged: bool  # a manager has acknowledged it


def alert_managers(alert: dict[str, Any]) -> list[str]:
    """The managers an alert message names: ``manager_ids`` (an outage's affected customers',
    an inspection area alert's suspects'), else its ``manager_id`` (a credit or customer
    inspection alert's)."""
    managers = alert.get("manager_ids") or ([alert["manager_id"]] if alert.get("manager_id") else [])
    return [str(m) for m in managers]


async def upsert_alert(conn: asyncpg.Connection, alert: dict[str, Any]) -> UpsertResult:
    """Store one alert message (alerts.credit / alerts.outage / alerts.inspection) by its alert_id.

    Idempotent: the same message twice leaves one row and one history entry. A message that
    only refreshes the evidence (same status and severity) is a history entry of its own
    (migration 003), and not news for the managers (``changed`` false). An older message
    arriving after a newer one (by ``ts``) is recorded in the history but does not roll the
    alert's current state back. An inspection alert resolved without managers (an area alert
    lists no suspects once resolved) keeps the managers it had, so they hear of the resolution.
    """
    ts = datetime.fromisoformat(alert["ts"])
    managers = alert_managers(alert)
    evidence = json.dumps(alert.get("evidence") or {})
    async with conn.transaction():
        before = await conn.fetchrow(
            "SELECT status, severity, acknowledged_at FROM alerts WHERE alert_id = $1 FOR UPDATE",
            alert["alert_id"],
        )
        await conn.execute(
            """
            INSERT INTO alerts (alert_id, kind, severity, status, customer_id, outage_id, rule,
                                manager_ids, reason, evidence, payload, first_ts, last_ts,
                                transformer_area)
            VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10::jsonb, $11::jsonb, $12, $12, $13)
            ON CONFLICT (alert_id) DO UPDATE
               SET severity = EXCLUDED.severity, status = EXCLUDED.status,
                   manager_ids = CASE
                       WHEN EXCLUDED.kind = 'inspection' AND EXCLUDED.status = 'resolved'
                            AND cardinality(EXCLUDED.manager_ids) = 0 THEN alerts.manager_ids
                       ELSE EXCLUDED.manager_ids END,
                   reason = EXCLUDED.reason,
                   evidence = EXCLUDED.evidence, payload = EXCLUDED.payload,
                   last_ts = EXCLUDED.last_ts, updated_at = now()
             WHERE alerts.last_ts <= EXCLUDED.last_ts
            """,
            alert["alert_id"],
            alert["kind"],
            alert["severity"],
            alert["status"],
            alert.get("customer_id"),
            alert.get("outage_id"),
            alert.get("rule"),
            managers,
            alert["reason"],
            evidence,
            json.dumps(alert),
            ts,
            alert.get("transformer_area"),
        )
        inserted = await conn.fetchval(
            """
            INSERT INTO alert_history (alert_id, ts, status, severity, reason, evidence)
            VALUES ($1, $2, $3, $4, $5, $6::jsonb)
            ON CONFLICT (alert_id, ts, status, severity, md5(reason || evidence::text)) DO NOTHING
            RETURNING true
            """,
            alert["alert_id"],
            ts,
            alert["status"],
            alert["severity"],
            alert["reason"],
            evidence,
        )
    changed = before is None or (
        bool(inserted) and (before["status"], before["severity"]) != (alert["status"], alert["severity"])
    )
    return UpsertResult(
        created=before is None,
        changed=changed,
        acknowledged=before is not None and before["acknowledged_at"] is not None,
    )


async def acknowledge(conn: asyncpg.Connection, alert_id: str, manager_id: str) -> bool:
    return bool(await conn.fetchval("SELECT acknowledge_alert($1, $2)", alert_id, manager_id))


async def list_alerts(
    conn: asyncpg.Connection,
    *,
    manager_id: str | None = None,
    kind: str | None = None,
    customer_id: str | None = None,
    transformer_area: str | None = None,
    include_resolved: bool = False,
    limit: int = 100,
) -> list[asyncpg.Record]:
    """Stored alerts, the latest event first: open and escalated ones unless
    ``include_resolved``; a manager's (``manager_ids`` holds it); of a kind; a customer's (its
    own alerts, and the area alerts listing it among their suspects); an area's."""
    return list(
        await conn.fetch(
            """
            SELECT alert_id, kind, severity, status, rule, customer_id, outage_id, transformer_area,
                   manager_ids, reason, first_ts, last_ts, acknowledged_at, acknowledged_by,
                   acknowledged_severity, payload
              FROM alerts
             WHERE ($1::text IS NULL OR manager_ids @> ARRAY[$1::text])
               AND ($2::text IS NULL OR kind = $2)
               AND ($3::text IS NULL OR customer_id = $3
                    OR payload->'suspects' @> jsonb_build_array(jsonb_build_object('customer_id', $3::text)))
               AND ($4::text IS NULL OR transformer_area = $4)
               AND ($5 OR status <> 'resolved')
             ORDER BY last_ts DESC, alert_id
             LIMIT $6
            """,
            manager_id,
            kind,
            customer_id,
            transformer_area,
            include_resolved,
            limit,
        )
    )


# --- notification outbox (migration 002; used by alerts.consumer) ---------------------------


@dataclass(frozen=True)
class NoticeState:
    """What the notification decision needs to know about a stored alert."""

    status: str
    severity: str
    notice_status: str | None  # the state managers were told about (or that needed no telling)
    notice_severity: str | None
    acknowledged_severity: str | None  # None: not acknowledged
    manager_ids: list[str]
    ts: datetime
    payload: dict[str, Any]


async def notice_state(conn: asyncpg.Connection, alert_id: str) -> NoticeState | None:
    row = await conn.fetchrow(
        "SELECT status, severity, notice_status, notice_severity, acknowledged_severity,"
        " manager_ids, last_ts, payload FROM alerts WHERE alert_id = $1",
        alert_id,
    )
    if row is None:
        return None
    return NoticeState(
        status=row["status"],
        severity=row["severity"],
        notice_status=row["notice_status"],
        notice_severity=row["notice_severity"],
        acknowledged_severity=row["acknowledged_severity"],
        manager_ids=list(row["manager_ids"]),
        ts=row["last_ts"],
        payload=json.loads(row["payload"]),
    )


async def record_notice(
    conn: asyncpg.Connection, alert_id: str, state: NoticeState, event: str | None
) -> list[asyncpg.Record]:
    """Mark ``state`` as handled; when ``event`` is given, queue one notification per manager.

    Returns the queued rows (alert_notifications: id, manager_id). Call it in the transaction
    that stored the alert, so the store and the outbox never disagree.
    """
    await conn.execute(
        "UPDATE alerts SET notice_status = $2, notice_severity = $3 WHERE alert_id = $1",
        alert_id,
        state.status,
        state.severity,
    )
    if event is None:
        return []
    return await queue_notifications(conn, alert_id, state, event, state.manager_ids)


async def queue_notifications(
    conn: asyncpg.Connection, alert_id: str, state: NoticeState, event: str, managers: list[str]
) -> list[asyncpg.Record]:
    """One outbox row per manager of ``managers`` for ``state`` as ``event``; a row already
    queued (same alert, manager, ts, status, severity) is not queued again."""
    rows = await conn.fetch(
        """
        INSERT INTO alert_notifications (alert_id, manager_id, event, status, severity, ts, payload)
        SELECT $1, m, $2, $3, $4, $5, $6::jsonb FROM unnest($7::text[]) AS m
        ON CONFLICT (alert_id, manager_id, ts, status, severity) DO NOTHING
        RETURNING id, manager_id
        """,
        alert_id,
        event,
        state.status,
        state.severity,
        state.ts,
        json.dumps(state.payload),
        managers,
    )
    return list(rows)


async def untold_managers(conn: asyncpg.Connection, alert_id: str, managers: list[str]) -> list[str]:
    """Of ``managers``, those not told of the alert since it last resolved (no open or escalated
    notification of it after its newest resolved state): an area alert's suspects change while
    it stays open, and the manager of a newly listed suspect has not heard of it."""
    rows = await conn.fetch(
        """
        SELECT m FROM unnest($2::text[]) AS m
         WHERE NOT EXISTS (
               SELECT 1 FROM alert_notifications n
                WHERE n.alert_id = $1 AND n.manager_id = m AND n.event <> 'resolved'
                  AND n.ts > COALESCE(
                      (SELECT max(h.ts) FROM alert_history h
                        WHERE h.alert_id = $1 AND h.status = 'resolved'), '-infinity'))
         ORDER BY m
        """,
        alert_id,
        managers,
    )
    return [r["m"] for r in rows]


async def pending_notifications(
    conn: asyncpg.Connection, *, exclude: list[int] | None = None, limit: int = 1000
) -> list[asyncpg.Record]:
    """Notifications neither delivered nor given up, oldest first, except those in ``exclude``."""
    return list(
        await conn.fetch(
            """
            SELECT id, alert_id, manager_id, event, status, severity, ts, payload
              FROM alert_notifications
             WHERE delivered_at IS NULL AND given_up_at IS NULL
               AND NOT (id = ANY($1::bigint[]))
             ORDER BY id
             LIMIT $2
            """,
            exclude or [],
            limit,
        )
    )


async def finish_notification(
    conn: asyncpg.Connection, notification_id: int, *, delivered: bool, attempts: int, error: str | None
) -> None:
    """Stamp a notification delivered (and its alert notified_at) or given up."""
    async with conn.transaction():
        alert_id = await conn.fetchval(
            """
            UPDATE alert_notifications
               SET attempts = attempts + $2, error = $3,
                   delivered_at = CASE WHEN $4 THEN now() END,
                   given_up_at = CASE WHEN $4 THEN NULL ELSE now() END
             WHERE id = $1
            RETURNING alert_id
            """,
            notification_id,
            attempts,
            error,
            delivered,
        )
        if delivered and alert_id is not None:
            await conn.execute("UPDATE alerts SET notified_at = now() WHERE alert_id = $1", alert_id)
