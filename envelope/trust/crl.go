package trust

import (
	"bytes"
	"context"
	"crypto/x509"
	"encoding/asn1"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"sync"
	"time"
)

// maxCDPSources bounds the CRL distribution points learnt from certificates.
const maxCDPSources = 256

// parsedCRL is a CRL as received with its parsed form and an index by
// serial number.
type parsedCRL struct {
	der      []byte
	sum      string // SHA-256 of der, hex (computed once: CRLs can be large)
	rl       *x509.RevocationList
	bySerial map[string]*x509.RevocationListEntry
	// unusable, when set, says why the CRL cannot decide anything (an
	// unsupported critical extension: delta CRL, issuing distribution point).
	unusable string

	mu    sync.Mutex      // guards sigOK
	sigOK map[string]bool // issuer certificate digest → signature verified
}

// Extensions the hub understands well enough to accept them critical.
var (
	oidCRLNumber   = asn1.ObjectIdentifier{2, 5, 29, 20}
	oidAuthKeyID   = asn1.ObjectIdentifier{2, 5, 29, 35}
	oidReasonCode  = asn1.ObjectIdentifier{2, 5, 29, 21}
	oidInvalidDate = asn1.ObjectIdentifier{2, 5, 29, 24}
)

// parseCRL parses a DER or PEM ("X509 CRL") CRL.
func parseCRL(b []byte) (*parsedCRL, error) {
	if bytes.HasPrefix(bytes.TrimSpace(b), []byte("-----BEGIN")) {
		blk, _ := pem.Decode(bytes.TrimSpace(b))
		if blk == nil || blk.Type != "X509 CRL" {
			return nil, errors.New("PEM input is not an X509 CRL")
		}
		b = blk.Bytes
	}
	rl, err := x509.ParseRevocationList(b)
	if err != nil {
		return nil, fmt.Errorf("parse CRL: %w", err)
	}
	p := &parsedCRL{der: b, sum: digestHex(b), rl: rl, bySerial: make(map[string]*x509.RevocationListEntry, len(rl.RevokedCertificateEntries)), sigOK: map[string]bool{}}
	for _, ext := range rl.Extensions {
		if ext.Critical && !ext.Id.Equal(oidCRLNumber) && !ext.Id.Equal(oidAuthKeyID) {
			p.unusable = fmt.Sprintf("CRL has the critical extension %s, which the hub does not support (delta CRL or partitioned CRL?)", ext.Id)
		}
	}
	for i := range rl.RevokedCertificateEntries {
		e := &rl.RevokedCertificateEntries[i]
		for _, ext := range e.Extensions {
			if ext.Critical && !ext.Id.Equal(oidReasonCode) && !ext.Id.Equal(oidInvalidDate) {
				p.unusable = fmt.Sprintf("CRL entry has the critical extension %s (indirect CRL?), which the hub does not support", ext.Id)
			}
		}
		p.bySerial[e.SerialNumber.String()] = e
	}
	return p, nil
}

// issuedBy reports whether the CRL names issuer as its issuer.
func (p *parsedCRL) issuedBy(issuer *x509.Certificate) bool {
	if !bytes.Equal(p.rl.RawIssuer, issuer.RawSubject) {
		return false
	}
	if len(p.rl.AuthorityKeyId) > 0 && len(issuer.SubjectKeyId) > 0 {
		return bytes.Equal(p.rl.AuthorityKeyId, issuer.SubjectKeyId)
	}
	return true
}

// checkSignature verifies the CRL's signature with issuer's key, once per
// issuer certificate.
func (p *parsedCRL) checkSignature(issuer *x509.Certificate) error {
	k := digestHex(issuer.Raw)
	p.mu.Lock()
	ok := p.sigOK[k]
	p.mu.Unlock()
	if ok {
		return nil
	}
	if err := p.rl.CheckSignatureFrom(issuer); err != nil {
		return err
	}
	p.mu.Lock()
	p.sigOK[k] = true
	p.mu.Unlock()
	return nil
}

// evalCRL decides cert's status at time at from the CRL p, which must be
// issued and signed by issuer and current at at. The result carries the
// CRL's bytes.
func evalCRL(p *parsedCRL, cert, issuer *x509.Certificate, at time.Time, cfg RevocationConfig) Evidence {
	ev := newEvidence(MethodCRL, "", cert)
	ev.DER, ev.SHA256 = p.der, p.sum
	ev.ThisUpdate, ev.NextUpdate = p.rl.ThisUpdate, p.rl.NextUpdate
	switch {
	case !p.issuedBy(issuer):
		ev.Error = fmt.Sprintf("CRL issued by %s, not by %s", p.rl.Issuer, issuer.Subject)
		return ev
	case p.unusable != "":
		ev.Error = p.unusable
		return ev
	}
	if err := p.checkSignature(issuer); err != nil {
		ev.Error = "CRL signature does not verify with the issuer's key: " + err.Error()
		return ev
	}
	if at.Add(cfg.Skew).Before(p.rl.ThisUpdate) {
		ev.Error = fmt.Sprintf("CRL thisUpdate %s is after the check time %s", p.rl.ThisUpdate.UTC().Format(time.RFC3339), at.UTC().Format(time.RFC3339))
		return ev
	}
	if stale(p.rl.ThisUpdate, p.rl.NextUpdate, at, cfg) {
		ev.Error = fmt.Sprintf("CRL is stale: nextUpdate %s, check time %s", p.rl.NextUpdate.UTC().Format(time.RFC3339), at.UTC().Format(time.RFC3339))
		return ev
	}
	if e := p.bySerial[cert.SerialNumber.String()]; e != nil && !e.RevocationTime.After(at) {
		t := e.RevocationTime
		ev.Status, ev.RevokedAt, ev.RevocationReason = StatusRevoked, &t, e.ReasonCode
		return ev
	}
	ev.Status = StatusGood
	return ev
}

// stale reports whether a CRL or response with these update times may no
// longer be used at at.
func stale(this, next, at time.Time, cfg RevocationConfig) bool {
	if next.IsZero() {
		return at.After(this.Add(cfg.MaxAge))
	}
	return at.After(next)
}

// crlSource is one CRL location: a file or a URL.
type crlSource struct {
	loc   string
	isURL bool

	mu        sync.Mutex // guards the fields below
	crl       *parsedCRL
	fetchedAt time.Time
	tried     time.Time // last fetch attempt
	err       error     // of the last attempt
}

// crlCache holds the configured CRL sources and the distribution points
// learnt from certificates.
type crlCache struct {
	c      *Checker
	static []*crlSource

	mu  sync.Mutex // guards cdp
	cdp map[string]*crlSource
}

func newCRLCache(c *Checker) *crlCache { return &crlCache{c: c, cdp: map[string]*crlSource{}} }

func (cc *crlCache) addStatic(loc string, isURL bool) {
	cc.static = append(cc.static, &crlSource{loc: loc, isURL: isURL})
}

// sources returns the configured sources and cert's distribution points.
func (cc *crlCache) sources(cert *x509.Certificate) []*crlSource {
	out := append([]*crlSource{}, cc.static...)
	if cc.c.cfg.NoCDP {
		return out
	}
	cc.mu.Lock()
	defer cc.mu.Unlock()
	for _, u := range cert.CRLDistributionPoints {
		if !isHTTPURL(u) {
			continue
		}
		s := cc.cdp[u]
		if s == nil {
			if len(cc.cdp) >= maxCDPSources {
				continue
			}
			s = &crlSource{loc: u, isURL: true}
			cc.cdp[u] = s
		}
		if !containsSource(out, u) {
			out = append(out, s)
		}
	}
	return out
}

func containsSource(list []*crlSource, loc string) bool {
	for _, s := range list {
		if s.loc == loc {
			return true
		}
	}
	return false
}

// check returns one Evidence per source whose CRL concerns cert's issuer
// (and one per source that could not be read). A decisive Evidence (good or
// revoked) ends the list.
func (cc *crlCache) check(ctx context.Context, cert, issuer *x509.Certificate, at time.Time) []Evidence {
	var out []Evidence
	for _, s := range cc.sources(cert) {
		p, fetched, err := s.get(ctx, cc.c, at)
		if err != nil {
			ev := newEvidence(MethodCRL, s.loc, cert)
			ev.Error = err.Error()
			ev.FetchedAt = fetched
			if p == nil {
				out = append(out, ev)
				continue
			}
		}
		if p == nil || !bytes.Equal(p.rl.RawIssuer, issuer.RawSubject) {
			continue // another CA's CRL
		}
		ev := evalCRL(p, cert, issuer, at, cc.c.cfg)
		ev.Source, ev.FetchedAt = s.loc, fetched
		if err != nil && ev.Status == StatusUnknown {
			ev.Error += " (refresh failed: " + err.Error() + ")"
		}
		out = append(out, ev)
		if ev.Status != StatusUnknown {
			return out
		}
	}
	return out
}

// get returns the source's CRL, loading it when it has none and loading it
// again when it is stale at at (at most once per RetryAfter). When a reload
// fails, the previous CRL is returned with the error.
func (s *crlSource) get(ctx context.Context, c *Checker, at time.Time) (*parsedCRL, time.Time, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	need := s.crl == nil || stale(s.crl.rl.ThisUpdate, s.crl.rl.NextUpdate, at, c.cfg)
	if need && (s.tried.IsZero() || !at.Before(s.tried.Add(c.cfg.RetryAfter)) || at.Before(s.tried)) {
		s.tried = at
		b, err := s.read(ctx, c)
		if err == nil {
			var p *parsedCRL
			if p, err = parseCRL(b); err == nil {
				if s.crl != nil && p.rl.ThisUpdate.Before(s.crl.rl.ThisUpdate) {
					err = errors.New("fetched CRL is older than the cached one")
				} else {
					s.crl, s.fetchedAt, s.err = p, at, nil
					c.log.DebugContext(ctx, "CRL loaded", "source", s.loc, "this_update", p.rl.ThisUpdate, "next_update", p.rl.NextUpdate,
						"entries", len(p.rl.RevokedCertificateEntries))
				}
			}
		}
		if err != nil {
			s.err = fmt.Errorf("CRL %s: %w", s.loc, err)
			c.log.WarnContext(ctx, "CRL fetch failed", "source", s.loc, "err", err)
		}
	}
	return s.crl, s.fetchedAt, s.err
}

func (s *crlSource) read(ctx context.Context, c *Checker) ([]byte, error) {
	if !s.isURL {
		f, err := os.Open(s.loc)
		if err != nil {
			return nil, err
		}
		defer f.Close()
		return readLimited(f, c.cfg.MaxCRLBytes)
	}
	return httpGet(ctx, c.http, s.loc, "application/pkix-crl", c.cfg.MaxCRLBytes)
}

func httpGet(ctx context.Context, client *http.Client, url, accept string, max int64) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Accept", accept)
	resp, err := client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("HTTP %s", resp.Status)
	}
	return readLimited(resp.Body, max)
}

func readLimited(r io.Reader, max int64) ([]byte, error) {
	b, err := io.ReadAll(io.LimitReader(r, max+1))
	if err != nil {
		return nil, err
	}
	if int64(len(b)) > max {
		return nil, fmt.Errorf("over the limit of %d bytes", max)
	}
	return b, nil
}
