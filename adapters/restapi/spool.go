package restapi

import (
	"crypto/sha256"
	"errors"
	"io"
	"os"
	"strconv"

	"lienthong/envelope"
	"lienthong/routing/intake"
)

// DefaultBlobThreshold is the body size above which a submission is
// spooled and streamed instead of held in memory (ARCHITECTURE.md
// principle 11).
const DefaultBlobThreshold = 1 << 20

// spool writes a large body to a private temporary file (mode 0600, from
// os.CreateTemp), hashing it as it goes: head is what was read already, the
// rest comes from body. More than MaxBody bytes in all is too_large and
// leaves nothing behind. cleanup removes the file; call it in every case.
func (s *Server) spool(head []byte, body io.Reader) (*intake.Spool, func(), error) {
	f, err := os.CreateTemp(s.cfg.SpoolDir, "lt-body-*")
	if err != nil {
		return nil, func() {}, errors.Join(errors.New("restapi: spool"), err)
	}
	cleanup := func() {
		f.Close()
		os.Remove(f.Name())
	}
	h := sha256.New()
	w := io.MultiWriter(f, h)
	if _, err := w.Write(head); err != nil {
		return nil, cleanup, errors.Join(errors.New("restapi: spool"), err)
	}
	rest := s.cfg.MaxBody - int64(len(head))
	n, err := io.CopyBuffer(w, io.LimitReader(body, rest+1), make([]byte, 256<<10))
	if err != nil {
		var we *os.PathError
		if errors.As(err, &we) {
			return nil, cleanup, errors.Join(errors.New("restapi: spool"), err)
		}
		return nil, cleanup, fail("bad_request", "reading the body: "+err.Error())
	}
	if n > rest {
		s.submitted.WithLabelValues(string(envelope.CodeTooLarge)).Inc()
		return nil, cleanup, &envelope.Error{Code: envelope.CodeTooLarge,
			Msg: "body is over the limit of " + strconv.FormatInt(s.cfg.MaxBody, 10) + " bytes"}
	}
	return &intake.Spool{Path: f.Name(), Size: int64(len(head)) + n, SHA256: h.Sum(nil)}, cleanup, nil
}
