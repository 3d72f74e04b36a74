-- Output formats and quality modes (issue 16): what each request asked for, and what each image got.
-- A request with quality=auto stores quality NULL and quality_auto true.

ALTER TABLE requests ALTER COLUMN quality DROP NOT NULL;
ALTER TABLE requests
    ADD COLUMN IF NOT EXISTS output_format    text NOT NULL DEFAULT 'jpeg'
                             CHECK (output_format IN ('jpeg', 'webp', 'avif')),
    ADD COLUMN IF NOT EXISTS quality_auto     boolean NOT NULL DEFAULT false,
    ADD COLUMN IF NOT EXISTS jpeg_optimize    boolean NOT NULL DEFAULT false,
    ADD COLUMN IF NOT EXISTS jpeg_progressive boolean NOT NULL DEFAULT false;

-- Per image, from image.compressed: the stored object's format (a kept original keeps its own),
-- the quality it was encoded at (chosen, for auto; NULL when the original was kept) and, for
-- quality=auto, the SSIM of the output against the input.
ALTER TABLE images
    ADD COLUMN IF NOT EXISTS output_format  text,
    ADD COLUMN IF NOT EXISTS output_quality smallint,
    ADD COLUMN IF NOT EXISTS ssim           real;
