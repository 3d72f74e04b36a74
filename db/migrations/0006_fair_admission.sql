-- Fair admission: images wait in PostgreSQL and a scheduler admits them into image.requested.
--
-- Per image, the admission state is derived, so ingest's COPY of 100,000 images writes no more
-- than before (no new column value, no new index on images):
--   admitted   (row_number, position) <= the request's cursor (admit_row, admit_position):
--              the scheduler admits each request's images in input order, so the admitted ones
--              are a prefix, and the next batch is an index range scan of UNIQUE (request_id,
--              row_number, position): O(batch), whatever the backlog;
--   cancelled  images.status = 'cancelled' (written once, by the cancel);
--   queued     everything else.
-- The request keeps the counts (admitted_images, cancelled_images), so one scheduling round
-- reads one row per unfinished request, never the images.

ALTER TABLE requests
    ADD COLUMN priority text NOT NULL DEFAULT 'normal' CHECK (priority IN ('high', 'normal', 'low')),
    ADD COLUMN admitted_images integer NOT NULL DEFAULT 0 CHECK (admitted_images >= 0),
    ADD COLUMN cancelled_images integer NOT NULL DEFAULT 0 CHECK (cancelled_images >= 0),
    ADD COLUMN admit_row integer NOT NULL DEFAULT -1,
    ADD COLUMN admit_position integer NOT NULL DEFAULT -1,
    ADD COLUMN cancel_requested_at timestamptz;

-- Requests accepted before this migration had every image relayed at upload: already admitted.
UPDATE requests SET admitted_images = total_images, admit_row = 2147483647, admit_position = 2147483647;

ALTER TABLE requests DROP CONSTRAINT requests_status_check;
ALTER TABLE requests ADD CONSTRAINT requests_status_check
    CHECK (status IN ('pending', 'processing', 'completed', 'completed_with_errors', 'failed', 'cancelled'));
ALTER TABLE requests DROP CONSTRAINT requests_check;
ALTER TABLE requests ADD CONSTRAINT requests_counts_check
    CHECK (processed_images + failed_images + cancelled_images <= total_images
           AND admitted_images + cancelled_images <= total_images);

ALTER TABLE images DROP CONSTRAINT images_status_check;
ALTER TABLE images ADD CONSTRAINT images_status_check
    CHECK (status IN ('pending', 'done', 'failed', 'cancelled'));

-- Throughput is measured from completions the tracker records (finished_at); only finished
-- images enter this index, so ingest's COPY (finished_at NULL) does not maintain it.
CREATE INDEX images_finished_recently ON images (finished_at) WHERE finished_at IS NOT NULL;

-- Shares of the compressors per tenant (default 1 for a tenant without a row); set by admins.
CREATE TABLE tenant_weights (
    tenant_id   text PRIMARY KEY,
    weight      integer NOT NULL CHECK (weight BETWEEN 1 AND 1000),
    updated_at  timestamptz NOT NULL DEFAULT now()
);
