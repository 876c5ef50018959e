package evidence

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"io/fs"
	"math/big"
	"slices"
	"strings"
	"testing"
	"testing/fstest"
	"time"

	"github.com/transparency-dev/merkle/testonly"

	"lienthong/routing/evidence/logverify"
	"lienthong/routing/ledger"
)

// migrateBefore applies the evidence migrations numbered below version
// only, as a hub of that time did.
func migrateBefore(t *testing.T, e *env, version string) {
	t.Helper()
	names, _ := fs.Glob(migrationFS, "migrations/*.sql")
	old := fstest.MapFS{}
	for _, name := range names {
		if strings.TrimPrefix(name, "migrations/") < version {
			b, _ := fs.ReadFile(migrationFS, name)
			old[name] = &fstest.MapFile{Data: b}
		}
	}
	if err := ledger.ApplyMigrations(context.Background(), e.pool, old, "evidence-"); err != nil {
		t.Fatal(err)
	}
}

// newLegacyEnv is a database whose evidence schema stops before 0004, with
// a sequencer that writes every level of log_nodes, as hubs did before it.
func newLegacyEnv(t *testing.T) *env {
	t.Helper()
	e := newEnvWith(t, func(ctx context.Context, e *env) { migrateBefore(t, e, "0004") })
	e.seq.floor = 1
	e.seq.legacyLeaves = true
	return e
}

// refOf is an in-memory tree of the stored leaves (hashed afresh from their
// bytes).
func refOf(t *testing.T, e *env) *testonly.Tree {
	t.Helper()
	rows, err := e.pool.Query(context.Background(), `SELECT leaf FROM log_leaves ORDER BY leaf_index`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	ref := testonly.New(hasher)
	for rows.Next() {
		var b []byte
		if err := rows.Scan(&b); err != nil {
			t.Fatal(err)
		}
		ref.AppendData(b)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return ref
}

// checkAllProofs compares every inclusion proof at size and the consistency
// proofs from a spread of sizes with the reference tree.
func checkAllProofs(t *testing.T, e *env, ref *testonly.Tree, size uint64) {
	t.Helper()
	ctx := context.Background()
	root := ref.HashAt(size)
	for i := range size {
		p, err := e.log.InclusionProof(ctx, i, size)
		if err != nil {
			t.Fatalf("inclusion %d in %d: %v", i, size, err)
		}
		want, _ := ref.InclusionProof(i, size)
		if !slices.EqualFunc(p, want, bytes.Equal) {
			t.Fatalf("inclusion %d in %d: %x, reference %x", i, size, p, want)
		}
		leaf, err := e.log.Leaf(ctx, i)
		if err != nil {
			t.Fatal(err)
		}
		if err := VerifyInclusion(leaf.Data, i, size, p, root); err != nil {
			t.Fatalf("inclusion %d in %d: %v", i, size, err)
		}
	}
	for from := uint64(1); from <= size; from += 1 + from/8 {
		p, err := e.log.ConsistencyProof(ctx, from, size)
		if err != nil {
			t.Fatal(err)
		}
		want, _ := ref.ConsistencyProof(from, size)
		if !slices.EqualFunc(p, want, bytes.Equal) {
			t.Fatalf("consistency %d → %d: %x, reference %x", from, size, p, want)
		}
	}
}

// TestUpgradeFromEveryLevelLayout: a log written by the older sequencer, with
// a log_nodes row at every level, keeps serving the same proofs before and
// after migration 0004; the migration keeps exactly the rows of levels at or
// above the floor and the table stays append-only; the sequencer then
// extends the same tree; the checkpoints signed before and after are
// consistent, the audit is clean and the document's bundle verifies with
// logverify.
func TestUpgradeFromEveryLevelLayout(t *testing.T) {
	e := newLegacyEnv(t)
	ctx := context.Background()
	_, key, _ := ed25519.GenerateKey(rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: origin},
		NotBefore: time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC), NotAfter: time.Date(2100, 1, 1, 0, 0, 0, 0, time.UTC)}
	der, _ := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	cert, _ := x509.ParseCertificate(der)
	skey, _, _ := logverify.NoteKeys(origin, key)
	c, err := NewCheckpointer(e.pool, CheckpointerConfig{SignerKey: skey, Now: e.clk.now})
	if err != nil {
		t.Fatal(err)
	}
	doc := e.accept(t, "U", "<u/>")
	if _, err := e.led.Route(ctx, []string{doc}, e.led.Organ); err != nil {
		t.Fatal(err)
	}
	e.addEvents(t, doc, 700)
	e.drain(t)
	old := e.sign(t, c)
	n1 := old.Size
	if got, want := count(t, e.pool, `SELECT count(*) FROM log_nodes`), nodeRowsFor(n1, 1); got != want || n1 < 700 {
		t.Fatalf("old layout: %d node rows for %d leaves, want %d", got, n1, want)
	}
	ref := refOf(t, e)
	if !bytes.Equal(ref.HashAt(n1), old.Root) {
		t.Fatal("the reference tree disagrees with the signed checkpoint")
	}
	checkAllProofs(t, e, ref, n1) // this code on the old layout, not migrated yet

	for range 2 { // and again: already applied
		if err := Migrate(ctx, e.pool); err != nil {
			t.Fatalf("migrate: %v", err)
		}
	}
	if got, want := count(t, e.pool, `SELECT count(*) FROM log_nodes`), nodeRowsFor(n1, nodeFloor); got != want || got == 0 {
		t.Fatalf("after 0004: %d node rows, want %d", got, want)
	}
	if got := count(t, e.pool, `SELECT count(*) FROM log_nodes WHERE level < $1`, nodeFloor); got != 0 {
		t.Fatalf("after 0004: %d rows below the floor", got)
	}
	for _, sql := range []string{`DELETE FROM log_nodes`, `UPDATE log_nodes SET hash = ''`,
		`INSERT INTO log_nodes (level, idx, hash) VALUES (3, 1000000, '\x00')`} {
		if _, err := e.pool.Exec(ctx, sql); err == nil {
			t.Errorf("%s: succeeded after 0004", sql)
		}
	}
	checkAllProofs(t, e, ref, n1)

	// The sequencer of this code (a fresh one: no tip in memory) extends it.
	seq, err := NewSequencer(e.pool, SequencerConfig{Now: e.clk.now})
	if err != nil {
		t.Fatal(err)
	}
	e.seq = seq
	e.addEvents(t, doc, 600)
	e.drain(t)
	cur := e.sign(t, c)
	ref = refOf(t, e)
	if !bytes.Equal(ref.HashAt(cur.Size), cur.Root) || !bytes.Equal(ref.HashAt(n1), old.Root) {
		t.Fatal("the reference tree disagrees with the signed checkpoints")
	}
	if got, want := count(t, e.pool, `SELECT count(*) FROM log_nodes`), nodeRowsFor(cur.Size, nodeFloor); got != want {
		t.Fatalf("after appending: %d node rows, want %d", got, want)
	}
	checkAllProofs(t, e, ref, cur.Size)
	p, err := e.log.ConsistencyProof(ctx, n1, cur.Size)
	if err != nil {
		t.Fatal(err)
	}
	if err := VerifyConsistency(n1, cur.Size, p, old.Root, cur.Root); err != nil {
		t.Fatalf("checkpoints across the upgrade: %v", err)
	}
	if rep, err := Audit(ctx, e.pool); err != nil || rep.TreeSize != cur.Size || rep.CheckpointsChecked != 2 {
		t.Fatalf("audit: %+v %v", rep, err)
	}
	zb, err := e.log.Bundle(ctx, doc, BundleConfig{})
	if err != nil {
		t.Fatal(err)
	}
	rep, err := logverify.VerifyBundle(zb, cert, logverify.BundleOptions{})
	if err != nil {
		t.Fatalf("bundle: %v", err)
	}
	if rep.Checkpoint.Size != cur.Size || rep.Receipts < 1300 {
		t.Fatalf("bundle report: size %d, %d receipts", rep.Checkpoint.Size, rep.Receipts)
	}
}

// TestSequencersTakeTurns: two sequencers appending in turn each notice that
// the tree head moved since their own last batch and reload it, so the tree
// stays the reference tree of the leaves.
func TestSequencersTakeTurns(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	doc := e.accept(t, "A", "<a/>")
	other, err := NewSequencer(e.pool, SequencerConfig{BatchSize: 100, Now: e.clk.now})
	if err != nil {
		t.Fatal(err)
	}
	seqs := []*Sequencer{e.seq, other}
	for i := range 12 {
		e.addEvents(t, doc, 37+i*29)
		for {
			n, err := seqs[i%2].Step(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if n == 0 {
				break
			}
		}
		size, root, err := treeHead(ctx, e.pool)
		if err != nil {
			t.Fatal(err)
		}
		if ref := refOf(t, e); ref.Size() != size || !bytes.Equal(ref.HashAt(size), root) {
			t.Fatalf("turn %d: head (%d, %x), leaves give (%d, %x)", i, size, root, ref.Size(), ref.HashAt(ref.Size()))
		}
	}
	if _, err := Audit(ctx, e.pool); err != nil {
		t.Fatal(err)
	}
}
