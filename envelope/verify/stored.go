package verify

import (
	"crypto/sha256"
	"encoding/hex"
)

// Blob kinds: the revocation evidence kinds (Evidence.Kind) and certificates.
const (
	BlobCRL  = "crl"
	BlobOCSP = "ocsp"
	BlobCert = "cert"
)

// Blob is a DER value a stored report refers to instead of embedding it: a
// CRL, an OCSP response or a certificate. The same bytes recur in the report
// of every document signed under the same chain and checked against the same
// CRL, so a store keeps each blob once, by SHA256 (the digest of DER).
type Blob struct {
	SHA256 [32]byte
	Kind   string // BlobCert, or the evidence's Kind (BlobCRL, BlobOCSP)
	DER    []byte
}

// Stored returns the form of r a store keeps, and the distinct blobs it
// refers to: a copy of r in which the DER of every certificate and of every
// revocation evidence (the envelope's signatures and the attachments') is
// replaced by DERRef, the hex SHA-256 of those bytes. r is not changed.
//
// A store that puts back, in place of each "der_ref" member, a "der" member
// holding the blob (base64, as encoding/json writes []byte) gives r's JSON
// again (routing/ledger does, when the report is read back).
func (r *Report) Stored() (*Report, []Blob) {
	s := storer{seen: map[[32]byte]bool{}}
	out := *r
	out.Signatures = s.signatures(r.Signatures)
	if r.Attachments != nil {
		out.Attachments = make([]Attachment, len(r.Attachments))
		for i, a := range r.Attachments {
			a.Signatures = s.signatures(a.Signatures)
			out.Attachments[i] = a
		}
	}
	return &out, s.blobs
}

// storer collects the distinct blobs of one report.
type storer struct {
	blobs []Blob
	seen  map[[32]byte]bool
	// last remembers the digest of the bytes hashed last: a report holds the
	// same certificate as signer and as first chain element, and the same
	// CRL for several signatures (one backing array, hashed once).
	last []struct {
		p   *byte
		n   int
		sum [32]byte
	}
}

// ref returns the reference for der, recording it as a blob of kind.
func (s *storer) ref(kind string, der []byte) string {
	var sum [32]byte
	found := false
	for _, l := range s.last {
		if l.p == &der[0] && l.n == len(der) {
			sum, found = l.sum, true
			break
		}
	}
	if !found {
		sum = sha256.Sum256(der)
		s.last = append(s.last, struct {
			p   *byte
			n   int
			sum [32]byte
		}{&der[0], len(der), sum})
	}
	if !s.seen[sum] {
		s.seen[sum] = true
		s.blobs = append(s.blobs, Blob{SHA256: sum, Kind: kind, DER: der})
	}
	return hex.EncodeToString(sum[:])
}

func (s *storer) cert(c Cert) Cert {
	if len(c.DER) > 0 {
		c.DERRef, c.DER = s.ref(BlobCert, c.DER), nil
	}
	return c
}

func (s *storer) signatures(sigs []Signature) []Signature {
	if sigs == nil {
		return nil
	}
	out := make([]Signature, len(sigs))
	for i, g := range sigs {
		if g.Signer != nil {
			c := s.cert(*g.Signer)
			g.Signer = &c
		}
		if g.Chain != nil {
			chain := make([]Cert, len(g.Chain))
			for j, c := range g.Chain {
				chain[j] = s.cert(c)
			}
			g.Chain = chain
		}
		if g.Revocation.Evidence != nil {
			ev := make([]Evidence, len(g.Revocation.Evidence))
			for j, e := range g.Revocation.Evidence {
				if len(e.DER) > 0 {
					e.DERRef, e.DER = s.ref(e.Kind, e.DER), nil
				}
				ev[j] = e
			}
			g.Revocation.Evidence = ev
		}
		out[i] = g
	}
	return out
}
