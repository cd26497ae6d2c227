-- +goose Up
ALTER TABLE widgets ADD COLUMN note TEXT;
