-- The alert store: one row per alert (by its deterministic alert_id) and the full history of
-- its state changes. Written by `gridpulse alerts-consumer`; read by customer managers' tools.
-- Customer names never reach these tables: alert payloads carry ids and manager ids only.

CREATE TABLE alerts (
    alert_id          text PRIMARY KEY,
    kind              text        NOT NULL CHECK (kind IN ('credit', 'outage')),
    severity          text        NOT NULL CHECK (severity IN ('critical', 'major', 'minor', 'info')),
    status            text        NOT NULL CHECK (status IN ('open', 'escalated', 'resolved')),
    customer_id       text,
    outage_id         text,
    rule              text,
    manager_ids       text[]      NOT NULL DEFAULT '{}',
    reason            text        NOT NULL,
    evidence          jsonb       NOT NULL,
    payload           jsonb       NOT NULL,   -- the alert message as published
    first_ts          timestamptz NOT NULL,   -- event time the alert first opened
    last_ts           timestamptz NOT NULL,   -- event time of the latest state
    updated_at        timestamptz NOT NULL DEFAULT now(),
    acknowledged_at   timestamptz,
    acknowledged_by   text
);
CREATE INDEX alerts_open_by_manager ON alerts USING gin (manager_ids) WHERE status <> 'resolved';
CREATE INDEX alerts_customer ON alerts (customer_id);

CREATE TABLE alert_history (
    id          bigserial   PRIMARY KEY,
    alert_id    text        NOT NULL REFERENCES alerts (alert_id) ON DELETE CASCADE,
    ts          timestamptz NOT NULL,
    status      text        NOT NULL,
    severity    text        NOT NULL,
    reason      text        NOT NULL,
    evidence    jsonb       NOT NULL,
    recorded_at timestamptz NOT NULL DEFAULT now(),
    -- a redelivered alert message (same state at the same event time) is recorded once
    UNIQUE (alert_id, ts, status, severity)
);

-- A manager acknowledges an alert: re-notification stops until it escalates again.
-- Returns false when there is no such alert or it is already acknowledged.
CREATE FUNCTION acknowledge_alert(p_alert_id text, p_manager_id text) RETURNS boolean
LANGUAGE sql AS $$
    UPDATE alerts
       SET acknowledged_at = now(), acknowledged_by = p_manager_id, updated_at = now()
     WHERE alert_id = p_alert_id AND acknowledged_at IS NULL
    RETURNING true;
$$;
