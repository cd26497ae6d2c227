-- +goose Up
-- A row that failed to publish and waits for its retry is now RETRY; FAILED means the relay gave
-- up after its maximum attempts and the row waits for an operator (it no longer holds back later
-- rows of its key).
UPDATE outbox SET status = 'RETRY' WHERE status = 'FAILED';
-- The token of the claim that leased a row. A relay records the outcome of its publish only on
-- rows still leased to it, so a relay whose lease ran out cannot overwrite what another relay that
-- claimed the rows after it recorded.
ALTER TABLE outbox ADD COLUMN lease_token TEXT;
