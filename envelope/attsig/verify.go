package attsig

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"time"

	"lienthong/envelope"
	"lienthong/envelope/trust"
)

// VerifyAttachments gives every attachment of one document its verdicts, in
// attachment order: a cms-detached verdict when a ".p7s" partner signs it
// (see the package documentation for the pairing), a pades verdict per
// signature dictionary when it is a PDF, an "unsigned" verdict when neither;
// an orphan ".p7s" gets a detached_signature_orphan verdict. The error is
// the hub's problem only (unknown domain, context); every problem with a
// signature is in its verdict.
func (v *Verifier) VerifyAttachments(ctx context.Context, domain string, atts []envelope.AttachmentData) ([]Verdict, error) {
	d, now, err := v.domain(domain)
	if err != nil {
		return nil, err
	}
	return VerifyAttachmentsIn(ctx, d, now, v.Limits, atts)
}

// VerifyAttachmentsIn is VerifyAttachments under trust domain d at the
// hub's time now, for a caller that has chosen both already (the accept
// path's verification step).
func VerifyAttachmentsIn(ctx context.Context, d *trust.Domain, now time.Time, lim Limits, atts []envelope.AttachmentData) ([]Verdict, error) {
	hdrs := make([]envelope.Attachment, len(atts))
	for i, a := range atts {
		hdrs[i] = a.Attachment
	}
	return verifyFrom(ctx, d, now, lim.withDefaults(), hdrs, memContents(atts))
}

// contents gives verifyFrom the decoded content of a document's
// attachments: held in memory (memContents) or decoded from a spooled body
// as it is read (streamContents, stream.go). The verdicts are made by the
// same code either way.
type contents interface {
	// content writes attachment i to a digest.
	content(i int) contentFunc
	// whole returns attachment i, at most lim.MaxSignatureBytes (a ".p7s").
	whole(i int) ([]byte, error)
	// pdf returns attachment i, at most lim.MaxPDFBytes, for the PDF
	// scanner; release frees it.
	pdf(i int) (b []byte, release func(), err error)
	// isPDF reports whether attachment i is a PDF.
	isPDF(i int) bool
}

type memContents []envelope.AttachmentData

func (m memContents) content(i int) contentFunc         { return bytesContent(m[i].Data) }
func (m memContents) whole(i int) ([]byte, error)       { return m[i].Data, nil }
func (m memContents) pdf(i int) ([]byte, func(), error) { return m[i].Data, func() {}, nil }
func (m memContents) isPDF(i int) bool                  { return isPDF(m[i]) }

// pairing pairs each ".p7s" attachment with the attachment it signs (see
// the package documentation): sigOf maps a content attachment to its
// ".p7s", orphan a ".p7s" without a partner to the number of candidates.
func pairing(atts []envelope.Attachment) (sigOf, orphan map[int]int) {
	byName := map[string][]int{}
	for i, a := range atts {
		byName[a.Name] = append(byName[a.Name], i)
	}
	sigOf = map[int]int{}  // content attachment → its .p7s
	orphan = map[int]int{} // .p7s → number of candidate partners
	for i, a := range atts {
		if !isP7S(a.Name) {
			continue
		}
		base := a.Name[:len(a.Name)-len(".p7s")]
		cands := byName[base]
		if len(cands) != 1 || isP7S(atts[cands[0]].Name) {
			orphan[i] = len(cands)
			continue
		}
		if _, dup := sigOf[cands[0]]; dup {
			orphan[i] = 2
			continue
		}
		sigOf[cands[0]] = i
	}
	return sigOf, orphan
}

// verifyFrom is VerifyAttachmentsIn over atts, whose content src gives.
func verifyFrom(ctx context.Context, d *trust.Domain, now time.Time, lim Limits, atts []envelope.Attachment, src contents) ([]Verdict, error) {
	sigOf, orphan := pairing(atts)
	var out []Verdict
	for i, a := range atts {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		base := Verdict{ContentID: a.ContentID, Name: a.Name, Domain: d.Name, VerifiedAt: now}
		if isP7S(a.Name) {
			if n, ok := orphan[i]; ok {
				vd := base
				vd.Kind, vd.Outcome, vd.Code = KindCMSDetached, OutcomeInvalid, CodeOrphan
				vd.Reason = "no attachment named " + quote(a.Name[:len(a.Name)-4]) + " to pair with"
				if n > 1 {
					vd.Reason = "several attachments named " + quote(a.Name[:len(a.Name)-4]) + "; the pairing is ambiguous"
				}
				out = append(out, vd)
			}
			continue
		}
		signed := false
		if j, ok := sigOf[i]; ok {
			vd := base
			vd.Kind, vd.SignatureContentID = KindCMSDetached, atts[j].ContentID
			var err error
			if atts[j].Size > lim.MaxSignatureBytes {
				err = sigTooLarge(atts[j].Size, lim.MaxSignatureBytes)
			} else {
				var sig []byte
				if sig, err = src.whole(j); err != nil {
					return nil, fmt.Errorf("attsig: attachment %s: %w", atts[j].ContentID, err)
				}
				err = verifyCMS(ctx, d, now, lim, src.content(i), sig, &vd)
			}
			if err != nil {
				if _, err := fail(&vd, err); vd.Outcome == "" {
					return nil, err
				}
			}
			out = append(out, vd)
			signed = true
		}
		if src.isPDF(i) {
			var vds []Verdict
			if a.Size > lim.MaxPDFBytes {
				vds = []Verdict{pdfTooLarge(d, now, a.Size, lim)}
			} else {
				pdf, release, err := src.pdf(i)
				if err != nil {
					return nil, fmt.Errorf("attsig: attachment %s: %w", a.ContentID, err)
				}
				vds, err = verifyPDF(ctx, d, now, lim, pdf)
				release()
				if err != nil {
					return nil, err
				}
			}
			for _, vd := range vds {
				vd.ContentID, vd.Name = a.ContentID, a.Name
				out = append(out, vd)
				signed = true
			}
		}
		if !signed {
			vd := base
			vd.Outcome = OutcomeUnsigned
			out = append(out, vd)
		}
	}
	return out, nil
}

// VerifyPackage decodes the attachments of the edXML package raw
// (envelope.ReadAttachments, with the envelope's limits) and verifies them.
// A package the envelope parser refuses is an *envelope.Error.
func (v *Verifier) VerifyPackage(ctx context.Context, domain string, raw []byte, lim envelope.Limits) ([]Verdict, error) {
	_, atts, err := envelope.ReadAttachments(raw, lim)
	if err != nil {
		return nil, err
	}
	return v.VerifyAttachments(ctx, domain, atts)
}

// AllValid reports whether no verdict is invalid (unsigned attachments are
// not invalid).
func AllValid(vs []Verdict) bool {
	for _, v := range vs {
		if v.Outcome == OutcomeInvalid {
			return false
		}
	}
	return true
}

// FirstInvalid returns the first invalid verdict, or nil.
func FirstInvalid(vs []Verdict) *Verdict {
	for i := range vs {
		if vs[i].Outcome == OutcomeInvalid {
			return &vs[i]
		}
	}
	return nil
}

func isP7S(name string) bool {
	return len(name) > len(".p7s") && strings.EqualFold(name[len(name)-4:], ".p7s")
}

func isPDF(a envelope.AttachmentData) bool {
	return bytes.HasPrefix(a.Data, []byte("%PDF-")) || a.Sniffed == "application/pdf"
}

func quote(s string) string { return "\"" + s + "\"" }
