-- The start of each subscriber answer (at most NOTIFIER_RESPONSE_EXCERPT_BYTES), for the delivery log.
ALTER TABLE webhook_attempts ADD COLUMN response_excerpt text;
