package hub

import (
	"archive/zip"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"net/http"
	"strconv"
	"testing"
	"time"

	"lienthong/cmd/internal/sample"
	"lienthong/envelope/verify"
	"lienthong/routing/evidence"
	"lienthong/routing/evidence/logverify"
	"lienthong/routing/ledger"
)

// A signed document above the blob threshold is spooled, verified as a
// stream, stored as a large object (not in documents.body), and delivered
// byte-identical by push and by pull with the right Content-Length and
// digest; the same bytes again are a duplicate.
func TestLargeBodyStreamsThroughTheBlobStore(t *testing.T) {
	p := signPKI(t)
	h := startHub(t, func(c *Config) {
		c.Trust = &TrustConfig{Store: trustStore(t, p)}
		c.MaxBody = 16 << 20
		c.BlobThreshold = 1 << 20
	})
	ctx := context.Background()
	o, err := h.l.Organ(ctx, orgA)
	if err != nil {
		t.Fatal(err)
	}
	o.CertFingerprints = []string{verify.Fingerprint(p.Signer.Cert)}
	if err := h.l.UpsertOrgan(ctx, o); err != nil {
		t.Fatal(err)
	}
	raw, err := p.Sign(sample.EdXML(sample.Doc{From: orgA, To: []string{orgB, orgC}, Number: "9001", Notation: "LARGE",
		Subject: "Văn bản lớn (TEST)", Pad: 6 << 20}), p.Signer)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(raw)
	var acc struct{ ID string }
	if st := h.call("POST", "/v1/documents", h.tokens[orgA], raw, &acc); st != http.StatusAccepted {
		t.Fatalf("POST: %d", st)
	}
	h.waitStates(acc.ID, h.tokens[orgA], map[string]string{orgB: ledger.StateDelivered, orgC: ledger.StateDelivered})

	var inline bool
	var blobSize int64
	if err := h.l.Pool().QueryRow(ctx, `SELECT d.body IS NOT NULL, b.size FROM documents d JOIN blobs b ON b.sha256 = d.body_blob
		WHERE d.id = $1`, acc.ID).Scan(&inline, &blobSize); err != nil {
		t.Fatalf("the body is not in the blob store: %v", err)
	}
	if inline || blobSize != int64(len(raw)) {
		t.Fatalf("inline body %v, blob of %d bytes for %d", inline, blobSize, len(raw))
	}
	var r reportJSON
	if st := h.call("GET", "/v1/documents/"+acc.ID+"/verification", h.tokens[orgA], nil, &r); st != 200 || r.Outcome != "valid" ||
		len(r.Signatures) != 1 || r.Signatures[0].Binding != "cert_fingerprint" {
		t.Fatalf("verification %d %+v", st, r)
	}

	// Push: the sink hashed what it received.
	got := h.sink.Received(orgC)
	if len(got) != 1 || got[0].SHA256 != hex.EncodeToString(sum[:]) || got[0].Size != len(raw) {
		t.Fatalf("pushed %+v, want sha %x size %d", got, sum, len(raw))
	}
	// Pull: the content route streams the same bytes.
	req, _ := http.NewRequest("GET", h.api+"/v1/documents/"+acc.ID+"/content", nil)
	req.Header.Set("Authorization", "Bearer "+h.tokens[orgB])
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil || resp.StatusCode != 200 || !bytes.Equal(body, raw) {
		t.Fatalf("content: %d, %d bytes, err %v", resp.StatusCode, len(body), err)
	}
	if cl := resp.Header.Get("Content-Length"); cl != strconv.Itoa(len(raw)) {
		t.Errorf("Content-Length %q, want %d", cl, len(raw))
	}
	if dg := resp.Header.Get("Digest"); dg == "" {
		t.Error("no Digest header")
	}

	// The same bytes again: a duplicate, one large object.
	if st := h.call("POST", "/v1/documents", h.tokens[orgA], raw, nil); st != http.StatusOK {
		t.Fatalf("repeat: %d", st)
	}
	if n := h.count("pg_largeobject_metadata"); n != 1 {
		t.Fatalf("%d large objects, want 1", n)
	}
}

// Above the threshold, an oversized body and a tampered signed body are
// refused with their codes, and nothing is stored.
func TestLargeBodyRefusalsStoreNothing(t *testing.T) {
	p := signPKI(t)
	h := startHub(t, func(c *Config) {
		c.Trust = &TrustConfig{Store: trustStore(t, p)}
		c.MaxBody = 4 << 20
		c.BlobThreshold = 1 << 20
	})
	ctx := context.Background()
	o, _ := h.l.Organ(ctx, orgA)
	o.CertFingerprints = []string{verify.Fingerprint(p.Signer.Cert)}
	if err := h.l.UpsertOrgan(ctx, o); err != nil {
		t.Fatal(err)
	}
	big, err := p.Sign(sample.EdXML(sample.Doc{From: orgA, To: []string{orgB}, Number: "9002", Pad: 5 << 20}), p.Signer)
	if err != nil {
		t.Fatal(err)
	}
	mid, err := p.Sign(sample.EdXML(sample.Doc{From: orgA, To: []string{orgB}, Number: "9003", Subject: "Bản gốc", Pad: 2 << 20}), p.Signer)
	if err != nil {
		t.Fatal(err)
	}
	tampered := bytes.Replace(mid, []byte("Bản gốc"), []byte("Bản sửa"), 1)
	for _, tc := range []struct {
		name    string
		raw     []byte
		chunked bool // no Content-Length: the limit is enforced while reading
		status  int
		code    string
	}{
		{"oversized, Content-Length", big, false, http.StatusRequestEntityTooLarge, "too_large"},
		{"oversized, chunked", big, true, http.StatusRequestEntityTooLarge, "too_large"},
		{"tampered", tampered, false, 0, "digest_mismatch"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var body io.Reader = bytes.NewReader(tc.raw)
			if tc.chunked {
				body = io.MultiReader(body) // hides the length from net/http
			}
			req, _ := http.NewRequest("POST", h.api+"/v1/documents", body)
			req.Header.Set("Authorization", "Bearer "+h.tokens[orgA])
			req.Header.Set("Content-Type", "application/xml")
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if (tc.status != 0 && resp.StatusCode != tc.status) || resp.StatusCode < 400 || !bytes.Contains(b, []byte(`"code":"`+tc.code+`"`)) {
				t.Fatalf("status %d, body %s; want %d %s", resp.StatusCode, b, tc.status, tc.code)
			}
		})
	}
	if n := h.count("documents"); n != 0 {
		t.Fatalf("%d documents stored", n)
	}
	if n := h.count("pg_largeobject_metadata"); n != 0 {
		t.Fatalf("%d large objects stored", n)
	}
}

// A large body's evidence bundle carries its bytes (streamed from the blob
// store), and retention purges the blob and its large object.
func TestLargeBodyEvidenceBundleAndRetention(t *testing.T) {
	ek := newEvidenceKeys(t)
	h := startHub(t, ek.option(nil), func(c *Config) { c.MaxBody, c.BlobThreshold = 8<<20, 1<<20 })
	raw := sample.EdXML(sample.Doc{From: orgA, To: []string{orgB}, Number: "9010", Notation: "LARGE", Pad: 3 << 20})
	var sub struct{ ID string }
	if st := h.call("POST", "/v1/documents", h.tokens[orgA], raw, &sub); st != http.StatusAccepted {
		t.Fatalf("submit: %d", st)
	}
	h.waitStates(sub.ID, h.tokens[orgA], map[string]string{orgB: "delivered"})
	h.waitReceipts(sub.ID, h.tokens[orgA])
	if n := h.count("blobs"); n != 1 {
		t.Fatalf("%d blobs", n)
	}
	st, bundle, _ := h.get("/v1/audit/documents/"+sub.ID+"/evidence", h.auditor)
	if st != 200 {
		t.Fatalf("bundle: %d", st)
	}
	zr, err := zip.NewReader(bytes.NewReader(bundle), int64(len(bundle)))
	if err != nil {
		t.Fatal(err)
	}
	var doc []byte
	for _, f := range zr.File {
		if f.Name == logverify.BundleDocument {
			rc, _ := f.Open()
			doc, _ = io.ReadAll(rc)
			rc.Close()
		}
	}
	if !bytes.Equal(doc, raw) {
		t.Fatalf("bundle document: %d bytes, want the %d original bytes", len(doc), len(raw))
	}

	if rep, err := evidence.Audit(context.Background(), h.l.Pool()); err != nil {
		t.Fatalf("audit with a body in the blob store: %v (%+v)", err, rep)
	}
	ids, err := evidence.Purge(context.Background(), h.l.Pool(), h.l, time.Now().Add(time.Hour), 10)
	if err != nil || len(ids) != 1 {
		t.Fatalf("purge: %v %v", ids, err)
	}
	if n, m := h.count("blobs"), h.count("pg_largeobject_metadata"); n != 0 || m != 0 {
		t.Fatalf("after purge: %d blobs, %d large objects", n, m)
	}
	var gone struct{ Code string }
	if st := h.call("GET", "/v1/documents/"+sub.ID+"/content", h.tokens[orgA], nil, &gone); st != http.StatusGone || gone.Code != "purged" {
		t.Fatalf("content after purge: %d %q", st, gone.Code)
	}
	rep, err := evidence.Audit(context.Background(), h.l.Pool())
	if err != nil {
		t.Fatalf("audit after purge: %v (%+v)", err, rep)
	}
}
