package dsig

import (
	"crypto"
	"crypto/x509"
	"errors"
	"io"
)

// KeySigner is a signing key with its certificate chain, leaf first: the
// hub's own signer and the signer of `hubctl sign`. The key may live
// anywhere a crypto.Signer reaches: SoftwareSigner holds one in memory, a
// PKCS#11 token or an HSM/KMS client implements the same two methods (the
// private key never leaves the device; only digests are sent to it).
type KeySigner interface {
	crypto.Signer
	// Chain is the certificate chain for KeyInfo: the certificate of the
	// signing key first, then intermediates (never the trust anchor).
	Chain() []*x509.Certificate
}

// SoftwareSigner is a KeySigner over an in-memory key.
type SoftwareSigner struct {
	Key   crypto.Signer
	Certs []*x509.Certificate
}

// Public returns the key's public half.
func (s SoftwareSigner) Public() crypto.PublicKey { return s.Key.Public() }

// Sign signs digest with the key.
func (s SoftwareSigner) Sign(rand io.Reader, digest []byte, opts crypto.SignerOpts) ([]byte, error) {
	return s.Key.Sign(rand, digest, opts)
}

// Chain returns the certificates, leaf first.
func (s SoftwareSigner) Chain() []*x509.Certificate { return s.Certs }

// SignWith is Sign with a KeySigner.
func SignWith(raw []byte, s KeySigner, opts SignOptions) ([]byte, error) {
	if s == nil {
		return nil, errors.New("dsig: sign: no signer")
	}
	return Sign(raw, s, s.Chain(), opts)
}
