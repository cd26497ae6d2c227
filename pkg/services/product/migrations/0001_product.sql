-- +goose Up
-- product-service owns products, their options (the sellable unit, with price and stock) and the
-- per-order-line stock reservations.
CREATE TABLE products (
    id {{ID}},
    name TEXT NOT NULL,
    created_at BIGINT NOT NULL
);
CREATE TABLE option_values (
    id {{ID}},
    product_id BIGINT NOT NULL REFERENCES products (id),
    name TEXT NOT NULL,
    price BIGINT NOT NULL CHECK (price >= 0),
    stock BIGINT NOT NULL CHECK (stock >= 0),
    updated_at BIGINT NOT NULL
);
CREATE INDEX option_values_product ON option_values (product_id);
-- One row per order line that reserved stock or was compensated, keyed by the order line: this
-- is the deduplication of both the reservation API and the orders-failed consumer.
-- state: RESERVED (stock taken), RELEASED (stock given back by orders-failed),
--        VOID (orders-failed arrived for a line never reserved; it can no longer be reserved).
CREATE TABLE reservations (
    order_detail_id BIGINT PRIMARY KEY,
    order_id BIGINT NOT NULL,
    option_value_id BIGINT NOT NULL,
    quantity BIGINT NOT NULL,
    state TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    released_at BIGINT,
    release_event_id TEXT
);
CREATE INDEX reservations_order ON reservations (order_id);
