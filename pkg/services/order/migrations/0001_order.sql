-- +goose Up
-- order-service owns orders, their lines and the coupons applied to them.
-- Coupons are issued per user and used by at most one order at a time.
-- status: AVAILABLE | USED. restored_count counts compensations that gave the coupon back.
CREATE TABLE coupons (
    id {{ID}},
    user_id TEXT NOT NULL,
    discount_amount BIGINT NOT NULL CHECK (discount_amount > 0),
    min_order_amount BIGINT NOT NULL DEFAULT 0,
    status TEXT NOT NULL,
    order_id BIGINT,
    restored_count INTEGER NOT NULL DEFAULT 0,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE INDEX coupons_order ON coupons (order_id);
-- status: PENDING (awaiting the payment result), PREPARING (paid), FAILED (compensated).
CREATE TABLE orders (
    id {{ID}},
    user_id TEXT NOT NULL,
    status TEXT NOT NULL,
    total_amount BIGINT NOT NULL,
    discount_amount BIGINT NOT NULL,
    amount BIGINT NOT NULL,
    coupon_id BIGINT,
    payment_key TEXT,
    failure_code TEXT,
    failure_reason TEXT,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE INDEX orders_pending ON orders (created_at, id) WHERE status = 'PENDING';
-- One row per order line; its id is the orderDetailId of reservations and orders-failed.
CREATE TABLE order_details (
    id {{ID}},
    order_id BIGINT NOT NULL REFERENCES orders (id),
    option_value_id BIGINT NOT NULL,
    quantity BIGINT NOT NULL,
    unit_price BIGINT NOT NULL
);
CREATE INDEX order_details_order ON order_details (order_id);
