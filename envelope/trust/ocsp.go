package trust

import (
	"bytes"
	"context"
	"crypto"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"errors"
	"fmt"
	"math/big"
	"net/http"
	"slices"
	"sync"
	"time"

	"golang.org/x/crypto/ocsp"
)

// maxOCSPCache bounds the cached OCSP responses; the cache is emptied when
// it is full.
const maxOCSPCache = 10000

// maxResponders bounds the responder URLs tried per certificate.
const maxResponders = 3

type ocspEntry struct {
	ev  Evidence     // decisive (good or revoked), with DER
	chk *ocspChecked // ev.DER with its time-independent checks done
}

// ocspCache keeps decisive responses until their nextUpdate.
type ocspCache struct {
	mu sync.Mutex // guards m
	m  map[string]ocspEntry
}

func newOCSPCache() *ocspCache { return &ocspCache{m: map[string]ocspEntry{}} }

func ocspKey(cert, issuer *x509.Certificate) string {
	return digestHex(issuer.Raw) + "/" + serialHex(cert)
}

// checkOCSP asks the responders about cert and returns one Evidence per
// responder asked; a decisive one (good or revoked) ends the list.
func (c *Checker) checkOCSP(ctx context.Context, cert, issuer *x509.Certificate, at time.Time) []Evidence {
	urls := c.cfg.OCSPResponders
	if len(urls) == 0 && !c.cfg.NoAIA {
		for _, u := range cert.OCSPServer {
			if isHTTPURL(u) {
				urls = append(urls, u)
			}
		}
	}
	if len(urls) == 0 {
		return nil
	}
	key := ocspKey(cert, issuer)
	c.ocsp.mu.Lock()
	e, ok := c.ocsp.m[key]
	c.ocsp.mu.Unlock()
	if ok {
		// Re-evaluate the cached response at at: still current, same
		// answer. Parse and signature were checked when it was cached.
		ev := e.chk.decide(at, c.cfg)
		if ev.Status != StatusUnknown {
			cur := newEvidence(MethodOCSP, "", cert)
			ev.Subject, ev.Issuer, ev.Serial = cur.Subject, cur.Issuer, cur.Serial
			ev.Source, ev.FetchedAt = e.ev.Source, e.ev.FetchedAt
			return []Evidence{ev}
		}
	}
	req, err := ocsp.CreateRequest(cert, issuer, &ocsp.RequestOptions{Hash: crypto.SHA1})
	if err != nil {
		ev := newEvidence(MethodOCSP, "", cert)
		ev.Error = "cannot build OCSP request: " + err.Error()
		return []Evidence{ev}
	}
	var out []Evidence
	for _, u := range urls[:min(len(urls), maxResponders)] {
		der, err := c.postOCSP(ctx, u, req)
		if err != nil {
			ev := newEvidence(MethodOCSP, u, cert)
			ev.Error = err.Error()
			ev.FetchedAt = at
			c.log.WarnContext(ctx, "OCSP request failed", "responder", u, "err", err)
			out = append(out, ev)
			continue
		}
		chk := checkedOCSP(der, cert, issuer)
		ev := chk.decide(at, c.cfg)
		ev.Source, ev.FetchedAt = u, at
		out = append(out, ev)
		if ev.Status != StatusUnknown {
			c.ocsp.mu.Lock()
			if len(c.ocsp.m) >= maxOCSPCache {
				clear(c.ocsp.m)
			}
			c.ocsp.m[key] = ocspEntry{ev: ev, chk: chk}
			c.ocsp.mu.Unlock()
			return out
		}
	}
	return out
}

// postOCSP sends an RFC 6960 request by HTTP POST and returns the DER
// response.
func (c *Checker) postOCSP(ctx context.Context, url string, req []byte) ([]byte, error) {
	hr, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(req))
	if err != nil {
		return nil, err
	}
	hr.Header.Set("Content-Type", "application/ocsp-request")
	hr.Header.Set("Accept", "application/ocsp-response")
	resp, err := c.http.Do(hr)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("HTTP %s", resp.Status)
	}
	return readLimited(resp.Body, c.cfg.MaxOCSPBytes)
}

// evalOCSP decides cert's status at time at from the DER OCSP response der.
// The response must be signed by issuer, or by a responder certificate that
// issuer signed, that carries id-kp-OCSPSigning and is valid at at; it must
// be about cert's serial number and current at at.
func evalOCSP(der []byte, cert, issuer *x509.Certificate, at time.Time, cfg RevocationConfig) Evidence {
	return checkedOCSP(der, cert, issuer).decide(at, cfg)
}

// ocspChecked is an OCSP response with the checks that do not depend on the
// time done (parse, signature, responder's issuer and EKU, CertID), so that
// a cached response is not parsed and its signature not verified again for
// every document; decide does the rest at a given time.
type ocspChecked struct {
	ev       Evidence       // DER, digest, update times; Error if a check failed
	resp     *ocsp.Response // nil when ev.Error is set before parsing ended
	rc       *x509.Certificate
	badCID   bool // the CertID does not name cert's issuer
	rejected bool // ev.Error is final
}

func checkedOCSP(der []byte, cert, issuer *x509.Certificate) *ocspChecked {
	o := &ocspChecked{ev: newEvidence(MethodOCSP, "", cert)}
	ev := &o.ev
	ev.DER, ev.SHA256 = der, digestHex(der)
	o.rejected = true
	// Parse without the issuer: golang.org/x/crypto/ocsp then checks the
	// signature against the certificate embedded in the response, if any,
	// and with the issuer it would refuse a response that embeds the issuer
	// itself (as openssl ocsp and many CAs send it). Who may sign is
	// decided here.
	resp, err := ocsp.ParseResponseForCert(der, cert, nil)
	if err != nil {
		var re ocsp.ResponseError
		if errors.As(err, &re) {
			ev.Error = "responder answered " + re.Status.String()
		} else {
			ev.Error = "OCSP response rejected: " + err.Error()
		}
		return o
	}
	ev.ThisUpdate, ev.NextUpdate, ev.ProducedAt = resp.ThisUpdate, resp.NextUpdate, resp.ProducedAt
	switch rc := resp.Certificate; {
	case rc == nil:
		if err := resp.CheckSignatureFrom(issuer); err != nil {
			ev.Error = "OCSP response rejected: bad OCSP signature: " + err.Error()
			return o
		}
	case rc.Equal(issuer):
		// Signed by the issuer itself (checked against rc by the parser).
	default:
		// A delegated responder: issued by the issuer, for OCSP signing,
		// valid at the time asked about (in decide).
		if err := rc.CheckSignatureFrom(issuer); err != nil {
			ev.Error = fmt.Sprintf("OCSP response rejected: bad OCSP signature: responder certificate %s is not issued by %s: %v", rc.Subject, issuer.Subject, err)
			return o
		}
		if !slices.Contains(rc.ExtKeyUsage, x509.ExtKeyUsageOCSPSigning) {
			ev.Error = fmt.Sprintf("responder certificate %s lacks id-kp-OCSPSigning", rc.Subject)
			return o
		}
		o.rc = rc
	}
	// The CertID must name cert's issuer, not only its serial number.
	o.badCID = !certIDMatches(der, cert, issuer, resp.IssuerHash)
	o.resp, o.rejected = resp, false
	return o
}

// decide returns the evidence of o at time at.
func (o *ocspChecked) decide(at time.Time, cfg RevocationConfig) Evidence {
	ev := o.ev
	if o.rejected {
		return ev
	}
	resp := o.resp
	if rc := o.rc; rc != nil && (at.Before(rc.NotBefore) || at.After(rc.NotAfter)) {
		ev.Error = fmt.Sprintf("responder certificate %s is not valid at %s", rc.Subject, at.UTC().Format(time.RFC3339))
		return ev
	}
	if o.badCID {
		ev.Error = "OCSP response CertID does not name the certificate's issuer"
		return ev
	}
	if at.Add(cfg.Skew).Before(resp.ThisUpdate) {
		ev.Error = fmt.Sprintf("OCSP thisUpdate %s is after the check time %s", resp.ThisUpdate.UTC().Format(time.RFC3339), at.UTC().Format(time.RFC3339))
		return ev
	}
	if stale(resp.ThisUpdate, resp.NextUpdate, at, cfg) {
		ev.Error = fmt.Sprintf("OCSP response is stale: thisUpdate %s, nextUpdate %s, check time %s", resp.ThisUpdate.UTC().Format(time.RFC3339),
			resp.NextUpdate.UTC().Format(time.RFC3339), at.UTC().Format(time.RFC3339))
		return ev
	}
	switch resp.Status {
	case ocsp.Good:
		ev.Status = StatusGood
	case ocsp.Revoked:
		if resp.RevokedAt.After(at) {
			ev.Status = StatusGood // revoked later than the time asked about
			break
		}
		t := resp.RevokedAt
		ev.Status, ev.RevokedAt, ev.RevocationReason = StatusRevoked, &t, resp.RevocationReason
	default:
		ev.Error = "responder does not know the certificate (status unknown)"
	}
	return ev
}

// certIDMatches checks that the response's single response for cert names
// issuer by the hashes of its name and key, which ParseResponseForCert does
// not do (it matches the serial number only).
func certIDMatches(der []byte, cert, issuer *x509.Certificate, h crypto.Hash) bool {
	want, err := ocsp.CreateRequest(cert, issuer, &ocsp.RequestOptions{Hash: h})
	if err != nil {
		return false
	}
	r, err := ocsp.ParseRequest(want)
	if err != nil {
		return false
	}
	var resp asnResponse
	if _, err := asn1.Unmarshal(der, &resp); err != nil {
		return false
	}
	var basic asnBasic
	if _, err := asn1.Unmarshal(resp.Response.Response, &basic); err != nil {
		return false
	}
	for _, sr := range basic.TBSResponseData.Responses {
		if sr.CertID.SerialNumber != nil && sr.CertID.SerialNumber.Cmp(cert.SerialNumber) == 0 {
			return bytes.Equal(sr.CertID.NameHash, r.IssuerNameHash) && bytes.Equal(sr.CertID.IssuerKeyHash, r.IssuerKeyHash)
		}
	}
	return false
}

// The ASN.1 of an OCSP response (RFC 6960 4.2.1), as far as certIDMatches
// needs it; after golang.org/x/crypto/ocsp's internal types.
type asnResponse struct {
	Status   asn1.Enumerated
	Response struct {
		ResponseType asn1.ObjectIdentifier
		Response     []byte
	} `asn1:"explicit,tag:0,optional"`
}

type asnBasic struct {
	TBSResponseData struct {
		Raw            asn1.RawContent
		Version        int `asn1:"optional,default:0,explicit,tag:0"`
		RawResponderID asn1.RawValue
		ProducedAt     time.Time `asn1:"generalized"`
		Responses      []asnSingle
	}
	SignatureAlgorithm pkix.AlgorithmIdentifier
	Signature          asn1.BitString
	Certificates       []asn1.RawValue `asn1:"explicit,tag:0,optional"`
}

type asnSingle struct {
	CertID struct {
		HashAlgorithm pkix.AlgorithmIdentifier
		NameHash      []byte
		IssuerKeyHash []byte
		SerialNumber  *big.Int
	}
	Good    asn1.Flag `asn1:"tag:0,optional"`
	Revoked struct {
		RevocationTime time.Time       `asn1:"generalized"`
		Reason         asn1.Enumerated `asn1:"explicit,tag:0,optional"`
	} `asn1:"tag:1,optional"`
	Unknown          asn1.Flag        `asn1:"tag:2,optional"`
	ThisUpdate       time.Time        `asn1:"generalized"`
	NextUpdate       time.Time        `asn1:"generalized,explicit,tag:0,optional"`
	SingleExtensions []pkix.Extension `asn1:"explicit,tag:1,optional"`
}
