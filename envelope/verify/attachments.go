package verify

import (
	"context"
	"fmt"
	"time"

	"lienthong/envelope"
	"lienthong/envelope/attsig"
	"lienthong/envelope/trust"
)

// AttachmentSignatures is the AttachmentVerifier of the accept path: it
// decodes the attachments of an edXML package (envelope.EachAttachment's
// limits) and checks their detached CMS (X + X.p7s) and PAdES signatures
// with envelope/attsig, under the document's trust domain and at the
// verification time, revocation included. One Attachment per attachment
// (the ".p7s" files are reported inside the attachment they sign).
type AttachmentSignatures struct {
	Envelope envelope.Limits
	Limits   attsig.Limits
	// TempDir holds the private temporary files of PDFs decoded from a
	// streamed body; "" means os.TempDir().
	TempDir string
}

// VerifyAttachments implements AttachmentVerifier.
func (a AttachmentSignatures) VerifyAttachments(ctx context.Context, doc *envelope.Document, d *trust.Domain, at time.Time) ([]Attachment, error) {
	if doc.Format == envelope.FormatHub || len(doc.Attachments) == 0 {
		return []Attachment{}, nil
	}
	atts, err := envelope.AttachmentsOf(doc, a.Envelope)
	if err != nil {
		return nil, err
	}
	vds, err := attsig.VerifyAttachmentsIn(ctx, d, at, a.Limits, atts)
	if err != nil {
		return nil, err
	}
	return AttachmentsOf(vds), nil
}

// VerifyStreamAttachments implements StreamAttachmentVerifier: the same
// checks as VerifyAttachments (attsig.VerifyStreamIn), each attachment
// decoded from the body as it is read.
func (a AttachmentSignatures) VerifyStreamAttachments(ctx context.Context, doc *envelope.Document, open Opener, size int64,
	lim envelope.Limits, d *trust.Domain, at time.Time) ([]Attachment, error) {
	if doc.Format == envelope.FormatHub || len(doc.Attachments) == 0 {
		return []Attachment{}, nil
	}
	// AttachmentsOf's limit on one decoded attachment, as in memory.
	maxData := a.Envelope.MaxAttachmentBytes
	if maxData <= 0 {
		maxData = a.Envelope.MaxBytes
	}
	if maxData <= 0 {
		maxData = envelope.DefaultMaxBytes
	}
	for i, att := range doc.Attachments {
		if att.Size > maxData {
			return nil, &envelope.Error{Code: envelope.CodeTooLarge,
				Msg: fmt.Sprintf("attachment %d: decoded size over the limit of %d bytes", i+1, maxData)}
		}
	}
	vds, err := attsig.VerifyStreamIn(ctx, d, at, a.Limits, doc, attsig.Body{Open: open, Size: size, Limits: lim, TempDir: a.TempDir})
	if err != nil {
		return nil, err
	}
	return AttachmentsOf(vds), nil
}

// AttachmentsOf groups attachment verdicts by attachment, in order.
func AttachmentsOf(vds []attsig.Verdict) []Attachment {
	out := []Attachment{}
	idx := map[string]int{}
	for _, v := range vds {
		i, ok := idx[v.ContentID]
		if !ok {
			i = len(out)
			idx[v.ContentID] = i
			out = append(out, Attachment{ContentID: v.ContentID, Name: v.Name, Verdict: OutcomeAbsent})
		}
		att := &out[i]
		if v.Kind == "" { // unsigned
			continue
		}
		att.Signatures = append(att.Signatures, signatureOf(v))
		switch {
		case v.Outcome == attsig.OutcomeInvalid && att.Verdict != OutcomeInvalid:
			att.Verdict, att.Code, att.Reason = OutcomeInvalid, v.Code, v.Reason
		case v.Outcome == attsig.OutcomeNotChecked && att.Verdict == OutcomeAbsent:
			att.Verdict, att.Code, att.Reason = OutcomeNotChecked, v.Code, v.Reason
		case v.Outcome == attsig.OutcomeValid && att.Verdict == OutcomeAbsent:
			att.Verdict = OutcomeValid
		}
	}
	return out
}

func signatureOf(v attsig.Verdict) Signature {
	s := Signature{Kind: v.Kind, Verdict: v.Outcome, Code: v.Code, Reason: v.Reason,
		Algorithms: Algorithms{Signature: v.SignatureAlgorithm, Digest: v.DigestAlgorithm},
		Revocation: EvidenceOf(v.Revocation)}
	switch v.Kind {
	case attsig.KindCMSDetached:
		s.Location = "detached"
		if v.SignatureContentID != "" {
			s.Location = "detached:cid:" + v.SignatureContentID
		}
		if v.Outcome == attsig.OutcomeValid {
			s.Algorithms.SignedContent = "whole_attachment"
		}
	case attsig.KindPAdES:
		s.Location = fmt.Sprintf("pdf signature %d", v.Index)
		if v.SubFilter != "" {
			s.Location += " (" + v.SubFilter + ")"
		}
		if len(v.ByteRange) == 4 {
			s.Algorithms.SignedContent = fmt.Sprintf("byte_range [%d %d %d %d]", v.ByteRange[0], v.ByteRange[1], v.ByteRange[2], v.ByteRange[3])
		}
	}
	if v.Signer != nil {
		c := CertOf(v.Signer)
		s.Signer = &c
	}
	for _, c := range v.Chain {
		s.Chain = append(s.Chain, CertOf(c))
	}
	return s
}
