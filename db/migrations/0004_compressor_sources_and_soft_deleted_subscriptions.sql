-- Per-request URL claims of the compressor (one download per source URL and request, across
-- every member), formerly created by the compressor at start; and soft-deleted subscriptions,
-- so that a replay can tell a deleted subscription from a per-request webhook.

CREATE TABLE IF NOT EXISTS compressor_sources (
    request_id   uuid NOT NULL,
    url_sha256   text NOT NULL,
    owner_image  uuid NOT NULL,
    state        text NOT NULL CHECK (state IN ('working', 'settled')),
    lease_until  timestamptz NOT NULL,
    result       bytea,
    updated_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (request_id, url_sha256)
);

ALTER TABLE webhook_subscriptions ADD COLUMN deleted_at timestamptz;
ALTER TABLE webhook_deliveries DROP CONSTRAINT webhook_deliveries_subscription_id_fkey;
ALTER TABLE webhook_deliveries
    ADD CONSTRAINT webhook_deliveries_subscription_id_fkey
    FOREIGN KEY (subscription_id) REFERENCES webhook_subscriptions (subscription_id);
