// Package blob is the ledger's content-addressed store for large bodies
// (ARCHITECTURE.md principle 11). A body above the intake threshold is
// written here, in chunks, inside the accept transaction, and read back as a
// stream on delivery; no stage holds it in memory. Blobs are keyed by the
// SHA-256 of their bytes, so the same bytes are stored once.
//
// The default backend is PostgreSQL large objects (the blobs table maps a
// digest to its large object; migration 0010 of routing/ledger creates it).
// Writing needs the caller's transaction: the blob becomes visible with the
// document row that refers to it, or not at all.
package blob
