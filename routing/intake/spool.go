package intake

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"os"

	"lienthong/envelope"
)

// Spool is a large body the edge has written to a private temporary file
// (ARCHITECTURE.md principle 11), hashed while it was read. The edge owns
// the file and removes it after Submit returns.
type Spool struct {
	Path   string
	Size   int64
	SHA256 []byte // of the Size bytes of the file
}

func (sp *Spool) open() (io.ReadCloser, error) {
	f, err := os.Open(sp.Path)
	if err != nil {
		return nil, fmt.Errorf("intake: spool: %w", err)
	}
	return f, nil
}

// StreamVerifier is the verification step for a spooled body: doc was read
// by envelope.ParseReader; open reads the size bytes anew for each pass.
// envelope/verify implements it (CheckStream).
type StreamVerifier interface {
	CheckStream(ctx context.Context, doc *envelope.Document, open func() (io.ReadCloser, error), size int64, channel string) (report any, err error)
}

// errNoStreamVerifier: a verifier is configured that cannot check a
// spooled body; the hub refuses to accept it unchecked.
var errNoStreamVerifier = errors.New("intake: the verification step cannot check a spooled body")

func (s *Service) parse(sub Submission) (*envelope.Document, error) {
	if sub.Spool == nil {
		if s.cfg.Verifier != nil { // its tokens are verified, not Raw tokenized again
			return envelope.ParseRecorded(sub.Raw, s.cfg.Limits)
		}
		return envelope.Parse(sub.Raw, s.cfg.Limits)
	}
	f, err := sub.Spool.open()
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return envelope.ParseReader(f, sub.Spool.Size, s.cfg.Limits)
}

func (s *Service) check(ctx context.Context, doc *envelope.Document, sub Submission) (any, error) {
	if sub.Spool == nil {
		return s.cfg.Verifier.Check(ctx, doc, sub.Channel)
	}
	sv, ok := s.cfg.Verifier.(StreamVerifier)
	if !ok {
		return nil, errNoStreamVerifier
	}
	return sv.CheckStream(ctx, doc, sub.Spool.open, sub.Spool.Size, sub.Channel)
}

func digest(sub Submission) []byte {
	if sub.Spool != nil {
		return sub.Spool.SHA256
	}
	sum := sha256.Sum256(sub.Raw)
	return sum[:]
}
