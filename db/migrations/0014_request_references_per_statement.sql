-- images and products refer to their request as before, but the reference is checked once per
-- statement instead of once per row (issue 14).
--
-- A foreign key runs one lookup-and-lock of the parent per inserted row: ingest's COPY of a
-- 100,000-row upload (100,000 products, 300,000 images, all of one request) spent more time in
-- those 400,000 checks than in writing the rows and their indexes. The triggers below keep every
-- guarantee the two foreign keys gave, set-wise:
--   insert    every referenced request exists and is locked FOR KEY SHARE until the transaction
--             ends, exactly the lock the foreign key took, so a concurrent DELETE of the request
--             waits for the insert's commit (and then removes its rows too, below) or the insert
--             fails with foreign_key_violation (SQLSTATE 23503, as before);
--   delete    deleting requests deletes their images and products (was ON DELETE CASCADE);
--   truncate  TRUNCATE requests is refused (it would skip the delete above);
--   update    a request_id never changes, in requests, images or products (the foreign key
--             refused changing a referenced id or pointing a row at a missing request; this
--             refuses any change, which nothing does).
-- The insert check reads the statement's new rows (a transition table) with one hash join.

ALTER TABLE images DROP CONSTRAINT images_request_id_fkey;
ALTER TABLE products DROP CONSTRAINT products_request_id_fkey;

CREATE FUNCTION check_request_references() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    wanted uuid[];
    locked bigint;
BEGIN
    -- One pass over the new rows (an upload's are all of one request), then one lookup per request.
    SELECT array_agg(request_id) INTO wanted FROM (SELECT DISTINCT request_id FROM inserted) AS ids;
    SELECT count(*) INTO locked FROM (
        SELECT 1 FROM requests WHERE request_id = ANY (wanted) FOR KEY SHARE
    ) AS held;
    IF locked <> coalesce(cardinality(wanted), 0) THEN
        RAISE EXCEPTION 'insert into "%" refers to a request that does not exist', TG_TABLE_NAME
            USING ERRCODE = 'foreign_key_violation', TABLE = TG_TABLE_NAME;
    END IF;
    RETURN NULL;
END $$;

CREATE TRIGGER images_request_exists AFTER INSERT ON images
    REFERENCING NEW TABLE AS inserted FOR EACH STATEMENT EXECUTE FUNCTION check_request_references();
CREATE TRIGGER products_request_exists AFTER INSERT ON products
    REFERENCING NEW TABLE AS inserted FOR EACH STATEMENT EXECUTE FUNCTION check_request_references();

CREATE FUNCTION delete_request_rows() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM images WHERE request_id IN (SELECT request_id FROM deleted);
    DELETE FROM products WHERE request_id IN (SELECT request_id FROM deleted);
    RETURN NULL;
END $$;

CREATE TRIGGER requests_delete_rows AFTER DELETE ON requests
    REFERENCING OLD TABLE AS deleted FOR EACH STATEMENT EXECUTE FUNCTION delete_request_rows();

-- TRUNCATE skips row triggers, so it could leave images and products behind (the foreign key
-- refused a TRUNCATE of requests alone): TRUNCATE of requests is refused; DELETE removes them.
CREATE FUNCTION refuse_requests_truncate() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'TRUNCATE requests is refused: DELETE FROM requests also removes their images and products'
        USING ERRCODE = 'feature_not_supported';
END $$;

CREATE TRIGGER requests_no_truncate BEFORE TRUNCATE ON requests
    FOR EACH STATEMENT EXECUTE FUNCTION refuse_requests_truncate();

-- A request id is fixed: fires only for an UPDATE that names request_id (no cost to the others).
CREATE FUNCTION keep_request_id() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.request_id IS DISTINCT FROM OLD.request_id THEN
        RAISE EXCEPTION 'the request_id of a row in "%" never changes', TG_TABLE_NAME
            USING ERRCODE = 'foreign_key_violation', TABLE = TG_TABLE_NAME;
    END IF;
    RETURN NEW;
END $$;

CREATE TRIGGER requests_keep_request_id BEFORE UPDATE OF request_id ON requests
    FOR EACH ROW EXECUTE FUNCTION keep_request_id();
CREATE TRIGGER images_keep_request_id BEFORE UPDATE OF request_id ON images
    FOR EACH ROW EXECUTE FUNCTION keep_request_id();
CREATE TRIGGER products_keep_request_id BEFORE UPDATE OF request_id ON products
    FOR EACH ROW EXECUTE FUNCTION keep_request_id();
