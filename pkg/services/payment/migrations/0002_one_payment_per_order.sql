-- +goose Up
-- One payment per order: at most one row of an order holds its "slot" — a payment being sent to
-- the gateway (IN_PROGRESS), sent with its outcome not known yet (UNKNOWN), approved (DONE),
-- declined (FAILED), or the record that the order was cancelled without a payment (VOID, written
-- when order-service's sweeper fails it), so no second charge can start while one may have
-- happened. A request refused before it reached the gateway (REJECTED: wrong amount, order not
-- payable) holds nothing.
--
-- pg_called_at is when the confirm was first sent to the gateway: a payment interrupted before it
-- is finished by sending it; one interrupted after it is first looked up at the gateway.
ALTER TABLE payments ADD COLUMN pg_called_at BIGINT;
-- A payment interrupted under the old code may have reached the gateway.
UPDATE payments SET pg_called_at = updated_at WHERE status = 'IN_PROGRESS';
-- Orders paid more than once before the constraint existed keep their best payment (approved
-- first, then the earliest); the others are renamed DUPLICATE_<status> for an operator to refund.
UPDATE payments SET status = 'DUPLICATE_' || status
WHERE status IN ('IN_PROGRESS', 'DONE', 'FAILED')
  AND EXISTS (
    SELECT 1 FROM payments k
    WHERE k.order_id = payments.order_id AND k.idempotency_key <> payments.idempotency_key
      AND k.status IN ('IN_PROGRESS', 'DONE', 'FAILED')
      AND ((k.status = 'DONE' AND payments.status <> 'DONE')
        OR ((k.status = 'DONE') = (payments.status = 'DONE')
          AND (k.created_at < payments.created_at
            OR (k.created_at = payments.created_at AND k.idempotency_key < payments.idempotency_key)))));
CREATE UNIQUE INDEX payments_one_per_order ON payments (order_id)
    WHERE status IN ('IN_PROGRESS', 'UNKNOWN', 'DONE', 'FAILED', 'VOID');
-- The reconciler's work list.
CREATE INDEX payments_unresolved ON payments (updated_at) WHERE status IN ('IN_PROGRESS', 'UNKNOWN');
