-- API keys: only a hash of each key is stored; the key itself is shown once, at creation.

CREATE TABLE api_keys (
    key_id        uuid PRIMARY KEY,
    tenant_id     text NOT NULL,
    prefix        text NOT NULL,                 -- first characters, to recognise a key in lists
    key_hash      bytea NOT NULL UNIQUE,         -- SHA-256 of the whole key (keys are 256-bit random)
    scopes        text[] NOT NULL,
    name          text,
    created_at    timestamptz NOT NULL DEFAULT now(),
    last_used_at  timestamptz,
    revoked_at    timestamptz,
    CHECK (scopes <@ ARRAY['upload', 'read', 'webhooks', 'admin']::text[])
);
CREATE INDEX api_keys_by_tenant ON api_keys (tenant_id, created_at);

CREATE INDEX requests_unfinished_by_tenant ON requests (tenant_id) WHERE completed_at IS NULL;
