package dsig

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/rsa"
	"crypto/x509"
	"errors"
	"fmt"

	"github.com/beevik/etree"
	goxmldsig "github.com/russellhaering/goxmldsig"
)

// SignOptions say where the signature goes.
type SignOptions struct {
	// Location is the signature's parent (EdXMLHeader, RootChild, ...). For
	// AKN, create the meta/proprietary wrapper before signing: the digest
	// covers everything but the ds:Signature itself.
	Location Location
	// ReplacePlaceholder removes a Signature element outside the XML-DSig
	// namespace (the VNPT edXML placeholder) at Location and puts the new
	// signature in its place. Without it such an element is an error: it
	// would be signed as content.
	ReplacePlaceholder bool
	// KeepSignatures lets the document already carry ds:Signature elements
	// away from Location (the own signature of an embedded document, such as
	// a signed Akoma Ntoso payload in a hub envelope): they are signed as
	// content, byte for byte in canonical form. Without it any ds:Signature
	// is an error. A ds:Signature at Location is an error either way.
	KeepSignatures bool
}

// Sign returns new bytes holding raw with an enveloped XML-DSig signature:
// exclusive c14n, RSA-SHA256 or ECDSA-SHA256 by key type (ECDSA values as r‖s,
// XML-DSig 1.1), SHA-256 digest, Reference URI="", and chain (leaf first) in
// KeyInfo. The document is re-serialised once; the result is checked by
// verifying it before it is returned (cryptography only: the chain is the
// caller's business).
func Sign(raw []byte, key crypto.Signer, chain []*x509.Certificate, opts SignOptions) ([]byte, error) {
	if key == nil || len(chain) == 0 {
		return nil, errors.New("dsig: sign: key and certificate chain required")
	}
	leaf := chain[0]
	pk, ok := key.Public().(interface{ Equal(crypto.PublicKey) bool })
	if !ok || !pk.Equal(leaf.PublicKey) {
		return nil, errors.New("dsig: sign: key does not match the first certificate of the chain")
	}
	signer := key
	switch pub := key.Public().(type) {
	case *rsa.PublicKey:
	case *ecdsa.PublicKey:
		signer = rawECDSASigner{Signer: key, pub: pub}
	default:
		return nil, fmt.Errorf("dsig: sign: %T keys not supported", pub)
	}

	doc, err := parse(raw)
	if err != nil {
		return nil, fmt.Errorf("dsig: sign: %w", err)
	}
	root := doc.Root()
	parent, err := opts.Location.find(root)
	if err != nil {
		return nil, fmt.Errorf("dsig: sign: %w", err)
	}
	var placeholder *etree.Element
	var serr error
	kept := 0
	walk(root, func(el *etree.Element) bool {
		if el.Tag != "Signature" {
			return true
		}
		switch {
		case el.NamespaceURI() == NamespaceDSig && opts.KeepSignatures && el.Parent() != parent:
			kept++
			return true
		case el.NamespaceURI() == NamespaceDSig:
			serr = errors.New("document already carries a ds:Signature")
		case el.Parent() == parent && opts.ReplacePlaceholder && placeholder == nil:
			placeholder = el
			return true
		case el.Parent() == parent:
			serr = errors.New("a placeholder Signature is present at the signature's place (set ReplacePlaceholder)")
		default:
			return true
		}
		return false
	})
	if serr != nil {
		return nil, fmt.Errorf("dsig: sign: %w", serr)
	}
	insertAt := -1
	if placeholder != nil {
		insertAt = placeholder.Index()
		parent.RemoveChildAt(insertAt)
	}

	certs := make([][]byte, len(chain))
	for i, c := range chain {
		certs[i] = c.Raw
	}
	ctx, err := goxmldsig.NewSigningContext(signer, certs)
	if err != nil {
		return nil, fmt.Errorf("dsig: sign: %w", err)
	}
	ctx.Canonicalizer = goxmldsig.MakeC14N10ExclusiveCanonicalizerWithPrefixList("")
	// An IdAttribute no element carries makes goxmldsig write URI="" even
	// when the root has an ID attribute: the hub signs the whole document.
	ctx.IdAttribute = ""
	sig, err := ctx.ConstructSignature(root, true)
	if err != nil {
		return nil, fmt.Errorf("dsig: sign: %w", err)
	}
	if insertAt >= 0 {
		parent.InsertChildAt(insertAt, sig)
	} else {
		parent.AddChild(sig)
	}

	// Character references for \t, \n, \r in attributes and \r in text keep
	// the re-parsed tree identical to the signed one.
	doc.WriteSettings = etree.WriteSettings{CanonicalAttrVal: true, CanonicalText: true}
	out, err := doc.WriteToBytes()
	if err != nil {
		return nil, fmt.Errorf("dsig: sign: %w", err)
	}
	out = append(out, raw[len(bytes.TrimRight(raw, " \t\r\n")):]...)

	if err := selfCheck(out, leaf, opts.Location, kept > 0); err != nil {
		return nil, fmt.Errorf("dsig: sign: produced signature does not verify: %w", err)
	}
	return out, nil
}

// selfCheck verifies out with goxmldsig pinned to leaf, at a time inside the
// leaf's validity (signing with a certificate outside it is the caller's
// choice; the verifier will refuse it).
//
// With other signatures in the document (SignOptions.KeepSignatures) the new
// one, at loc, is checked by validateAt: goxmldsig would pick the first.
func selfCheck(out []byte, leaf *x509.Certificate, loc Location, others bool) error {
	doc, err := parse(out)
	if err != nil {
		return err
	}
	var sig *etree.Element
	walk(doc.Root(), func(el *etree.Element) bool {
		if el.Tag == "Signature" && el.NamespaceURI() == NamespaceDSig && (!others || loc.matches(doc.Root(), el.Parent())) {
			sig = el
			return false
		}
		return true
	})
	if sig == nil {
		return errors.New("signature lost")
	}
	if ve := normaliseSignatureValue(sig, leaf); ve != nil {
		return ve
	}
	if others {
		_, err := validateAt(doc.Root(), sig, leaf, "")
		return err
	}
	vctx := goxmldsig.NewDefaultValidationContext(&goxmldsig.MemoryX509CertificateStore{Roots: []*x509.Certificate{leaf}})
	vctx.Clock = goxmldsig.NewFakeClockAt(leaf.NotBefore)
	if _, err = vctx.Validate(doc.Root()); err != nil {
		return err
	}
	// And with the hub's own verifier, which follows the c14n specs where
	// goxmldsig's signing side does not (attribute order across namespaces):
	// never hand out a signature the hub, or xmlsec1, would refuse.
	if doc, err = parse(out); err != nil {
		return err
	}
	if sig = childDSDeep(doc.Root()); sig == nil {
		return errors.New("signature lost")
	}
	if ve := normaliseSignatureValue(sig, leaf); ve != nil {
		return ve
	}
	_, err = validateAt(doc.Root(), sig, leaf, "")
	return err
}

// childDSDeep returns the first ds:Signature under root in document order.
func childDSDeep(root *etree.Element) *etree.Element {
	var sig *etree.Element
	walk(root, func(el *etree.Element) bool {
		if el.Tag == "Signature" && el.NamespaceURI() == NamespaceDSig {
			sig = el
			return false
		}
		return true
	})
	return sig
}
