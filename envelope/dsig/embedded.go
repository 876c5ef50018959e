package dsig

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/sha512"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"fmt"
	"hash"
	"strings"
	"time"

	"github.com/beevik/etree"
	goxmldsig "github.com/russellhaering/goxmldsig"
	"github.com/russellhaering/goxmldsig/etreeutils"

	"lienthong/envelope/trust"
	"lienthong/envelope/xmlscan"
)

// Embedded describes a signed document carried inside the document being
// verified: an Akoma Ntoso record inline in a hub envelope's Payload. Such a
// document may carry its own (author's) signature beside the envelope's
// (sender's):
//
//   - the envelope signature sits at Options.Location and covers the whole
//     outer document with URI="", the embedded document and its signature
//     included (the enveloped transform removes the envelope's own
//     ds:Signature element only);
//   - the embedded signature sits at Location inside the embedded root and
//     covers the embedded root as a document of its own (URI="" relative to
//     that element, akn-ipu.md §1.9: the AKN root carries no id). It must use
//     exclusive c14n: only exclusive c14n makes the digest independent of
//     the namespace declarations of the envelope around it, so that a
//     document signed on its own still verifies once wrapped.
type Embedded struct {
	// Parent is where the embedded document's root sits in the outer
	// document (its parent element, e.g. /Envelope/Payload).
	Parent Location
	// Location is where the embedded document carries its signature,
	// from the embedded root (e.g. AKNPayloadProprietary).
	Location Location
}

// AKNPayloadProprietary is /akomaNtoso/*/meta/proprietary[@source] with any
// non-empty source: the place of the author's signature in an Akoma Ntoso
// document carried by another (the source names the author's agent, which the
// hub does not prescribe).
var AKNPayloadProprietary = Location{
	Namespace: NamespaceAKN,
	Path:      []string{"akomaNtoso", "*", "meta", "proprietary"},
	Accept:    func(p *etree.Element) bool { return strings.TrimSpace(p.SelectAttrValue("source", "")) != "" },
}

// root returns the embedded document's root in the tree rooted at top, or
// nil when there is none (or more than one candidate).
func (e *Embedded) root(top *etree.Element) *etree.Element {
	if e == nil || len(e.Location.Path) == 0 {
		return nil
	}
	var found *etree.Element
	n := 0
	walk(top, func(el *etree.Element) bool {
		if el != top && e.Parent.matches(top, el) {
			for _, c := range el.ChildElements() {
				if e.Location.nameMatches(c, e.Location.Path[0]) {
					found = c
					n++
				}
			}
			return false
		}
		return true
	})
	if n != 1 {
		return nil
	}
	return found
}

// within reports whether el is inside (or is) anc.
func within(el, anc *etree.Element) bool {
	for ; el != nil; el = el.Parent() {
		if el == anc {
			return true
		}
	}
	return false
}

// errDigestMismatch: the Reference digest does not match the content.
var errDigestMismatch = errors.New("dsig: reference digest does not match the signed content")

// sigMethodX509 maps the allowed signature methods to crypto/x509's.
var sigMethodX509 = map[string]x509.SignatureAlgorithm{
	AlgRSASHA256: x509.SHA256WithRSA, AlgRSASHA384: x509.SHA384WithRSA, AlgRSASHA512: x509.SHA512WithRSA,
	AlgECDSASHA256: x509.ECDSAWithSHA256, AlgECDSASHA384: x509.ECDSAWithSHA384, AlgECDSASHA512: x509.ECDSAWithSHA512,
}

// validateAt does what goxmldsig's ValidationContext.Validate does, for the
// given signature element sig of the tree rooted at root instead of the
// first one in document order (which, when an embedded document is signed,
// is the embedded one). The caller has checked sig's shape and algorithms
// (checkSignedInfo), pinned leaf and normalised the SignatureValue.
//
//  1. SignedInfo is canonicalised as goxmldsig does after detaching it with
//     its in-scope namespaces (canonicalSignedInfo);
//  2. SignatureValue is checked over those bytes with the leaf's key;
//  3. the Reference is read from the verified SignedInfo bytes only;
//  4. root without sig (exactly that element: the enveloped transform) is
//     canonicalised by the Reference's c14n transform straight into the
//     digest (canonicalizer: no copy of the tree, no canonical []byte); the
//     digest must match;
//  5. sig is removed from the tree and root is returned: callers read from
//     that element only (signature-wrapping defence). That is the signed
//     content because checkReference made the Reference cover the whole
//     document and the transform removed that one signature, nothing else.
//
// root must be the document's root element.
//
// A digest mismatch is errDigestMismatch; invalidError maps the errors as
// it maps goxmldsig's.
func validateAt(root, sig *etree.Element, leaf *x509.Certificate, idAttr string) (*etree.Element, error) {
	ref, err := verifySignedInfo(root, sig, leaf, idAttr)
	if err != nil {
		return nil, err
	}
	digestAlg := algorithm(childDS(ref, "DigestMethod"))
	want, err := base64.StdEncoding.DecodeString(strings.TrimSpace(childDS(ref, "DigestValue").Text()))
	if err != nil {
		return nil, err
	}
	var exclusive, c14n bool
	enveloped := false
	prefixes := ""
	if ts := childDS(ref, "Transforms"); ts != nil {
		for _, t := range ts.ChildElements() {
			switch a := algorithm(t); a {
			case AlgEnveloped:
				enveloped = true
			case AlgExcC14N:
				for _, c := range t.ChildElements() {
					if c.Tag == "InclusiveNamespaces" {
						prefixes = c.SelectAttrValue("PrefixList", "")
					}
				}
				exclusive, c14n = true, true
			case AlgC14N11, AlgC14N10:
				exclusive, c14n = false, true
			default:
				return nil, errors.New("unknown transform algorithm: " + a)
			}
		}
	}
	if !enveloped || !c14n {
		return nil, errors.New("reference transforms are not enveloped-signature + c14n")
	}
	// The streaming canonicalizer needs root to be the document's root (no
	// ancestors whose namespaces would be in scope) and sig inside it.
	if p := root.Parent(); (p != nil && (p.Tag != "" || p.Parent() != nil)) || sig == root || !within(sig, root) {
		return nil, errors.New("enveloped-signature transform: signature not found")
	}
	var h hash.Hash
	switch digestAlg {
	case AlgDigestSHA256:
		h = sha256.New()
	case AlgDigestSHA384:
		h = sha512.New384()
	case AlgDigestSHA512:
		h = sha512.New()
	default:
		return nil, errors.New("unknown digest algorithm: " + digestAlg)
	}
	// The referenced content (root without exactly sig: the enveloped
	// transform) is canonicalised straight into the hash.
	if err := newCanonicalizer(h, exclusive, prefixes, sig).canonicalize(root); err != nil {
		return nil, err
	}
	if !bytes.Equal(h.Sum(nil), want) {
		return nil, errDigestMismatch
	}
	// The verified content is our tree without the signature: exactly what
	// was digested (comments aside, which c14n leaves out and which
	// findCommentInjection has checked cannot split a value).
	sig.Parent().RemoveChild(sig)
	return root, nil
}

// childDS returns el's first child element in the XML-DSig namespace with
// local name tag, or nil.
func childDS(el *etree.Element, tag string) *etree.Element {
	if el == nil {
		return nil
	}
	for _, c := range el.ChildElements() {
		if c.Tag == tag && c.NamespaceURI() == NamespaceDSig {
			return c
		}
	}
	return nil
}

// onlyExclusiveC14N refuses an embedded document's signature whose
// SignedInfo or Reference canonicalisation is inclusive (see Embedded).
func onlyExclusiveC14N(sig *etree.Element) *VerifyError {
	si := childDS(sig, "SignedInfo")
	algs := []string{algorithm(childDS(si, "CanonicalizationMethod"))}
	if ts := childDS(childDS(si, "Reference"), "Transforms"); ts != nil {
		for _, t := range ts.ChildElements() {
			if a := algorithm(t); a != AlgEnveloped {
				algs = append(algs, a)
			}
		}
	}
	for _, a := range algs {
		if a != AlgExcC14N {
			return verr(CodeAlgorithm, nil, "canonicalization %s: the signature of an embedded document must use exclusive c14n (%s), which does not depend on the envelope around it", a, AlgExcC14N)
		}
	}
	return nil
}

// verifyWithEmbedded applies the rules of Options.Embedded when a signature
// lies inside the embedded document; handled is false when none does (the
// ordinary one-signature rules then apply unchanged).
//
// Rules: at most two ds:Signature elements, the envelope's at
// Options.Location and the embedded document's at Embedded.Location; any
// other extra one is multiple_signatures, and one elsewhere inside the
// embedded document is signature_misplaced. The envelope signature is
// checked first, then the embedded one (on the envelope's verified content
// when the envelope verified, on the received tree otherwise, so that both
// verdicts are reported); the document's code is the first failure in that
// order, which makes it deterministic when both break.
func (v *Verifier) verifyWithEmbedded(ctx context.Context, d *trust.Domain, root *etree.Element, sigs []*etree.Element, opts Options, rep *Report, now time.Time,
	fail func(*VerifyError) (*Report, *etree.Element, error)) (handled bool, _ *Report, _ *etree.Element, _ error) {
	emb := opts.Embedded
	eroot := emb.root(root)
	if eroot == nil {
		return false, nil, nil, nil
	}
	var outer, inner, misplaced, others []*etree.Element
	for _, s := range sigs {
		switch {
		case opts.Location.matches(root, s.Parent()):
			outer = append(outer, s)
		case within(s, eroot) && emb.Location.matches(eroot, s.Parent()):
			inner = append(inner, s)
		case within(s, eroot):
			misplaced = append(misplaced, s)
		default:
			others = append(others, s)
		}
	}
	if len(inner)+len(misplaced) == 0 {
		return false, nil, nil, nil
	}
	wrap := func(r *Report, el *etree.Element, err error) (bool, *Report, *etree.Element, error) {
		return true, r, el, err
	}
	switch {
	case len(sigs) > 2 || len(outer) > 1 || len(inner) > 1 || len(others) > 0:
		return wrap(fail(verr(CodeMultiple, nil, "%d ds:Signature elements; only the envelope's (at %s) and the embedded document's own (at %s) are allowed", len(sigs), opts.Location, emb.Location)))
	case len(misplaced) > 0:
		return wrap(fail(verr(CodeMisplaced, nil, "ds:Signature under <%s> inside the embedded document, expected at %s", misplaced[0].Parent().Tag, emb.Location)))
	}

	idAttr := opts.idAttr()
	sub := &Report{Domain: d.Name, Policy: string(d.Policy), VerifiedAt: now}
	rep.Embedded = sub
	var verified *etree.Element
	var outerErr *VerifyError
	if len(outer) == 1 {
		rep.Location = opts.Location.String()
		var err error
		verified, err = v.checkSig(ctx, d, root, outer[0], rep, idAttr, now, func(leaf *x509.Certificate) (*etree.Element, error) {
			return validateAt(root, outer[0], leaf, idAttr)
		})
		if err != nil && !errors.As(err, &outerErr) {
			return true, nil, nil, err
		}
	}
	tree := root
	if verified != nil {
		tree = verified
	}
	innerErr, err := v.checkEmbedded(ctx, d, tree, emb, sub, now)
	if err != nil {
		return true, nil, nil, err
	}

	switch {
	case outerErr != nil:
		return wrap(fail(outerErr))
	case len(outer) == 0:
		rep.Outcome = OutcomeAbsent
		if d.Policy == trust.PolicyRequire {
			return wrap(fail(verr(CodeMissing, nil, "no ds:Signature on the envelope (only its embedded document is signed); domain %q requires a signature", d.Name)))
		}
		if innerErr == nil {
			rep.Warnings = append(rep.Warnings, "the envelope is not signed; only its embedded document is")
			return true, rep, nil, nil
		}
	}
	if innerErr != nil {
		rep.EmbeddedRefused = true
		return wrap(fail(&VerifyError{Code: innerErr.Code, Reason: "embedded document's signature: " + innerErr.Reason, Err: innerErr.Err}))
	}
	rep.Outcome = OutcomeValid
	return true, rep, verified, nil
}

// checkEmbedded verifies the embedded document's own signature in tree (the
// envelope's verified content, or the received tree), filling sub. The
// embedded root is detached with the namespaces in scope and verified as a
// document of its own (validateAt), against the same trust domain, clock and
// revocation rules as the envelope. A *VerifyError is the sender's fault; a
// plain error the hub's.
func (v *Verifier) checkEmbedded(ctx context.Context, d *trust.Domain, tree *etree.Element, emb *Embedded, sub *Report, now time.Time) (*VerifyError, error) {
	fail := func(ve *VerifyError) (*VerifyError, error) {
		sub.Outcome, sub.Code, sub.Reason = OutcomeInvalid, ve.Code, ve.Reason
		return ve, nil
	}
	sub.Location = emb.Location.String()
	eroot := emb.root(tree)
	if eroot == nil {
		return fail(verr(CodeMisplaced, nil, "the embedded document is not where expected in the signed content"))
	}
	pctx, err := etreeutils.NSBuildParentContext(eroot)
	if err != nil {
		return fail(verr(CodeMalformed, err, "namespaces of the embedded document"))
	}
	doc, err := etreeutils.NSDetatch(pctx, eroot)
	if err != nil {
		return fail(verr(CodeMalformed, err, "cannot detach the embedded document"))
	}
	var sigs []*etree.Element
	walk(doc, func(el *etree.Element) bool {
		if el.Tag == "Signature" && el.NamespaceURI() == NamespaceDSig {
			sigs = append(sigs, el)
		}
		return true
	})
	switch {
	case len(sigs) != 1:
		return fail(verr(CodeMultiple, nil, "%d ds:Signature elements in the embedded document; one is allowed", len(sigs)))
	case !emb.Location.matches(doc, sigs[0].Parent()):
		return fail(verr(CodeMisplaced, nil, "ds:Signature under <%s>, expected at %s", sigs[0].Parent().Tag, emb.Location))
	}
	sig := sigs[0]
	sub.Location = fmt.Sprintf("%s (source %q)", emb.Location, sig.Parent().SelectAttrValue("source", ""))
	if ve := checkSignedInfo(sig, sub); ve != nil {
		return fail(ve)
	}
	if ve := onlyExclusiveC14N(sig); ve != nil {
		return fail(ve)
	}
	_, err = v.checkSig(ctx, d, doc, sig, sub, goxmldsig.DefaultIdAttr, now, func(leaf *x509.Certificate) (*etree.Element, error) {
		return validateAt(doc, sig, leaf, goxmldsig.DefaultIdAttr)
	})
	if err != nil {
		var ve *VerifyError
		if errors.As(err, &ve) {
			return fail(ve)
		}
		return nil, err
	}
	sub.Outcome = OutcomeValid
	return nil, nil
}

// verifySignedInfo does steps 1–3 of validateAt: it checks SignatureValue
// over the canonical SignedInfo (canonicalSignedInfo) with the leaf's key
// and returns the Reference element read from the verified SignedInfo bytes
// only. The
// streaming verifier (stream.go) calls it with the signature and its
// ancestors only (start tags): nothing else of the tree is read.
func verifySignedInfo(root, sig *etree.Element, leaf *x509.Certificate, idAttr string) (*etree.Element, error) {
	var si, sv *etree.Element
	for _, c := range sig.ChildElements() {
		switch {
		case c.Tag == "SignedInfo" && c.NamespaceURI() == NamespaceDSig:
			si = c
		case c.Tag == "SignatureValue" && c.NamespaceURI() == NamespaceDSig:
			sv = c
		}
	}
	if si == nil || sv == nil {
		return nil, errors.New("missing SignedInfo")
	}
	signedInfo, err := canonicalSignedInfo(si, algorithm(childDS(si, "CanonicalizationMethod")))
	if err != nil {
		return nil, err
	}
	algo, ok := sigMethodX509[algorithm(childDS(si, "SignatureMethod"))]
	if !ok {
		return nil, errors.New("unknown signature method")
	}
	value, err := base64.StdEncoding.DecodeString(sv.Text())
	if err != nil {
		return nil, errors.New("could not decode signature")
	}
	if err := leaf.CheckSignature(algo, signedInfo, value); err != nil {
		return nil, err
	}

	// From here on, only the verified SignedInfo bytes are read.
	vdoc, err := xmlscan.BuildTree(xmlscan.NewBytes(signedInfo, xmlscan.Options{MaxDepth: MaxDepth}))
	if err != nil {
		return nil, err
	}
	vsi := vdoc.Root()
	ref := childDS(vsi, "Reference")
	if ref == nil || ref.SelectAttr("URI") == nil {
		return nil, errors.New("missing reference")
	}
	if uri := ref.SelectAttrValue("URI", ""); uri != "" && (uri[1:] != root.SelectAttrValue(idAttr, "") || uri[0] != '#') {
		return nil, errors.New("missing reference")
	}
	return ref, nil
}
