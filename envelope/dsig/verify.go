package dsig

import (
	"context"
	"crypto/ecdsa"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"sync"
	"time"

	"github.com/beevik/etree"
	goxmldsig "github.com/russellhaering/goxmldsig"

	"lienthong/envelope/trust"
)

// Algorithm identifiers of the allow-list.
const (
	AlgExcC14N       = "http://www.w3.org/2001/10/xml-exc-c14n#"
	AlgC14N10        = "http://www.w3.org/TR/2001/REC-xml-c14n-20010315"
	AlgC14N11        = "http://www.w3.org/2006/12/xml-c14n11"
	AlgEnveloped     = "http://www.w3.org/2000/09/xmldsig#enveloped-signature"
	AlgRSASHA256     = "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256"
	AlgRSASHA384     = "http://www.w3.org/2001/04/xmldsig-more#rsa-sha384"
	AlgRSASHA512     = "http://www.w3.org/2001/04/xmldsig-more#rsa-sha512"
	AlgECDSASHA256   = "http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha256"
	AlgECDSASHA384   = "http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha384"
	AlgECDSASHA512   = "http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha512"
	AlgDigestSHA256  = "http://www.w3.org/2001/04/xmlenc#sha256"
	AlgDigestSHA384  = "http://www.w3.org/2001/04/xmldsig-more#sha384"
	AlgDigestSHA512  = "http://www.w3.org/2001/04/xmlenc#sha512"
	nsExcC14NInclude = "http://www.w3.org/2001/10/xml-exc-c14n#" // InclusiveNamespaces
)

// The allow-list. The "#WithComments" c14n variants are refused: with them a
// comment is signed content, without them comment injection is detected
// separately (comment_injection), and the hub never needs both behaviours.
var (
	allowedC14N = map[string]bool{AlgExcC14N: true, AlgC14N10: true, AlgC14N11: true}
	// signature method → public key algorithm it needs
	allowedSigMethod = map[string]x509.PublicKeyAlgorithm{
		AlgRSASHA256: x509.RSA, AlgRSASHA384: x509.RSA, AlgRSASHA512: x509.RSA,
		AlgECDSASHA256: x509.ECDSA, AlgECDSASHA384: x509.ECDSA, AlgECDSASHA512: x509.ECDSA,
	}
	allowedDigest = map[string]bool{AlgDigestSHA256: true, AlgDigestSHA384: true, AlgDigestSHA512: true}
	idRef         = regexp.MustCompile(`^#([a-zA-Z_][\w.-]*)$`) // what goxmldsig accepts
)

// Options describe what a document type's signature must look like.
type Options struct {
	// Location is where the ds:Signature must sit (EdXMLHeader, RootChild,
	// or the AKN meta/proprietary path).
	Location Location
	// IDAttribute names the root attribute a Reference URI="#id" may point
	// to; empty means "ID" (goxmldsig's default). URI="" is always accepted.
	IDAttribute string
	// Embedded, when set, allows a second signature: the own signature of a
	// document carried inside this one (see Embedded). Without it, or when
	// the embedded document carries no signature, exactly one ds:Signature
	// is allowed.
	Embedded *Embedded
}

// Verifier checks XML-DSig signatures against the hub's trust domains. It is
// safe for concurrent use.
type Verifier struct {
	Trust *trust.Store
	// Now is the hub's clock; every validity check uses one reading of it.
	// Nil means time.Now.
	Now func() time.Time
}

// Verify checks the enveloped signature of raw under the named trust domain.
//
// It returns a Report in every case where the domain exists (Outcome valid,
// invalid, absent or placeholder) and, when the signature is valid, the
// verified root element (the signed content, signature removed): read
// metadata from that element only. raw is neither modified nor
// re-serialised.
//
// Errors: a *VerifyError (stable Code; errors.Is ErrSignatureInvalid or
// ErrSignatureMissing) for anything wrong with the document or signature;
// under policy record, absent and placeholder signatures are not errors.
// ErrUnknownDomain, a context error, or a revocation checker failure other
// than trust.ErrRevoked are returned as plain errors: they are the hub's
// problem, not the sender's.
func (v *Verifier) Verify(ctx context.Context, raw []byte, domain string, opts Options) (*Report, *etree.Element, error) {
	if err := ctx.Err(); err != nil {
		return nil, nil, err
	}
	d, rep, err := v.begin(domain)
	if err != nil {
		return nil, nil, err
	}
	now := rep.VerifiedAt
	fail := func(e *VerifyError) (*Report, *etree.Element, error) {
		rep.Outcome, rep.Code, rep.Reason = OutcomeInvalid, e.Code, e.Reason
		return rep, nil, e
	}

	doc, err := parse(raw)
	if err != nil {
		var ve *VerifyError
		if errors.As(err, &ve) {
			return fail(ve)
		}
		return fail(verr(CodeNotXML, err, "cannot parse"))
	}
	root := doc.Root()

	// 1. Exactly one ds:Signature, where the document type puts it.
	var sigs, placeholders []*etree.Element
	walk(root, func(el *etree.Element) bool {
		if el.Tag != "Signature" {
			return true
		}
		if el.NamespaceURI() == NamespaceDSig {
			sigs = append(sigs, el)
		} else if p := el.Parent(); p != nil && opts.Location.matches(root, p) {
			placeholders = append(placeholders, el)
		}
		return true
	})
	switch {
	case len(sigs) == 0:
		if e := unsigned(d, rep, len(placeholders) > 0); e != nil {
			return fail(e)
		}
		return rep, nil, nil
	case opts.Embedded != nil:
		if handled, r, el, err := v.verifyWithEmbedded(ctx, d, root, sigs, opts, rep, now, fail); handled {
			if len(placeholders) > 0 && r != nil {
				r.Warnings = append(r.Warnings, "a non-XML-DSig Signature element is also present and was ignored")
			}
			return r, el, err
		}
	}
	if len(sigs) > 1 {
		return fail(verr(CodeMultiple, nil, "%d ds:Signature elements; exactly one is allowed", len(sigs)))
	}
	sig := sigs[0]
	if !opts.Location.matches(root, sig.Parent()) {
		return fail(verr(CodeMisplaced, nil, "ds:Signature under <%s>, expected at %s", sig.Parent().Tag, opts.Location))
	}
	if len(placeholders) > 0 {
		rep.Warnings = append(rep.Warnings, "a non-XML-DSig Signature element is also present and was ignored")
	}
	idAttr := opts.idAttr()
	verified, err := v.checkSig(ctx, d, root, sig, rep, idAttr, now, func(leaf *x509.Certificate) (*etree.Element, error) {
		return validateAt(root, sig, leaf, idAttr)
	})
	if err != nil {
		var ve *VerifyError
		if errors.As(err, &ve) {
			return fail(ve)
		}
		return nil, nil, err
	}
	rep.Outcome = OutcomeValid
	return rep, verified, nil
}

func (o Options) idAttr() string {
	if o.IDAttribute == "" {
		return goxmldsig.DefaultIdAttr
	}
	return o.IDAttribute
}

// checkSig runs every check on the one signature sig of the tree rooted at
// root, filling rep: shape and allow-list, reference, comment injection, the
// signer's chain at now and its revocation, then the cryptographic check by
// validate with the validated leaf. It returns the verified element, a
// *VerifyError for the sender's faults, or a plain error for the hub's.
func (v *Verifier) checkSig(ctx context.Context, d *trust.Domain, root, sig *etree.Element, rep *Report, idAttr string, now time.Time,
	validate func(leaf *x509.Certificate) (*etree.Element, error)) (*etree.Element, error) {
	return v.checkSigWith(ctx, d, root, sig, rep, now, func() *VerifyError {
		if ve := checkReference(root, rep.Reference, idAttr); ve != nil {
			return ve
		}
		if el := findCommentInjection(root); el != nil {
			return verr(CodeCommentInjection, nil, "a comment splits the text of <%s>", el.FullTag())
		}
		return nil
	}, validate)
}

// checkSigWith is checkSig with the checks that read the whole tree
// (reference target, comment injection) supplied by the caller: the
// streaming verifier (stream.go) makes them while it reads the body.
func (v *Verifier) checkSigWith(ctx context.Context, d *trust.Domain, root, sig *etree.Element, rep *Report, now time.Time,
	treeChecks func() *VerifyError, validate func(leaf *x509.Certificate) (*etree.Element, error)) (*etree.Element, error) {
	// 2. Shape and algorithm allow-list, on the received tree.
	if ve := checkSignedInfo(sig, rep); ve != nil {
		return nil, ve
	}
	if ve := treeChecks(); ve != nil {
		return nil, ve
	}

	// 3. The signer's chain, validated by the hub (goxmldsig only pins).
	certs, ve := keyInfoCerts(sig)
	if ve != nil {
		return nil, ve
	}
	leaf := certs[0] // goxmldsig uses the first X509Certificate
	if want := allowedSigMethod[rep.Algorithm]; leaf.PublicKeyAlgorithm != want {
		return nil, verr(CodeInvalid, nil, "signature method %s does not fit the signer's %s key", rep.Algorithm, leaf.PublicKeyAlgorithm)
	}
	chains, err := d.VerifyChain(leaf, certs[1:], now)
	if err != nil {
		return nil, chainError(err)
	}
	chain := chains[0]
	if err := d.CheckRevocation(ctx, chain, now); err != nil {
		if errors.Is(err, trust.ErrRevoked) {
			return nil, verr(CodeRevoked, err, "signer certificate revoked")
		}
		if errors.Is(err, trust.ErrRevocationUnknown) { // hard-fail domain
			return nil, verr(CodeRevocationUnknown, nil, "revocation status of the signer could not be established: %v", err)
		}
		return nil, fmt.Errorf("dsig: %w", err)
	}
	rep.Signer, rep.Chain = leaf, chain

	// 4. Cryptographic check against the validated leaf only. The signature
	// value is normalised in our private tree (whitespace, ECDSA r‖s →
	// DER); it lies outside the signed content, and raw is untouched.
	if ve := normaliseSignatureValue(sig, leaf); ve != nil {
		return nil, ve
	}
	verified, err := validate(leaf)
	if err != nil {
		return nil, invalidError(err)
	}
	if verified == nil || verified.Tag != root.Tag || verified.NamespaceURI() != root.NamespaceURI() {
		return nil, verr(CodeNotWholeDoc, nil, "verified element is not the document root")
	}
	return verified, nil
}

// checkSignedInfo checks the shape of sig and its SignedInfo against the
// allow-list, filling the algorithm fields of rep.
func checkSignedInfo(sig *etree.Element, rep *Report) *VerifyError {
	kids, ve := dsChildren(sig, "SignedInfo", "SignatureValue", "KeyInfo")
	if ve != nil {
		return ve
	}
	if len(kids["SignedInfo"]) != 1 || len(kids["SignatureValue"]) != 1 || len(kids["KeyInfo"]) > 1 {
		return verr(CodeMalformed, nil, "ds:Signature needs one SignedInfo, one SignatureValue, at most one KeyInfo")
	}
	sk, ve := dsChildren(kids["SignedInfo"][0], "CanonicalizationMethod", "SignatureMethod", "Reference")
	if ve != nil {
		return ve
	}
	if len(sk["CanonicalizationMethod"]) != 1 || len(sk["SignatureMethod"]) != 1 {
		return verr(CodeMalformed, nil, "SignedInfo needs one CanonicalizationMethod and one SignatureMethod")
	}
	if len(sk["Reference"]) != 1 {
		return verr(CodeNotWholeDoc, nil, "SignedInfo has %d References; exactly one (the whole document) is allowed", len(sk["Reference"]))
	}
	rep.C14N = algorithm(sk["CanonicalizationMethod"][0])
	rep.Algorithm = algorithm(sk["SignatureMethod"][0])
	if _, ok := allowedSigMethod[rep.Algorithm]; !ok {
		return algError("signature method", rep.Algorithm)
	}
	if !allowedC14N[rep.C14N] {
		return algError("canonicalization method", rep.C14N)
	}
	if len(sk["SignatureMethod"][0].ChildElements()) > 0 {
		return verr(CodeMalformed, nil, "SignatureMethod has parameters (HMACOutputLength?)")
	}

	ref := sk["Reference"][0]
	uri := ref.SelectAttr("URI")
	if uri == nil {
		return verr(CodeNotWholeDoc, nil, "Reference without URI")
	}
	rep.Reference = uri.Value
	rk, ve := dsChildren(ref, "Transforms", "DigestMethod", "DigestValue")
	if ve != nil {
		return ve
	}
	if len(rk["DigestMethod"]) != 1 || len(rk["DigestValue"]) != 1 || len(rk["Transforms"]) != 1 {
		return verr(CodeMalformed, nil, "Reference needs one Transforms, one DigestMethod and one DigestValue")
	}
	rep.Digest = algorithm(rk["DigestMethod"][0])
	if !allowedDigest[rep.Digest] {
		return algError("digest method", rep.Digest)
	}
	rep.DigestValue = strings.TrimSpace(rk["DigestValue"][0].Text())

	tk, ve := dsChildren(rk["Transforms"][0], "Transform")
	if ve != nil {
		return ve
	}
	ts := tk["Transform"]
	for _, t := range ts {
		a := algorithm(t)
		if a != AlgEnveloped && !allowedC14N[a] {
			return algError("transform", a)
		}
		for _, c := range t.ChildElements() {
			if a != AlgExcC14N || c.Tag != "InclusiveNamespaces" || c.NamespaceURI() != nsExcC14NInclude {
				return verr(CodeMalformed, nil, "unexpected <%s> inside Transform", c.FullTag())
			}
		}
	}
	if len(ts) != 2 || algorithm(ts[0]) != AlgEnveloped || !allowedC14N[algorithm(ts[1])] {
		return verr(CodeMalformed, nil, "Reference transforms must be the enveloped-signature transform followed by one canonicalization")
	}
	return nil
}

// checkReference requires the single Reference to cover the whole document:
// URI="" or "#id" where id is the root's id attribute and no other element
// carries that id.
func checkReference(root *etree.Element, uri, idAttr string) *VerifyError {
	if uri == "" {
		return nil
	}
	m := idRef.FindStringSubmatch(uri)
	if m == nil {
		return verr(CodeNotWholeDoc, nil, "Reference URI %q is neither \"\" nor #id", uri)
	}
	id := m[1]
	n := 0
	walk(root, func(el *etree.Element) bool {
		for _, a := range el.Attr {
			if a.Value == id && (a.Key == idAttr || strings.EqualFold(a.Key, "id")) {
				n++
				break
			}
		}
		return true
	})
	if n > 1 {
		return verr(CodeDuplicateID, nil, "id %q is carried by %d elements", id, n)
	}
	if root.SelectAttrValue(idAttr, "") != id {
		return verr(CodeNotWholeDoc, nil, "Reference URI %q does not point at the document root", uri)
	}
	return nil
}

// dsChildren groups el's child elements by local name, requiring each to be
// in the XML-DSig namespace and one of allowed.
func dsChildren(el *etree.Element, allowed ...string) (map[string][]*etree.Element, *VerifyError) {
	out := map[string][]*etree.Element{}
	for _, c := range el.ChildElements() {
		ok := c.NamespaceURI() == NamespaceDSig
		if ok {
			ok = false
			for _, a := range allowed {
				if c.Tag == a {
					ok = true
					break
				}
			}
		}
		if !ok {
			if c.Tag == "Object" || c.Tag == "Manifest" {
				return nil, verr(CodeMalformed, nil, "ds:%s not allowed", c.Tag)
			}
			return nil, verr(CodeMalformed, nil, "unexpected <%s> in <%s>", c.FullTag(), el.Tag)
		}
		out[c.Tag] = append(out[c.Tag], c)
	}
	return out, nil
}

func algorithm(el *etree.Element) string { return el.SelectAttrValue("Algorithm", "") }

// algError gives a refused algorithm its own code.
func algError(slot, uri string) *VerifyError {
	l := strings.ToLower(uri)
	switch {
	case strings.Contains(l, "hmac"):
		return verr(CodeHMAC, nil, "%s %s: HMAC is not allowed", slot, uri)
	case strings.Contains(l, "md5"):
		return verr(CodeMD5, nil, "%s %s: MD5 is not allowed", slot, uri)
	case strings.Contains(l, "sha1"):
		return verr(CodeSHA1, nil, "%s %s: SHA-1 is not allowed", slot, uri)
	}
	return verr(CodeAlgorithm, nil, "%s %q is not allowed", slot, uri)
}

// keyInfoCerts decodes KeyInfo/X509Data/X509Certificate, leaf first.
func keyInfoCerts(sig *etree.Element) ([]*x509.Certificate, *VerifyError) {
	var ki *etree.Element
	for _, c := range sig.ChildElements() {
		if c.Tag == "KeyInfo" {
			ki = c
		}
	}
	if ki == nil {
		return nil, verr(CodeNoCertificate, nil, "no KeyInfo")
	}
	var data []*etree.Element
	for _, c := range ki.ChildElements() {
		if c.Tag == "X509Data" && c.NamespaceURI() == NamespaceDSig {
			data = append(data, c)
		}
	}
	if len(data) > 1 {
		return nil, verr(CodeMalformed, nil, "%d X509Data elements; one is allowed", len(data))
	}
	var out []*x509.Certificate
	if len(data) == 1 {
		for _, el := range data[0].ChildElements() {
			if el.Tag != "X509Certificate" || el.NamespaceURI() != NamespaceDSig {
				continue
			}
			c, ve := keyInfoCert(el.Text())
			if ve != nil {
				return nil, ve
			}
			out = append(out, c)
		}
	}
	if len(out) == 0 {
		return nil, verr(CodeNoCertificate, nil, "no X509Certificate in KeyInfo/X509Data")
	}
	return out, nil
}

// normaliseSignatureValue rewrites the SignatureValue text of our private
// tree to plain base64 of the form goxmldsig verifies (DER for ECDSA).
func normaliseSignatureValue(sig *etree.Element, leaf *x509.Certificate) *VerifyError {
	var sv *etree.Element
	for _, c := range sig.ChildElements() {
		if c.Tag == "SignatureValue" {
			sv = c
		}
	}
	if len(sv.ChildElements()) > 0 {
		return verr(CodeMalformed, nil, "SignatureValue has child elements")
	}
	b, err := base64.StdEncoding.DecodeString(strings.Join(strings.Fields(sv.Text()), ""))
	if err != nil || len(b) == 0 {
		return verr(CodeMalformed, err, "SignatureValue is not base64")
	}
	switch pub := leaf.PublicKey.(type) {
	case *ecdsa.PublicKey:
		if b, err = ecdsaToDER(b, pub); err != nil {
			return verr(CodeInvalid, err, "ECDSA signature value has the wrong size")
		}
	case *rsa.PublicKey:
		if len(b) != pub.Size() {
			return verr(CodeInvalid, nil, "RSA signature value has %d bytes, key needs %d", len(b), pub.Size())
		}
	}
	sv.SetText(base64.StdEncoding.EncodeToString(b))
	return nil
}

// chainError maps a trust error to its code.
func chainError(err error) *VerifyError {
	switch {
	case errors.Is(err, trust.ErrExpired):
		return verr(CodeExpired, err, "signer certificate expired")
	case errors.Is(err, trust.ErrNotYetValid):
		return verr(CodeNotYetValid, err, "signer certificate not yet valid")
	case errors.Is(err, trust.ErrKeyUsage):
		return verr(CodeKeyUsage, err, "signer certificate not allowed for signing")
	case errors.Is(err, trust.ErrWeakKey):
		return verr(CodeWeakKey, err, "signer key too weak")
	}
	return verr(CodeUnknownSigner, err, "signer certificate does not chain to a trust anchor of the domain")
}

// invalidError maps a goxmldsig failure after all our checks passed: what
// is left is a digest or signature value mismatch (or a shape goxmldsig
// refuses that we did not foresee).
func invalidError(err error) *VerifyError {
	msg := err.Error()
	switch {
	case strings.Contains(msg, "verification"):
		// crypto/rsa, crypto/ecdsa: the value does not verify with the key.
		return verr(CodeInvalid, err, "signature value does not verify with the signer's key")
	case msg == "Signature could not be verified" || errors.Is(err, errDigestMismatch):
		return verr(CodeDigestMismatch, err, "digest mismatch: the signed content was altered")
	}
	return verr(CodeInvalid, err, "signature rejected")
}

// maxParsedCerts bounds parsedCerts; when it is full it starts again empty.
const maxParsedCerts = 1024

// maxCachedCertText is the longest X509Certificate text parsedCerts keeps
// (a real certificate's base64 is a few KB): the text is the sender's and,
// in a document held in memory, bounded only by the body, so without it the
// cache could hold maxParsedCerts padded texts of a body's size each.
const maxCachedCertText = 16 << 10

// parsedCerts caches the certificates of KeyInfo by their base64 text:
// the same signers sign document after document, and parsing a
// certificate costs more than the rest of reading KeyInfo. A
// *x509.Certificate is never modified once parsed, so one may be shared.
var parsedCerts struct {
	sync.RWMutex
	m map[string]*x509.Certificate
}

// keyInfoCert returns the certificate an X509Certificate element's text
// holds (parsed once per distinct text, see parsedCerts).
func keyInfoCert(text string) (*x509.Certificate, *VerifyError) {
	parsedCerts.RLock()
	c := parsedCerts.m[text]
	parsedCerts.RUnlock()
	if c != nil {
		return c, nil
	}
	der, err := base64.StdEncoding.DecodeString(strings.Join(strings.Fields(text), ""))
	if err != nil {
		return nil, verr(CodeMalformed, err, "X509Certificate is not base64")
	}
	c, err = x509.ParseCertificate(der)
	if err != nil {
		return nil, verr(CodeMalformed, err, "X509Certificate is not a certificate")
	}
	if len(text) > maxCachedCertText {
		return c, nil
	}
	parsedCerts.Lock()
	if parsedCerts.m == nil || len(parsedCerts.m) >= maxParsedCerts {
		parsedCerts.m = make(map[string]*x509.Certificate)
	}
	parsedCerts.m[strings.Clone(text)] = c
	parsedCerts.Unlock()
	return c, nil
}

// begin starts a verification (Verify, VerifyStream, VerifyBytes): the trust
// domain named domain and a report for it, timed now.
func (v *Verifier) begin(domain string) (*trust.Domain, *Report, error) {
	if v.Trust == nil {
		return nil, nil, fmt.Errorf("dsig: %w %q: no trust store", ErrUnknownDomain, domain)
	}
	d, ok := v.Trust.Domain(domain)
	if !ok {
		return nil, nil, fmt.Errorf("dsig: %w %q", ErrUnknownDomain, domain)
	}
	now := time.Now()
	if v.Now != nil {
		now = v.Now()
	}
	return d, &Report{Domain: d.Name, Policy: string(d.Policy), VerifiedAt: now}, nil
}

// unsigned records in rep a document without a ds:Signature (placeholder:
// with a Signature outside the XML-DSig namespace where the document type
// puts one), and returns the error of policy require, or nil.
func unsigned(d *trust.Domain, rep *Report, placeholder bool) *VerifyError {
	if placeholder {
		rep.Outcome = OutcomePlaceholder
		if d.Policy == trust.PolicyRequire {
			return verr(CodePlaceholder, nil, "only a Signature outside the XML-DSig namespace (not verifiable); domain %q requires a signature", d.Name)
		}
		rep.Warnings = append(rep.Warnings, "Signature element is not in the XML-DSig namespace (placeholder); not verified")
		return nil
	}
	rep.Outcome = OutcomeAbsent
	if d.Policy == trust.PolicyRequire {
		return verr(CodeMissing, nil, "no ds:Signature; domain %q requires a signature", d.Name)
	}
	rep.Warnings = append(rep.Warnings, "document is not signed")
	return nil
}
