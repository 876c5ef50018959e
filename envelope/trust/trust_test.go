package trust_test

import (
	"context"
	"crypto/x509"
	"errors"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"lienthong/envelope/testpki"
	"lienthong/envelope/trust"
)

var testPKI = sync.OnceValues(func() (*testpki.PKI, error) { return testpki.New(time.Now()) })

func pki(t *testing.T) *testpki.PKI {
	t.Helper()
	p, err := testPKI()
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func TestVerifyChain(t *testing.T) {
	p := pki(t)
	d := &trust.Domain{Name: "national", Policy: trust.PolicyRequire, Roots: []*x509.Certificate{p.Root.Cert}}
	now := p.Now
	for _, tc := range []struct {
		name  string
		leaf  *testpki.Cert
		inter []*x509.Certificate
		at    time.Time
		want  error // nil: valid
	}{
		{"RSA signer", p.RSALeaf, nil, now, nil},
		{"ECDSA signer, no EKU", p.ECLeaf, nil, now, nil},
		{"nonRepudiation only", p.ECLeaf384, nil, now, nil},
		{"expired", p.ExpiredLeaf, nil, now, trust.ErrExpired},
		{"not yet valid", p.FutureLeaf, nil, now, trust.ErrNotYetValid},
		{"valid signer checked after it expires", p.RSALeaf, nil, now.Add(2 * 365 * 24 * time.Hour), trust.ErrExpired},
		{"keyEncipherment only", p.KeyEncLeaf, nil, now, trust.ErrKeyUsage},
		{"serverAuth only", p.ServerLeaf, nil, now, trust.ErrKeyUsage},
		{"RSA-1024", p.WeakRSALeaf, nil, now, trust.ErrWeakKey},
		{"unknown CA", p.UnknownLeaf, []*x509.Certificate{p.UnknownRoot.Cert}, now, trust.ErrUnknownSigner},
		{"intermediate missing", p.RSALeaf, []*x509.Certificate{}, now, trust.ErrUnknownSigner},
	} {
		t.Run(tc.name, func(t *testing.T) {
			inter := tc.inter
			if inter == nil {
				inter = p.Chain(tc.leaf)[1:]
			}
			chains, err := d.VerifyChain(tc.leaf.Cert, inter, tc.at)
			if tc.want == nil {
				if err != nil {
					t.Fatalf("VerifyChain: %v", err)
				}
				c := chains[0]
				if len(c) != 3 || !c[0].Equal(tc.leaf.Cert) || !c[2].Equal(p.Root.Cert) {
					t.Fatalf("chain of %d", len(c))
				}
				return
			}
			if !errors.Is(err, tc.want) {
				t.Fatalf("got %v, want %v", err, tc.want)
			}
		})
	}
}

func TestVerifyChainRefusesWithoutClockOrAnchors(t *testing.T) {
	p := pki(t)
	d := &trust.Domain{Name: "d", Policy: trust.PolicyRequire, Roots: []*x509.Certificate{p.Root.Cert}}
	if _, err := d.VerifyChain(p.RSALeaf.Cert, p.Chain(p.RSALeaf)[1:], time.Time{}); err == nil {
		t.Error("zero time accepted")
	}
	empty := &trust.Domain{Name: "empty", Policy: trust.PolicyRequire}
	if _, err := empty.VerifyChain(p.RSALeaf.Cert, p.Chain(p.RSALeaf)[1:], p.Now); !errors.Is(err, trust.ErrNoAnchors) {
		t.Errorf("got %v", err)
	}
}

func TestServerAuthAllowedWhenConfigured(t *testing.T) {
	p := pki(t)
	d := &trust.Domain{Name: "hub", Policy: trust.PolicyRequire, Roots: []*x509.Certificate{p.Root.Cert},
		ExtKeyUsages: append([]x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}, trust.DefaultExtKeyUsages...)}
	if _, err := d.VerifyChain(p.ServerLeaf.Cert, p.Chain(p.ServerLeaf)[1:], p.Now); err != nil {
		t.Fatal(err)
	}
}

type revFunc func(context.Context, []*x509.Certificate, time.Time) error

func (f revFunc) CheckRevocation(ctx context.Context, c []*x509.Certificate, at time.Time) error {
	return f(ctx, c, at)
}

func TestCheckRevocation(t *testing.T) {
	d := &trust.Domain{Name: "d"}
	if err := d.CheckRevocation(context.Background(), nil, time.Now()); err != nil {
		t.Fatalf("no checker: %v", err)
	}
	d.Revocation = revFunc(func(context.Context, []*x509.Certificate, time.Time) error {
		return trust.ErrRevoked
	})
	if err := d.CheckRevocation(context.Background(), nil, time.Now()); !errors.Is(err, trust.ErrRevoked) {
		t.Fatalf("got %v", err)
	}
}

func TestLoadDir(t *testing.T) {
	p := pki(t)
	dir := t.TempDir()
	write := func(rel string, b []byte) {
		t.Helper()
		path := filepath.Join(dir, rel)
		if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write("national/root.pem", p.Root.CertPEM())
	write("national/other.crt", p.UnknownRoot.CertPEM())
	write("axis/root.pem", p.Root.CertPEM())
	write("axis/policy", []byte("record\n"))
	write("hub.pem", append(p.Root.CertPEM(), p.Root.CertPEM()...)) // duplicate kept once
	write("README.txt", []byte("ignored"))

	s, err := trust.LoadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if got := s.Names(); len(got) != 3 || got[0] != "axis" || got[1] != "hub" || got[2] != "national" {
		t.Fatalf("names %v", got)
	}
	for name, want := range map[string]struct {
		policy trust.Policy
		roots  int
	}{"national": {trust.PolicyRequire, 2}, "axis": {trust.PolicyRecord, 1}, "hub": {trust.PolicyRequire, 1}} {
		d, ok := s.Domain(name)
		if !ok || d.Policy != want.policy || len(d.Roots) != want.roots {
			t.Errorf("%s: %+v", name, d)
		}
	}

	bad := t.TempDir()
	if err := os.MkdirAll(filepath.Join(bad, "x"), 0o700); err != nil {
		t.Fatal(err)
	}
	_ = os.WriteFile(filepath.Join(bad, "x", "policy"), []byte("maybe"), 0o600)
	_ = os.WriteFile(filepath.Join(bad, "x", "root.pem"), p.Root.CertPEM(), 0o600)
	if _, err := trust.LoadDir(bad); err == nil {
		t.Error("unknown policy accepted")
	}
}

func TestAddPEMRefusesKeys(t *testing.T) {
	p := pki(t)
	s := trust.NewStore()
	if err := s.AddPEM("d", trust.PolicyRequire, p.RSALeaf.KeyPEM()); err == nil {
		t.Error("private key accepted as a trust anchor")
	}
	if err := s.AddPEM("d", trust.PolicyRequire, []byte("not pem")); err == nil {
		t.Error("empty input accepted")
	}
	if err := s.AddPEM("d", "", p.Root.CertPEM()); err != nil {
		t.Fatal(err)
	}
	before, _ := s.Domain("d")
	if err := s.AddPEM("d", trust.PolicyRecord, p.UnknownRoot.CertPEM()); err != nil {
		t.Fatal(err)
	}
	after, _ := s.Domain("d")
	if len(before.Roots) != 1 || before.Policy != trust.PolicyRequire || len(after.Roots) != 2 || after.Policy != trust.PolicyRecord {
		t.Errorf("before %+v after %+v", before, after)
	}
}
