-- log_leaves stops storing a copy of each event and loses its UNIQUE index
-- on event_id: a leaf row was ~400 bytes of WAL, most of it the leaf bytes
-- (which repeat the events row the leaf commits to) and the second index.
--
-- Leaf bytes: a leaf is logverify.Leaf's encoding of its events row (and,
-- for an accepted event, of its document's digest), both append-only and
-- kept for ever (retention empties a document's body, never its digest or
-- its events), so a leaf is rebuilt from them when read and checked
-- against leaf_hash, which stays: the tree, every proof and every signed
-- checkpoint commit to it, so a changed row is still detected (Audit,
-- and every reader refuses a leaf whose rebuilt bytes do not hash to it).
-- The rows written before keep their bytes: they are read as before.
--
-- event_id -> leaf: the sequencer appends runs of consecutive event ids to
-- consecutive leaf indexes (one run per batch, more only around a gap or a
-- late event), so log_runs records one row per run instead of one index
-- entry per leaf, and its exclusion constraint enforces what UNIQUE
-- (event_id) did: no event is in the log twice.
CREATE TABLE log_runs (
    first_event bigint PRIMARY KEY,
    last_event  bigint NOT NULL,
    first_index bigint NOT NULL,   -- the leaf of first_event; event e is leaf first_index + (e - first_event)
    CONSTRAINT log_runs_order CHECK (last_event >= first_event AND first_index >= 0),
    CONSTRAINT log_runs_each_event_once EXCLUDE USING gist (int8range(first_event, last_event, '[]') WITH &&)
);
CREATE TRIGGER log_runs_no_update BEFORE UPDATE OR DELETE ON log_runs
    FOR EACH ROW EXECUTE FUNCTION log_append_only();

-- Upgrade in place: the runs of the leaves already in the log (islands of
-- consecutive leaf indexes holding consecutive event ids).
INSERT INTO log_runs (first_event, last_event, first_index)
SELECT min(event_id), max(event_id), min(leaf_index)
FROM (SELECT leaf_index, event_id, sum(brk) OVER (ORDER BY leaf_index) AS run
      FROM (SELECT leaf_index, event_id,
                   CASE WHEN event_id = lag(event_id) OVER w + 1 AND leaf_index = lag(leaf_index) OVER w + 1
                        THEN 0 ELSE 1 END AS brk
            FROM log_leaves WINDOW w AS (ORDER BY leaf_index)) s) r
GROUP BY run;

-- The leaf index of an event, or NULL while it is not in the log.
CREATE FUNCTION log_leaf_index(ev bigint) RETURNS bigint LANGUAGE sql STABLE PARALLEL SAFE AS $$
    SELECT r.first_index + (ev - r.first_event)
    FROM (SELECT first_event, last_event, first_index FROM log_runs
          WHERE first_event <= ev ORDER BY first_event DESC LIMIT 1) r
    WHERE r.last_event >= ev
$$;

ALTER TABLE log_leaves DROP CONSTRAINT log_leaves_event_id_key;
ALTER TABLE log_leaves ALTER COLUMN leaf DROP NOT NULL;
-- New rows carry no bytes. NOT VALID: the rows written before keep theirs.
-- A sequencer of an older hubd, which writes them and no run, fails its
-- batch here and appends nothing until it is upgraded.
ALTER TABLE log_leaves ADD CONSTRAINT log_leaves_leaf_derived CHECK (leaf IS NULL) NOT VALID;
COMMENT ON COLUMN log_leaves.leaf IS 'Canonical leaf bytes of rows written before migration 0005; NULL since: rebuilt from the events row and checked against leaf_hash.';
