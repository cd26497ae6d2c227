-- +goose Up
-- Claims find their rows through outbox_unsent; the index on the next attempt served nothing else,
-- and without it pushing a claimed row's next attempt out changes no indexed column, so the
-- update stays within its page (a HOT update) and writes no index entry.
DROP INDEX outbox_due;
