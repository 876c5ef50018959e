package ledger

import (
	"bytes"
	"context"
	"crypto/sha256"
	"io"
	"testing"
)

func TestAcceptLargeBodyGoesToTheBlobStore(t *testing.T) {
	l, _ := newLedger(t)
	ctx := context.Background()
	body := bytes.Repeat([]byte("<x>0123456789abcdef</x>"), 200_000) // 4.6 MB
	sum := sha256.Sum256(body)
	d := NewDocument{Sender: "000.00.00.C01", DocRef: "BIG1", Format: "edxml", Recipients: []string{"000.00.00.C02"},
		Body: bytes.NewReader(body), Size: int64(len(body)), SHA256: sum[:]}
	a, err := l.Accept(ctx, d)
	if err != nil || a.Duplicate {
		t.Fatalf("accept: %+v %v", a, err)
	}
	var inlineNull bool
	var size int64
	if err := l.pool.QueryRow(ctx, `SELECT body IS NULL, size FROM documents WHERE id = $1`, a.ID).Scan(&inlineNull, &size); err != nil {
		t.Fatal(err)
	}
	if !inlineNull || size != int64(len(body)) {
		t.Fatalf("row: body NULL=%v size=%d", inlineNull, size)
	}
	b, err := l.ContentStream(ctx, a.ID)
	if err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(b)
	b.Close()
	if err != nil || !bytes.Equal(got, body) || b.Size != int64(len(body)) || !bytes.Equal(b.SHA256, sum[:]) {
		t.Fatalf("stream: %d bytes (size %d), err %v", len(got), b.Size, err)
	}
	if whole, _, err := l.Content(ctx, a.ID); err != nil || !bytes.Equal(whole, body) {
		t.Fatalf("content: %d bytes, %v", len(whole), err)
	}
	// The same bytes again: a duplicate, nothing read, nothing written.
	d.Body = bytes.NewReader(body)
	if again, err := l.Accept(ctx, d); err != nil || !again.Duplicate || again.ID != a.ID {
		t.Fatalf("repeat: %+v %v", again, err)
	}
	var n int
	if err := l.pool.QueryRow(ctx, `SELECT count(*) FROM pg_largeobject_metadata`).Scan(&n); err != nil || n != 1 {
		t.Fatalf("large objects: %d %v", n, err)
	}
	// A small body keeps the inline path.
	small, err := l.Accept(ctx, doc("SMALL", "<a/>"))
	if err != nil {
		t.Fatal(err)
	}
	sb, err := l.ContentStream(ctx, small.ID)
	if err != nil {
		t.Fatal(err)
	}
	got, _ = io.ReadAll(sb)
	sb.Close()
	if string(got) != "<a/>" {
		t.Fatalf("small: %q", got)
	}
}

// Attempts gives a run's small inline bodies with its deliveries, in one
// query, and leaves out what must be opened on its own (ContentStream):
// blob-stored, purged, oversized. An unknown delivery is left out.
func TestAttemptsLeaveOutBodiesThatMustStream(t *testing.T) {
	l, _ := newLedger(t)
	ctx := context.Background()
	small, err := l.Accept(ctx, doc("IB1", "<a>one</a>"))
	if err != nil {
		t.Fatal(err)
	}
	other, err := l.Accept(ctx, doc("IB2", "<a>two</a>"))
	if err != nil {
		t.Fatal(err)
	}
	purged, err := l.Accept(ctx, doc("IB3", "<a>three</a>"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := l.pool.Exec(ctx, `UPDATE documents SET body = ''::bytea WHERE id = $1`, purged.ID); err != nil {
		t.Fatal(err)
	}
	mid := bytes.Repeat([]byte("m"), MaxPrefetchBody+1) // inline, but above the prefetch bound
	sum := sha256.Sum256(mid)
	over, err := l.Accept(ctx, NewDocument{Sender: "000.00.00.C01", DocRef: "IB4", Format: "edxml",
		Recipients: []string{"000.00.00.C02"}, Raw: mid, SHA256: sum[:]})
	if err != nil {
		t.Fatal(err)
	}
	big := bytes.Repeat([]byte("<x>0123456789abcdef</x>"), 100_000)
	bsum := sha256.Sum256(big)
	blobbed, err := l.Accept(ctx, NewDocument{Sender: "000.00.00.C01", DocRef: "IB5", Format: "edxml",
		Recipients: []string{"000.00.00.C02"}, Body: bytes.NewReader(big), Size: int64(len(big)), SHA256: bsum[:]})
	if err != nil {
		t.Fatal(err)
	}
	docs := []string{small.ID, other.ID, purged.ID, over.ID, blobbed.ID}
	if n, err := l.Route(ctx, docs, l.Organ); err != nil || n != len(docs) {
		t.Fatalf("route: %d %v", n, err)
	}
	var ids []int64
	for _, d := range docs {
		var id int64
		if err := l.pool.QueryRow(ctx, `SELECT id FROM deliveries WHERE document_id = $1`, d).Scan(&id); err != nil {
			t.Fatal(err)
		}
		ids = append(ids, id)
	}
	as, err := l.Attempts(ctx, append(ids, 999999))
	if err != nil {
		t.Fatal(err)
	}
	if len(as) != len(docs) {
		t.Fatalf("%d attempts for %d due deliveries", len(as), len(docs))
	}
	want := map[string]string{small.ID: "<a>one</a>", other.ID: "<a>two</a>"}
	for _, a := range as {
		if w, inline := want[a.DocumentID]; (a.Body != nil) != inline || string(a.Body) != w {
			t.Errorf("attempt for %s: body %.40q, want %q (inline %v)", a.DocumentID, a.Body, w, inline)
		}
	}
}
