// Package evidence is the hub's evidence log (ARCHITECTURE.md, principle 7):
// every row of the ledger's append-only events table becomes a leaf of an
// RFC 6962 Merkle tree kept in PostgreSQL, the hub signs checkpoints of that
// tree, and anyone holding a checkpoint can check inclusion and consistency
// proofs without trusting the hub. It sits at the end of the path: it reads
// events and documents, and writes only its own log_* tables.
//
// Roles:
//   - Sequencer (one leader per database, PostgreSQL advisory lock
//     LockSequencer) tails events by id and appends leaves, their runs, the
//     new tree nodes and the new tree head in one transaction per batch, and
//     hands each committed batch to a Feed, from which a Tail of the same
//     process (routing/relay.Events, lt.events) reads without going back to
//     PostgreSQL.
//   - Checkpointer (leader lock LockCheckpointer) signs a checkpoint with a
//     golang.org/x/mod/sumdb/note Ed25519 key whenever the tree grew, at most
//     once per Interval (schemas/checkpoint.md).
//   - Log serves checkpoints, leaves and proofs, in Go and over HTTP (Routes).
//   - Audit recomputes every leaf and the whole tree from the current rows
//     and names the first leaf that no longer matches.
//   - Receipts derives, from the stored leaves, one receipt per (event,
//     recipient) with the inclusion proofs of its leaves (schemas/receipt.xsd);
//     Bundle packs a document's evidence for auditors
//     (schemas/evidence-bundle.md); Search and SearchReceipts serve the
//     auditor API.
//   - Timestamper (leader lock LockTimestamper) obtains RFC 3161 timestamps
//     on checkpoints beside the path, never in it; Purge and RunRetention
//     (LockRetention) empty old documents' bytes while everything stays
//     provable.
//
// Admin actions (ledger.AdminEvent) are events without a document, so they
// are leaves like every other event.
//
// The leaf format and the offline checks live in the sub-package logverify,
// which has no database dependency (hubctl uses it).
//
// Storage: log_leaves holds each leaf's canonical bytes and hash (the
// append-only copy of each event as the log committed to it; Audit compares
// it with the events row). log_runs maps event ids to leaves, one
// row per run of consecutive ids (about one per batch), and refuses an event
// twice (an exclusion constraint), where a UNIQUE index on event_id took an
// entry per leaf; log_leaf_index(event id) looks it up. log_nodes
// holds the hash of every perfect subtree at level 6 (nodeFloor) and above,
// one row per 32 leaves, written as the sequencer's compact range completes
// them. A proof for a tree of size n reads, in one query, one stored hash
// per level from 6 up and the leaf hashes of at most two aligned runs of 64
// leaves, from which it recomputes the subtrees below level 6 (fewer than 128
// hashes); proof.Nodes then rehashes at most one ephemeral node. The
// sequencer keeps the compact range of the tree head it committed last, so a
// batch reads nothing of the tree unless another process appended meanwhile.
//
// Ordering and gaps. Event ids come from a sequence when the row is inserted,
// but transactions commit in any order: id 10 may become visible after id 11,
// and a rolled-back transaction leaves a hole forever. The sequencer keeps a
// watermark (the highest id appended in order) and appends only the
// contiguous run of ids above it, so it never passes over an id that is
// merely late. When the next id is missing but a higher one is visible, it
// notes the time and pg_snapshot_xmax at that moment. The gap becomes
// permanent, and is skipped and recorded in log_gaps, once
//
//   - it has been missing for Settle (default 2 s) and every transaction that
//     was running when it was first seen has ended (pg_snapshot_xmin has
//     passed the noted xmax), which resolves a rollback in about Settle; or
//   - it has been missing for GapTimeout (default 30 s), whatever holds it,
//     so that a transaction left open cannot stall the log.
//
// An event that still commits into a recorded gap (a transaction held open
// beyond GapTimeout) is not lost: it is appended as soon as it is visible,
// after the leaves already in the log. The log is thus complete, and in event
// id order except for such stragglers; each leaf carries its event id.
// Gaps are watched for late arrivals for 24 hours.
package evidence
