package logverify

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/transparency-dev/merkle/proof"
	"github.com/transparency-dev/merkle/rfc6962"
	"golang.org/x/mod/sumdb/note"
)

// ErrInvalid: a checkpoint, signature or proof does not verify.
var ErrInvalid = errors.New("logverify: invalid")

// timePrefix opens the checkpoint's extension line that carries its time.
const timePrefix = "time "

// Checkpoint is the body of a signed checkpoint (schemas/checkpoint.md):
//
//	<origin>\n<tree size>\n<base64 root hash>\ntime <RFC 3339 nanos UTC>\n
//
// the transparency-dev checkpoint format with one extension line.
type Checkpoint struct {
	Origin string
	Size   uint64
	Root   []byte
	Time   time.Time
}

// Body returns the text that is signed.
func (c Checkpoint) Body() string {
	return fmt.Sprintf("%s\n%d\n%s\n%s%s\n", c.Origin, c.Size, base64.StdEncoding.EncodeToString(c.Root),
		timePrefix, c.Time.UTC().Format(time.RFC3339Nano))
}

// ParseCheckpoint parses a checkpoint body (the note text, without signatures).
func ParseCheckpoint(body string) (Checkpoint, error) {
	if !strings.HasSuffix(body, "\n") {
		return Checkpoint{}, fmt.Errorf("%w: checkpoint body does not end in a newline", ErrInvalid)
	}
	lines := strings.Split(strings.TrimSuffix(body, "\n"), "\n")
	if len(lines) < 3 {
		return Checkpoint{}, fmt.Errorf("%w: checkpoint has %d lines, want at least 3", ErrInvalid, len(lines))
	}
	var c Checkpoint
	c.Origin = lines[0]
	if c.Origin == "" {
		return Checkpoint{}, fmt.Errorf("%w: empty origin", ErrInvalid)
	}
	size, err := strconv.ParseUint(lines[1], 10, 64)
	if err != nil || strconv.FormatUint(size, 10) != lines[1] {
		return Checkpoint{}, fmt.Errorf("%w: tree size %q", ErrInvalid, lines[1])
	}
	c.Size = size
	root, err := base64.StdEncoding.DecodeString(lines[2])
	if err != nil || len(root) != sha256.Size {
		return Checkpoint{}, fmt.Errorf("%w: root hash %q", ErrInvalid, lines[2])
	}
	c.Root = root
	for _, ext := range lines[3:] {
		if t, ok := strings.CutPrefix(ext, timePrefix); ok {
			at, err := time.Parse(time.RFC3339Nano, t)
			if err != nil {
				return Checkpoint{}, fmt.Errorf("%w: time %q", ErrInvalid, t)
			}
			c.Time = at.UTC()
		}
	}
	return c, nil
}

// VerifyCheckpoint checks the signature on a signed-note checkpoint with the
// hub's verifier key (note.NewVerifier format, "name+hash+key") and returns
// its body. The checkpoint's origin must be the key's name.
func VerifyCheckpoint(noteText string, verifierKey string) (Checkpoint, error) {
	v, err := note.NewVerifier(verifierKey)
	if err != nil {
		return Checkpoint{}, fmt.Errorf("logverify: verifier key: %w", err)
	}
	n, err := note.Open([]byte(noteText), note.VerifierList(v))
	if err != nil {
		return Checkpoint{}, fmt.Errorf("%w: checkpoint signature: %v", ErrInvalid, err)
	}
	c, err := ParseCheckpoint(n.Text)
	if err != nil {
		return Checkpoint{}, err
	}
	if c.Origin != v.Name() {
		return Checkpoint{}, fmt.Errorf("%w: checkpoint origin %q is not the key's name %q", ErrInvalid, c.Origin, v.Name())
	}
	return c, nil
}

// VerifyInclusion checks that leaf (its canonical bytes) is at index in the
// tree of the given size whose root hash is root.
func VerifyInclusion(leaf []byte, index, size uint64, proofHashes [][]byte, root []byte) error {
	if err := proof.VerifyInclusion(rfc6962.DefaultHasher, index, size, LeafHash(leaf), proofHashes, root); err != nil {
		return fmt.Errorf("%w: inclusion proof of leaf %d in tree of size %d: %v", ErrInvalid, index, size, err)
	}
	return nil
}

// VerifyConsistency checks that the tree (size2, root2) extends the tree
// (size1, root1): the log only appended between the two checkpoints.
func VerifyConsistency(size1, size2 uint64, proofHashes [][]byte, root1, root2 []byte) error {
	if err := proof.VerifyConsistency(rfc6962.DefaultHasher, size1, size2, proofHashes, root1, root2); err != nil {
		return fmt.Errorf("%w: consistency proof %d → %d: %v", ErrInvalid, size1, size2, err)
	}
	if size1 == size2 && !bytes.Equal(root1, root2) {
		return fmt.Errorf("%w: two roots for tree size %d", ErrInvalid, size1)
	}
	return nil
}

// GenerateKey makes a fresh Ed25519 note key pair named name (the log's
// origin, e.g. "lienthong.quochoi.vn/log"), for hubd dev and tests. Keep the
// signer key secret; publish the verifier key to auditors.
func GenerateKey(name string) (signerKey, verifierKey string, err error) {
	signerKey, verifierKey, err = note.GenerateKey(rand.Reader, name)
	if err != nil {
		return "", "", fmt.Errorf("logverify: generate key: %w", err)
	}
	return signerKey, verifierKey, nil
}

func verifyInclusionOfHash(index, size uint64, leafHash []byte, proofHashes [][]byte, root []byte) error {
	return proof.VerifyInclusion(rfc6962.DefaultHasher, index, size, leafHash, proofHashes, root)
}
