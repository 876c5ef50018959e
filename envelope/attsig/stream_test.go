package attsig_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"testing"
	"time"

	"lienthong/envelope"
	"lienthong/envelope/attsig"
	"lienthong/envelope/testpki"
)

// streamCorpus is one package of the attachment corpus: signed PDFs and
// detached signatures, good, tampered, by a wrong or unknown signer,
// expired, revoked, plus an orphan signature and an unsigned file. want is
// the verdict code expected per content attachment ("" valid, "-"
// unsigned).
func streamCorpus(t *testing.T, w *world) ([]att, map[string]string) {
	t.Helper()
	p := w.p
	oss := func(c *testpki.Cert, extra ...string) func([]byte) []byte {
		return func(b []byte) []byte { return w.opensslSign(t, b, c, append([]string{"-nosmimecap"}, extra...)...) }
	}
	pdf := func(sign func([]byte) []byte) []byte { return buildPDF(t, pdfOptions{}, sign) }
	goodPDF := pdf(oss(p.RSALeaf))
	tamperedPDF := bytes.Clone(goodPDF)
	i := bytes.Index(tamperedPDF, []byte("so 1"))
	tamperedPDF[i+3] = '2'
	content := bytes.Repeat([]byte("Nghị quyết TEST về thử nghiệm chữ ký số. "), 300)
	altered := bytes.Clone(content)
	altered[100] ^= 1
	var atts []att
	want := map[string]string{}
	add := func(name, code string, data []byte, sig []byte) {
		cid := fmt.Sprint(len(atts) + 1)
		ct := "application/octet-stream"
		if strings.HasSuffix(name, ".pdf") {
			ct = "application/pdf"
		}
		atts = append(atts, att{cid, name, ct, data})
		want[cid] = code
		if sig != nil {
			atts = append(atts, att{fmt.Sprint(len(atts) + 1), name + ".p7s", "application/pkcs7-signature", sig})
		}
	}
	add("good.pdf", "", goodPDF, nil)
	add("tampered.pdf", attsig.CodeContentMismatch, tamperedPDF, nil)
	add("wrong-key.pdf", attsig.CodeInvalid, pdf(func(b []byte) []byte { return goSign(t, b, p.RSALeaf.Cert, p.RSALeaf2.Key, p.Intermediate.Cert) }), nil)
	add("expired.pdf", attsig.CodeExpired, pdf(oss(p.ExpiredLeaf)), nil)
	add("revoked.pdf", attsig.CodeRevoked, pdf(oss(p.RSALeaf2)), nil)
	add("unknown.pdf", attsig.CodeUnknownSigner, pdf(oss(p.UnknownLeaf)), nil)
	add("good.docx", "", content, w.opensslSign(t, content, p.RSALeaf))
	add("good-ec.docx", "", content, w.opensslSign(t, content, p.ECLeaf384, "-md", "sha384"))
	add("good-noattr.docx", "", content, w.opensslSign(t, content, p.RSALeaf, "-noattr"))
	add("good-cades.docx", "", content, w.opensslSign(t, content, p.RSALeaf, "-cades", "-md", "sha512"))
	add("tampered.docx", attsig.CodeContentMismatch, altered, w.opensslSign(t, content, p.RSALeaf))
	add("tampered-noattr.docx", attsig.CodeInvalid, altered, w.opensslSign(t, content, p.RSALeaf, "-noattr"))
	add("wrong-key.docx", attsig.CodeInvalid, content, goSign(t, content, p.RSALeaf.Cert, p.RSALeaf2.Key, p.Intermediate.Cert))
	add("unknown.docx", attsig.CodeUnknownSigner, content, w.opensslSign(t, content, p.UnknownLeaf))
	add("expired.docx", attsig.CodeExpired, content, w.opensslSign(t, content, p.ExpiredLeaf))
	add("revoked.docx", attsig.CodeRevoked, content, w.opensslSign(t, content, p.RSALeaf2))
	add("sha1.docx", attsig.CodeSHA1, content, w.opensslSign(t, content, p.RSALeaf, "-md", "sha1"))
	add("not-cms.docx", attsig.CodeMalformed, content, []byte("not a CMS"))
	add("unsigned.txt", "-", []byte("TEST unsigned"), nil)
	atts = append(atts, att{"99", "nobody.txt.p7s", "application/pkcs7-signature", w.opensslSign(t, content, p.ECLeaf)})
	want["99"] = attsig.CodeOrphan
	return atts, want
}

// Encodings of the base64 text: plain (read from its span in the body)
// and the ones that are not plain text in the body (read by a second pass).
var streamEncodings = map[string]func(string) string{
	"LF":        mimeLF,
	"CRLF":      func(s string) string { return wrap(s, "\r\n") },
	"one line":  func(s string) string { return s },
	"CDATA":     func(s string) string { return "<![CDATA[" + mimeLF(s) + "]]>" },
	"reference": func(s string) string { return "&#" + fmt.Sprint(int(s[0])) + ";" + mimeLF(s[1:]) },
	"comment":   func(s string) string { return s[:8] + "<!-- x -->" + s[8:] },
}

// memoryVerdicts verifies raw as a small body is verified: in memory.
func memoryVerdicts(t *testing.T, w *world, raw []byte, lim attsig.Limits, now time.Time) []attsig.Verdict {
	t.Helper()
	_, atts, err := envelope.ReadAttachments(raw, envelope.Limits{})
	if err != nil {
		t.Fatal(err)
	}
	d, _ := w.store.Domain("national")
	vds, err := attsig.VerifyAttachmentsIn(context.Background(), d, now, lim, atts)
	if err != nil {
		t.Fatal(err)
	}
	return vds
}

// streamVerdicts verifies raw as a body above the blob threshold is: read
// by ParseReader, then its attachments from the body (a file read at
// offsets when asFile, else a sequential reader).
func streamVerdicts(t *testing.T, w *world, raw []byte, lim attsig.Limits, now time.Time, asFile bool) []attsig.Verdict {
	t.Helper()
	doc, err := envelope.ParseReader(bytes.NewReader(raw), int64(len(raw)), envelope.Limits{})
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	open := func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(raw)), nil }
	if asFile {
		f := filepath.Join(dir, "spool")
		if err := os.WriteFile(f, raw, 0o600); err != nil {
			t.Fatal(err)
		}
		open = func() (io.ReadCloser, error) { return os.Open(f) }
	}
	tmp := filepath.Join(dir, "tmp")
	if err := os.Mkdir(tmp, 0o700); err != nil {
		t.Fatal(err)
	}
	d, _ := w.store.Domain("national")
	vds, err := attsig.VerifyStreamIn(context.Background(), d, now, lim, doc, attsig.Body{Open: open, Size: int64(len(raw)), TempDir: tmp})
	if err != nil {
		t.Fatal(err)
	}
	if left, _ := os.ReadDir(tmp); len(left) != 0 {
		t.Fatalf("temporary files left behind: %v", left)
	}
	return vds
}

func jsonOf(t *testing.T, v any) string {
	t.Helper()
	b, err := json.MarshalIndent(v, "", " ")
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestStreamVerdictsMatchMemory: the same documents verified both ways —
// in memory, and through the streaming path (ParseReader, attachments
// decoded from the body) — give the same verdicts, codes, reasons, signers,
// chains and revocation evidence, for every encoding of the base64 and
// under tight limits (PDF and signature too large).
func TestStreamVerdictsMatchMemory(t *testing.T) {
	w := newWorld(t)
	atts, want := streamCorpus(t, w)
	for _, lim := range []attsig.Limits{{}, {MaxPDFBytes: 2000, MaxSignatureBytes: 1500}} {
		for name, enc := range streamEncodings {
			raw := edxmlEncoded(t, enc, atts...)
			mem := memoryVerdicts(t, w, raw, lim, w.p.Now)
			if lim == (attsig.Limits{}) {
				got := map[string]string{}
				for _, v := range mem {
					switch {
					case v.Outcome == attsig.OutcomeUnsigned:
						got[v.ContentID] = "-"
					case got[v.ContentID] == "":
						got[v.ContentID] = v.Code
					}
				}
				if fmt.Sprint(got) != fmt.Sprint(want) {
					t.Fatalf("%s: the corpus does not mean what it says:\n got %v\nwant %v", name, got, want)
				}
			} else if !strings.Contains(jsonOf(t, mem), attsig.CodeTooLarge) {
				t.Fatalf("%s: no too_large verdict under limits %+v", name, lim)
			}
			for _, asFile := range []bool{true, false} {
				str := streamVerdicts(t, w, raw, lim, w.p.Now, asFile)
				if m, s := jsonOf(t, mem), jsonOf(t, str); m != s {
					t.Errorf("%s (file %v, limits %+v): verdicts differ\nmemory: %s\nstream: %s", name, asFile, lim, m, s)
				}
			}
		}
	}
	// The hub's clock past a signer's expiry, the signature made while it
	// was valid: expired both ways.
	short := shortLived(t, w.p)
	content := []byte("TEST signed while valid")
	raw := edxmlWith(t, att{"1", "a.txt", "text/plain", content}, att{"2", "a.txt.p7s", "application/pkcs7-signature", w.opensslSign(t, content, short)})
	later := w.p.Now.Add(2 * time.Hour)
	mem, str := memoryVerdicts(t, w, raw, attsig.Limits{}, later), streamVerdicts(t, w, raw, attsig.Limits{}, later, true)
	if jsonOf(t, mem) != jsonOf(t, str) || mem[0].Code != attsig.CodeExpired {
		t.Fatalf("expired since signing: memory %s, stream %s", jsonOf(t, mem), jsonOf(t, str))
	}
}

// TestStreamBoundedMemory: a detached signature over a 48 MiB attachment
// and a signed PDF of 24 MiB are checked through the streaming path with a
// few MiB allocated in all (the attachments are never in the heap), and
// give the verdict of the independent signer's signature: valid.
func TestStreamBoundedMemory(t *testing.T) {
	if testing.Short() {
		t.Skip("large attachments")
	}
	w := newWorld(t)
	big := bytes.Repeat([]byte("Phụ lục TEST, dữ liệu tổng hợp. 0123456789abcdef\n"), (48<<20)/52)
	pdf := buildPDF(t, pdfOptions{Text: strings.Repeat("TEST page text ", (24<<20)/15)}, func(b []byte) []byte {
		return w.opensslSign(t, b, w.p.ECLeaf, "-nosmimecap")
	})
	raw := edxmlWith(t, att{"1", "big.bin", "application/octet-stream", big},
		att{"2", "big.bin.p7s", "application/pkcs7-signature", w.opensslSign(t, big, w.p.RSALeaf)},
		att{"3", "big.pdf", "application/pdf", pdf})
	dir := t.TempDir()
	spool := filepath.Join(dir, "spool")
	if err := os.WriteFile(spool, raw, 0o600); err != nil {
		t.Fatal(err)
	}
	size := int64(len(raw))
	raw, big, pdf = nil, nil, nil
	f, err := os.Open(spool)
	if err != nil {
		t.Fatal(err)
	}
	doc, err := envelope.ParseReader(f, size, envelope.Limits{MaxBytes: size})
	f.Close()
	if err != nil {
		t.Fatal(err)
	}
	d, _ := w.store.Domain("national")
	debug.FreeOSMemory()
	rssBefore, hwmOK := resetPeakRSS()
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	vds, err := attsig.VerifyStreamIn(context.Background(), d, w.p.Now, attsig.Limits{}, doc,
		attsig.Body{Open: func() (io.ReadCloser, error) { return os.Open(spool) }, Size: size, TempDir: dir})
	runtime.ReadMemStats(&after)
	if err != nil {
		t.Fatal(err)
	}
	if len(vds) != 2 || !attsig.AllValid(vds) || vds[0].Outcome != attsig.OutcomeValid || vds[1].Outcome != attsig.OutcomeValid {
		t.Fatalf("verdicts %s", jsonOf(t, vds))
	}
	alloc := after.TotalAlloc - before.TotalAlloc
	t.Logf("allocated %d KiB to check %d MiB of attachments", alloc>>10, (doc.Attachments[0].Size+doc.Attachments[2].Size)>>20)
	if hwmOK {
		peak := procStatus("VmHWM")
		// The decoded PDF is mapped while it is scanned (page cache, at
		// most Limits.MaxPDFBytes); nothing else grows with the attachments.
		t.Logf("peak RSS %d MiB, %d MiB above the %d MiB before (the %d MiB PDF mapped)", peak>>20, (peak-rssBefore)>>20, rssBefore>>20, doc.Attachments[2].Size>>20)
		if peak-rssBefore > doc.Attachments[2].Size+16<<20 {
			t.Fatalf("peak RSS grew by %d bytes", peak-rssBefore)
		}
	}
	if alloc > 8<<20 {
		t.Fatalf("allocated %d bytes: the attachments went through the heap", alloc)
	}
}

// resetPeakRSS resets the process's peak RSS (Linux: clear_refs 5) and
// returns the current RSS; ok is false where that is not possible.
func resetPeakRSS() (rss int64, ok bool) {
	if err := os.WriteFile("/proc/self/clear_refs", []byte("5"), 0); err != nil {
		return 0, false
	}
	rss = procStatus("VmRSS")
	return rss, rss > 0
}

// procStatus returns a "kB" field of /proc/self/status in bytes.
func procStatus(field string) int64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, field+":"); ok {
			n, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			return n << 10
		}
	}
	return 0
}

// TestStreamSignatureLongerThanParsed: a body whose detached signature
// decodes to more bytes than ParseReader saw (its whitespace replaced by
// base64 after the parse) is an error, not a signature cut at size+1.
func TestStreamSignatureLongerThanParsed(t *testing.T) {
	w := newWorld(t)
	sig := bytes.Repeat([]byte{0x30}, 30)
	// Four spaces after each group of the signature's base64 only (the
	// content's "aGVsbG8=" is left as it is).
	spaced := func(b64 string) string {
		if len(b64) <= 8 {
			return b64
		}
		var b strings.Builder
		for len(b64) > 4 {
			b.WriteString(b64[:4] + "    ")
			b64 = b64[4:]
		}
		b.WriteString(b64)
		return b.String()
	}
	raw := edxmlEncoded(t, spaced, att{"1", "a.txt", "text/plain", []byte("hello")},
		att{"2", "a.txt.p7s", "application/pkcs7-signature", sig})
	doc, err := envelope.ParseReader(bytes.NewReader(raw), int64(len(raw)), envelope.Limits{})
	if err != nil {
		t.Fatal(err)
	}
	changed := bytes.ReplaceAll(raw, []byte("    "), []byte("QUFB"))
	open := func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(changed)), nil }
	d, _ := w.store.Domain("national")
	_, err = attsig.VerifyStreamIn(context.Background(), d, time.Now(), attsig.Limits{}, doc,
		attsig.Body{Open: open, Size: int64(len(changed)), TempDir: t.TempDir()})
	if err == nil {
		t.Fatal("a signature decoded longer than ParseReader saw was accepted")
	}
}

// TestStreamEmptyContentNotPlain: a signed attachment whose text is only a
// comment (empty, and not plain text in the body) gets the same verdicts
// as in memory, not an error for an attachment "not decoded".
func TestStreamEmptyContentNotPlain(t *testing.T) {
	w := newWorld(t)
	enc := func(b64 string) string {
		if b64 == "" {
			return " <!-- nothing --> "
		}
		return b64
	}
	raw := edxmlEncoded(t, enc, att{"1", "a.txt", "text/plain", nil},
		att{"2", "a.txt.p7s", "application/pkcs7-signature", w.opensslSign(t, []byte{}, w.p.RSALeaf, "-nosmimecap")})
	now := time.Now()
	for _, asFile := range []bool{false, true} {
		m := jsonOf(t, memoryVerdicts(t, w, raw, attsig.Limits{}, now))
		s := jsonOf(t, streamVerdicts(t, w, raw, attsig.Limits{}, now, asFile))
		if m != s {
			t.Errorf("file %v: verdicts differ\nmemory: %s\nstream: %s", asFile, m, s)
		}
	}
}
