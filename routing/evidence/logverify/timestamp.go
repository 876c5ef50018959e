package logverify

import (
	"bytes"
	"crypto"
	"crypto/sha256"
	"errors"
	"fmt"
	"time"

	"github.com/digitorus/timestamp"
)

// VerifyTimestampToken checks an RFC 3161 token (DER) over data: the CMS
// signature verifies with the TSA certificate it carries and the imprint is
// SHA-256(data). It returns a summary; the TSA's certificate is not checked
// against a trust list here.
func VerifyTimestampToken(token, data []byte) (string, error) {
	ts, err := timestamp.Parse(token)
	if err != nil {
		return "", fmt.Errorf("RFC 3161 token: %w", err)
	}
	sum := sha256.Sum256(data)
	if ts.HashAlgorithm != crypto.SHA256 || !bytes.Equal(ts.HashedMessage, sum[:]) {
		return "", errors.New("RFC 3161 token does not cover the checkpoint")
	}
	tsa := "unknown TSA"
	if len(ts.Certificates) > 0 {
		tsa = ts.Certificates[0].Subject.String()
	}
	return fmt.Sprintf("RFC 3161 token by %s, genTime %s, covers the checkpoint", tsa, ts.Time.UTC().Format(time.RFC3339)), nil
}
