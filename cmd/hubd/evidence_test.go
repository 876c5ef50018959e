package main

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/pem"
	"flag"
	"fmt"
	"math/big"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"lienthong/cmd/internal/hub"
	"lienthong/routing/evidence"
	"lienthong/routing/evidence/logverify"
	"lienthong/routing/ledger"
	"lienthong/routing/pgtest"
)

// evidenceDB is a migrated database with two organs.
func evidenceDB(t *testing.T) (string, *pgxpool.Pool, *ledger.Ledger) {
	t.Helper()
	if testing.Short() {
		t.Skip("needs PostgreSQL")
	}
	ctx := context.Background()
	url := pgtest.NewDatabase(t)
	if err := hub.Migrate(ctx, url); err != nil {
		t.Fatal(err)
	}
	pool, err := ledger.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	l := ledger.New(pool, ledger.Config{})
	for _, o := range []ledger.Organ{{Code: "000.00.00.C01", Name: "A", Channel: "pull", Active: true},
		{Code: "000.00.00.C02", Name: "B", Channel: "pull", Active: true}} {
		if err := l.UpsertOrgan(ctx, o); err != nil {
			t.Fatal(err)
		}
	}
	return url, pool, l
}

// sequenceAndSign appends every event to the log and signs a checkpoint.
func sequenceAndSign(t *testing.T, pool *pgxpool.Pool) {
	t.Helper()
	ctx := context.Background()
	seq, err := evidence.NewSequencer(pool, evidence.SequencerConfig{})
	if err != nil {
		t.Fatal(err)
	}
	for {
		n, err := seq.Step(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if n == 0 {
			break
		}
	}
	skey, _, err := logverify.GenerateKey("lienthong.test/log")
	if err != nil {
		t.Fatal(err)
	}
	cp, err := evidence.NewCheckpointer(pool, evidence.CheckpointerConfig{SignerKey: skey,
		Now: func() time.Time { return time.Now().Add(time.Hour) }})
	if err != nil {
		t.Fatal(err)
	}
	if ok, err := cp.SignIfDue(ctx); err != nil || !ok {
		t.Fatalf("sign: %v %v", ok, err)
	}
}

// Loading the directory (hubd serve --directory) is an admin event, and so
// a leaf of the evidence log naming the file's digest.
func TestDirectoryLoadIsALeaf(t *testing.T) {
	url, pool, _ := evidenceDB(t)
	path := filepath.Join(t.TempDir(), "organs.json")
	body := []byte(`{"organs": [{"code": "000.00.00.C09", "name": "Ủy ban Xã hội (test)", "delivery": "pull"}],
		"principals": [{"kind": "auditor", "name": "kiểm toán", "token_sha256": "` + strings.Repeat("ab", 32) + `"}]}`)
	if err := os.WriteFile(path, body, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := loadDirectory(context.Background(), url, path); err != nil {
		t.Fatal(err)
	}
	sequenceAndSign(t, pool)
	var leaf []byte
	if err := pool.QueryRow(context.Background(), `SELECT l.leaf FROM log_leaves l JOIN events e ON e.id = l.event_id
		WHERE e.kind = 'admin' AND e.state = $1`, ledger.AdminDirectoryLoaded).Scan(&leaf); err != nil {
		t.Fatalf("no leaf for the directory load: %v", err)
	}
	lf, err := logverify.DecodeLeaf(leaf)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(body)
	if lf.DocumentID != "" || !strings.Contains(lf.Detail, hex.EncodeToString(sum[:])) ||
		!strings.Contains(lf.Detail, "000.00.00.C09") || !strings.Contains(lf.Detail, `"principals": 1`) {
		t.Fatalf("directory leaf: %+v", lf)
	}
	if _, err := evidence.Audit(context.Background(), pool); err != nil {
		t.Fatalf("audit with an admin leaf: %v", err)
	}
}

// hubd audit recomputes the tree from the rows: clean, it exits 0; after an
// events row or a document's bytes are changed in PostgreSQL it exits 1
// naming the leaf.
func TestHubdAuditNamesTheTamperedLeaf(t *testing.T) {
	bin := binary(t)
	for _, tc := range []struct {
		name   string
		tamper string // SQL; $1 is the second document's id
	}{
		{"events row", `UPDATE events SET detail = jsonb_set(detail, '{size}', '1') WHERE document_id = $1 AND kind = 'accepted'`},
		{"event time", `UPDATE events SET at = at + interval '1 second' WHERE document_id = $1 AND kind = 'accepted'`},
		{"document bytes", `UPDATE documents SET body = overlay(body placing 'X'::bytea from 2) WHERE id = $1`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			url, pool, l := evidenceDB(t)
			ctx := context.Background()
			var ids []string
			for i := range 3 {
				raw := []byte(fmt.Sprintf("<doc n=\"%d\"/>", i))
				sum := sha256.Sum256(raw)
				a, err := l.Accept(ctx, ledger.NewDocument{Sender: "000.00.00.C01", DocRef: fmt.Sprint("D", i), Format: "edxml",
					Recipients: []string{"000.00.00.C02"}, Raw: raw, SHA256: sum[:]})
				if err != nil {
					t.Fatal(err)
				}
				ids = append(ids, a.ID)
			}
			sequenceAndSign(t, pool)
			out, err := exec.Command(bin, "audit", "--database-url", url).CombinedOutput()
			if err != nil || !strings.Contains(string(out), "HỢP LỆ / OK: 3") {
				t.Fatalf("clean audit: %v\n%s", err, out)
			}
			var leafIndex int64
			if err := pool.QueryRow(ctx, `SELECT l.leaf_index FROM log_leaves l JOIN events e ON e.id = l.event_id
				WHERE e.document_id = $1 AND e.kind = 'accepted'`, ids[1]).Scan(&leafIndex); err != nil {
				t.Fatal(err)
			}
			if _, err := pool.Exec(ctx, `ALTER TABLE events DISABLE TRIGGER events_no_update`); err != nil {
				t.Fatal(err)
			}
			if _, err := pool.Exec(ctx, tc.tamper, ids[1]); err != nil {
				t.Fatal(err)
			}
			out, err = exec.Command(bin, "audit", "--database-url", url).CombinedOutput()
			ee, ok := err.(*exec.ExitError)
			want := fmt.Sprintf("leaf %d ", leafIndex)
			if !ok || ee.ExitCode() != 1 || !strings.Contains(string(out), want) {
				t.Fatalf("audit after tampering: %v, want exit 1 naming %q\n%s", err, want, out)
			}
			t.Logf("%s", out)
		})
	}
}

// The evidence flags of hubd serve: without a key nothing is signed (the
// role still sequences); an API-only process may take the certificate
// alone; a key that is not the certificate's is refused.
func TestEvidenceFlags(t *testing.T) {
	dir := t.TempDir()
	write := func(name string, b []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, b, 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	mk := func(name string) (certPath, keyPath string) {
		_, key, _ := ed25519.GenerateKey(rand.Reader)
		tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "lienthong.test/log"},
			NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
		der, _ := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
		kder, _ := x509.MarshalPKCS8PrivateKey(key)
		return write(name+".pem", pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})),
			write(name+"-key.pem", pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kder}))
	}
	certA, keyA := mk("a")
	_, keyB := mk("b")
	for _, tc := range []struct {
		name    string
		args    []string
		wantErr string
		wantKey bool
	}{
		{"no key material", nil, "", false},
		{"certificate alone", []string{"--evidence-cert", certA}, "", false},
		{"certificate and its key", []string{"--evidence-cert", certA, "--evidence-key", keyA}, "", true},
		{"another key", []string{"--evidence-cert", certA, "--evidence-key", keyB}, "does not belong", false},
		{"key without certificate", []string{"--evidence-key", keyA}, "evidence certificate", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fs := flag.NewFlagSet("t", flag.ContinueOnError)
			o := evidenceFlags(fs)
			if err := fs.Parse(tc.args); err != nil {
				t.Fatal(err)
			}
			ec, err := o.load()
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if (ec.Key != nil) != tc.wantKey || ec.Interval != 900*time.Millisecond {
				t.Fatalf("config %+v", ec)
			}
		})
	}
}
