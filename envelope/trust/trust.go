package trust

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"
)

// Policy says what the hub does when a document of a domain carries no
// verifiable signature.
type Policy string

const (
	// PolicyRequire: a missing or placeholder signature is a rejection.
	PolicyRequire Policy = "require"
	// PolicyRecord: a missing or placeholder signature is recorded in the
	// verification report and the document goes on. A signature that is
	// present is still verified, and a bad one is still an error.
	PolicyRecord Policy = "record"
)

// Valid reports whether p is a known policy.
func (p Policy) Valid() bool { return p == PolicyRequire || p == PolicyRecord }

// Errors returned (wrapped) by VerifyChain and CheckRevocation. Branch on them
// with errors.Is.
var (
	ErrNoAnchors     = errors.New("trust domain has no anchors")
	ErrUnknownSigner = errors.New("certificate chain does not reach a trust anchor")
	ErrExpired       = errors.New("certificate expired")
	ErrNotYetValid   = errors.New("certificate not yet valid")
	ErrKeyUsage      = errors.New("certificate not allowed for signing")
	ErrWeakKey       = errors.New("certificate key type or size not allowed")
	// ErrRevoked is what a RevocationChecker wraps when a certificate of the
	// chain is revoked. Any other checker error means "could not decide".
	ErrRevoked = errors.New("certificate revoked")
)

// RevocationChecker decides whether a validated chain (leaf first, anchor
// last) is revoked at the given time. It returns an error wrapping
// ErrRevoked for a revoked certificate; any other error means the status
// could not be established (the caller treats that as a temporary failure).
type RevocationChecker interface {
	CheckRevocation(ctx context.Context, chain []*x509.Certificate, at time.Time) error
}

// DefaultExtKeyUsages are the extended key usages a signer certificate may
// carry when the domain does not say otherwise. A certificate without the
// extension is accepted too.
var DefaultExtKeyUsages = []x509.ExtKeyUsage{
	x509.ExtKeyUsageAny,
	x509.ExtKeyUsageEmailProtection,
	x509.ExtKeyUsageCodeSigning,
}

// Domain is one trust domain: the anchors that signer chains must reach and
// the policy for unsigned documents.
type Domain struct {
	Name   string
	Roots  []*x509.Certificate
	Policy Policy
	// ExtKeyUsages lists the extended key usages accepted on a signer
	// certificate that has the extension; nil means DefaultExtKeyUsages.
	// (The hub's own domain may add ExtKeyUsageServerAuth when the hub signs
	// with its TLS certificate.)
	ExtKeyUsages []x509.ExtKeyUsage
	// Revocation, when set, is called for every validated chain.
	Revocation RevocationChecker
}

// VerifyChain builds and validates the chain from leaf to one of the domain's
// anchors at time at, which must come from the hub's clock (never from the
// document). It checks what crypto/x509 does not: the leaf's key usage
// (digitalSignature or nonRepudiation), its extended key usages and the key
// strength. It does not check revocation (see CheckRevocation).
//
// Validated chains are cached (see chaincache.go): a later call for the same
// leaf and intermediates, with the same anchors and at inside every
// certificate's validity window, returns them without verifying again.
func (d *Domain) VerifyChain(leaf *x509.Certificate, intermediates []*x509.Certificate, at time.Time) ([][]*x509.Certificate, error) {
	if leaf == nil {
		return nil, errors.New("trust: no leaf certificate")
	}
	if at.IsZero() {
		return nil, errors.New("trust: verification time not set")
	}
	if len(d.Roots) == 0 {
		return nil, fmt.Errorf("trust: domain %q: %w", d.Name, ErrNoAnchors)
	}
	if err := validAt(leaf, at); err != nil {
		return nil, err
	}
	if leaf.KeyUsage&(x509.KeyUsageDigitalSignature|x509.KeyUsageContentCommitment) == 0 {
		return nil, fmt.Errorf("trust: %w: key usage lacks digitalSignature and nonRepudiation (%s)", ErrKeyUsage, subject(leaf))
	}
	if err := d.checkEKU(leaf); err != nil {
		return nil, err
	}
	if err := checkKey(leaf); err != nil {
		return nil, err
	}
	key := chainKeyOf(d.Name, leaf, intermediates)
	if chains, ok := chainCache.get(key, d.Roots, leaf, intermediates, at); ok {
		return chains, nil
	}
	roots := x509.NewCertPool()
	for _, c := range d.Roots {
		roots.AddCert(c)
	}
	inter := x509.NewCertPool()
	for _, c := range intermediates {
		inter.AddCert(c)
	}
	chains, err := leaf.Verify(x509.VerifyOptions{
		Roots:         roots,
		Intermediates: inter,
		CurrentTime:   at,
		// Never leave empty: crypto/x509 then means ServerAuth. The leaf's
		// own EKUs were checked above.
		KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny},
	})
	if err != nil {
		return nil, classifyChainErr(d.Name, err, intermediates, at)
	}
	chainCache.put(key, d.Roots, leaf, intermediates, chains)
	return chains, nil
}

// CheckRevocation runs the domain's revocation checker on chain, if one is
// configured.
func (d *Domain) CheckRevocation(ctx context.Context, chain []*x509.Certificate, at time.Time) error {
	if d.Revocation == nil {
		return nil
	}
	if err := d.Revocation.CheckRevocation(ctx, chain, at); err != nil {
		return fmt.Errorf("trust: revocation: %w", err)
	}
	return nil
}

func (d *Domain) checkEKU(leaf *x509.Certificate) error {
	if len(leaf.ExtKeyUsage) == 0 && len(leaf.UnknownExtKeyUsage) == 0 {
		return nil
	}
	allowed := d.ExtKeyUsages
	if allowed == nil {
		allowed = DefaultExtKeyUsages
	}
	for _, u := range leaf.ExtKeyUsage {
		if slices.Contains(allowed, u) {
			return nil
		}
	}
	return fmt.Errorf("trust: %w: extended key usage not accepted for document signing (%s)", ErrKeyUsage, subject(leaf))
}

func validAt(c *x509.Certificate, at time.Time) error {
	switch {
	case at.Before(c.NotBefore):
		return fmt.Errorf("trust: %w: %s valid from %s, checked at %s", ErrNotYetValid, subject(c),
			c.NotBefore.UTC().Format(time.RFC3339), at.UTC().Format(time.RFC3339))
	case at.After(c.NotAfter):
		return fmt.Errorf("trust: %w: %s valid until %s, checked at %s", ErrExpired, subject(c),
			c.NotAfter.UTC().Format(time.RFC3339), at.UTC().Format(time.RFC3339))
	}
	return nil
}

func classifyChainErr(domain string, err error, intermediates []*x509.Certificate, at time.Time) error {
	var inv x509.CertificateInvalidError
	if errors.As(err, &inv) {
		switch inv.Reason {
		case x509.Expired:
			// The leaf was checked already: an intermediate or anchor is out
			// of its window. Say which way.
			for _, c := range intermediates {
				if e := validAt(c, at); e != nil {
					return e
				}
			}
			if inv.Cert != nil {
				if e := validAt(inv.Cert, at); e != nil {
					return e
				}
			}
			return fmt.Errorf("trust: %w: %v", ErrExpired, err)
		case x509.IncompatibleUsage:
			return fmt.Errorf("trust: %w: %v", ErrKeyUsage, err)
		}
	}
	return fmt.Errorf("trust: domain %q: %w: %v", domain, ErrUnknownSigner, err)
}

// checkKey enforces the minimum key strength: RSA of at least 2048 bits,
// ECDSA on P-256, P-384 or P-521.
func checkKey(c *x509.Certificate) error {
	switch k := c.PublicKey.(type) {
	case *rsa.PublicKey:
		if k.N.BitLen() >= 2048 {
			return nil
		}
		return fmt.Errorf("trust: %w: RSA key of %d bits", ErrWeakKey, k.N.BitLen())
	case *ecdsa.PublicKey:
		switch k.Curve {
		case elliptic.P256(), elliptic.P384(), elliptic.P521():
			return nil
		}
		return fmt.Errorf("trust: %w: ECDSA curve %s", ErrWeakKey, k.Curve.Params().Name)
	}
	return fmt.Errorf("trust: %w: %s key", ErrWeakKey, c.PublicKeyAlgorithm)
}

func subject(c *x509.Certificate) string { return "subject " + c.Subject.String() }

// Store holds the trust domains by name. It is safe for concurrent use; mu
// guards domains. Domains handed out by Domain must not be modified.
type Store struct {
	mu      sync.RWMutex
	domains map[string]*Domain
}

// NewStore returns an empty store.
func NewStore() *Store { return &Store{domains: map[string]*Domain{}} }

// Add registers d, replacing any domain of the same name.
func (s *Store) Add(d *Domain) error {
	if d == nil || d.Name == "" {
		return errors.New("trust: domain needs a name")
	}
	if !d.Policy.Valid() {
		return fmt.Errorf("trust: domain %q: unknown policy %q", d.Name, d.Policy)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.domains[d.Name] = d
	return nil
}

// Domain returns the named domain.
func (s *Store) Domain(name string) (*Domain, bool) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	d, ok := s.domains[name]
	return d, ok
}

// Names lists the domain names in sorted order.
func (s *Store) Names() []string {
	s.mu.RLock()
	defer s.mu.RUnlock()
	out := make([]string, 0, len(s.domains))
	for n := range s.domains {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

// AddPEM adds the certificates in pemBytes as anchors of the named domain,
// creating it with policy when it does not exist yet. An existing domain
// keeps its policy unless policy is non-empty.
func (s *Store) AddPEM(name string, policy Policy, pemBytes []byte) error {
	certs, err := ParsePEM(pemBytes)
	if err != nil {
		return fmt.Errorf("trust: domain %q: %w", name, err)
	}
	if len(certs) == 0 {
		return fmt.Errorf("trust: domain %q: no certificate in PEM input", name)
	}
	if policy != "" && !policy.Valid() {
		return fmt.Errorf("trust: domain %q: unknown policy %q", name, policy)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	old := s.domains[name]
	d := &Domain{Name: name, Policy: policy}
	if old != nil {
		// Copy-on-write: domains already handed out stay unchanged.
		cp := *old
		cp.Roots = slices.Clone(old.Roots)
		if policy != "" {
			cp.Policy = policy
		}
		d = &cp
	}
	if d.Policy == "" {
		d.Policy = PolicyRequire
	}
	for _, c := range certs {
		if !slices.ContainsFunc(d.Roots, c.Equal) {
			d.Roots = append(d.Roots, c)
		}
	}
	s.domains[name] = d
	return nil
}

// AddPEMFile is AddPEM on the contents of a file.
func (s *Store) AddPEMFile(name string, policy Policy, path string) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("trust: %w", err)
	}
	return s.AddPEM(name, policy, b)
}

// LoadDir reads a trust configuration directory:
//
//	dir/<domain>/*.pem, *.crt   anchors of <domain> (PEM, any number per file)
//	dir/<domain>/policy         "require" or "record" (optional; default require)
//	dir/<domain>.pem            anchors of <domain>, policy require
//
// Other files are ignored.
func LoadDir(dir string) (*Store, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("trust: %w", err)
	}
	s := NewStore()
	for _, e := range entries {
		p := filepath.Join(dir, e.Name())
		if !e.IsDir() {
			if isPEMName(e.Name()) {
				name := strings.TrimSuffix(e.Name(), filepath.Ext(e.Name()))
				if err := s.AddPEMFile(name, "", p); err != nil {
					return nil, err
				}
			}
			continue
		}
		name := e.Name()
		policy := PolicyRequire
		if b, err := os.ReadFile(filepath.Join(p, "policy")); err == nil {
			policy = Policy(strings.TrimSpace(string(b)))
			if !policy.Valid() {
				return nil, fmt.Errorf("trust: %s: unknown policy %q", filepath.Join(p, "policy"), policy)
			}
		} else if !errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("trust: %w", err)
		}
		files, err := os.ReadDir(p)
		if err != nil {
			return nil, fmt.Errorf("trust: %w", err)
		}
		n := 0
		for _, f := range files {
			if f.IsDir() || !isPEMName(f.Name()) {
				continue
			}
			if err := s.AddPEMFile(name, policy, filepath.Join(p, f.Name())); err != nil {
				return nil, err
			}
			n++
		}
		if n == 0 {
			return nil, fmt.Errorf("trust: domain %q (%s): no anchor files", name, p)
		}
	}
	return s, nil
}

func isPEMName(n string) bool {
	ext := strings.ToLower(filepath.Ext(n))
	return ext == ".pem" || ext == ".crt"
}

// ParsePEM returns the certificates of every CERTIFICATE block in b. Other
// block types are an error: a private key has no place in a trust store.
func ParsePEM(b []byte) ([]*x509.Certificate, error) {
	var out []*x509.Certificate
	for {
		var blk *pem.Block
		blk, b = pem.Decode(b)
		if blk == nil {
			break
		}
		if blk.Type != "CERTIFICATE" {
			return nil, fmt.Errorf("unexpected PEM block %q", blk.Type)
		}
		c, err := x509.ParseCertificate(blk.Bytes)
		if err != nil {
			return nil, err
		}
		out = append(out, c)
	}
	return out, nil
}
