package trust

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// FailureMode says what a revocation checker does when it cannot establish
// the status of a certificate: no responder answers, the CRL is stale or its
// signature does not verify, the responder says "unknown".
type FailureMode string

const (
	// HardFail: an unknown status is a rejection (ErrRevocationUnknown).
	HardFail FailureMode = "hard"
	// SoftFail: an unknown status is accepted; the result says so
	// (SoftFail true) and keeps the failed attempts as evidence.
	SoftFail FailureMode = "soft"
)

// Valid reports whether m is a known failure mode.
func (m FailureMode) Valid() bool { return m == HardFail || m == SoftFail }

// ErrRevocationUnknown is returned (wrapped) under HardFail when the status
// of a certificate of the chain could not be established, and by
// RecheckRevocation when the stored evidence does not decide. Unlike other
// checker errors it is the sender's problem as much as the hub's: the
// verifiers report it with its own code (revocation_unknown).
var ErrRevocationUnknown = errors.New("revocation status unknown")

// Revocation statuses and methods, as they appear in evidence and reports.
const (
	StatusGood    = "good"
	StatusRevoked = "revoked"
	StatusUnknown = "unknown"

	MethodOCSP = "ocsp"
	MethodCRL  = "crl"
)

// Evidence is one revocation lookup: which certificate, by which method and
// source, what it said, and the signed bytes it was decided on (the CRL or
// the OCSP response, exactly as received), so that the verdict can be
// re-checked later without the network (RecheckRevocation), also after the
// certificate and the responder's certificate have expired.
type Evidence struct {
	Method string `json:"method"`           // ocsp | crl
	Source string `json:"source,omitempty"` // responder URL, CRL URL or file
	// The certificate the lookup was about.
	Subject string `json:"subject"`
	Issuer  string `json:"issuer"`
	Serial  string `json:"serial"` // hexadecimal

	Status           string     `json:"status"` // good | revoked | unknown
	RevokedAt        *time.Time `json:"revoked_at,omitempty"`
	RevocationReason int        `json:"revocation_reason,omitempty"` // RFC 5280 CRLReason
	// Error says why the lookup did not decide (status unknown).
	Error string `json:"error,omitempty"`

	ThisUpdate time.Time `json:"this_update,omitzero"`
	NextUpdate time.Time `json:"next_update,omitzero"`
	ProducedAt time.Time `json:"produced_at,omitzero"` // OCSP only
	FetchedAt  time.Time `json:"fetched_at,omitzero"`  // when the hub obtained DER
	// DER is the CRL or the OCSP response as received; SHA256 its digest.
	DER    []byte `json:"der,omitempty"`
	SHA256 string `json:"sha256,omitempty"`
}

// RevocationResult is the outcome of checking one chain.
type RevocationResult struct {
	CheckedAt time.Time   `json:"checked_at"` // the hub's clock
	Mode      FailureMode `json:"mode"`
	// Status is revoked if any certificate is revoked, good if every
	// checked certificate is good, unknown otherwise.
	Status string `json:"status"`
	// SoftFail is set when Status is unknown and the mode accepted it.
	SoftFail bool `json:"soft_fail,omitempty"`
	// Evidence holds every lookup, decisive or not, leaf first.
	Evidence []Evidence `json:"evidence,omitempty"`
}

// EvidenceChecker is a RevocationChecker that also returns what it decided
// on. Checker implements it; a verifier that keeps a verification report
// should prefer it (see Domain.CheckRevocationEvidence).
type EvidenceChecker interface {
	RevocationChecker
	CheckRevocationEvidence(ctx context.Context, chain []*x509.Certificate, at time.Time) (*RevocationResult, error)
}

// CheckRevocationEvidence is CheckRevocation returning the evidence as well,
// when the domain's checker is an EvidenceChecker (otherwise the result is
// nil). With no checker configured it returns nil, nil.
func (d *Domain) CheckRevocationEvidence(ctx context.Context, chain []*x509.Certificate, at time.Time) (*RevocationResult, error) {
	if d.Revocation == nil {
		return nil, nil
	}
	ec, ok := d.Revocation.(EvidenceChecker)
	if !ok {
		return nil, d.CheckRevocation(ctx, chain, at)
	}
	res, err := ec.CheckRevocationEvidence(ctx, chain, at)
	if err != nil {
		return res, fmt.Errorf("trust: revocation: %w", err)
	}
	return res, nil
}

// RevocationConfig configures a Checker for one trust domain.
type RevocationConfig struct {
	// Mode: hard (default) or soft.
	Mode FailureMode `json:"mode,omitempty"`
	// CRLFiles and CRLURLs are CRLs of the domain's CAs (anchors or
	// intermediates; each CRL is matched to the certificates it covers by
	// its issuer and its signature). Files may be DER or PEM ("X509 CRL").
	CRLFiles []string `json:"crl_files,omitempty"`
	CRLURLs  []string `json:"crl_urls,omitempty"`
	// OCSPResponders, when set, replace the responder URLs of the
	// certificates' Authority Information Access extension.
	OCSPResponders []string `json:"ocsp_responders,omitempty"`
	// NoAIA: do not use the certificates' OCSP responder URLs. NoCDP: do not
	// fetch the certificates' CRL distribution points. NoOCSP: CRLs only.
	NoAIA  bool `json:"no_aia,omitempty"`
	NoCDP  bool `json:"no_cdp,omitempty"`
	NoOCSP bool `json:"no_ocsp,omitempty"`
	// LeafOnly checks the signer's certificate only, not the intermediates.
	LeafOnly bool `json:"leaf_only,omitempty"`

	// Limits and tolerances (zero takes the default).
	MaxCRLBytes  int64         `json:"max_crl_bytes,omitempty"`  // default 32 MiB
	MaxOCSPBytes int64         `json:"max_ocsp_bytes,omitempty"` // default 64 KiB
	Skew         time.Duration `json:"-"`                        // clock skew allowed on thisUpdate; default 5 min
	// MaxAge bounds the use of a CRL or OCSP response without nextUpdate;
	// default 24 h.
	MaxAge time.Duration `json:"-"`
	// RetryAfter is the least time between two fetches of a source that
	// failed or is still stale; default 30 s (on the clock passed in).
	RetryAfter time.Duration `json:"-"`
}

func (c RevocationConfig) withDefaults() RevocationConfig {
	if c.Mode == "" {
		c.Mode = HardFail
	}
	if c.MaxCRLBytes <= 0 {
		c.MaxCRLBytes = 32 << 20
	}
	if c.MaxOCSPBytes <= 0 {
		c.MaxOCSPBytes = 64 << 10
	}
	if c.Skew <= 0 {
		c.Skew = 5 * time.Minute
	}
	if c.MaxAge <= 0 {
		c.MaxAge = 24 * time.Hour
	}
	if c.RetryAfter <= 0 {
		c.RetryAfter = 30 * time.Second
	}
	return c
}

// Checker checks revocation by OCSP and CRL for one trust domain. For each
// certificate of a validated chain except the anchor (the leaf only with
// LeafOnly) it asks the OCSP responders first; when they do not decide, the
// CRLs. A CRL or response counts only if it is signed by the certificate's
// issuer (or, for OCSP, by a responder certificate the issuer delegated with
// id-kp-OCSPSigning), is current at the hub's clock and covers the
// certificate. CRLs are cached and fetched again once past their nextUpdate;
// OCSP responses are cached until their nextUpdate.
//
// It is safe for concurrent use.
type Checker struct {
	cfg  RevocationConfig
	http *http.Client
	log  *slog.Logger
	crls *crlCache
	ocsp *ocspCache
}

// NewChecker returns a checker. client nil means an http.Client with a 10 s
// timeout; log nil discards.
func NewChecker(cfg RevocationConfig, client *http.Client, log *slog.Logger) (*Checker, error) {
	cfg = cfg.withDefaults()
	if !cfg.Mode.Valid() {
		return nil, fmt.Errorf("trust: revocation: unknown failure mode %q (want hard or soft)", cfg.Mode)
	}
	for _, u := range append(append([]string{}, cfg.CRLURLs...), cfg.OCSPResponders...) {
		if !isHTTPURL(u) {
			return nil, fmt.Errorf("trust: revocation: %q is not an http(s) URL", u)
		}
	}
	if client == nil {
		client = &http.Client{Timeout: 10 * time.Second}
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	c := &Checker{cfg: cfg, http: client, log: log, ocsp: newOCSPCache()}
	c.crls = newCRLCache(c)
	for _, f := range cfg.CRLFiles {
		c.crls.addStatic(f, false)
	}
	for _, u := range cfg.CRLURLs {
		c.crls.addStatic(u, true)
	}
	return c, nil
}

// Mode returns the checker's failure mode.
func (c *Checker) Mode() FailureMode { return c.cfg.Mode }

// CheckRevocation implements RevocationChecker.
func (c *Checker) CheckRevocation(ctx context.Context, chain []*x509.Certificate, at time.Time) error {
	_, err := c.CheckRevocationEvidence(ctx, chain, at)
	return err
}

// CheckRevocationEvidence checks chain (leaf first, anchor last) at time at
// and returns the evidence. Errors wrap ErrRevoked (a certificate is
// revoked), ErrRevocationUnknown (HardFail and a status could not be
// established) or are a context error. Under SoftFail an unknown status is
// not an error; the result has SoftFail set.
func (c *Checker) CheckRevocationEvidence(ctx context.Context, chain []*x509.Certificate, at time.Time) (*RevocationResult, error) {
	res := &RevocationResult{CheckedAt: at, Mode: c.cfg.Mode, Status: StatusGood}
	var unknown []string
	for i := 0; i+1 < len(chain); i++ {
		if i > 0 && c.cfg.LeafOnly {
			break
		}
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		cert, issuer := chain[i], chain[i+1]
		evs, status := c.checkOne(ctx, cert, issuer, at)
		res.Evidence = append(res.Evidence, evs...)
		switch status {
		case StatusRevoked:
			res.Status = StatusRevoked
			ev := evs[len(evs)-1]
			return res, fmt.Errorf("%w: %s serial %s revoked at %s (%s, %s)", ErrRevoked, cert.Subject, ev.Serial,
				ev.RevokedAt.UTC().Format(time.RFC3339), ev.Method, ev.Source)
		case StatusUnknown:
			why := "no CRL or OCSP responder covers it"
			if len(evs) > 0 {
				var parts []string
				for _, e := range evs {
					parts = append(parts, e.Method+" "+e.Source+": "+e.Error)
				}
				why = strings.Join(parts, "; ")
			}
			unknown = append(unknown, fmt.Sprintf("%s serial %x: %s", cert.Subject, cert.SerialNumber, why))
		}
	}
	if len(unknown) == 0 {
		return res, nil
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	res.Status = StatusUnknown
	msg := strings.Join(unknown, "; ")
	if c.cfg.Mode == SoftFail {
		res.SoftFail = true
		c.log.WarnContext(ctx, "revocation status unknown, accepted (soft-fail)", slog.String("detail", msg))
		return res, nil
	}
	return res, fmt.Errorf("%w: %s", ErrRevocationUnknown, msg)
}

// checkOne decides the status of cert: OCSP first, then CRLs. It returns
// every lookup it made; when the status is decided, the last one is the
// decisive one.
func (c *Checker) checkOne(ctx context.Context, cert, issuer *x509.Certificate, at time.Time) ([]Evidence, string) {
	var evs []Evidence
	if !c.cfg.NoOCSP {
		for _, ev := range c.checkOCSP(ctx, cert, issuer, at) {
			evs = append(evs, ev)
			if ev.Status != StatusUnknown {
				return evs, ev.Status
			}
		}
	}
	for _, ev := range c.crls.check(ctx, cert, issuer, at) {
		evs = append(evs, ev)
		if ev.Status != StatusUnknown {
			return evs, ev.Status
		}
	}
	return evs, StatusUnknown
}

// RecheckRevocation decides again, from stored evidence alone and without
// any network access, whether chain (leaf first, anchor last) was revoked at
// time at — typically the time of the original verification, long after
// which the certificates may have expired. Every stored CRL or OCSP response
// is verified again (signature by the issuer, coverage of the certificate,
// currency at at). It returns nil when every certificate that was checked
// (all but the anchor, or the leaf only if that is all the evidence covers)
// has evidence proving it good at at; an error wrapping ErrRevoked when
// evidence shows it revoked at or before at; an error wrapping
// ErrRevocationUnknown otherwise.
func RecheckRevocation(chain []*x509.Certificate, res *RevocationResult, at time.Time) error {
	if res == nil {
		return fmt.Errorf("trust: recheck: %w: no stored evidence", ErrRevocationUnknown)
	}
	cfg := RevocationConfig{}.withDefaults()
	for i := 0; i+1 < len(chain); i++ {
		cert, issuer := chain[i], chain[i+1]
		serial := serialHex(cert)
		var have bool
		decided := ""
		var last string
		for _, ev := range res.Evidence {
			if ev.Serial != serial || len(ev.DER) == 0 {
				continue
			}
			have = true
			var e Evidence
			switch ev.Method {
			case MethodCRL:
				p, err := parseCRL(ev.DER)
				if err != nil {
					last = err.Error()
					continue
				}
				e = evalCRL(p, cert, issuer, at, cfg)
			case MethodOCSP:
				e = evalOCSP(ev.DER, cert, issuer, at, cfg)
			default:
				continue
			}
			if e.Status == StatusRevoked {
				return fmt.Errorf("trust: recheck: %w: %s serial %s revoked at %s (%s)", ErrRevoked, cert.Subject, serial,
					e.RevokedAt.UTC().Format(time.RFC3339), ev.Method)
			}
			if e.Status == StatusGood {
				decided = StatusGood
			} else {
				last = e.Error
			}
		}
		if !have {
			if i > 0 && onlyLeaf(res, chain) {
				break // the original check covered the leaf only (LeafOnly)
			}
			return fmt.Errorf("trust: recheck: %w: no stored CRL or OCSP response for %s", ErrRevocationUnknown, cert.Subject)
		}
		if decided != StatusGood {
			return fmt.Errorf("trust: recheck: %w: %s: %s", ErrRevocationUnknown, cert.Subject, last)
		}
	}
	return nil
}

// onlyLeaf reports whether res holds evidence about chain's leaf only.
func onlyLeaf(res *RevocationResult, chain []*x509.Certificate) bool {
	leaf := serialHex(chain[0])
	for _, ev := range res.Evidence {
		if ev.Serial != leaf {
			return false
		}
	}
	return true
}

// RecheckVerdict re-checks a stored verdict at time at (the original
// verification time): the chain from leaf to the domain's anchors is
// validated again at at, then the stored revocation evidence is verified
// with RecheckRevocation. It needs no network and works after the
// certificates have expired. It returns the chain it validated.
func (d *Domain) RecheckVerdict(leaf *x509.Certificate, intermediates []*x509.Certificate, res *RevocationResult, at time.Time) ([]*x509.Certificate, error) {
	chains, err := d.VerifyChain(leaf, intermediates, at)
	if err != nil {
		return nil, err
	}
	var firstErr error
	for _, ch := range chains {
		err := RecheckRevocation(ch, res, at)
		if err == nil {
			return ch, nil
		}
		if firstErr == nil || errors.Is(err, ErrRevoked) {
			firstErr = err
		}
	}
	return nil, firstErr
}

// ConfigureRevocation gives the domains of s a revocation checker from the
// trust configuration directory dir (the one LoadDir reads):
//
//	dir/<domain>/revocation.json   a RevocationConfig (JSON); relative CRL
//	                               file names are taken from dir/<domain>
//	dir/<domain>/crl/*.crl, *.pem  CRL files, added to crl_files
//
// A domain with neither keeps its checker (none by default). Domains are
// replaced in s by copies (copy-on-write, like AddPEM).
func ConfigureRevocation(s *Store, dir string, client *http.Client, log *slog.Logger) error {
	for _, name := range s.Names() {
		d, _ := s.Domain(name)
		base := filepath.Join(dir, name)
		var cfg RevocationConfig
		found := false
		b, err := os.ReadFile(filepath.Join(base, "revocation.json"))
		switch {
		case err == nil:
			dec := json.NewDecoder(bytes.NewReader(b))
			dec.DisallowUnknownFields()
			if err := dec.Decode(&cfg); err != nil {
				return fmt.Errorf("trust: %s: %w", filepath.Join(base, "revocation.json"), err)
			}
			found = true
		case !errors.Is(err, os.ErrNotExist):
			return fmt.Errorf("trust: %w", err)
		}
		for i, f := range cfg.CRLFiles {
			if !filepath.IsAbs(f) {
				cfg.CRLFiles[i] = filepath.Join(base, f)
			}
		}
		if files, err := os.ReadDir(filepath.Join(base, "crl")); err == nil {
			for _, f := range files {
				ext := strings.ToLower(filepath.Ext(f.Name()))
				if !f.IsDir() && (ext == ".crl" || ext == ".pem" || ext == ".der") {
					cfg.CRLFiles = append(cfg.CRLFiles, filepath.Join(base, "crl", f.Name()))
					found = true
				}
			}
		} else if !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("trust: %w", err)
		}
		if !found {
			continue
		}
		chk, err := NewChecker(cfg, client, log)
		if err != nil {
			return fmt.Errorf("trust: domain %q: %w", name, err)
		}
		cp := *d
		cp.Revocation = chk
		if err := s.Add(&cp); err != nil {
			return err
		}
	}
	return nil
}

func serialHex(c *x509.Certificate) string { return fmt.Sprintf("%x", c.SerialNumber) }

func digestHex(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

func isHTTPURL(u string) bool {
	return strings.HasPrefix(u, "http://") || strings.HasPrefix(u, "https://")
}

func newEvidence(method, source string, cert *x509.Certificate) Evidence {
	return Evidence{Method: method, Source: source, Subject: cert.Subject.String(), Issuer: cert.Issuer.String(),
		Serial: serialHex(cert), Status: StatusUnknown}
}
