-- log_leaves loses its UNIQUE index on event_id: an entry per leaf, written
-- (and WAL-logged) with every leaf, only to map an event to its leaf and to
-- refuse an event twice. The leaf bytes stay stored: log_leaves is the
-- append-only copy of each event as the log committed to it.
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

-- A sequencer of an older hubd writes leaves without their runs (so the
-- sequencer of this code would not see those events in the log, and would
-- append them again) and leaves sequenced_at to its default. Without the
-- default, its batch fails on sequenced_at's NOT NULL and it appends nothing
-- until it is upgraded; the sequencer of this code writes sequenced_at
-- itself (its transaction's now(), which the default was). Metadata only:
-- no row is rewritten.
ALTER TABLE log_leaves ALTER COLUMN sequenced_at DROP DEFAULT;
