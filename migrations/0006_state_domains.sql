-- The allowed values of conversations.status, inbox.kind, inbox.state and outbox.state move
-- from CHECK constraints to domains. PostgreSQL 15 reads a table's CHECK constraints back
-- from their stored text and plans them again in every statement that writes the table, about
-- 10 us each (bench/store/check_vs_domain.sh), and a turn writes four of them. A domain's
-- check is parsed once per session (the type cache keeps it), 2.5 us, and the columns keep
-- refusing any other value, with the same SQLSTATE (23514). Each column is still text to every
-- query. Changing a column's type rewrites its table and rebuilds its indexes, under a lock.
CREATE DOMAIN conversation_status AS text
  CHECK (VALUE IN ('active', 'waiting', 'handoff', 'ended', 'failed'));
CREATE DOMAIN inbox_kind AS text CHECK (VALUE IN ('message', 'timeout', 'resume', 'start'));
CREATE DOMAIN inbox_state AS text CHECK (VALUE IN ('pending', 'done', 'failed'));
CREATE DOMAIN outbox_state AS text CHECK (VALUE IN ('pending', 'held', 'sent', 'failed'));

ALTER TABLE conversations DROP CONSTRAINT conversations_status_check,
  ALTER COLUMN status TYPE conversation_status;
ALTER TABLE inbox DROP CONSTRAINT inbox_kind_check, DROP CONSTRAINT inbox_state_check,
  ALTER COLUMN kind TYPE inbox_kind, ALTER COLUMN state TYPE inbox_state;
ALTER TABLE outbox DROP CONSTRAINT outbox_state_check, ALTER COLUMN state TYPE outbox_state;
