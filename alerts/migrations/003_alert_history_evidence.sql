-- An alert re-published with refreshed evidence keeps its status and severity, and may keep its
-- event time (alerts.credit: a count that moved as an old event left the 12-month window, no new
-- input): the history records that state too. A redelivered message (the same state, reason and
-- evidence at the same event time) is still recorded once.
ALTER TABLE alert_history DROP CONSTRAINT alert_history_alert_id_ts_status_severity_key;
CREATE UNIQUE INDEX alert_history_state
    ON alert_history (alert_id, ts, status, severity, md5(reason || evidence::text));
