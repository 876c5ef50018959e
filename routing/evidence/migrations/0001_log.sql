-- The evidence log: an RFC 6962 Merkle tree over every row of events.
-- Leaves, nodes and checkpoints are append-only; log_state is the tree head
-- the sequencer moves forward, one transaction per batch.

CREATE TABLE log_leaves (
    leaf_index   bigint PRIMARY KEY,
    event_id     bigint NOT NULL UNIQUE,
    leaf_hash    bytea NOT NULL,      -- SHA-256(0x00 || leaf)
    leaf         bytea NOT NULL,      -- canonical leaf bytes (logverify.Leaf, version 1)
    sequenced_at timestamptz NOT NULL DEFAULT now()
);

-- Hashes of the perfect subtrees above the leaves (level >= 1): node
-- (level, idx) covers leaves [idx << level, (idx + 1) << level). Level 0 is
-- log_leaves.leaf_hash. Proofs read O(log n) rows of this table.
CREATE TABLE log_nodes (
    level smallint NOT NULL CHECK (level BETWEEN 1 AND 63),
    idx   bigint NOT NULL,
    hash  bytea NOT NULL,
    PRIMARY KEY (level, idx)
);

-- The tree head. One row. watermark: the highest event id sequenced in id
-- order (events below it that were not sequenced are gaps, see log_gaps).
CREATE TABLE log_state (
    id         boolean PRIMARY KEY DEFAULT true CHECK (id),
    size       bigint NOT NULL,
    root       bytea NOT NULL,
    watermark  bigint NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now()
);
INSERT INTO log_state (size, root, watermark)
VALUES (0, decode('e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855', 'hex'), 0);

-- Ranges of event ids the sequencer passed over as permanent gaps (rolled
-- back, or held open beyond the gap timeout). An event that commits into a
-- gap later is still appended, after the leaves already in the log.
CREATE TABLE log_gaps (
    first_id   bigint PRIMARY KEY,
    last_id    bigint NOT NULL,
    skipped_at timestamptz NOT NULL
);

CREATE TABLE log_checkpoints (
    size       bigint PRIMARY KEY,
    root       bytea NOT NULL,
    note       text NOT NULL,          -- the signed note, exactly as served
    created_at timestamptz NOT NULL
);
CREATE INDEX log_checkpoints_created ON log_checkpoints (created_at);

CREATE FUNCTION log_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION '% is append-only', TG_TABLE_NAME;
END $$;
CREATE TRIGGER log_leaves_no_update BEFORE UPDATE OR DELETE ON log_leaves
    FOR EACH ROW EXECUTE FUNCTION log_append_only();
CREATE TRIGGER log_nodes_no_update BEFORE UPDATE OR DELETE ON log_nodes
    FOR EACH ROW EXECUTE FUNCTION log_append_only();
CREATE TRIGGER log_checkpoints_no_update BEFORE UPDATE OR DELETE ON log_checkpoints
    FOR EACH ROW EXECUTE FUNCTION log_append_only();
