package verify

import (
	"context"
	"fmt"
	"io"
	"sync"

	"lienthong/envelope"
	"lienthong/envelope/dsig"
)

// Opener returns a large body from its first byte; each call reads it anew
// (the accept path reads a private spool file).
type Opener func() (io.ReadCloser, error)

// VerifyStream is Verify for a body above the intake's blob threshold, which
// is not held in memory: doc is the envelope read from it (by
// envelope.ParseReader, Raw nil) and open reads its size bytes again. The
// XML-DSig signature is checked by dsig.VerifyStream (two passes); the
// signed content is read by envelope.ParseReader from the bytes of the pass
// whose digest was checked, and must give doc's metadata, as in Verify.
//
// Attachment signatures (detached CMS, PAdES) are checked in bounded memory
// when the attachment verifier is a StreamAttachmentVerifier (as
// AttachmentSignatures is), with the verdicts and policy effects of Verify;
// another verifier gives each attachment the verdict not_checked.
func (v *Verifier) VerifyStream(ctx context.Context, doc *envelope.Document, open Opener, size int64, channel string) (*Report, error) {
	var b Binding
	if v.cfg.Directory != nil {
		var err error
		if b, err = v.cfg.Directory.Binding(ctx, doc.From.Code); err != nil {
			return nil, fmt.Errorf("verify: directory: %w", err)
		}
	}
	domain := v.Domain(channel, b)
	rep, err := v.verifyIn(ctx, doc, domain, b, v.cfg.Directory != nil, &streamBody{open, size}, func(opts dsig.Options) (*dsig.Report, signedContent, error) {
		return v.streamCheck(ctx, open, size, domain, opts)
	})
	if rep != nil {
		rep.Channel = channel
	}
	return rep, err
}

// CheckStream is VerifyStream with the signature of the accept path's
// streaming verification step (intake.StreamVerifier).
func (v *Verifier) CheckStream(ctx context.Context, doc *envelope.Document, open func() (io.ReadCloser, error), size int64, channel string) (any, error) {
	rep, err := v.VerifyStream(ctx, doc, open, size, channel)
	if rep == nil {
		return nil, err
	}
	return rep, err
}

func (v *Verifier) streamCheck(ctx context.Context, open Opener, size int64, domain string, opts dsig.Options) (*dsig.Report, signedContent, error) {
	var (
		closers []io.Closer
		pw      *io.PipeWriter
		wg      sync.WaitGroup
		signed  *envelope.Document
		perr    error
	)
	lim := v.streamLimits(size)
	opener := func(pass int) (io.Reader, error) {
		rc, err := open()
		if err != nil {
			return nil, err
		}
		closers = append(closers, rc)
		if pass != 2 {
			return rc, nil
		}
		// Pass 2 is the one whose bytes are digested: the metadata is read
		// from exactly those bytes, by the envelope parser, as they go by.
		var pr *io.PipeReader
		pr, pw = io.Pipe()
		wg.Add(1)
		go func() {
			defer wg.Done()
			signed, perr = envelope.ParseReader(pr, size, lim)
			_, _ = io.Copy(io.Discard, pr) // never block the digest pass
		}()
		return io.TeeReader(rc, pw), nil
	}
	dr, err := v.ds.VerifyStream(ctx, opener, domain, opts)
	if pw != nil {
		pw.Close()
		wg.Wait()
	}
	for _, c := range closers {
		c.Close()
	}
	if dr == nil || dr.Outcome != dsig.OutcomeValid || err != nil {
		return dr, nil, err
	}
	return dr, func() (*envelope.Document, error) { return signed, perr }, nil
}

// streamLimits are the envelope limits under which a streamed body of size
// bytes is read again.
func (v *Verifier) streamLimits(size int64) envelope.Limits {
	lim := v.cfg.Limits
	lim.MaxBytes = max(lim.MaxBytes, size)
	return lim
}

// notCheckedAttachments gives every attachment of a streamed body the
// verdict not_checked.
func notCheckedAttachments(rep *Report, doc *envelope.Document) *Report {
	for _, a := range doc.Attachments {
		rep.Attachments = append(rep.Attachments, Attachment{ContentID: a.ContentID, Name: a.Name, Verdict: OutcomeNotChecked,
			Reason: "body above the streaming threshold and an attachment verifier that cannot read it: attachment signatures (CMS, PAdES) not checked"})
	}
	return rep
}
