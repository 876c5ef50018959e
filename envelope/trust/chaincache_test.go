package trust

import (
	"crypto/x509"
	"errors"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"lienthong/envelope/testpki"
)

var cachePKI = sync.OnceValues(func() (*testpki.PKI, error) { return testpki.New(time.Now()) })

func cpki(t *testing.T) *testpki.PKI {
	t.Helper()
	p, err := cachePKI()
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func cacheStats() (hits, misses int) {
	chainCache.mu.Lock()
	defer chainCache.mu.Unlock()
	return chainCache.hits, chainCache.misses
}

// reparse returns a new *x509.Certificate with c's DER, as the next
// document of the same signer gives.
func reparse(t *testing.T, c *x509.Certificate) *x509.Certificate {
	t.Helper()
	n, err := x509.ParseCertificate(c.Raw)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func issue(t *testing.T, p *testpki.PKI, issuer *testpki.Cert, o testpki.LeafOptions) *testpki.Cert {
	t.Helper()
	c, err := p.Issue(issuer, o)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestChainCacheServesTheSameSigner(t *testing.T) {
	p := cpki(t)
	d := &Domain{Name: t.Name(), Policy: PolicyRequire, Roots: []*x509.Certificate{p.Root.Cert}}
	h0, m0 := cacheStats()
	if _, err := d.VerifyChain(p.RSALeaf.Cert, p.Chain(p.RSALeaf)[1:], p.Now); err != nil {
		t.Fatal(err)
	}
	// The next document carries the same certificates, parsed again.
	leaf, inter := reparse(t, p.RSALeaf.Cert), reparse(t, p.Intermediate.Cert)
	chains, err := d.VerifyChain(leaf, []*x509.Certificate{inter}, p.Now.Add(time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	h1, m1 := cacheStats()
	if h1-h0 != 1 || m1-m0 != 1 {
		t.Fatalf("cache hits/misses +%d/+%d, want +1/+1", h1-h0, m1-m0)
	}
	// The chain is made of the caller's certificates, not the first call's.
	if len(chains) != 1 || len(chains[0]) != 3 || chains[0][0] != leaf || chains[0][1] != inter || chains[0][2] != p.Root.Cert {
		t.Fatalf("chain %v, want [leaf inter root] of this call", chains)
	}
	// Callers may keep or change the slices they get.
	chains[0][0] = nil
	again, err := d.VerifyChain(leaf, []*x509.Certificate{inter}, p.Now)
	if err != nil || again[0][0] != leaf {
		t.Fatalf("second hit: %v, %v", again, err)
	}
}

func TestChainCacheRespectsValidityAtMovedClock(t *testing.T) {
	p := cpki(t)
	now := p.Now
	// An intermediate valid for ten days and one valid from an hour on; the
	// leaves under them are valid for a year.
	shortCA := issue(t, p, p.Root, testpki.LeafOptions{Name: "TEST short-lived CA", IsCA: true, NotAfter: now.Add(10 * 24 * time.Hour)})
	lateCA := issue(t, p, p.Root, testpki.LeafOptions{Name: "TEST later CA", IsCA: true, NotBefore: now.Add(time.Hour)})
	shortLeaf := issue(t, p, shortCA, testpki.LeafOptions{})
	lateLeaf := issue(t, p, lateCA, testpki.LeafOptions{})
	briefLeaf := issue(t, p, p.Intermediate, testpki.LeafOptions{NotAfter: now.Add(24 * time.Hour)})
	for _, tc := range []struct {
		name        string
		leaf, inter *testpki.Cert
		first, then time.Time
		want        error
	}{
		{"intermediate expired since", shortLeaf, shortCA, now, now.Add(20 * 24 * time.Hour), ErrExpired},
		{"intermediate still valid", shortLeaf, shortCA, now, now.Add(9 * 24 * time.Hour), nil},
		{"intermediate not yet valid when the clock goes back", lateLeaf, lateCA, now.Add(2 * time.Hour), now, ErrNotYetValid},
		{"leaf expired since", briefLeaf, p.Intermediate, now, now.Add(48 * time.Hour), ErrExpired},
		{"leaf not yet valid when the clock goes back", briefLeaf, p.Intermediate, now, now.Add(-2 * time.Hour), ErrNotYetValid},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := &Domain{Name: t.Name(), Policy: PolicyRequire, Roots: []*x509.Certificate{p.Root.Cert}}
			inter := []*x509.Certificate{tc.inter.Cert}
			if _, err := d.VerifyChain(tc.leaf.Cert, inter, tc.first); err != nil {
				t.Fatalf("first: %v", err)
			}
			_, err := d.VerifyChain(tc.leaf.Cert, inter, tc.then)
			if tc.want == nil && err != nil || tc.want != nil && !errors.Is(err, tc.want) {
				t.Fatalf("at the moved clock: %v, want %v", err, tc.want)
			}
			// And the cached entry still serves the first time.
			if _, err := d.VerifyChain(tc.leaf.Cert, inter, tc.first); err != nil {
				t.Fatalf("first time again: %v", err)
			}
		})
	}
}

func TestChainCacheDifferentIntermediate(t *testing.T) {
	p := cpki(t)
	// Two CAs with the same name and different keys: the leaf is issued by a.
	a := issue(t, p, p.Root, testpki.LeafOptions{Name: "TEST twin CA", IsCA: true})
	b := issue(t, p, p.Root, testpki.LeafOptions{Name: "TEST twin CA", IsCA: true})
	leaf := issue(t, p, a, testpki.LeafOptions{})
	d := &Domain{Name: t.Name(), Policy: PolicyRequire, Roots: []*x509.Certificate{p.Root.Cert}}
	if _, err := d.VerifyChain(leaf.Cert, []*x509.Certificate{a.Cert}, p.Now); err != nil {
		t.Fatal(err)
	}
	for name, inter := range map[string][]*x509.Certificate{
		"twin":  {b.Cert},
		"none":  {},
		"other": {p.Intermediate.Cert},
	} {
		if _, err := d.VerifyChain(leaf.Cert, inter, p.Now); !errors.Is(err, ErrUnknownSigner) {
			t.Errorf("%s intermediate: %v, want ErrUnknownSigner", name, err)
		}
	}
	// A leaf the cache has not seen under a cached intermediate.
	if _, err := d.VerifyChain(p.UnknownLeaf.Cert, []*x509.Certificate{a.Cert}, p.Now); !errors.Is(err, ErrUnknownSigner) {
		t.Errorf("unknown leaf: %v", err)
	}
}

func TestChainCacheReloadedDomain(t *testing.T) {
	p := cpki(t)
	name := t.Name()
	leaf, inter := p.RSALeaf.Cert, p.Chain(p.RSALeaf)[1:]
	d := &Domain{Name: name, Policy: PolicyRequire, Roots: []*x509.Certificate{p.Root.Cert}}
	if _, err := d.VerifyChain(leaf, inter, p.Now); err != nil {
		t.Fatal(err)
	}
	// Same name, other anchors: the cached chain must not be served.
	other := &Domain{Name: name, Policy: PolicyRequire, Roots: []*x509.Certificate{p.UnknownRoot.Cert}}
	if _, err := other.VerifyChain(leaf, inter, p.Now); !errors.Is(err, ErrUnknownSigner) {
		t.Fatalf("domain with other anchors: %v, want ErrUnknownSigner", err)
	}
	// The same anchors parsed again (a reload that changed nothing) are the
	// same anchors.
	h0, _ := cacheStats()
	same := &Domain{Name: name, Policy: PolicyRequire, Roots: []*x509.Certificate{reparse(t, p.Root.Cert)}}
	chains, err := same.VerifyChain(leaf, inter, p.Now)
	if err != nil {
		t.Fatal(err)
	}
	if h1, _ := cacheStats(); h1-h0 != 1 || chains[0][2] != same.Roots[0] {
		t.Fatalf("reparsed anchors: hits +%d, anchor %p want %p", h1-h0, chains[0][2], same.Roots[0])
	}

	// A --trust-dir reload: the directory now trusts another CA only.
	dir := t.TempDir()
	write := func(c *testpki.Cert) {
		if err := os.WriteFile(filepath.Join(dir, "agency.pem"), c.CertPEM(), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	load := func() *Domain {
		s, err := LoadDir(dir)
		if err != nil {
			t.Fatal(err)
		}
		d, _ := s.Domain("agency")
		return d
	}
	write(p.Root)
	if _, err := load().VerifyChain(leaf, inter, p.Now); err != nil {
		t.Fatal(err)
	}
	write(p.UnknownRoot)
	if _, err := load().VerifyChain(leaf, inter, p.Now); !errors.Is(err, ErrUnknownSigner) {
		t.Fatalf("after reload: %v, want ErrUnknownSigner", err)
	}
}

func TestChainLRUIsBounded(t *testing.T) {
	p := cpki(t)
	l := newChainLRU(2)
	roots := []*x509.Certificate{p.Root.Cert}
	inter := p.Chain(p.RSALeaf)[1:]
	leaves := []*x509.Certificate{p.RSALeaf.Cert, p.RSALeaf2.Cert, p.ECLeaf.Cert}
	key := func(i int) chainKey { return chainKeyOf("d", leaves[i], inter) }
	for i := range leaves {
		l.put(key(i), roots, leaves[i], inter, [][]*x509.Certificate{{leaves[i], inter[0], roots[0]}})
		if i == 1 {
			l.get(key(0), roots, leaves[0], inter, p.Now) // 0 is now the most recent
		}
	}
	if l.ll.Len() != 2 || len(l.items) != 2 {
		t.Fatalf("%d entries, want 2", l.ll.Len())
	}
	for i, want := range []bool{true, false, true} {
		if _, ok := l.get(key(i), roots, leaves[i], inter, p.Now); ok != want {
			t.Errorf("leaf %d cached %v, want %v", i, ok, want)
		}
	}
	// A chain with a certificate that is none of the inputs is not cached.
	l.put(key(1), roots, leaves[1], inter, [][]*x509.Certificate{{leaves[1], p.UnknownRoot.Cert}})
	if _, ok := l.get(key(1), roots, leaves[1], inter, p.Now); ok {
		t.Error("chain with a foreign certificate was cached")
	}
}

// TestChainCacheConcurrent: documents verified in parallel (run with -race)
// share the cache; every result is a chain of the caller's certificates.
func TestChainCacheConcurrent(t *testing.T) {
	p := cpki(t)
	d := &Domain{Name: t.Name(), Policy: PolicyRequire, Roots: []*x509.Certificate{p.Root.Cert}}
	leaves := []*x509.Certificate{p.RSALeaf.Cert, p.RSALeaf2.Cert, p.ECLeaf.Cert}
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for g := range 8 {
		wg.Go(func() {
			for i := range 40 {
				leaf := leaves[(g+i)%len(leaves)]
				inter := []*x509.Certificate{p.Intermediate.Cert}
				chains, err := d.VerifyChain(leaf, inter, p.Now.Add(time.Duration(i)*time.Minute))
				if err != nil {
					errs <- err
					return
				}
				if chains[0][0] != leaf || chains[0][1] != inter[0] {
					errs <- errors.New("chain of another call's certificates")
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}
