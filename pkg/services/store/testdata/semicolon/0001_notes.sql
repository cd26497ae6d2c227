-- +goose Up
CREATE TABLE notes (id {{ID}}, body TEXT NOT NULL);
-- A value with a line that ends in ";" is one statement: goose keeps it whole between
-- StatementBegin and StatementEnd.
-- +goose StatementBegin
INSERT INTO notes (body) VALUES ('first line;
second line; -- not a comment');
-- +goose StatementEnd
