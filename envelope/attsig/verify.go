package attsig

import (
	"bytes"
	"context"
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
	lim = lim.withDefaults()
	byName := map[string][]int{}
	for i, a := range atts {
		byName[a.Name] = append(byName[a.Name], i)
	}
	sigOf := map[int]int{}  // content attachment → its .p7s
	orphan := map[int]int{} // .p7s → number of candidate partners
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
			if err := verifyCMS(ctx, d, now, lim, a.Data, atts[j].Data, &vd); err != nil {
				if _, err := fail(&vd, err); vd.Outcome == "" {
					return nil, err
				}
			}
			out = append(out, vd)
			signed = true
		}
		if isPDF(a) {
			vds, err := verifyPDF(ctx, d, now, lim, a.Data)
			if err != nil {
				return nil, err
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
