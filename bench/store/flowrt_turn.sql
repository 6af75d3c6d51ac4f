-- flowrt's own turn, as pgbench runs it: the statements TurnProcessor::accept_and_process
-- sends for one message of the benchmark's loop flow (taken from the server log with
-- log_statement = 'all'), with the turn's values fixed. store_bench runs it with
-- `--own-sql yes` after each store round, on that round's conversations (-D tenant, channel,
-- round), to tell the cost of the SQL from the cost of the client; then again without the
-- journal and outbox lines marked below, the least a durable turn can write. The store sends
-- the statements in two round trips (BEGIN, lock and read pipelined; then the write and
-- COMMIT); pgbench sends them one at a time. Keep it in step with runtime/store/turns.cpp.
\set message random(1, 9000000000000000000)
BEGIN;
SELECT id AS contact FROM contacts
 WHERE tenant_id = :tenant AND channel_id = :channel
   AND external_id = 'bench-' || :round || '-' || :client_id
   FOR NO KEY UPDATE \gset
SELECT q.conversation FROM (
  SELECT EXISTS (SELECT 1 FROM inbox p WHERE p.tenant_id = :tenant AND p.contact_id = c.id
                 AND p.state = 'pending'),
         EXISTS (SELECT 1 FROM inbox d WHERE d.tenant_id = :tenant AND d.channel_id = :channel
                 AND d.provider_message_id = 'pgbench-' || :message),
         c.external_id, c.name, c.phone, t.name,
         COALESCE((SELECT jsonb_object_agg(s.name, s.value) FROM secrets s
                   WHERE s.tenant_id = :tenant), '{}'::jsonb)::text,
         v.id AS conversation, v.channel_id, v.flow_id, v.flow_version, v.status, v.node,
         v.vars::text, v.attempts, v.wait_seq, v.handoff_queue, v.handoff_note, v.error,
         EXISTS (SELECT 1 FROM timers tm WHERE tm.tenant_id = :tenant
                 AND tm.conversation_id = v.id)
    FROM contacts c JOIN tenants t ON t.id = c.tenant_id
    LEFT JOIN LATERAL (
      SELECT * FROM conversations v2 WHERE v2.tenant_id = :tenant AND v2.contact_id = c.id
         AND v2.status IN ('active', 'waiting', 'handoff') LIMIT 1) v ON true
   WHERE c.tenant_id = :tenant AND c.channel_id = :channel
     AND c.external_id = 'bench-' || :round || '-' || :client_id) q \gset
WITH p0 AS (
  UPDATE conversations SET flow_id = 'loop', flow_version = 1, status = 'waiting', node = 'ask',
    vars = '{"last": "message 1"}'::jsonb, attempts = 0, wait_seq = wait_seq + 1,
    handoff_queue = '', handoff_note = '', error = '', turns = turns + 1, updated_at = now(),
    ended_at = COALESCE(ended_at, CASE WHEN 'waiting' IN ('ended', 'failed') THEN now() END)
  WHERE tenant_id = :tenant AND id = :conversation)
-- journal and outbox: from here to the line that ends them, store_bench leaves these out
-- for its least durable turn (--own-sql yes).
, p2 AS (
  INSERT INTO events (tenant_id, conversation_id, entries)
  VALUES (:tenant, :conversation, '[{"at": 1795446034748, "data": {"text": "message 1"}, "type": "message_in"}, {"at": 1795446034748, "data": {"node": "ask", "type": "question"}, "type": "node"}, {"at": 1795446034748, "data": {"text": "Say"}, "type": "message_out"}]'::jsonb))
, p3 AS (
  INSERT INTO outbox (tenant_id, conversation_id, channel_id, contact_id, payload, state, sent_at)
  SELECT :tenant, :conversation, :channel, :contact, m.value, 'pending',
    CASE WHEN 'pending' = 'sent' THEN now() END
  FROM jsonb_array_elements('[{"text": "Say"}]'::jsonb) WITH ORDINALITY AS m(value, n)
  ORDER BY m.n)
-- end of journal and outbox
INSERT INTO inbox (tenant_id, channel_id, provider_message_id, contact_id, kind, payload, state,
  attempts, result_conversation, processed_at)
VALUES (:tenant, :channel, 'pgbench-' || :message, :contact, 'message',
  '{"text": "message x"}'::jsonb, 'done', 1, :conversation, now())
RETURNING id;
COMMIT;
