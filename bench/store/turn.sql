-- The transaction a durable turn is compared with: lock, update, insert, commit.
-- Each pgbench client works on its own row, as each benchmark thread has its own conversation.
BEGIN;
SELECT n FROM bench_conversations WHERE id = :client_id FOR UPDATE;
UPDATE bench_conversations SET n = n + 1, state = 'waiting' WHERE id = :client_id;
INSERT INTO bench_journal (conversation, data) VALUES (:client_id, '{"type": "message_in"}');
COMMIT;
