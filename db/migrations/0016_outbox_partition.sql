-- An outbox row may name the Kafka partition its event goes to (NULL: the producer's partitioner,
-- by key, as before). Ingest's scheduler puts a round's image.requested events into a few
-- partitions: librdkafka sends one ProduceRequest per partition a batch touches, and a compressor
-- member's fetch returns as soon as one partition has data, so events hashed over every partition
-- cost the broker about two requests per image. Nullable without a default: a catalog-only change.
ALTER TABLE outbox ADD COLUMN IF NOT EXISTS kafka_partition integer;
COMMENT ON COLUMN outbox.kafka_partition IS
    'Partition to publish to; NULL lets the producer choose by key (services/ingest placement.py).';
