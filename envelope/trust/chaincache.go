package trust

import (
	"container/list"
	"crypto/sha256"
	"crypto/x509"
	"encoding/binary"
	"sync"
	"time"
)

// The chain cache remembers the chains VerifyChain built and validated, so
// that the accept path does not rebuild and re-check (RSA signatures of the
// intermediates and anchors) the same chain for every document of a signer.
//
// An entry is keyed by the domain's name and a SHA-256 over the leaf and the
// intermediates (their DER, in order), and holds:
//   - the domain's anchors it was validated against: a hit needs the
//     domain's current Roots to be the same certificates in the same order
//     (pointer or DER equality), so a reloaded or changed domain never sees a
//     result computed with other anchors;
//   - the intersection of the validity windows of every certificate of every
//     chain: a hit needs at inside it, otherwise the chain is verified again
//     (and the error, if any, is the one crypto/x509 gives);
//   - the chains as positions (leaf, intermediate i, anchor j), rebuilt with
//     the caller's certificates on a hit.
//
// Only successes are cached; the leaf's own checks (key usage, extended key
// usage against the domain, key strength, validity) run on every call, and
// revocation is never part of it (CheckRevocation runs every time).
const chainCacheSize = 1024

var chainCache = newChainLRU(chainCacheSize)

type chainKey struct {
	domain string
	certs  [sha256.Size]byte
}

// certRef is a position in the inputs of VerifyChain: -1 the leaf, 0..n-1
// intermediates[i], and rootBase+j the domain's Roots[j].
type certRef int

const rootBase certRef = 1 << 20

type chainEntry struct {
	key       chainKey
	roots     []*x509.Certificate
	notBefore time.Time // latest NotBefore of the chains' certificates
	notAfter  time.Time // earliest NotAfter
	chains    [][]certRef
}

type chainLRU struct {
	mu    sync.Mutex
	max   int
	ll    *list.List // of *chainEntry, most recent first
	items map[chainKey]*list.Element
	// hits and misses count lookups (for tests and profiles).
	hits, misses int
}

func newChainLRU(n int) *chainLRU {
	return &chainLRU{max: n, ll: list.New(), items: map[chainKey]*list.Element{}}
}

func chainKeyOf(domain string, leaf *x509.Certificate, intermediates []*x509.Certificate) chainKey {
	h := sha256.New()
	var n [8]byte
	for _, c := range append([]*x509.Certificate{leaf}, intermediates...) {
		binary.BigEndian.PutUint64(n[:], uint64(len(c.Raw)))
		h.Write(n[:])
		h.Write(c.Raw)
	}
	k := chainKey{domain: domain}
	h.Sum(k.certs[:0])
	return k
}

// get returns the cached chains for k, rebuilt with leaf, intermediates and
// roots, if an entry exists for the same anchors and at is inside its
// window.
func (l *chainLRU) get(k chainKey, roots []*x509.Certificate, leaf *x509.Certificate, intermediates []*x509.Certificate, at time.Time) ([][]*x509.Certificate, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	el, ok := l.items[k]
	if !ok {
		l.misses++
		return nil, false
	}
	e := el.Value.(*chainEntry)
	if !sameCerts(e.roots, roots) || at.Before(e.notBefore) || at.After(e.notAfter) {
		l.misses++
		return nil, false
	}
	l.ll.MoveToFront(el)
	l.hits++
	out := make([][]*x509.Certificate, len(e.chains))
	for i, refs := range e.chains {
		ch := make([]*x509.Certificate, len(refs))
		for j, r := range refs {
			switch {
			case r < 0:
				ch[j] = leaf
			case r >= rootBase:
				ch[j] = roots[r-rootBase]
			default:
				ch[j] = intermediates[r]
			}
		}
		out[i] = ch
	}
	return out, true
}

// put records chains, validated for leaf and intermediates against roots.
// Chains holding a certificate that is none of the inputs are not cached.
func (l *chainLRU) put(k chainKey, roots []*x509.Certificate, leaf *x509.Certificate, intermediates []*x509.Certificate, chains [][]*x509.Certificate) {
	if len(chains) == 0 {
		return
	}
	e := &chainEntry{key: k, roots: append([]*x509.Certificate(nil), roots...), chains: make([][]certRef, len(chains))}
	first := true
	for i, ch := range chains {
		refs := make([]certRef, len(ch))
		for j, c := range ch {
			r, ok := refOf(c, leaf, intermediates, roots)
			if !ok {
				return
			}
			refs[j] = r
			if first || c.NotBefore.After(e.notBefore) {
				e.notBefore = c.NotBefore
			}
			if first || c.NotAfter.Before(e.notAfter) {
				e.notAfter = c.NotAfter
			}
			first = false
		}
		e.chains[i] = refs
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if el, ok := l.items[k]; ok {
		el.Value = e
		l.ll.MoveToFront(el)
		return
	}
	l.items[k] = l.ll.PushFront(e)
	for l.ll.Len() > l.max {
		last := l.ll.Back()
		l.ll.Remove(last)
		delete(l.items, last.Value.(*chainEntry).key)
	}
}

func refOf(c, leaf *x509.Certificate, intermediates, roots []*x509.Certificate) (certRef, bool) {
	if c == leaf {
		return -1, true
	}
	for i, x := range intermediates {
		if c == x {
			return certRef(i), true
		}
	}
	for j, x := range roots {
		if c == x {
			return rootBase + certRef(j), true
		}
	}
	return 0, false
}

func sameCerts(a, b []*x509.Certificate) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] && !a[i].Equal(b[i]) {
			return false
		}
	}
	return true
}
