-- +goose Up
-- The rows a claim may take, in id order: a claim walks this index instead of every row ever
-- published, which the outbox keeps until housekeeping deletes them.
CREATE INDEX outbox_unsent ON outbox (id) WHERE status <> 'SENT' AND status <> 'FAILED';
