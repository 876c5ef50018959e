package logverify

import (
	"crypto/ed25519"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/binary"
	"encoding/pem"
	"errors"
	"fmt"
	"strings"
	"time"

	"golang.org/x/mod/sumdb/note"
)

// Binding of the checkpoint key to the hub's certificate (schemas/checkpoint.md):
// the hub's evidence certificate is an X.509 certificate whose subject public
// key is the Ed25519 key that signs checkpoints, and whose subject common
// name is the log's origin (the note key's name). An auditor who holds that
// certificate — issued by the hub's CA, so it sits in the hub's chain — holds
// the note verifier key: VerifierKeyFromCert derives it.

// algEd25519 is the note format's algorithm byte for Ed25519.
const algEd25519 = 1

// NoteKeys returns the note signer and verifier keys of an Ed25519 private
// key under the given name (the log's origin).
func NoteKeys(name string, priv ed25519.PrivateKey) (signerKey, verifierKey string, err error) {
	if len(priv) != ed25519.PrivateKeySize {
		return "", "", errors.New("logverify: not an Ed25519 private key")
	}
	pub := priv.Public().(ed25519.PublicKey)
	verifierKey, err = note.NewEd25519VerifierKey(name, pub)
	if err != nil {
		return "", "", fmt.Errorf("logverify: note verifier key: %w", err)
	}
	h := keyHash(name, append([]byte{algEd25519}, pub...))
	signerKey = fmt.Sprintf("PRIVATE+KEY+%s+%08x+%s", name, h,
		base64.StdEncoding.EncodeToString(append([]byte{algEd25519}, priv.Seed()...)))
	if _, err := note.NewSigner(signerKey); err != nil {
		return "", "", fmt.Errorf("logverify: note signer key: %w", err)
	}
	return signerKey, verifierKey, nil
}

// keyHash is the note format's key hash: the first four bytes of
// SHA-256(name || "\n" || alg || key).
func keyHash(name string, key []byte) uint32 {
	h := sha256.New()
	h.Write([]byte(name))
	h.Write([]byte("\n"))
	h.Write(key)
	return binary.BigEndian.Uint32(h.Sum(nil))
}

// VerifierKeyFromCert derives the note verifier key from the hub's evidence
// certificate: its Ed25519 public key, named by its subject common name.
func VerifierKeyFromCert(cert *x509.Certificate) (string, error) {
	pub, ok := cert.PublicKey.(ed25519.PublicKey)
	if !ok {
		return "", fmt.Errorf("%w: the hub certificate's key is %v, not the Ed25519 checkpoint key", ErrInvalid, cert.PublicKeyAlgorithm)
	}
	name := cert.Subject.CommonName
	if name == "" || strings.ContainsAny(name, " +\n\t") {
		return "", fmt.Errorf("%w: the hub certificate's common name %q is not a log origin", ErrInvalid, name)
	}
	vkey, err := note.NewEd25519VerifierKey(name, pub)
	if err != nil {
		return "", fmt.Errorf("%w: %v", ErrInvalid, err)
	}
	return vkey, nil
}

// VerifyCheckpointWithCert checks a signed checkpoint against the hub's
// evidence certificate and that the checkpoint's time lies within the
// certificate's validity.
func VerifyCheckpointWithCert(noteText string, cert *x509.Certificate) (Checkpoint, error) {
	vkey, err := VerifierKeyFromCert(cert)
	if err != nil {
		return Checkpoint{}, err
	}
	cp, err := VerifyCheckpoint(noteText, vkey)
	if err != nil {
		return Checkpoint{}, err
	}
	if !cp.Time.IsZero() && (cp.Time.Before(cert.NotBefore) || cp.Time.After(cert.NotAfter)) {
		return Checkpoint{}, fmt.Errorf("%w: checkpoint time %s is outside the certificate's validity %s – %s",
			ErrInvalid, cp.Time.Format(time.RFC3339), cert.NotBefore.Format(time.RFC3339), cert.NotAfter.Format(time.RFC3339))
	}
	return cp, nil
}

// ParseCertPEM returns the first certificate of a PEM file's bytes.
func ParseCertPEM(b []byte) (*x509.Certificate, error) {
	for {
		var blk *pem.Block
		blk, b = pem.Decode(b)
		if blk == nil {
			return nil, errors.New("logverify: no CERTIFICATE in PEM")
		}
		if blk.Type == "CERTIFICATE" {
			c, err := x509.ParseCertificate(blk.Bytes)
			if err != nil {
				return nil, fmt.Errorf("logverify: certificate: %w", err)
			}
			return c, nil
		}
	}
}
