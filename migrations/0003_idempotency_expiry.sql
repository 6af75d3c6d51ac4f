-- Idempotency keys expire after 24 hours (Store::claim_idempotency_key deletes them).
CREATE INDEX idempotency_keys_by_age ON idempotency_keys (created_at);
