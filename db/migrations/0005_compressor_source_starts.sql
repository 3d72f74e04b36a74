-- How often an image started on its claim: a decoder that keeps killing its member fails
-- the image as worker_crashed instead of crashing members forever.
ALTER TABLE compressor_sources ADD COLUMN IF NOT EXISTS starts integer NOT NULL DEFAULT 1;
