-- What the tracker's one-statement recording of a batch of image results needs (issue 14).
--
-- The worker records a batch with one statement (repository.py, `_RECORD`): it marks the pending
-- images, adds them to their requests' counters and sets each request's status, where it sent a
-- transaction of about four round trips before. Two helpers live here:
--   request_progress_status  a request's status from its counts: the rules of the worker's
--                            progress.py, which tests compare over every small case;
--   refuse_finishing         called by that statement, when the caller did not allow it, for a
--                            request the batch would finish. A request.completed outbox row must
--                            be written by the transaction that finishes the request, and the
--                            worker encodes that event itself (its schema lives there), so the
--                            statement fails with SQLSTATE TB001 and, as any failed statement,
--                            keeps nothing; the worker runs the batch again in a transaction that
--                            writes the completion before it commits. Once per request.

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

CREATE FUNCTION refuse_finishing(request uuid) RETURNS uuid LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'this batch finishes request %: record it in a transaction that writes the completion', request
        USING ERRCODE = 'TB001';
END
$$;
