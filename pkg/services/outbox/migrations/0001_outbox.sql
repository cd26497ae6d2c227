-- +goose Up
-- The transactional outbox: rows written in the same transaction as the state change they
-- announce, published to Kafka by the relay.
CREATE TABLE outbox (
    id {{ID}},
    topic TEXT NOT NULL,
    record_key {{BLOB}},
    record_value {{BLOB}} NOT NULL,
    -- JSON array of {"key": "...", "value": "<base64>"}, trace context included.
    headers TEXT NOT NULL,
    -- PENDING (never tried), FAILED (last try failed; retried with backoff), SENT.
    status TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    -- Unix microseconds. A claimed row's next_attempt_at is pushed out by the lease.
    next_attempt_at BIGINT NOT NULL,
    created_at BIGINT NOT NULL,
    sent_at BIGINT,
    last_error TEXT
);
CREATE INDEX outbox_due ON outbox (next_attempt_at, id) WHERE status <> 'SENT';
CREATE INDEX outbox_key_unsent ON outbox (topic, record_key, id) WHERE status <> 'SENT';
CREATE INDEX outbox_sent ON outbox (sent_at) WHERE status = 'SENT';
