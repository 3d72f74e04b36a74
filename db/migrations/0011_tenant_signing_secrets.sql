-- Each tenant's own signing secret for its per-request webhooks (the upload's webhook_url).
-- At most one current secret per tenant (expires_at NULL) and, after a rotation, one previous
-- secret that still signs until expires_at, so receivers can switch without losing webhooks.
CREATE TABLE tenant_signing_secrets (
    secret_id         uuid PRIMARY KEY,
    tenant_id         text NOT NULL,
    secret_encrypted  bytea NOT NULL,          -- Fernet token of the whsec_ secret
    created_at        timestamptz NOT NULL DEFAULT now(),
    expires_at        timestamptz              -- NULL: the current secret
);
CREATE UNIQUE INDEX tenant_signing_secrets_current ON tenant_signing_secrets (tenant_id) WHERE expires_at IS NULL;
CREATE INDEX tenant_signing_secrets_by_tenant ON tenant_signing_secrets (tenant_id, created_at);
