-- One journal row per write instead of one per event. A turn journals at least three events
-- (message in, node, message out); written as one row, they cost one heap tuple, one index
-- entry and one identity value instead of three (docs/performance.md, "one journal row per
-- write").
--
-- A row holds its events in `entries`, in order, each {"type", "data"} and, when the
-- executor timed it, "at" in epoch milliseconds (else the row's `at` applies). The events'
-- ids stay what the API hands out: a row's `id` is the id of its first entry, the next
-- entries take the ids after it, and the identity steps by 100, so ids stay unique and
-- increasing within a conversation. A write of more than 100 events takes several rows
-- (kEventsPerRow in runtime/store/util.hpp). Rows written before this migration become rows
-- of one entry and keep their ids.
ALTER TABLE events ADD COLUMN entries jsonb;
UPDATE events SET entries = jsonb_build_array(jsonb_build_object('type', type, 'data', data));
ALTER TABLE events ALTER COLUMN entries SET NOT NULL;
ALTER TABLE events DROP COLUMN type, DROP COLUMN data;
ALTER TABLE events ALTER COLUMN id SET INCREMENT BY 100;
