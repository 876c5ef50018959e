// Package logverify holds the pure, offline half of the evidence log: the
// canonical leaf format (version 1) with its encoder and strict decoder, the
// checkpoint body, and the checks an auditor runs without trusting the hub —
// a checkpoint's signature, a leaf's inclusion proof and the consistency
// between two checkpoints. It does no network or database I/O, so hubctl can
// use it on its own; routing/evidence builds and serves the log.
package logverify
