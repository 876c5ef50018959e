-- Fewer index entries per delivery transition (issue 7).
--
-- No update of deliveries can be HOT: each one changes state, which the
-- predicates of the partial indexes read. So every transition writes an
-- entry in the primary key, in the (document_id, recipient) key and in each
-- partial index whose predicate the new row version matches. Two of those
-- indexes covered nearly the same rows, the deliveries not delivered yet:
--
--   deliveries_stuck       (updated_at)  WHERE state IN ('accepted', 'routed', 'delivering')
--   deliveries_undelivered (document_id) WHERE delivered_at IS NULL
--
-- and each took an entry on acceptance, on routing and on the claim of a
-- push attempt. One index over the undelivered deliveries, keyed by state
-- then time, serves what both served: the stuck sweep (a range per state),
-- the deadline checker (every undelivered row; it reaches the document by
-- its primary key) and, newly, the orphan scan (routed or retrying), which
-- read the whole table before. Lookups by document use the
-- (document_id, recipient) key.
CREATE INDEX deliveries_open ON deliveries (state, updated_at) WHERE delivered_at IS NULL;
DROP INDEX deliveries_stuck;
DROP INDEX deliveries_undelivered;

-- The inbox is read in sequence order after a sequence number (Ledger.Inbox);
-- keyed by id, its index made every page read and sort the recipient's whole
-- inbox. Same rows, same number of entries.
CREATE INDEX deliveries_inbox_seq ON deliveries (recipient, seq) WHERE state = 'delivered' AND channel = 'pull';
DROP INDEX deliveries_inbox;
ALTER INDEX deliveries_inbox_seq RENAME TO deliveries_inbox;
