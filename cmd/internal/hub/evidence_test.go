package hub

import (
	"archive/zip"
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/csv"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/labstack/echo/v4"
	"golang.org/x/mod/sumdb/note"

	"lienthong/adapters/restapi"
	"lienthong/envelope"
	"lienthong/envelope/dsig"
	"lienthong/routing/evidence"
	"lienthong/routing/evidence/logverify"
	"lienthong/routing/evidence/tsasim"
	"lienthong/routing/ledger"
)

const testOrigin = "lienthong.test/log"

// evKeys is a test hub's evidence key material: an Ed25519 checkpoint key
// certified by a throwaway CA, the certificate written as PEM.
type evKeys struct {
	ca       *x509.Certificate
	caKey    *ecdsa.PrivateKey
	key      ed25519.PrivateKey
	cert     *x509.Certificate
	certPEM  []byte
	certPath string
	chainPEM []byte
}

func newEvidenceKeys(t *testing.T) evKeys {
	t.Helper()
	caKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	caTmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "Lienthong TEST CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour), IsCA: true,
		BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, caKey.Public(), caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, _ := x509.ParseCertificate(caDER)
	_, key, _ := ed25519.GenerateKey(rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: testOrigin},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour), KeyUsage: x509.KeyUsageDigitalSignature}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, key.Public(), caKey)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	ek := evKeys{ca: ca, caKey: caKey, key: key, cert: cert, certPEM: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		chainPEM: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER})}
	ek.certPath = filepath.Join(t.TempDir(), "evidence.pem")
	if err := os.WriteFile(ek.certPath, ek.certPEM, 0o644); err != nil {
		t.Fatal(err)
	}
	return ek
}

// sign signs an edXML document as its sender would: an RSA signing
// certificate issued by the test CA (which is the bundle's trust anchor).
func (ek evKeys) sign(t *testing.T, raw []byte) []byte {
	t.Helper()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(3), Subject: pkix.Name{CommonName: "Văn phòng Quốc hội (TEST signer)"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageContentCommitment}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ek.ca, key.Public(), ek.caKey)
	if err != nil {
		t.Fatal(err)
	}
	leaf, _ := x509.ParseCertificate(der)
	out, err := dsig.Sign(raw, key, []*x509.Certificate{leaf, ek.ca}, dsig.SignOptions{Location: dsig.EdXMLHeader, ReplacePlaceholder: true})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func (ek evKeys) option(extra func(*EvidenceConfig)) func(*Config) {
	return func(c *Config) {
		c.Evidence = EvidenceConfig{Key: ek.key, Cert: ek.cert, CertPEM: ek.certPEM, ChainPEM: ek.chainPEM,
			TrustPEM: ek.chainPEM, Interval: 100 * time.Millisecond}
		if extra != nil {
			extra(&c.Evidence)
		}
	}
}

var (
	hubctlOnce sync.Once
	hubctlBin  string
	hubctlErr  error
)

// hubctl runs the real hubctl binary and returns its output and exit code.
func hubctl(t *testing.T, args ...string) (string, int) {
	t.Helper()
	hubctlOnce.Do(func() {
		dir, err := os.MkdirTemp("", "hubctl-bin-")
		if err != nil {
			hubctlErr = err
			return
		}
		hubctlBin = filepath.Join(dir, "hubctl")
		if out, err := exec.Command("go", "build", "-o", hubctlBin, "lienthong/cmd/hubctl").CombinedOutput(); err != nil {
			hubctlErr = fmt.Errorf("go build hubctl: %v: %s", err, out)
		}
	})
	if hubctlErr != nil {
		t.Fatal(hubctlErr)
	}
	cmd := exec.Command(hubctlBin, args...)
	cmd.Env = append(os.Environ(), "LT_CREDENTIALS=/nonexistent")
	out, err := cmd.CombinedOutput()
	var ee *exec.ExitError
	switch {
	case err == nil:
		return string(out), 0
	case errors.As(err, &ee):
		return string(out), ee.ExitCode()
	}
	t.Fatalf("hubctl: %v", err)
	return "", -1
}

type receiptsJSON struct {
	ID         string `json:"id"`
	Checkpoint string `json:"checkpoint"`
	TreeSize   uint64 `json:"tree_size"`
	Receipts   []struct {
		Name        string `json:"name"`
		Recipient   string `json:"recipient"`
		Kind        string `json:"kind"`
		LeafIndex   uint64 `json:"leaf_index"`
		Receipt     string `json:"receipt"`
		EdXMLStatus string `json:"edxml_status"`
	} `json:"receipts"`
	Proofs  []logverify.Proof `json:"proofs"`
	Pending int               `json:"pending_events"`
}

// waitReceipts polls the receipts of a document until the checkpoint covers
// every one of its events.
func (h *testHub) waitReceipts(id, token string) receiptsJSON {
	h.t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	var r receiptsJSON
	for time.Now().Before(deadline) {
		r = receiptsJSON{}
		if st := h.call("GET", "/v1/documents/"+id+"/receipts", token, nil, &r); st == 200 && r.Pending == 0 {
			return r
		}
		time.Sleep(50 * time.Millisecond)
	}
	h.t.Fatalf("receipts of %s never covered by a checkpoint: %+v", id, r)
	return r
}

func (h *testHub) get(path, token string) (int, []byte, http.Header) {
	h.t.Helper()
	req, _ := http.NewRequest("GET", h.api+path, nil)
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		h.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b, resp.Header
}

// rewriteZip returns the bundle with file name changed by mutate; with
// fixManifest the manifest's digest of it is updated too (a forger's move).
func rewriteZip(t *testing.T, b []byte, name string, mutate func([]byte) []byte, fixManifest bool) []byte {
	t.Helper()
	zr, err := zip.NewReader(bytes.NewReader(b), int64(len(b)))
	if err != nil {
		t.Fatal(err)
	}
	files := map[string][]byte{}
	var order []string
	for _, f := range zr.File {
		rc, _ := f.Open()
		data, _ := io.ReadAll(rc)
		rc.Close()
		files[f.Name] = data
		order = append(order, f.Name)
	}
	if _, ok := files[name]; !ok {
		t.Fatalf("bundle has no %s", name)
	}
	files[name] = mutate(append([]byte(nil), files[name]...))
	if fixManifest {
		var m logverify.Manifest
		if err := json.Unmarshal(files[logverify.BundleManifest], &m); err != nil {
			t.Fatal(err)
		}
		for i := range m.Files {
			if m.Files[i].Path == name {
				s := sha256.Sum256(files[name])
				m.Files[i].SHA256, m.Files[i].Size = hex.EncodeToString(s[:]), int64(len(files[name]))
			}
		}
		files[logverify.BundleManifest], _ = json.MarshalIndent(m, "", "  ")
	}
	var out bytes.Buffer
	zw := zip.NewWriter(&out)
	for _, n := range order {
		w, _ := zw.Create(n)
		_, _ = w.Write(files[n])
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return out.Bytes()
}

func bundleFiles(t *testing.T, b []byte) []string {
	t.Helper()
	zr, err := zip.NewReader(bytes.NewReader(b), int64(len(b)))
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, f := range zr.File {
		names = append(names, f.Name)
	}
	return names
}

// A delivered document's receipts and evidence bundle: the receipts validate
// against schemas/receipt.xsd (xmllint), the bundle verifies offline with
// only the hub certificate (hubctl, the real binary), and changing any byte
// of the document, a receipt or a proof makes hubctl fail naming the part.
// Then retention purges the bytes and everything still verifies.
func TestEvidenceBundleVerifiesOffline(t *testing.T) {
	ek := newEvidenceKeys(t)
	tsa, err := tsasim.New()
	if err != nil {
		t.Fatal(err)
	}
	tsaSrv := httptest.NewServer(tsa)
	t.Cleanup(tsaSrv.Close)
	h := startHub(t, ek.option(func(e *EvidenceConfig) { e.TSAURL, e.TSAInterval = tsaSrv.URL, 50*time.Millisecond }))

	raw := ek.sign(t, newDoc(orgA, []string{orgB, orgC}, "501"))
	var sub struct{ ID string }
	if st := h.call("POST", "/v1/documents", h.tokens[orgA], raw, &sub); st != http.StatusAccepted {
		t.Fatalf("submit: %d", st)
	}
	h.waitStates(sub.ID, h.tokens[orgA], map[string]string{orgB: "delivered", orgC: "delivered"})
	if st := h.call("POST", "/v1/inbox/"+sub.ID+"/ack", h.tokens[orgB], nil, nil); st != 200 {
		t.Fatalf("ack: %d", st)
	}
	h.waitStates(sub.ID, h.tokens[orgA], map[string]string{orgB: "acknowledged", orgC: "delivered"})

	// Receipts: the sender and each recipient read them; others do not.
	rs := h.waitReceipts(sub.ID, h.tokens[orgB])
	if st := h.call("GET", "/v1/documents/"+sub.ID+"/receipts", h.tokens[orgD], nil, nil); st != http.StatusNotFound {
		t.Errorf("a third organ reads the receipts: %d, want 404", st)
	}
	kinds := map[string]int{}
	dir := t.TempDir()
	var files []string
	for _, r := range rs.Receipts {
		kinds[r.Recipient+" "+r.Kind]++
		p := filepath.Join(dir, r.Name)
		if err := os.WriteFile(p, []byte(r.Receipt), 0o644); err != nil {
			t.Fatal(err)
		}
		files = append(files, p)
		rc, err := logverify.ParseReceipt([]byte(r.Receipt))
		if err != nil {
			t.Fatalf("receipt %s: %v", r.Name, err)
		}
		if rc.Sender != orgA || rc.Recipient != r.Recipient || hex.EncodeToString(rc.Accepted.DocumentSHA256) != fmt.Sprintf("%x", sha256.Sum256(raw)) {
			t.Errorf("receipt %s names sender %s, recipient %s, digest %x", r.Name, rc.Sender, rc.Recipient, rc.Accepted.DocumentSHA256)
		}
	}
	// Each delivered receipt of this edXML document comes with the matching
	// edXML status 01, from the recipient to the sender, about the original.
	orig, err := envelope.Parse(raw, envelope.Limits{})
	if err != nil {
		t.Fatal(err)
	}
	statuses := 0
	for _, r := range rs.Receipts {
		if r.Kind != "delivered" {
			if r.EdXMLStatus != "" {
				t.Errorf("%s receipt %s has an edXML status", r.Kind, r.Name)
			}
			continue
		}
		st, err := envelope.Parse([]byte(r.EdXMLStatus), envelope.Limits{})
		if err != nil {
			t.Fatalf("edXML status of %s: %v\n%s", r.Name, err, r.EdXMLStatus)
		}
		if st.Format != envelope.FormatEdXMLStatus || st.Status.Code != "01" || st.From.Code != r.Recipient ||
			len(st.To) != 1 || st.To[0].Code != orgA || st.DocumentID != orig.DocumentID {
			t.Errorf("edXML status of %s: %+v", r.Name, st)
		}
		statuses++
	}
	if statuses != 2 {
		t.Errorf("%d edXML statuses, want 2 (one per delivered recipient)", statuses)
	}
	for _, want := range []string{orgB + " accepted", orgB + " routed", orgB + " delivered", orgB + " acknowledged",
		orgC + " accepted", orgC + " routed", orgC + " delivered"} {
		if kinds[want] != 1 {
			t.Errorf("receipts: %d of %q, want 1 (all: %v)", kinds[want], want, kinds)
		}
	}
	if out, err := exec.Command("xmllint", append([]string{"--noout", "--schema", "../../../schemas/receipt.xsd"}, files...)...).CombinedOutput(); err != nil {
		t.Fatalf("xmllint: %v\n%s", err, out)
	}
	cp, err := logverify.VerifyCheckpointWithCert(rs.Checkpoint, ek.cert)
	if err != nil {
		t.Fatal(err)
	}
	if len(rs.Proofs) == 0 {
		t.Fatal("no proofs with the receipts")
	}
	for _, p := range rs.Proofs {
		if p.TreeSize != cp.Size || p.TreeSize != rs.TreeSize {
			t.Errorf("proof of leaf %d is for size %d, the checkpoint's is %d", p.LeafIndex, p.TreeSize, cp.Size)
		}
	}

	// Wait for the TSA's timestamp on the latest checkpoint, so that the
	// bundle carries one.
	deadline := time.Now().Add(30 * time.Second)
	for {
		var n int
		_ = h.l.Pool().QueryRow(context.Background(), `SELECT count(*) FROM log_timestamps
			WHERE size = (SELECT max(size) FROM log_checkpoints)`).Scan(&n)
		if n == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no timestamp on the latest checkpoint (TSA served %d)", tsa.Served())
		}
		time.Sleep(50 * time.Millisecond)
	}

	// The bundle: the auditor only.
	for _, tok := range []string{h.tokens[orgA], h.tokens[orgB]} {
		if st, _, _ := h.get("/v1/audit/documents/"+sub.ID+"/evidence", tok); st != http.StatusForbidden {
			t.Errorf("an agency fetched the evidence bundle: %d, want 403", st)
		}
	}
	st, bundle, hdr := h.get("/v1/audit/documents/"+sub.ID+"/evidence", h.auditor)
	if st != 200 || hdr.Get("Content-Type") != "application/zip" {
		t.Fatalf("bundle: %d %s %s", st, hdr.Get("Content-Type"), bundle)
	}
	names := bundleFiles(t, bundle)
	for _, want := range []string{logverify.BundleManifest, logverify.BundleDocument, logverify.BundleCheckpoint,
		logverify.BundleTimestamp, logverify.BundleHubCert, logverify.BundleChain, logverify.BundleVerification} {
		if !strings.Contains(strings.Join(names, " "), want) {
			t.Errorf("bundle lacks %s: %v", want, names)
		}
	}
	bundlePath := filepath.Join(dir, "bundle.zip")
	if err := os.WriteFile(bundlePath, bundle, 0o644); err != nil {
		t.Fatal(err)
	}
	out, code := hubctl(t, "evidence", "verify", bundlePath, "--hub-cert", ek.certPath)
	if code != 0 || !strings.Contains(out, "HỢP LỆ / VALID") || !strings.Contains(out, "timestamp: RFC 3161 token") ||
		!strings.Contains(out, "XML-DSig valid") || !strings.Contains(out, "edXML status messages: 2") {
		t.Fatalf("hubctl evidence verify: exit %d\n%s", code, out)
	}
	t.Logf("hubctl evidence verify:\n%s", out)

	// Another hub's certificate does not verify it.
	other := newEvidenceKeys(t)
	if out, code := hubctl(t, "evidence", "verify", bundlePath, "--hub-cert", other.certPath); code != 1 ||
		!strings.Contains(out, "INVALID: "+logverify.BundleCheckpoint) {
		t.Errorf("verified with another hub's certificate: exit %d\n%s", code, out)
	}

	// Trust anchors that are not the signer's: the signature check fails.
	stranger := newEvidenceKeys(t)
	swapped := rewriteZip(t, bundle, logverify.BundleTrust, func([]byte) []byte { return stranger.chainPEM }, true)
	sp := filepath.Join(dir, "swapped-trust.zip")
	_ = os.WriteFile(sp, swapped, 0o644)
	if out, code := hubctl(t, "evidence", "verify", sp, "--hub-cert", ek.certPath); code != 1 ||
		!strings.Contains(out, "INVALID: "+logverify.BundleDocument+" (signature)") {
		t.Errorf("signature checked against foreign anchors: exit %d\n%s", code, out)
	}

	// Any byte of the document, a receipt or a proof: changed alone (the
	// manifest catches it) or with the manifest fixed up (the proofs do).
	var aReceipt, aProof string
	for _, n := range names {
		if aReceipt == "" && strings.HasPrefix(n, logverify.BundleReceiptsDir) && strings.HasSuffix(n, "-"+orgB+".xml") {
			aReceipt = n
		}
		if aProof == "" && strings.HasPrefix(n, logverify.BundleProofsDir) {
			aProof = n
		}
	}
	sizes := map[string]int{}
	zr, _ := zip.NewReader(bytes.NewReader(bundle), int64(len(bundle)))
	for _, f := range zr.File {
		sizes[f.Name] = int(f.UncompressedSize64)
	}
	for _, part := range []string{logverify.BundleDocument, aReceipt, aProof} {
		n := sizes[part]
		for _, pos := range []int{0, n / 7, n / 3, n / 2, 2 * n / 3, n - 2, n - 1} {
			for _, fix := range []bool{false, true} {
				tampered := rewriteZip(t, bundle, part, func(b []byte) []byte { b[pos] ^= 0x01; return b }, fix)
				p := filepath.Join(dir, "tampered.zip")
				if err := os.WriteFile(p, tampered, 0o644); err != nil {
					t.Fatal(err)
				}
				out, code := hubctl(t, "evidence", "verify", p, "--hub-cert", ek.certPath)
				if code != 1 || !strings.Contains(out, "INVALID: "+part) {
					t.Errorf("%s byte %d flipped (manifest fixed: %v): exit %d, want 1 naming the part\n%s", part, pos, fix, code, out)
				}
			}
		}
	}

	// Retention: purge the bytes; the log grows by the purge's admin event,
	// receipts and proofs still verify, the audit is clean.
	before := rs.TreeSize
	ids, err := evidence.Purge(context.Background(), h.l.Pool(), h.l, time.Now().Add(time.Hour), 10)
	if err != nil || len(ids) != 1 || ids[0] != sub.ID {
		t.Fatalf("purge: %v %v", ids, err)
	}
	var gone struct{ Code string }
	if st := h.call("GET", "/v1/documents/"+sub.ID+"/content", h.tokens[orgA], nil, &gone); st != http.StatusGone || gone.Code != "purged" {
		t.Fatalf("content of a purged document: %d %q, want 410 purged", st, gone.Code)
	}
	var purgeLeaf struct {
		Items []evidence.EventRow `json:"items"`
	}
	for deadline := time.Now().Add(30 * time.Second); ; {
		purgeLeaf.Items = nil
		h.call("GET", "/v1/audit/events?kind=admin&state="+ledger.AdminRetentionPurge, h.auditor, nil, &purgeLeaf)
		if len(purgeLeaf.Items) == 1 && purgeLeaf.Items[0].LeafIndex != nil {
			var cur string
			_ = h.l.Pool().QueryRow(context.Background(), `SELECT note FROM log_checkpoints ORDER BY size DESC LIMIT 1`).Scan(&cur)
			if c, _ := logverify.VerifyCheckpointWithCert(cur, ek.cert); c.Size > uint64(*purgeLeaf.Items[0].LeafIndex) {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("the purge is not in a checkpoint: %+v", purgeLeaf)
		}
		time.Sleep(50 * time.Millisecond)
	}
	rs2 := h.waitReceipts(sub.ID, h.tokens[orgA])
	if rs2.TreeSize <= before || len(rs2.Receipts) != len(rs.Receipts) {
		t.Fatalf("after purge: tree %d (was %d), %d receipts (were %d)", rs2.TreeSize, before, len(rs2.Receipts), len(rs.Receipts))
	}
	p2 := filepath.Join(dir, "purged.zip")
	if out, code := hubctl(t, "--server", h.api, "--token", h.auditor, "evidence", "fetch", sub.ID, "-o", p2); code != 0 {
		t.Fatalf("hubctl evidence fetch: exit %d\n%s", code, out)
	}
	bundle2, err := os.ReadFile(p2)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(strings.Join(bundleFiles(t, bundle2), " "), logverify.BundleDocument) {
		t.Error("the purged bundle still carries the document")
	}
	if out, code := hubctl(t, "evidence", "verify", p2, "--hub-cert", ek.certPath); code != 0 || !strings.Contains(out, "purged") {
		t.Fatalf("purged bundle: exit %d\n%s", code, out)
	}
	if _, err := evidence.Audit(context.Background(), h.l.Pool()); err != nil {
		t.Fatalf("audit after purge: %v", err)
	}
}

// The auditor reads everything and changes nothing: every write route of
// the API answers 403; agencies cannot reach the auditor API; searches
// filter, paginate by cursor and export CSV; admin actions are in the log.
func TestAuditorAPI(t *testing.T) {
	ek := newEvidenceKeys(t)
	var routes []*echo.Route
	h := startHub(t, ek.option(nil), func(c *Config) {
		c.Mount = func(api *restapi.Server) { routes = api.Echo().Routes() }
	})
	var ids []string
	for i, to := range [][]string{{orgB}, {orgC}, {orgB, orgC}} {
		var sub struct{ ID string }
		if st := h.call("POST", "/v1/documents", h.tokens[orgA], newDoc(orgA, to, fmt.Sprint(600+i)), &sub); st != http.StatusAccepted {
			t.Fatalf("submit: %d", st)
		}
		want := map[string]string{}
		for _, r := range to {
			want[r] = "delivered"
		}
		h.waitStates(sub.ID, h.tokens[orgA], want)
		ids = append(ids, sub.ID)
	}
	if _, err := h.l.AdminEvent(context.Background(), ledger.AdminTrustChanged, "test operator",
		map[string]any{"domain": "national", "anchors_sha256": "00"}); err != nil {
		t.Fatal(err)
	}
	for _, id := range ids {
		h.waitReceipts(id, h.tokens[orgA])
	}

	writes := 0
	for _, r := range routes {
		switch r.Method {
		case http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete:
		default:
			continue
		}
		writes++
		path := strings.NewReplacer(":id", ids[0], ":organ", orgB, ":index", "0").Replace(r.Path)
		if st := h.call(r.Method, path, h.auditor, []byte("<x/>"), nil); st != http.StatusForbidden {
			t.Errorf("auditor %s %s: %d, want 403", r.Method, path, st)
		}
	}
	if writes < 2 {
		t.Fatalf("only %d write routes found: %v", writes, routes)
	}
	for _, p := range []string{"/v1/audit/events", "/v1/audit/receipts", "/v1/audit/documents/" + ids[0] + "/evidence"} {
		for _, org := range []string{orgA, orgB} {
			if st, _, _ := h.get(p, h.tokens[org]); st != http.StatusForbidden {
				t.Errorf("agency %s GET %s: %d, want 403", org, p, st)
			}
		}
		if st, _, _ := h.get(p, ""); st != http.StatusUnauthorized {
			t.Errorf("anonymous GET %s: %d, want 401", p, st)
		}
	}

	type page struct {
		Items []evidence.EventRow `json:"items"`
		Next  string              `json:"next_cursor"`
	}
	search := func(q string) []evidence.EventRow {
		var all []evidence.EventRow
		cursor := ""
		for range 100 {
			var p page
			if st := h.call("GET", "/v1/audit/events?limit=2&"+q+"&cursor="+cursor, h.auditor, nil, &p); st != 200 {
				t.Fatalf("search %s: %d", q, st)
			}
			all = append(all, p.Items...)
			if p.Next == "" {
				return all
			}
			cursor = p.Next
		}
		t.Fatal("pagination does not end")
		return nil
	}
	if got := search("document=" + ids[2]); len(got) != 7 { // accepted + 2 × (routed, delivering, delivered)
		t.Errorf("events of a two-recipient document: %d, want 7: %+v", len(got), got)
	}
	if got := search("recipient=" + orgB + "&state=delivered"); len(got) != 2 {
		t.Errorf("delivered to B: %d, want 2", len(got))
	}
	if got := search("sender=" + orgA + "&kind=accepted"); len(got) != 3 {
		t.Errorf("accepted from A: %d, want 3", len(got))
	}
	if got := search("from=" + time.Now().Add(time.Hour).UTC().Format(time.RFC3339)); len(got) != 0 {
		t.Errorf("events in the future: %d", len(got))
	}
	admin := search("kind=admin")
	for deadline := time.Now().Add(30 * time.Second); len(admin) == 1 && admin[0].LeafIndex == nil && time.Now().Before(deadline); {
		time.Sleep(50 * time.Millisecond) // not sequenced yet
		admin = search("kind=admin")
	}
	if len(admin) != 1 || admin[0].State != ledger.AdminTrustChanged || admin[0].LeafIndex == nil {
		t.Errorf("admin events in the log: %+v", admin)
	}
	var rp struct {
		Items []evidence.ReceiptRow `json:"items"`
	}
	h.call("GET", "/v1/audit/receipts?recipient="+orgC+"&document="+ids[2], h.auditor, nil, &rp)
	if len(rp.Items) != 4 { // accepted, routed, delivering, delivered for C
		t.Errorf("receipts of C for the third document: %d, want 4: %+v", len(rp.Items), rp.Items)
	}
	st, b, hdr := h.get("/v1/audit/events?format=csv&limit=3", h.auditor)
	recs, err := csv.NewReader(bytes.NewReader(b)).ReadAll()
	if st != 200 || err != nil || len(recs) != 4 || recs[0][0] != "event_id" || hdr.Get("Lt-Next-Cursor") == "" {
		t.Errorf("CSV export: %d %v %d rows, cursor %q", st, err, len(recs), hdr.Get("Lt-Next-Cursor"))
	}
	for _, bad := range []string{"from=yesterday", "limit=0", "limit=100000", "format=xls", "document=nope", "cursor=!!!", "cursor=Zm9v"} {
		var p struct{ Code string }
		if st := h.call("GET", "/v1/audit/events?"+bad, h.auditor, nil, &p); st != 400 || p.Code != "bad_request" {
			t.Errorf("%s: %d %q, want 400 bad_request", bad, st, p.Code)
		}
	}
}

// With a TSA that hangs, submissions and deliveries go on and checkpoints
// keep being signed; only the timestamps wait.
func TestHangingTSADoesNotBlockTraffic(t *testing.T) {
	ek := newEvidenceKeys(t)
	tsa, err := tsasim.New()
	if err != nil {
		t.Fatal(err)
	}
	tsa.Hang()
	tsaSrv := httptest.NewServer(tsa)
	t.Cleanup(tsaSrv.Close)
	t.Cleanup(tsa.Release)
	h := startHub(t, ek.option(func(e *EvidenceConfig) {
		e.TSAURL, e.TSATimeout, e.TSAInterval = tsaSrv.URL, time.Hour, 10*time.Millisecond
	}))
	first := ""
	for i := range 20 {
		var sub struct{ ID string }
		if st := h.call("POST", "/v1/documents", h.tokens[orgA], newDoc(orgA, []string{orgB, orgC}, fmt.Sprint(700+i)), &sub); st != http.StatusAccepted {
			t.Fatalf("submit %d with a hanging TSA: %d", i, st)
		}
		if first == "" {
			first = sub.ID
			h.waitReceipts(first, h.tokens[orgA]) // a checkpoint exists, so the TSA has been asked
		}
		h.waitStates(sub.ID, h.tokens[orgA], map[string]string{orgB: "delivered", orgC: "delivered"})
	}
	var last struct{ ID string }
	h.call("POST", "/v1/documents", h.tokens[orgA], newDoc(orgA, []string{orgC}, "799"), &last)
	h.waitStates(last.ID, h.tokens[orgA], map[string]string{orgC: "delivered"})
	r := h.waitReceipts(last.ID, h.tokens[orgA]) // checkpoints went on past the hung request
	if tsa.Hung() < 1 {
		t.Fatalf("the TSA was never asked (hung %d)", tsa.Hung())
	}
	var stamps int
	_ = h.l.Pool().QueryRow(context.Background(), `SELECT count(*) FROM log_timestamps`).Scan(&stamps)
	if stamps != 0 || tsa.Served() != 0 {
		t.Fatalf("%d timestamps from a hanging TSA", stamps)
	}
	t.Logf("21 documents delivered, checkpoint at size %d, TSA requests held: %d", r.TreeSize, tsa.Hung())
}

// hubctl log consistency: two checkpoints 1,000 events apart are
// consistent; a forged old checkpoint fails, whether signed by the hub's
// key (a rewritten history) or by another key.
func TestLogConsistencyCLI(t *testing.T) {
	ek := newEvidenceKeys(t)
	h := startHub(t, ek.option(nil))
	var sub struct{ ID string }
	if st := h.call("POST", "/v1/documents", h.tokens[orgA], newDoc(orgA, []string{orgB}, "801"), &sub); st != http.StatusAccepted {
		t.Fatalf("submit: %d", st)
	}
	h.waitStates(sub.ID, h.tokens[orgA], map[string]string{orgB: "delivered"})
	old := h.waitReceipts(sub.ID, h.tokens[orgA])
	dir := t.TempDir()
	oldPath := filepath.Join(dir, "old.txt")
	if err := os.WriteFile(oldPath, []byte(old.Checkpoint), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := h.l.Pool().Exec(context.Background(), `INSERT INTO events (document_id, recipient, kind, state, detail, at)
		SELECT $1, $2, 'note', '', jsonb_build_object('n', g), now() FROM generate_series(1, 1000) g`, sub.ID, orgB); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(60 * time.Second); ; {
		_, b, _ := h.get("/v1/log/checkpoint", h.auditor)
		if c, err := logverify.VerifyCheckpointWithCert(string(b), ek.cert); err == nil && c.Size >= old.TreeSize+1000 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the log did not grow by 1000 leaves")
		}
		time.Sleep(100 * time.Millisecond)
	}
	args := func(p, cert string) []string {
		return []string{"--server", h.api, "--token", h.auditor, "log", "consistency", "--old", p, "--hub-cert", cert}
	}
	if out, code := hubctl(t, args(oldPath, ek.certPath)...); code != 0 || !strings.Contains(out, "HỢP LỆ / VALID") {
		t.Fatalf("consistency: exit %d\n%s", code, out)
	}

	// Forged: same size, another root, signed with the hub's own key.
	cp, _ := logverify.VerifyCheckpointWithCert(old.Checkpoint, ek.cert)
	forgedRoot := sha256.Sum256([]byte("another history"))
	skey, _, _ := logverify.NoteKeys(testOrigin, ek.key)
	signer, _ := note.NewSigner(skey)
	forged := logverify.Checkpoint{Origin: cp.Origin, Size: cp.Size, Root: forgedRoot[:], Time: cp.Time}
	fb, _ := note.Sign(&note.Note{Text: forged.Body()}, signer)
	forgedPath := filepath.Join(dir, "forged.txt")
	_ = os.WriteFile(forgedPath, fb, 0o644)
	if out, code := hubctl(t, args(forgedPath, ek.certPath)...); code != 1 || !strings.Contains(out, "does not extend") {
		t.Errorf("forged old checkpoint (hub key): exit %d\n%s", code, out)
	}
	// Forged with another key under the same origin.
	_, other, _ := ed25519.GenerateKey(rand.Reader)
	okey, _, _ := logverify.NoteKeys(testOrigin, other)
	osigner, _ := note.NewSigner(okey)
	ob, _ := note.Sign(&note.Note{Text: cp.Body()}, osigner)
	otherPath := filepath.Join(dir, "other.txt")
	_ = os.WriteFile(otherPath, ob, 0o644)
	if out, code := hubctl(t, args(otherPath, ek.certPath)...); code != 1 || !strings.Contains(out, "old checkpoint") {
		t.Errorf("old checkpoint signed by another key: exit %d\n%s", code, out)
	}
}
