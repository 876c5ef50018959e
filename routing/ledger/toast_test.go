package ledger

import (
	"context"
	"fmt"
	"io/fs"
	"strings"
	"testing"
	"testing/fstest"

	"lienthong/routing/pgtest"
)

// bigDoc is a document whose body and verification report are large enough
// to be compressed by TOAST (over 2 KB, and compressible).
func bigDoc(ref string) NewDocument {
	body := "<edXML>" + strings.Repeat("JVBERi0xLjQKJcfsj6IKNSAwIG9iago8PC9MZW5ndGggNiAwIFI+PgpzdHJlYW0K", 400) + ref + "</edXML>"
	d := doc(ref, body)
	d.Verification = map[string]any{"outcome": "valid", "chain": strings.Repeat("MIIDdzCCAl+gAwIBAgIE", 300)}
	return d
}

// compression returns how a stored document's body and verification report
// are compressed ("pglz", "lz4").
func compression(t *testing.T, l *Ledger, id string) (body, report string) {
	t.Helper()
	err := l.Pool().QueryRow(context.Background(), `SELECT pg_column_compression(d.body), pg_column_compression(v.report)
		FROM documents d JOIN verification_reports v ON v.document_id = d.id WHERE d.id = $1::uuid`, id).Scan(&body, &report)
	if err != nil {
		t.Fatal(err)
	}
	return body, report
}

func acceptBig(t *testing.T, l *Ledger, ref string) (string, NewDocument) {
	t.Helper()
	d := bigDoc(ref)
	a, err := l.Accept(context.Background(), d)
	if err != nil {
		t.Fatalf("accept %s: %v", ref, err)
	}
	return a.ID, d
}

func checkContent(t *testing.T, l *Ledger, id string, d NewDocument) {
	t.Helper()
	body, _, err := l.Content(context.Background(), id)
	if err != nil || string(body) != string(d.Raw) {
		t.Fatalf("content of %s: %d bytes, want %d exactly as received (%v)", id, len(body), len(d.Raw), err)
	}
}

func TestNewBodiesAndReportsAreLZ4(t *testing.T) {
	l, _ := newLedger(t)
	id, d := acceptBig(t, l, "T1")
	if b, r := compression(t, l, id); b != "lz4" || r != "lz4" {
		t.Fatalf("compression: body %q, report %q; want lz4, lz4", b, r)
	}
	checkContent(t, l, id, d)
}

// beforeMigration is the ledger's migrations older than name.
func beforeMigration(t *testing.T, name string) fs.FS {
	t.Helper()
	names, err := fs.Glob(migrationFS, "migrations/*.sql")
	if err != nil {
		t.Fatal(err)
	}
	m := fstest.MapFS{}
	for _, n := range names {
		if n >= "migrations/"+name {
			continue
		}
		b, err := fs.ReadFile(migrationFS, n)
		if err != nil {
			t.Fatal(err)
		}
		m[n] = &fstest.MapFile{Data: b}
	}
	return m
}

func TestLZ4MigrationKeepsExistingRows(t *testing.T) {
	if testing.Short() {
		t.Skip("needs PostgreSQL")
	}
	ctx := context.Background()
	pool, err := Connect(ctx, pgtest.NewDatabase(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	if err := ApplyMigrations(ctx, pool, beforeMigration(t, "0011"), ""); err != nil {
		t.Fatal(err)
	}
	l := New(pool, Config{})
	upsertOldOrgans(t, l, Organ{Code: "000.00.00.C01", Name: "A", Channel: "push", Endpoint: "http://x", Active: true},
		Organ{Code: "000.00.00.C02", Name: "B", Channel: "pull", Active: true})
	oldID, oldDoc := acceptBig(t, l, "OLD")
	if b, r := compression(t, l, oldID); b != "pglz" || r != "pglz" {
		t.Fatalf("before 0011: body %q, report %q; want pglz", b, r)
	}
	if err := Migrate(ctx, pool); err != nil {
		t.Fatalf("migrate an existing database: %v", err)
	}
	newID, newDoc := acceptBig(t, l, "NEW")
	for _, c := range []struct {
		id, want string
		d        NewDocument
	}{{oldID, "pglz", oldDoc}, {newID, "lz4", newDoc}} {
		t.Run(fmt.Sprint(c.d.DocRef), func(t *testing.T) {
			if b, r := compression(t, l, c.id); b != c.want || r != c.want {
				t.Errorf("body %q, report %q; want %q", b, r, c.want)
			}
			checkContent(t, l, c.id, c.d)
		})
	}
}
