package dsig_test

import (
	"bytes"
	"context"
	"io"
	"slices"
	"testing"
	"testing/iotest"

	"lienthong/envelope/dsig"
)

// verifyStream runs the streaming verifier over raw, handing the bytes out
// in small reads so that every token boundary is also a read boundary.
func verifyStream(v *dsig.Verifier, raw []byte, domain string, opts dsig.Options) (*dsig.Report, error) {
	passes := 0
	return v.VerifyStream(context.Background(), func(int) (io.Reader, error) {
		passes++
		return iotest.HalfReader(bytes.NewReader(raw)), nil
	}, domain, opts)
}

// sameAsInMemory checks that the streaming path (VerifyStream) and the
// bytes path (VerifyBytes) give the tree path's (Verify) verdict on raw: the
// same code (or none) and, when valid, the same signer and algorithms.
func sameAsInMemory(t *testing.T, v *dsig.Verifier, raw []byte, domain string, opts dsig.Options) {
	t.Helper()
	mrep, _, merr := v.Verify(context.Background(), raw, domain, opts)
	srep, serr := verifyStream(v, raw, domain, opts)
	sameReport(t, "streaming", mrep, merr, srep, serr)
	sameAsTree(t, v, raw, domain, opts)
}

// sameAsTree checks that VerifyBytes gives Verify's verdict and report on
// raw, and that a valid verdict comes without a tree exactly when the token
// path served (see VerifyBytes).
func sameAsTree(t *testing.T, v *dsig.Verifier, raw []byte, domain string, opts dsig.Options) {
	t.Helper()
	mrep, mel, merr := v.Verify(context.Background(), raw, domain, opts)
	brep, bel, berr := v.VerifyBytes(context.Background(), raw, domain, opts)
	sameReport(t, "bytes", mrep, merr, brep, berr)
	if (mel == nil) != (bel == nil) && !(mel != nil && bel == nil && brep.Embedded == nil) {
		t.Fatalf("tree %v, bytes %v (embedded report %v)", mel, bel, brep.Embedded)
	}
	if brep != nil && brep.Embedded != nil && bel == nil && brep.Outcome == dsig.OutcomeValid {
		t.Fatal("an embedded signature was verified without the tree path")
	}
}

func sameReport(t *testing.T, path string, mrep *dsig.Report, merr error, srep *dsig.Report, serr error) {
	t.Helper()
	if dsig.CodeOf(merr) != dsig.CodeOf(serr) || (merr == nil) != (serr == nil) {
		t.Fatalf("in memory %s, %s %s", fmtCodes(merr), path, fmtCodes(serr))
	}
	if mrep == nil || srep == nil {
		if (mrep == nil) != (srep == nil) {
			t.Fatalf("reports: in memory %v, %s %v", mrep, path, srep)
		}
		return
	}
	if mrep.Outcome != srep.Outcome || mrep.Code != srep.Code || mrep.Algorithm != srep.Algorithm ||
		mrep.C14N != srep.C14N || mrep.Digest != srep.Digest || mrep.Reference != srep.Reference ||
		mrep.DigestValue != srep.DigestValue || !slices.Equal(mrep.Warnings, srep.Warnings) {
		t.Fatalf("reports differ:\nin memory %+v\n%s %+v", mrep, path, srep)
	}
	if (mrep.Signer == nil) != (srep.Signer == nil) || mrep.Signer != nil && !mrep.Signer.Equal(srep.Signer) {
		t.Fatal("signers differ")
	}
	if len(mrep.Chain) != len(srep.Chain) {
		t.Fatalf("chains of %d and %d certificates", len(mrep.Chain), len(srep.Chain))
	}
}

func TestVerifyStreamAcceptsWhatVerifyAccepts(t *testing.T) {
	p := pki(t)
	v := newVerifier(t)
	for _, c := range []struct {
		name string
		raw  []byte
	}{
		{"RSA", signed(t, p.RSALeaf, 500)},
		{"ECDSA", signed(t, p.ECLeaf, 500)},
		{"ECDSA P-384, large attachment", signed(t, p.ECLeaf384, 3<<20)},
		{"unsigned", edxml("", 100)},
	} {
		t.Run(c.name, func(t *testing.T) {
			sameAsInMemory(t, v, c.raw, domainRequire, edxmlOpts)
			sameAsInMemory(t, v, c.raw, domainRecord, edxmlOpts)
		})
	}
}

func TestVerifyStreamRefusesAnotherDomainsSigner(t *testing.T) {
	v := newVerifier(t)
	if _, err := verifyStream(v, signed(t, pki(t).RSALeaf, 10), "nope", edxmlOpts); err == nil || dsig.CodeOf(err) != "" {
		t.Fatalf("unknown domain: %v", err)
	}
}

// FuzzVerifyStream: on any input, the streaming verifier gives the verdict
// (code) of the in-memory one.
func FuzzVerifyStream(f *testing.F) {
	p := pki(f)
	f.Add(signed(f, p.RSALeaf, 200))
	f.Add(signed(f, p.ECLeaf, 50))
	f.Add(edxml("", 10))
	v := newVerifier(f)
	f.Fuzz(func(t *testing.T, raw []byte) {
		sameAsInMemory(t, v, raw, domainRecord, edxmlOpts)
	})
}
