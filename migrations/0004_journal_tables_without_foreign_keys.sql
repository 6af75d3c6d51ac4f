-- The tables every turn appends to (inbox, events, outbox, timers) no longer carry foreign
-- keys. Each of their inserts ran a foreign-key check, a share lock on the tenant's one row
-- that every concurrent turn of the tenant takes: the durable-turn benchmark ran about a
-- quarter faster at 8 and 32 concurrent conversations without them (docs/performance.md).
-- Their rows are written by turn processing, which holds the contact's lock, so tenant and
-- contact exist; Store::delete_tenant deletes the rows explicitly instead of by cascade.
ALTER TABLE inbox DROP CONSTRAINT inbox_tenant_id_fkey;
ALTER TABLE inbox DROP CONSTRAINT inbox_tenant_id_contact_id_fkey;
ALTER TABLE events DROP CONSTRAINT events_tenant_id_fkey;
ALTER TABLE outbox DROP CONSTRAINT outbox_tenant_id_fkey;
ALTER TABLE timers DROP CONSTRAINT timers_tenant_id_fkey;
