-- log_nodes keeps only the perfect subtrees at level 6 and above (nodeFloor
-- in tree.go): one row per 32 leaves instead of one per leaf. The levels
-- below are recomputed, when a proof needs them, from at most 2 x 64 leaf
-- hashes of log_leaves.
--
-- Upgrade in place: the rows of levels 1 to 5 written before are derived
-- data (each is a hash of leaf hashes that stay in log_leaves; Audit rebuilds
-- the tree from the leaves alone), so the table is rebuilt with the rows of
-- the levels kept, rather than deleted from row by row (which the
-- append-only trigger forbids, and which would write WAL for every deleted
-- row and leave the table as large as before). The rebuild holds an
-- exclusive lock on log_nodes for one pass over it; hubd applies it at
-- start-up, before its sequencer runs. A sequencer of an older hubd, which
-- writes every level, fails its batch on the CHECK below and appends nothing
-- until it is upgraded.
CREATE TABLE log_nodes_kept (
    level smallint NOT NULL CONSTRAINT log_nodes_level_floor CHECK (level BETWEEN 6 AND 63),
    idx   bigint NOT NULL,
    hash  bytea NOT NULL
);
INSERT INTO log_nodes_kept (level, idx, hash)
SELECT level, idx, hash FROM log_nodes WHERE level >= 6 ORDER BY level, idx;
DROP TABLE log_nodes;
ALTER TABLE log_nodes_kept RENAME TO log_nodes;
ALTER TABLE log_nodes ADD CONSTRAINT log_nodes_pkey PRIMARY KEY (level, idx);
CREATE TRIGGER log_nodes_no_update BEFORE UPDATE OR DELETE ON log_nodes
    FOR EACH ROW EXECUTE FUNCTION log_append_only();
COMMENT ON TABLE log_nodes IS 'Hashes of the perfect subtrees at levels >= 6: node (level, idx) covers leaves [idx << level, (idx + 1) << level). Lower levels are recomputed from log_leaves.leaf_hash.';
