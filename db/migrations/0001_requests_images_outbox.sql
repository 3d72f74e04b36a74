-- Requests and their images (written by ingest, progressed by tracker),
-- and the transactional outbox that every producer relays to Kafka.

CREATE TABLE requests (
    request_id        uuid PRIMARY KEY,
    tenant_id         text NOT NULL DEFAULT 'default',
    status            text NOT NULL DEFAULT 'pending'
                      CHECK (status IN ('pending', 'processing', 'completed',
                                        'completed_with_errors', 'failed')),
    quality           smallint NOT NULL DEFAULT 50 CHECK (quality BETWEEN 1 AND 95),
    webhook_url       text,
    idempotency_key   text,
    file_sha256       text NOT NULL,
    total_products    integer NOT NULL CHECK (total_products >= 0),
    total_images      integer NOT NULL CHECK (total_images >= 0),
    processed_images  integer NOT NULL DEFAULT 0,
    failed_images     integer NOT NULL DEFAULT 0,
    created_at        timestamptz NOT NULL DEFAULT now(),
    updated_at        timestamptz NOT NULL DEFAULT now(),
    completed_at      timestamptz,
    CHECK (processed_images + failed_images <= total_images)
);

CREATE UNIQUE INDEX requests_idempotency_key
    ON requests (tenant_id, idempotency_key) WHERE idempotency_key IS NOT NULL;

CREATE TABLE images (
    image_id          uuid PRIMARY KEY,
    request_id        uuid NOT NULL REFERENCES requests (request_id) ON DELETE CASCADE,
    row_number        integer NOT NULL,      -- line of the product in the uploaded file
    serial_number     bigint NOT NULL,
    product_name      text NOT NULL,
    position          integer NOT NULL,      -- 0-based index of the URL within its row
    input_url         text NOT NULL,
    status            text NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'done', 'failed')),
    output_url        text,
    input_bytes       bigint,
    output_bytes      bigint,
    width             integer,
    height            integer,
    kept_original     boolean,
    error_code        text,
    error_message     text,
    attempts          integer NOT NULL DEFAULT 0,
    result_event_id   uuid,
    finished_at       timestamptz,
    UNIQUE (request_id, row_number, position)
);

CREATE TABLE outbox (
    id           bigserial PRIMARY KEY,
    topic        text NOT NULL,
    key          bytea NOT NULL,
    value        bytea NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX outbox_by_topic ON outbox (topic, id);

CREATE TABLE webhook_deliveries (
    delivery_id      uuid PRIMARY KEY,
    event_id         uuid NOT NULL,           -- the request.completed event: the webhook-id
    request_id       uuid NOT NULL,
    tenant_id        text NOT NULL DEFAULT 'default',
    target_url       text NOT NULL,
    payload          bytea NOT NULL,
    status           text NOT NULL DEFAULT 'pending'
                     CHECK (status IN ('pending', 'delivered', 'dead')),
    attempts         integer NOT NULL DEFAULT 0,
    next_attempt_at  timestamptz NOT NULL DEFAULT now(),
    last_status_code integer,
    last_error       text,
    created_at       timestamptz NOT NULL DEFAULT now(),
    delivered_at     timestamptz,
    UNIQUE (event_id, target_url)
);
CREATE INDEX webhook_deliveries_due ON webhook_deliveries (next_attempt_at) WHERE status = 'pending';

CREATE TABLE webhook_attempts (
    id               bigserial PRIMARY KEY,
    delivery_id      uuid NOT NULL REFERENCES webhook_deliveries (delivery_id) ON DELETE CASCADE,
    attempt          integer NOT NULL,
    attempted_at     timestamptz NOT NULL DEFAULT now(),
    status_code      integer,
    error            text,
    latency_ms       double precision NOT NULL
);
CREATE INDEX webhook_attempts_by_delivery ON webhook_attempts (delivery_id, attempt);
