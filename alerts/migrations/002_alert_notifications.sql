-- Notification of customer managers (`gridpulse alerts-consumer`): a transactional outbox.
--
-- The consumer decides, in the same transaction that stores an alert message, whether the new
-- state is news for the managers (alerts.notifier.notice_event) and, when it is, writes one
-- alert_notifications row per manager. A sender delivers the rows after the commit and stamps
-- them; rows not stamped (a crash, a webhook down) are sent again when the consumer restarts.
-- notice_status / notice_severity are the alert state the managers have been told about (or
-- that needed no telling), so a redelivered alert message never notifies twice.

CREATE FUNCTION alert_severity_rank(p_severity text) RETURNS integer
LANGUAGE sql IMMUTABLE AS $$
    SELECT array_position(ARRAY['info', 'minor', 'major', 'critical'], p_severity);
$$;

ALTER TABLE alerts
    ADD COLUMN notice_status         text,
    ADD COLUMN notice_severity       text,
    ADD COLUMN notified_at           timestamptz,   -- the last notification delivered
    ADD COLUMN acknowledged_severity text;          -- the severity the manager acknowledged

-- alerts stored before this migration: acknowledged at their current severity, and not news
UPDATE alerts SET acknowledged_severity = severity WHERE acknowledged_at IS NOT NULL;
UPDATE alerts SET notice_status = status, notice_severity = severity;

CREATE TABLE alert_notifications (
    id           bigserial   PRIMARY KEY,
    alert_id     text        NOT NULL REFERENCES alerts (alert_id) ON DELETE CASCADE,
    manager_id   text        NOT NULL,
    event        text        NOT NULL CHECK (event IN ('open', 'escalated', 'resolved')),
    status       text        NOT NULL,
    severity     text        NOT NULL,
    ts           timestamptz NOT NULL,           -- event time of the alert state notified
    payload      jsonb       NOT NULL,           -- the alert message of that state
    created_at   timestamptz NOT NULL DEFAULT now(),
    attempts     integer     NOT NULL DEFAULT 0,
    delivered_at timestamptz,
    given_up_at  timestamptz,
    error        text,
    UNIQUE (alert_id, manager_id, ts, status, severity)
);
CREATE INDEX alert_notifications_pending ON alert_notifications (id)
    WHERE delivered_at IS NULL AND given_up_at IS NULL;

-- A manager acknowledges an alert: re-notification stops until its severity rises above the
-- acknowledged one; then it can be acknowledged again. Returns false when there is no such
-- alert or it is already acknowledged at its current severity.
CREATE OR REPLACE FUNCTION acknowledge_alert(p_alert_id text, p_manager_id text) RETURNS boolean
LANGUAGE sql AS $$
    UPDATE alerts
       SET acknowledged_at = now(), acknowledged_by = p_manager_id,
           acknowledged_severity = severity, updated_at = now()
     WHERE alert_id = p_alert_id
       AND (acknowledged_at IS NULL
            OR alert_severity_rank(severity) > alert_severity_rank(acknowledged_severity))
    RETURNING true;
$$;
