-- +goose Up
-- payment-service's record of every confirm request, keyed by the client's Idempotency-Key: a
-- repeat of a key returns the stored answer instead of charging again.
-- status: IN_PROGRESS (the PG call is running), DONE (approved), FAILED (declined).
CREATE TABLE payments (
    idempotency_key TEXT PRIMARY KEY,
    payment_key TEXT NOT NULL,
    order_id BIGINT NOT NULL,
    amount BIGINT NOT NULL,
    status TEXT NOT NULL,
    pg_code TEXT,
    response_status INTEGER,
    response_body TEXT,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE INDEX payments_order ON payments (order_id);
