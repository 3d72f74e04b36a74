-- A product's name is stored once per product, not copied into every image row (issue 12:
-- one row with a 100 KB name and 300 URLs stored 30 MB). Images refer to their product by
-- (request_id, row_number), which they already carry.
CREATE TABLE products (
    request_id     uuid NOT NULL REFERENCES requests (request_id) ON DELETE CASCADE,
    row_number     integer NOT NULL,      -- line of the product in the uploaded file
    serial_number  bigint NOT NULL,
    product_name   text NOT NULL,
    PRIMARY KEY (request_id, row_number)
);

INSERT INTO products (request_id, row_number, serial_number, product_name)
SELECT DISTINCT ON (request_id, row_number) request_id, row_number, serial_number, product_name
  FROM images
 ORDER BY request_id, row_number;

ALTER TABLE images DROP COLUMN product_name;
