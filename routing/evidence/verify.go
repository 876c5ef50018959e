package evidence

import (
	"errors"
	"strings"

	"lienthong/routing/evidence/logverify"
)

// Checkpoint is the parsed body of a signed checkpoint.
type Checkpoint = logverify.Checkpoint

// Leaf is one event as the log commits to it (the canonical leaf format).
type Leaf = logverify.Leaf

// The offline checks, also available without this package's database
// dependencies in routing/evidence/logverify.

// VerifyCheckpoint checks a signed-note checkpoint against the hub's
// verifier key and returns its body.
func VerifyCheckpoint(noteText, verifierKey string) (Checkpoint, error) {
	return logverify.VerifyCheckpoint(noteText, verifierKey)
}

// VerifyInclusion checks that leaf is at index in the tree (size, root).
func VerifyInclusion(leaf []byte, index, size uint64, proof [][]byte, root []byte) error {
	return logverify.VerifyInclusion(leaf, index, size, proof, root)
}

// VerifyConsistency checks that the tree (size2, root2) extends (size1, root1).
func VerifyConsistency(size1, size2 uint64, proof [][]byte, root1, root2 []byte) error {
	return logverify.VerifyConsistency(size1, size2, proof, root1, root2)
}

// GenerateKey makes an Ed25519 note key pair named origin (for hubd dev and
// tests): the signer key goes into CheckpointerConfig.SignerKey, the verifier
// key to auditors.
func GenerateKey(origin string) (signerKey, verifierKey string, err error) {
	return logverify.GenerateKey(origin)
}

var errMalformedNote = errors.New("evidence: stored checkpoint is not a signed note")

// noteBody returns the text of a signed note without its signatures.
func noteBody(signed string) (string, error) {
	i := strings.Index(signed, "\n\n")
	if i < 0 {
		return "", errMalformedNote
	}
	return signed[:i+1], nil
}
