-- The tracker records a batch of image results in one statement, one round trip (issue 14).
--
-- Before, a batch was a transaction of about four round trips (BEGIN, one UPDATE of images per
-- result kind, one UPDATE of the counters, COMMIT), and one more per request whose status
-- changed. `record_image_results` does the same work inside the server, with the same rules:
--   counted once   only a pending image changes, so a replay (in this batch or any earlier one)
--                  finds none and counts nothing; the caller passes each image once (the first
--                  result of an image in a batch wins, as one by one);
--   counters       each counted image adds 1 to its request's processed or failed images;
--   status         derived from the counts by request_progress_status (the rules of the
--                  worker's progress.py); set when it changes, completed_at when final;
--   completion     a request reaching a final status needs its request.completed outbox row
--                  written by the same transaction. The row is encoded by the worker (the event
--                  schema lives there), so a call with may_finish false that would finish a
--                  request raises SQLSTATE TB001 and, as any error, leaves nothing behind; the
--                  worker then runs the batch again inside a transaction with may_finish true and
--                  writes the outbox row before it commits. That happens once per request.
-- Lock order: images (in the order given, which the worker sorts), then requests by id.

CREATE FUNCTION request_progress_status(
    total integer, processed integer, failed integer, cancelled integer, cancelling boolean
) RETURNS text LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT CASE
        WHEN processed + failed + cancelled < total
            THEN CASE WHEN processed + failed > 0 THEN 'processing' ELSE 'pending' END
        WHEN cancelling THEN 'cancelled'
        WHEN failed = 0 THEN 'completed'
        WHEN processed = 0 THEN 'failed'
        ELSE 'completed_with_errors'
    END
$$;

-- Returns one row per image it counted (image_id and request_id set, the rest NULL) and one per
-- request it finished (image_id NULL; the request's final figures and its output formats).
CREATE FUNCTION record_image_results(
    image_ids uuid[], succeeded boolean[], event_ids uuid[],
    output_urls text[], input_sizes bigint[], output_sizes bigint[], widths integer[],
    heights integer[], kept_originals boolean[], output_formats text[], output_qualities integer[],
    ssims double precision[], error_codes text[], error_messages text[], attempt_counts integer[],
    may_finish boolean
) RETURNS TABLE (
    image_id uuid, request_id uuid, status text, tenant_id text, total_images integer,
    processed_images integer, failed_images integer, cancelled_images integer, cancelling boolean,
    webhook_url text, completed_at timestamptz, formats jsonb
) LANGUAGE plpgsql AS $$
DECLARE
    counted_images uuid[];
    counted_requests uuid[];
    counted_ok boolean[];
    finishing integer;
BEGIN
    -- Results of pending images only; a done, failed or cancelled image is left as it is.
    WITH marked AS (
        UPDATE images AS i
           SET status = CASE WHEN u.ok THEN 'done' ELSE 'failed' END,
               output_url = u.output_url, input_bytes = u.input_bytes,
               output_bytes = u.output_bytes, width = u.width, height = u.height,
               kept_original = u.kept_original, output_format = u.output_format,
               output_quality = u.output_quality, ssim = u.ssim,
               error_code = u.error_code, error_message = u.error_message,
               attempts = coalesce(u.attempts, i.attempts),
               result_event_id = u.event_id, finished_at = now()
          FROM unnest(image_ids, succeeded, event_ids, output_urls, input_sizes, output_sizes,
                      widths, heights, kept_originals, output_formats, output_qualities, ssims,
                      error_codes, error_messages, attempt_counts)
               AS u(image_id, ok, event_id, output_url, input_bytes, output_bytes, width, height,
                    kept_original, output_format, output_quality, ssim, error_code,
                    error_message, attempts)
         WHERE i.image_id = u.image_id AND i.status = 'pending'
        RETURNING i.image_id, i.request_id, u.ok
    )
    SELECT array_agg(m.image_id), array_agg(m.request_id), array_agg(m.ok)
      INTO counted_images, counted_requests, counted_ok
      FROM marked AS m;
    IF counted_images IS NULL THEN
        RETURN;  -- all replays (or unknown images): nothing changed
    END IF;

    RETURN QUERY SELECT c.image_id, c.request_id, NULL::text, NULL::text, NULL::integer,
                        NULL::integer, NULL::integer, NULL::integer, NULL::boolean, NULL::text,
                        NULL::timestamptz, NULL::jsonb
                   FROM unnest(counted_images, counted_requests) AS c(image_id, request_id);

    -- The requests are locked in id order before they are read, so the next statement reads
    -- their latest counts and status (a fresh snapshot, taken once no one else can change them).
    PERFORM 1 FROM requests AS r WHERE r.request_id = ANY (counted_requests)
      ORDER BY r.request_id FOR UPDATE;

    -- Counters and status in one UPDATE; a request that reaches a final status is returned.
    RETURN QUERY
    WITH added AS (
        SELECT a.request_id, count(*) FILTER (WHERE a.ok)::integer AS processed,
               count(*) FILTER (WHERE NOT a.ok)::integer AS failed
          FROM unnest(counted_requests, counted_ok) AS a(request_id, ok)
         GROUP BY a.request_id
    ), next AS (
        SELECT q.request_id, q.status AS old_status, p.processed, p.failed,
               p.processed + p.failed + q.cancelled_images >= q.total_images AS finished,
               request_progress_status(q.total_images, p.processed, p.failed, q.cancelled_images,
                                       q.cancel_requested_at IS NOT NULL) AS status
          FROM requests AS q
          JOIN added AS a ON a.request_id = q.request_id
         CROSS JOIN LATERAL (SELECT q.processed_images + a.processed AS processed,
                                    q.failed_images + a.failed AS failed) AS p
    ), updated AS (
        UPDATE requests AS r
           SET processed_images = n.processed, failed_images = n.failed, updated_at = now(),
               status = n.status,
               completed_at = CASE WHEN n.status = n.old_status THEN r.completed_at
                                   WHEN n.finished THEN now() END
          FROM next AS n
         WHERE r.request_id = n.request_id
        RETURNING r.request_id, r.status, r.tenant_id, r.total_images, r.processed_images,
                  r.failed_images, r.cancelled_images, r.cancel_requested_at IS NOT NULL AS cancelling,
                  r.webhook_url, r.completed_at, n.finished AND n.status <> n.old_status AS finishes
    )
    SELECT NULL::uuid, u.request_id, u.status, u.tenant_id, u.total_images, u.processed_images,
           u.failed_images, u.cancelled_images, u.cancelling, u.webhook_url, u.completed_at,
           (SELECT coalesce(jsonb_object_agg(f.format, f.images), '{}'::jsonb)
              FROM (SELECT coalesce(i.output_format, 'jpeg') AS format, count(*)::integer AS images
                      FROM images AS i
                     WHERE i.request_id = u.request_id AND i.status = 'done'
                     GROUP BY 1) AS f)
      FROM updated AS u
     WHERE u.finishes;
    GET DIAGNOSTICS finishing = ROW_COUNT;
    IF finishing > 0 AND NOT may_finish THEN
        RAISE EXCEPTION 'this batch finishes % request(s): record it in a transaction that writes the completion', finishing
            USING ERRCODE = 'TB001';
    END IF;
END
$$;
