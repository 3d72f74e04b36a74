-- Global webhook subscriptions (per tenant) and which subscription a delivery belongs to.

CREATE TABLE webhook_subscriptions (
    subscription_id   uuid PRIMARY KEY,
    tenant_id         text NOT NULL DEFAULT 'default',
    url               text NOT NULL,
    secret_encrypted  bytea NOT NULL,          -- Fernet token of the whsec_ secret
    description       text,
    created_at        timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX webhook_subscriptions_by_tenant ON webhook_subscriptions (tenant_id, created_at);

-- NULL: the per-request webhook_url given at upload, signed with the notifier's own secret.
ALTER TABLE webhook_deliveries
    ADD COLUMN subscription_id uuid REFERENCES webhook_subscriptions (subscription_id) ON DELETE SET NULL;
