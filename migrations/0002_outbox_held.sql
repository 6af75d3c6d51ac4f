-- Messages for providers that cannot push (webchat answers only in the response to the
-- widget's own request): the dispatcher marks such rows 'held', and the next webhook request
-- or poll of that contact on that channel takes them (and marks them 'sent').
ALTER TABLE outbox DROP CONSTRAINT outbox_state_check;
ALTER TABLE outbox ADD CONSTRAINT outbox_state_check
  CHECK (state IN ('pending', 'held', 'sent', 'failed'));
CREATE INDEX outbox_held ON outbox (tenant_id, channel_id, contact_id, id) WHERE state = 'held';
