-- Inspection alerts (alerts.inspection, issue 13): kind 'inspection', scoped to a customer
-- (customer_id) or to a transformer area (transformer_area, with the managers of its suspects).
-- The kind check of 001 is replaced by name-independent lookup: it is the one check on `kind`.
DO $$
DECLARE
    c text;
BEGIN
    FOR c IN
        SELECT conname FROM pg_constraint
         WHERE conrelid = 'alerts'::regclass AND contype = 'c'
           AND pg_get_constraintdef(oid) LIKE '%kind%'
    LOOP
        EXECUTE format('ALTER TABLE alerts DROP CONSTRAINT %I', c);
    END LOOP;
END
$$;
ALTER TABLE alerts
    ADD CONSTRAINT alerts_kind_check CHECK (kind IN ('credit', 'outage', 'inspection')),
    ADD COLUMN transformer_area text;   -- an area alert's area (scope transformer_area)
CREATE INDEX alerts_transformer_area ON alerts (transformer_area) WHERE transformer_area IS NOT NULL;
