package logverify

import (
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"time"

	"github.com/transparency-dev/merkle/rfc6962"
)

// LeafVersion is the version byte that opens every leaf this package writes.
const LeafVersion = 1

// maxField bounds one length-prefixed field; the decoder refuses more.
const maxField = 1 << 24

// ErrMalformedLeaf: the bytes are not a canonical version-1 leaf.
var ErrMalformedLeaf = errors.New("logverify: malformed leaf")

// Leaf is one event of the ledger as the log commits to it. Its canonical
// bytes (Encode) are, in order:
//
//	byte    version (1)
//	uint64  event id, big-endian
//	field   document id (UUID text, lower case)
//	field   recipient organ code ("" for document-wide events)
//	field   kind
//	field   state
//	field   detail, the jsonb text exactly as PostgreSQL prints it
//	field   at, RFC 3339 with nanoseconds, UTC (time.RFC3339Nano)
//	field   document SHA-256 (32 bytes for kind "accepted", else empty)
//
// where field is a uint32 big-endian length followed by that many bytes.
// Nothing follows the last field.
type Leaf struct {
	EventID        int64
	DocumentID     string
	Recipient      string
	Kind           string
	State          string
	Detail         string
	At             time.Time
	DocumentSHA256 []byte
}

// Encode returns the canonical bytes of l.
func (l Leaf) Encode() []byte {
	at := l.At.UTC().Format(time.RFC3339Nano)
	fields := [][]byte{[]byte(l.DocumentID), []byte(l.Recipient), []byte(l.Kind), []byte(l.State),
		[]byte(l.Detail), []byte(at), l.DocumentSHA256}
	n := 1 + 8
	for _, f := range fields {
		n += 4 + len(f)
	}
	b := make([]byte, 0, n)
	b = append(b, LeafVersion)
	b = binary.BigEndian.AppendUint64(b, uint64(l.EventID))
	for _, f := range fields {
		b = binary.BigEndian.AppendUint32(b, uint32(len(f)))
		b = append(b, f...)
	}
	return b
}

// DecodeLeaf parses canonical leaf bytes. It accepts exactly what Encode
// writes: a known version, no trailing bytes, a canonical UTC time and a
// digest that is empty or 32 bytes long.
func DecodeLeaf(b []byte) (Leaf, error) {
	if len(b) < 9 {
		return Leaf{}, fmt.Errorf("%w: %d bytes", ErrMalformedLeaf, len(b))
	}
	if b[0] != LeafVersion {
		return Leaf{}, fmt.Errorf("%w: version %d", ErrMalformedLeaf, b[0])
	}
	var l Leaf
	l.EventID = int64(binary.BigEndian.Uint64(b[1:9]))
	rest := b[9:]
	var fields [7][]byte
	for i := range fields {
		if len(rest) < 4 {
			return Leaf{}, fmt.Errorf("%w: field %d truncated", ErrMalformedLeaf, i)
		}
		n := binary.BigEndian.Uint32(rest)
		rest = rest[4:]
		if n > maxField || uint64(n) > uint64(len(rest)) {
			return Leaf{}, fmt.Errorf("%w: field %d length %d", ErrMalformedLeaf, i, n)
		}
		fields[i], rest = rest[:n], rest[n:]
	}
	if len(rest) != 0 {
		return Leaf{}, fmt.Errorf("%w: %d trailing bytes", ErrMalformedLeaf, len(rest))
	}
	l.DocumentID, l.Recipient, l.Kind, l.State, l.Detail = string(fields[0]), string(fields[1]),
		string(fields[2]), string(fields[3]), string(fields[4])
	at, err := time.Parse(time.RFC3339Nano, string(fields[5]))
	if err != nil || at.UTC().Format(time.RFC3339Nano) != string(fields[5]) {
		return Leaf{}, fmt.Errorf("%w: time %q is not canonical RFC 3339 UTC", ErrMalformedLeaf, fields[5])
	}
	l.At = at.UTC()
	if n := len(fields[6]); n != 0 && n != sha256.Size {
		return Leaf{}, fmt.Errorf("%w: digest of %d bytes", ErrMalformedLeaf, n)
	}
	if len(fields[6]) > 0 {
		l.DocumentSHA256 = append([]byte(nil), fields[6]...)
	}
	return l, nil
}

// LeafHash is the RFC 6962 leaf hash, SHA-256(0x00 || leaf).
func LeafHash(leaf []byte) []byte { return rfc6962.DefaultHasher.HashLeaf(leaf) }
