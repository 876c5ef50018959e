package dsig

import (
	"crypto"
	"crypto/ecdsa"
	"errors"
	"io"
	"math/big"

	"golang.org/x/crypto/cryptobyte"
	"golang.org/x/crypto/cryptobyte/asn1"
)

// XML-DSig 1.1 (§6.4.3) encodes an ECDSA SignatureValue as the raw
// concatenation r‖s, each left-padded to the size of the curve order.
// goxmldsig v1.6.1 signs and verifies ASN.1 DER instead (upstream #163), so
// this package converts: raw → DER before handing a signature to goxmldsig,
// DER → raw when producing one.

// curveBytes is the length of r (and of s) in the raw encoding.
func curveBytes(pub *ecdsa.PublicKey) int { return (pub.Curve.Params().N.BitLen() + 7) / 8 }

// parseDER returns r and s if sig is exactly one DER ECDSA-Sig-Value.
func parseDER(sig []byte) (r, s *big.Int, ok bool) {
	r, s = new(big.Int), new(big.Int)
	in := cryptobyte.String(sig)
	var inner cryptobyte.String
	if !in.ReadASN1(&inner, asn1.SEQUENCE) || !in.Empty() ||
		!inner.ReadASN1Integer(r) || !inner.ReadASN1Integer(s) || !inner.Empty() {
		return nil, nil, false
	}
	return r, s, true
}

func encodeDER(r, s *big.Int) []byte {
	var b cryptobyte.Builder
	b.AddASN1(asn1.SEQUENCE, func(b *cryptobyte.Builder) {
		b.AddASN1BigInt(r)
		b.AddASN1BigInt(s)
	})
	return b.BytesOrPanic()
}

// ecdsaToDER returns the DER form of an XML-DSig ECDSA signature value,
// accepting the raw r‖s form (the standard) and DER (goxmldsig, some
// others). A value of exactly 2×size bytes is read as raw r‖s.
func ecdsaToDER(sig []byte, pub *ecdsa.PublicKey) ([]byte, error) {
	n := curveBytes(pub)
	if len(sig) == 2*n {
		r := new(big.Int).SetBytes(sig[:n])
		s := new(big.Int).SetBytes(sig[n:])
		return encodeDER(r, s), nil
	}
	if _, _, ok := parseDER(sig); ok {
		return sig, nil
	}
	return nil, errors.New("ECDSA signature value is neither r‖s of the curve's size nor DER")
}

// rawECDSASigner wraps an ECDSA crypto.Signer so that Sign returns r‖s.
type rawECDSASigner struct {
	crypto.Signer
	pub *ecdsa.PublicKey
}

func (s rawECDSASigner) Sign(rand io.Reader, digest []byte, opts crypto.SignerOpts) ([]byte, error) {
	der, err := s.Signer.Sign(rand, digest, opts)
	if err != nil {
		return nil, err
	}
	r, ss, ok := parseDER(der)
	if !ok {
		return nil, errors.New("dsig: ECDSA signer returned a value that is not DER")
	}
	n := curveBytes(s.pub)
	if r.Sign() <= 0 || ss.Sign() <= 0 || r.BitLen() > 8*n || ss.BitLen() > 8*n {
		return nil, errors.New("dsig: ECDSA signer returned out-of-range r or s")
	}
	out := make([]byte, 2*n)
	r.FillBytes(out[:n])
	ss.FillBytes(out[n:])
	return out, nil
}
