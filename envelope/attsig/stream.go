package attsig

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"lienthong/envelope"
	"lienthong/envelope/trust"
)

// Body is a large body that is not held in memory (a spool file of the
// accept path), which ParseReader read into a Document.
type Body struct {
	// Open reads the body from its first byte; each call reads it anew. An
	// *os.File (any io.ReaderAt) is read at the attachments' offsets.
	Open func() (io.ReadCloser, error)
	Size int64
	// Limits are the envelope limits ParseReader applied (a re-read uses them).
	Limits envelope.Limits
	// TempDir holds the private temporary files of decoded PDFs; "" means
	// os.TempDir().
	TempDir string
}

// VerifyStreamIn is VerifyAttachmentsIn for doc, a Document that
// envelope.ParseReader read from body: the same verdicts, reasons and codes
// (the same code makes them), in bounded memory whatever the size of the
// attachments. Each attachment that a verdict needs is base64-decoded from
// its span in the body as it is read (envelope.OpenAttachment): a detached
// signature's content straight into the digest, a PDF into a private
// temporary file (removed after) that the PDF scanner reads mapped in
// memory. Attachments without a plain span (CDATA, comments or references
// in their base64) are decoded by one more pass over the body
// (envelope.DecodeAttachments) into one private temporary file.
func VerifyStreamIn(ctx context.Context, d *trust.Domain, now time.Time, lim Limits, doc *envelope.Document, body Body) ([]Verdict, error) {
	lim = lim.withDefaults()
	if doc.Format == envelope.FormatHub || len(doc.Attachments) == 0 {
		return nil, nil
	}
	src := &streamContents{ctx: ctx, doc: doc, body: body, lim: lim}
	defer src.close()
	// What the verdicts will read: a PDF within the scan limit, a detached
	// signature within its limit and the attachment it signs.
	src.needed = make([]bool, len(doc.Attachments))
	sigOf, _ := pairing(doc.Attachments)
	for i, a := range doc.Attachments {
		if isPDFAttachment(a) && a.Size <= lim.MaxPDFBytes {
			src.needed[i] = true
		}
		if j, ok := sigOf[i]; ok && doc.Attachments[j].Size <= lim.MaxSignatureBytes {
			src.needed[i], src.needed[j] = true, true
		}
	}
	return verifyFrom(ctx, d, now, lim, doc.Attachments, src)
}

// streamContents is contents over a spooled body.
type streamContents struct {
	ctx    context.Context // stops a long decode
	doc    *envelope.Document
	body   Body
	lim    Limits
	needed []bool

	at      io.ReaderAt // the body, read at offsets
	atClose func()

	// The attachments without a plain span, decoded into one file.
	spill    *os.File
	spillOff map[int][2]int64 // attachment → offset, size in spill
	spillErr error
}

func (s *streamContents) close() {
	if s.atClose != nil {
		s.atClose()
	}
	if s.spill != nil {
		s.spill.Close()
		os.Remove(s.spill.Name())
	}
}

// reader returns attachment i's decoded content from the body.
func (s *streamContents) reader(i int) (io.Reader, error) {
	if s.at == nil {
		s.at, s.atClose = bodyReaderAt(s.body.Open)
	}
	r, err := envelope.OpenAttachment(s.doc, i, s.at)
	switch {
	case err == nil:
		return ctxReader{s.ctx, r}, nil
	case !errors.Is(err, envelope.ErrNoSpan):
		return nil, err
	}
	if err := s.decodeRest(); err != nil {
		return nil, err
	}
	o, ok := s.spillOff[i]
	if !ok {
		return nil, fmt.Errorf("attsig: attachment %d was not decoded", i)
	}
	return ctxReader{s.ctx, io.NewSectionReader(s.spill, o[0], o[1])}, nil
}

// ctxReader stops reading once ctx is done.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}

// decodeRest decodes, once, every needed attachment that has no plain span
// into the spill file, in one pass over the body.
func (s *streamContents) decodeRest() error {
	if s.spill != nil || s.spillErr != nil {
		return s.spillErr
	}
	f, err := os.CreateTemp(s.body.TempDir, "lt-att-*")
	if err != nil {
		s.spillErr = fmt.Errorf("attsig: %w", err)
		return s.spillErr
	}
	s.spill, s.spillOff = f, map[int][2]int64{}
	rc, err := s.body.Open()
	if err != nil {
		s.spillErr = err
		return err
	}
	defer rc.Close()
	body := ctxReader{s.ctx, rc}
	var off int64
	want := func(i int) bool { return s.needed[i] && !envelope.PlainSpan(s.doc, i) }
	for i := range s.doc.Attachments {
		if want(i) {
			// Present even when fn is never called for i (its text
			// decodes to nothing: whitespace and a comment).
			s.spillOff[i] = [2]int64{}
		}
	}
	err = envelope.DecodeAttachments(body, s.body.Size, s.body.Limits, s.doc, func(i int, b []byte) error {
		if !want(i) {
			return nil
		}
		o := s.spillOff[i]
		if o[1] == 0 {
			o[0] = off
		}
		n, err := f.Write(b)
		off += int64(n)
		o[1] += int64(n)
		s.spillOff[i] = o
		return err
	})
	if err != nil {
		s.spillErr = fmt.Errorf("attsig: decoding the attachments again: %w", err)
	}
	return s.spillErr
}

func (s *streamContents) content(i int) contentFunc {
	return func(w io.Writer) error {
		r, err := s.reader(i)
		if err != nil {
			return err
		}
		_, err = io.CopyBuffer(w, r, make([]byte, 32<<10))
		return err
	}
}

func (s *streamContents) whole(i int) ([]byte, error) {
	r, err := s.reader(i)
	if err != nil {
		return nil, err
	}
	want := s.doc.Attachments[i].Size
	b, err := io.ReadAll(io.LimitReader(r, want+1))
	if err == nil && int64(len(b)) != want {
		// More bytes than ParseReader saw: the reader's own end check is
		// never reached, so the size is checked here.
		err = fmt.Errorf("decoded %d bytes or more, ParseReader saw %d", len(b), want)
	}
	if err != nil {
		return nil, fmt.Errorf("attsig: decoding attachment %s: %w", s.doc.Attachments[i].ContentID, err)
	}
	return b, nil
}

// pdf decodes attachment i into a private temporary file and maps it.
func (s *streamContents) pdf(i int) ([]byte, func(), error) {
	r, err := s.reader(i)
	if err != nil {
		return nil, nil, err
	}
	f, err := os.CreateTemp(s.body.TempDir, "lt-pdf-*")
	if err != nil {
		return nil, nil, fmt.Errorf("attsig: %w", err)
	}
	drop := func() {
		f.Close()
		os.Remove(f.Name())
	}
	n, err := io.CopyBuffer(f, r, make([]byte, 32<<10))
	if err == nil && n != s.doc.Attachments[i].Size {
		err = fmt.Errorf("decoded %d bytes, ParseReader saw %d", n, s.doc.Attachments[i].Size)
	}
	if err != nil {
		drop()
		return nil, nil, fmt.Errorf("attsig: decoding attachment %s: %w", s.doc.Attachments[i].ContentID, err)
	}
	b, unmap, err := mapFile(f, n)
	if err != nil {
		drop()
		return nil, nil, fmt.Errorf("attsig: %w", err)
	}
	return b, func() { unmap(); drop() }, nil
}

func (s *streamContents) isPDF(i int) bool { return isPDFAttachment(s.doc.Attachments[i]) }

// isPDFAttachment is isPDF for an attachment known by its model only: the
// parser sniffs "%PDF" from the same first bytes isPDF looks at.
func isPDFAttachment(a envelope.Attachment) bool { return a.Sniffed == "application/pdf" }

// bodyReaderAt returns the body as an io.ReaderAt: the opened file itself
// when it is one, else a reader that reopens the body only to go back.
func bodyReaderAt(open func() (io.ReadCloser, error)) (io.ReaderAt, func()) {
	s := &seqReaderAt{open: open}
	return s, s.close
}

// seqReaderAt serves ReadAt from one open body: directly when it is an
// io.ReaderAt, else sequentially (reading forward, reopening to go back),
// which is what the section readers of OpenAttachment need.
type seqReaderAt struct {
	open func() (io.ReadCloser, error)
	rc   io.ReadCloser
	pos  int64
}

func (s *seqReaderAt) ReadAt(p []byte, off int64) (int, error) {
	if s.rc == nil {
		rc, err := s.open()
		if err != nil {
			return 0, err
		}
		s.rc, s.pos = rc, 0
	}
	if ra, ok := s.rc.(io.ReaderAt); ok {
		return ra.ReadAt(p, off)
	}
	if off < s.pos {
		s.rc.Close()
		s.rc = nil
		return s.ReadAt(p, off)
	}
	if off > s.pos {
		n, err := io.CopyN(io.Discard, s.rc, off-s.pos)
		s.pos += n
		if err != nil {
			return 0, err
		}
	}
	n, err := io.ReadFull(s.rc, p)
	s.pos += int64(n)
	if err == io.ErrUnexpectedEOF {
		err = io.EOF
	}
	return n, err
}

func (s *seqReaderAt) close() {
	if s.rc != nil {
		s.rc.Close()
	}
}
