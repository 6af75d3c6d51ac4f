-- Every turn appends three events and an outbox row, and each index on those tables costs
-- every appended row a B-tree insert and a WAL record. Two indexes served no query of their
-- own:
--   * events had a primary key on (tenant_id, id) and an index on (tenant_id,
--     conversation_id, id). Events are only read per conversation, so the second becomes the
--     primary key and the first goes.
--   * outbox_by_conversation (tenant_id, conversation_id, id) served no query: the
--     dispatcher reads through the pending indexes, and deleting a tenant (rare) scans.
ALTER TABLE events DROP CONSTRAINT events_pkey;
DROP INDEX events_by_conversation;
ALTER TABLE events ADD PRIMARY KEY (tenant_id, conversation_id, id);
DROP INDEX outbox_by_conversation;
