-- +goose Up
-- A table using both placeholders.
CREATE TABLE widgets (
    id {{ID}},
    name TEXT NOT NULL UNIQUE,
    payload {{BLOB}},
    count BIGINT NOT NULL DEFAULT 0
);
CREATE INDEX widgets_count ON widgets (count) WHERE count > 0;
