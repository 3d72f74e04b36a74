-- Wake-ups instead of idle polls: a commit that adds outbox rows or webhook deliveries notifies
-- the processes that relay or send them (LISTEN), so they act at once and poll only as a fallback.
-- Statement-level triggers: one notification per statement and topic, not per row; PostgreSQL
-- delivers them only at commit and folds identical ones of one transaction into one.

CREATE OR REPLACE FUNCTION notify_outbox_topics() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    -- The payload is the topic, so a relay wakes only for the topics it publishes.
    PERFORM pg_notify('outbox', topic) FROM (SELECT DISTINCT topic FROM inserted) AS topics;
    RETURN NULL;
END $$;

DROP TRIGGER IF EXISTS outbox_notify ON outbox;
CREATE TRIGGER outbox_notify AFTER INSERT ON outbox
    REFERENCING NEW TABLE AS inserted FOR EACH STATEMENT EXECUTE FUNCTION notify_outbox_topics();

CREATE OR REPLACE FUNCTION notify_webhook_deliveries() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF EXISTS (SELECT 1 FROM inserted) THEN  -- ON CONFLICT DO NOTHING may have added none
        PERFORM pg_notify('webhook_deliveries', '');
    END IF;
    RETURN NULL;
END $$;

DROP TRIGGER IF EXISTS webhook_deliveries_notify ON webhook_deliveries;
CREATE TRIGGER webhook_deliveries_notify AFTER INSERT ON webhook_deliveries
    REFERENCING NEW TABLE AS inserted FOR EACH STATEMENT EXECUTE FUNCTION notify_webhook_deliveries();
