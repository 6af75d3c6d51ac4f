-- Every metrics scrape counts the failed outbox rows (flowrt_outbox_failed), and no index
-- served that count: each scrape read the whole outbox, which only grows. outbox_held
-- becomes outbox_parked, over the held and the failed rows, with the state alongside so that
-- either set is read from the index alone. A turn's insert still opens as many outbox indexes
-- as before, and the rows it inserts (pending or sent) are in none of the new one.
DROP INDEX outbox_held;
CREATE INDEX outbox_parked ON outbox (tenant_id, channel_id, contact_id, id) INCLUDE (state)
  WHERE state IN ('held', 'failed');
