package attsig

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/rsa"
	_ "crypto/sha1" // ESS signingCertificate v1 hashes
	_ "crypto/sha256"
	_ "crypto/sha512"
	"crypto/subtle"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/digitorus/pkcs7"

	"lienthong/envelope/trust"
)

// Limits bound what the verifier accepts. A zero field takes its default.
type Limits struct {
	MaxSignatureBytes int64 // one CMS (a .p7s, or a PDF /Contents); default 1 MiB
	MaxPDFBytes       int64 // one PDF attachment; default 64 MiB
	MaxPDFSignatures  int   // signature dictionaries in one PDF; default 16
}

func (l Limits) withDefaults() Limits {
	if l.MaxSignatureBytes <= 0 {
		l.MaxSignatureBytes = 1 << 20
	}
	if l.MaxPDFBytes <= 0 {
		l.MaxPDFBytes = 64 << 20
	}
	if l.MaxPDFSignatures <= 0 {
		l.MaxPDFSignatures = 16
	}
	return l
}

// Verifier checks attachment signatures against the hub's trust domains. It
// is safe for concurrent use.
type Verifier struct {
	Trust *trust.Store
	// Now is the hub's clock; each verification uses one reading of it for
	// every validity check. Nil means time.Now.
	Now    func() time.Time
	Limits Limits
}

// ErrUnknownDomain: the requested trust domain is not configured.
var ErrUnknownDomain = errors.New("attsig: unknown trust domain")

func (v *Verifier) domain(name string) (*trust.Domain, time.Time, error) {
	if v.Trust == nil {
		return nil, time.Time{}, fmt.Errorf("%w %q: no trust store", ErrUnknownDomain, name)
	}
	d, ok := v.Trust.Domain(name)
	if !ok {
		return nil, time.Time{}, fmt.Errorf("%w %q", ErrUnknownDomain, name)
	}
	now := time.Now()
	if v.Now != nil {
		now = v.Now()
	}
	return d, now, nil
}

// VerifyDetached checks the detached CMS signature sig over content under
// the named trust domain. It returns the verdict and, when the signature is
// not valid, an *Error with the verdict's code. Other errors (unknown
// domain, context) are the hub's problem; the verdict is then nil.
func (v *Verifier) VerifyDetached(ctx context.Context, domain string, content, sig []byte) (*Verdict, error) {
	d, now, err := v.domain(domain)
	if err != nil {
		return nil, err
	}
	vd := &Verdict{Kind: KindCMSDetached, Domain: d.Name, VerifiedAt: now}
	if err := verifyCMS(ctx, d, now, v.Limits.withDefaults(), bytesContent(content), sig, vd); err != nil {
		return fail(vd, err)
	}
	return vd, nil
}

// fail records err in vd when it is an *Error and passes it on.
func fail(vd *Verdict, err error) (*Verdict, error) {
	var ae *Error
	if errors.As(err, &ae) {
		vd.Outcome, vd.Code, vd.Reason = OutcomeInvalid, ae.Code, ae.Reason
		return vd, err
	}
	return nil, err
}

// The digest and signature algorithms the hub accepts in CMS.
var (
	oidSHA256 = asn1.ObjectIdentifier{2, 16, 840, 1, 101, 3, 4, 2, 1}
	oidSHA384 = asn1.ObjectIdentifier{2, 16, 840, 1, 101, 3, 4, 2, 2}
	oidSHA512 = asn1.ObjectIdentifier{2, 16, 840, 1, 101, 3, 4, 2, 3}
	oidSHA1   = asn1.ObjectIdentifier{1, 3, 14, 3, 2, 26}

	okSigAlg = []asn1.ObjectIdentifier{
		pkcs7.OIDEncryptionAlgorithmRSA, pkcs7.OIDEncryptionAlgorithmRSASHA256,
		pkcs7.OIDEncryptionAlgorithmRSASHA384, pkcs7.OIDEncryptionAlgorithmRSASHA512,
		pkcs7.OIDDigestAlgorithmECDSASHA256, pkcs7.OIDDigestAlgorithmECDSASHA384, pkcs7.OIDDigestAlgorithmECDSASHA512,
	}
	sha1SigAlg = []asn1.ObjectIdentifier{pkcs7.OIDEncryptionAlgorithmRSASHA1, pkcs7.OIDDigestAlgorithmECDSASHA1, pkcs7.OIDDigestAlgorithmDSASHA1}
)

func oidIn(o asn1.ObjectIdentifier, list []asn1.ObjectIdentifier) bool {
	for _, l := range list {
		if o.Equal(l) {
			return true
		}
	}
	return false
}

// parseCMS is pkcs7.Parse with a guard: the pinned version's BER converter
// has known out-of-bounds panics (fixed upstream only in versions that need
// a newer Go), so a panic on hostile input becomes cms_malformed.
func parseCMS(b []byte) (p7 *pkcs7.PKCS7, err error) {
	defer func() {
		if r := recover(); r != nil {
			p7, err = nil, fmt.Errorf("pkcs7 parser failed: %v", r)
		}
	}()
	return pkcs7.Parse(b)
}

// contentFunc writes the signed content to w (a digest): the bytes of an
// attachment in memory, the /ByteRange parts of a PDF, or an attachment
// decoded from a spooled body as it is read. Its error is the hub's problem
// (an I/O error), never a verdict.
type contentFunc func(w io.Writer) error

// bytesContent is the contentFunc of content held in memory.
func bytesContent(b ...[]byte) contentFunc {
	return func(w io.Writer) error {
		for _, p := range b {
			if _, err := w.Write(p); err != nil {
				return err
			}
		}
		return nil
	}
}

// verifyCMS checks sig, a detached CMS SignedData over the content that
// content writes, filling vd. Order: structure and algorithms, the chain at
// now (offline and cheap), the content's digest (content is called only
// then, and once), the signature itself, then revocation (which may use the
// network, and is asked only about signatures that verify). The same code
// runs for an attachment in memory and for one streamed from a spool: only
// content differs.
func verifyCMS(ctx context.Context, d *trust.Domain, now time.Time, lim Limits, content contentFunc, sig []byte, vd *Verdict) error {
	c, err := prepareCMS(d, now, lim, sig, vd)
	if err != nil {
		return err
	}
	h := c.hash.New()
	if err := content(h); err != nil {
		return fmt.Errorf("attsig: reading the signed content: %w", err)
	}
	return c.finish(ctx, d, now, h.Sum(nil), vd)
}

func sigTooLarge(n, max int64) *Error {
	return aerr(CodeTooLarge, nil, "signature of %d bytes is over the limit of %d", n, max)
}

// cmsCheck is a detached CMS signature checked up to its content: structure,
// algorithms, signing-certificate attributes and chain.
type cmsCheck struct {
	p7        *pkcs7.PKCS7
	leaf      *x509.Certificate
	chain     []*x509.Certificate
	sigAlg    x509.SignatureAlgorithm
	sigAlgErr error
	// hash digests the content: the digest algorithm when there are signed
	// attributes (messageDigest), else the signature algorithm's hash (the
	// signature is then over the content itself).
	hash crypto.Hash
}

func prepareCMS(d *trust.Domain, now time.Time, lim Limits, sig []byte, vd *Verdict) (*cmsCheck, error) {
	fail := func(err *Error) (*cmsCheck, error) { return nil, err }
	if int64(len(sig)) > lim.MaxSignatureBytes {
		return fail(sigTooLarge(int64(len(sig)), lim.MaxSignatureBytes))
	}
	p7, err := parseCMS(sig)
	if err != nil {
		return fail(aerr(CodeMalformed, err, "not a CMS SignedData"))
	}
	if len(p7.Content) > 0 {
		return fail(aerr(CodeNotDetached, nil, "the CMS embeds %d bytes of content; a detached signature is required", len(p7.Content)))
	}
	if len(p7.Signers) != 1 {
		return fail(aerr(CodeSignerCount, nil, "%d SignerInfos; exactly one is allowed", len(p7.Signers)))
	}
	si := p7.Signers[0]
	vd.DigestAlgorithm = si.DigestAlgorithm.Algorithm.String()
	vd.SignatureAlgorithm = si.DigestEncryptionAlgorithm.Algorithm.String()
	switch da := si.DigestAlgorithm.Algorithm; {
	case da.Equal(oidSHA1):
		return fail(aerr(CodeSHA1, nil, "digest algorithm SHA-1 is not accepted"))
	case !da.Equal(oidSHA256) && !da.Equal(oidSHA384) && !da.Equal(oidSHA512):
		return fail(aerr(CodeAlgorithm, nil, "digest algorithm %s is not accepted", da))
	}
	switch sa := si.DigestEncryptionAlgorithm.Algorithm; {
	case oidIn(sa, sha1SigAlg):
		return fail(aerr(CodeSHA1, nil, "signature algorithm %s (SHA-1) is not accepted", sa))
	case !oidIn(sa, okSigAlg):
		return fail(aerr(CodeAlgorithm, nil, "signature algorithm %s is not accepted (RSA PKCS#1 v1.5 or ECDSA with SHA-2 only)", sa))
	}
	var essV1, essV2 [][]byte // signingCertificate(V2) attribute values
	if len(si.AuthenticatedAttributes) > 0 {
		var ct asn1.ObjectIdentifier
		found := false
		for _, a := range si.AuthenticatedAttributes {
			switch {
			case a.Type.Equal(pkcs7.OIDAttributeContentType):
				if _, err := asn1.Unmarshal(a.Value.Bytes, &ct); err != nil {
					return fail(aerr(CodeMalformed, err, "contentType attribute"))
				}
				found = true
			case a.Type.Equal(oidSigningCertificateV2):
				essV2 = append(essV2, a.Value.Bytes)
			case a.Type.Equal(oidSigningCertificate):
				essV1 = append(essV1, a.Value.Bytes)
			case a.Type.Equal(pkcs7.OIDAttributeSigningTime):
				var t time.Time
				if _, err := asn1.Unmarshal(a.Value.Bytes, &t); err == nil {
					vd.ClaimedSigningTime = &t
				}
			}
		}
		// The library leaves this check as a TODO; RFC 5652 5.3 requires it.
		if !found || !ct.Equal(pkcs7.OIDData) {
			return fail(aerr(CodeMalformed, nil, "signed attributes without a contentType of id-data"))
		}
	}
	leaf := p7.GetOnlySigner()
	if leaf == nil {
		return fail(aerr(CodeNoCertificate, nil, "the signer's certificate is not in the CMS"))
	}
	for _, v := range essV1 {
		if err := checkSigningCertificate(v, false, leaf); err != nil {
			return nil, err
		}
	}
	for _, v := range essV2 {
		if err := checkSigningCertificate(v, true, leaf); err != nil {
			return nil, err
		}
	}
	var inter []*x509.Certificate
	for _, c := range p7.Certificates {
		if !c.Equal(leaf) {
			inter = append(inter, c)
		}
	}
	chains, err := d.VerifyChain(leaf, inter, now)
	if err != nil {
		return fail(aerr(chainCode(err), err, "signer certificate"))
	}
	vd.Signer, vd.Chain = leaf, chains[0]

	c := &cmsCheck{p7: p7, leaf: leaf, chain: chains[0], hash: digestHash(si.DigestAlgorithm.Algorithm)}
	c.sigAlg, c.sigAlgErr = signatureAlgorithm(si.DigestEncryptionAlgorithm.Algorithm, si.DigestAlgorithm.Algorithm)
	if len(si.AuthenticatedAttributes) == 0 {
		if c.sigAlgErr != nil {
			return fail(aerr(CodeInvalid, c.sigAlgErr, "signature value does not verify with the signer's key"))
		}
		c.hash = sigAlgHash(c.sigAlg)
	}
	return c, nil
}

// finish checks the signature against digest, the content's digest with
// c.hash, then the chain's revocation.
func (c *cmsCheck) finish(ctx context.Context, d *trust.Domain, now time.Time, digest []byte, vd *Verdict) error {
	chains := [][]*x509.Certificate{c.chain}
	if err := c.checkSignature(digest); err != nil {
		var mm *pkcs7.MessageDigestMismatchError
		switch {
		case errors.As(err, &mm):
			return aerr(CodeContentMismatch, nil, "the signed digest does not match the content: the content was altered")
		case strings.Contains(err.Error(), "signing time"):
			return aerr(CodeSigningTime, err, "claimed signing time")
		}
		return aerr(CodeInvalid, err, "signature value does not verify with the signer's key")
	}

	res, err := d.CheckRevocationEvidence(ctx, chains[0], now)
	vd.Revocation = res
	switch {
	case err == nil:
	case errors.Is(err, trust.ErrRevoked):
		return aerr(CodeRevoked, err, "signer certificate revoked")
	case errors.Is(err, trust.ErrRevocationUnknown):
		return aerr(CodeRevocationUnkn, err, "revocation status could not be established")
	default:
		return fmt.Errorf("attsig: revocation: %w", err)
	}
	vd.Outcome = OutcomeValid
	return nil
}

// The ESS signing-certificate attributes (RFC 2634, RFC 5035) that CAdES
// and PAdES require: they bind the signature to one certificate, so that a
// certificate with the same key (or the same issuer and serial number) cannot
// be swapped in.
var (
	oidSigningCertificate   = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 9, 16, 2, 12}
	oidSigningCertificateV2 = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 9, 16, 2, 47}
)

type essCertID struct {
	HashAlgorithm pkix.AlgorithmIdentifier `asn1:"optional"` // v2 only; default SHA-256
	CertHash      []byte
	IssuerSerial  asn1.RawValue `asn1:"optional"`
}

type signingCertificate struct {
	Certs    []essCertID
	Policies asn1.RawValue `asn1:"optional"`
}

// checkSigningCertificate checks that a signingCertificate (v2: V2)
// signed attribute value names leaf.
func checkSigningCertificate(value []byte, v2 bool, leaf *x509.Certificate) error {
	var sc signingCertificate
	if rest, err := asn1.Unmarshal(value, &sc); err != nil || len(rest) > 0 || len(sc.Certs) == 0 {
		return aerr(CodeMalformed, err, "signingCertificate attribute")
	}
	h := crypto.SHA1 // v1: SHA-1 by definition (an identifier, not a signature)
	if v2 {
		switch alg := sc.Certs[0].HashAlgorithm.Algorithm; {
		case len(alg) == 0 || alg.Equal(oidSHA256):
			h = crypto.SHA256
		case alg.Equal(oidSHA384):
			h = crypto.SHA384
		case alg.Equal(oidSHA512):
			h = crypto.SHA512
		default:
			return aerr(CodeAlgorithm, nil, "signingCertificateV2 hash %s is not accepted", alg)
		}
	}
	d := h.New()
	d.Write(leaf.Raw)
	if !bytes.Equal(d.Sum(nil), sc.Certs[0].CertHash) {
		return aerr(CodeSigningCert, nil, "the signingCertificate attribute names another certificate than the signer's")
	}
	return nil
}

// checkSignature is the signature check of digitorus/pkcs7's
// verifySignatureAtTime (with no chain work: the domain checked the chain),
// given the content's digest instead of the content, so that the content
// can be streamed: with signed attributes, messageDigest must equal digest
// and the signature is over the DER of the attributes (and a claimed
// signingTime must lie inside the signer's validity); without, the signature
// is over the content, whose digest is given. The errors are the library's,
// so that verifyCMS maps them to the same codes.
func (c *cmsCheck) checkSignature(digest []byte) error {
	si := c.p7.Signers[0]
	if len(si.AuthenticatedAttributes) == 0 {
		return checkDigestSignature(c.leaf, c.sigAlg, c.hash, digest, si.EncryptedDigest)
	}
	attrs := make([]attribute, len(si.AuthenticatedAttributes))
	for i, a := range si.AuthenticatedAttributes {
		attrs[i] = attribute{Type: a.Type, Value: a.Value}
	}
	var md []byte
	if err := unmarshalAttribute(attrs, pkcs7.OIDAttributeMessageDigest, &md); err != nil {
		return err
	}
	if subtle.ConstantTimeCompare(md, digest) != 1 {
		return &pkcs7.MessageDigestMismatchError{ExpectedDigest: md, ActualDigest: digest}
	}
	signed, err := marshalAttributes(attrs)
	if err != nil {
		return err
	}
	var st time.Time
	if err := unmarshalAttribute(attrs, pkcs7.OIDAttributeSigningTime, &st); err == nil {
		if st.After(c.leaf.NotAfter) || st.Before(c.leaf.NotBefore) {
			return fmt.Errorf("pkcs7: signing time %q is outside of certificate validity %q to %q",
				st.Format(time.RFC3339), c.leaf.NotBefore.Format(time.RFC3339), c.leaf.NotAfter.Format(time.RFC3339))
		}
	}
	if c.sigAlgErr != nil {
		return c.sigAlgErr
	}
	return c.leaf.CheckSignature(c.sigAlg, signed, si.EncryptedDigest)
}

// attribute is digitorus/pkcs7's signed attribute, for marshalAttributes.
type attribute struct {
	Type  asn1.ObjectIdentifier
	Value asn1.RawValue `asn1:"set"`
}

// marshalAttributes is digitorus/pkcs7's: the DER SET OF the attributes
// (re-encoded as the library does), the bytes a signature with signed
// attributes covers.
func marshalAttributes(attrs []attribute) ([]byte, error) {
	enc, err := asn1.Marshal(struct {
		A []attribute `asn1:"set"`
	}{A: attrs})
	if err != nil {
		return nil, err
	}
	var raw asn1.RawValue
	if _, err := asn1.Unmarshal(enc, &raw); err != nil {
		return nil, err
	}
	return raw.Bytes, nil
}

func unmarshalAttribute(attrs []attribute, typ asn1.ObjectIdentifier, out any) error {
	for _, a := range attrs {
		if a.Type.Equal(typ) {
			_, err := asn1.Unmarshal(a.Value.Bytes, out)
			return err
		}
	}
	return errors.New("pkcs7: attribute type not in attributes")
}

// signatureAlgorithm is digitorus/pkcs7's getSignatureAlgorithm for the
// algorithms prepareCMS lets through (okSigAlg, SHA-2 digests).
func signatureAlgorithm(enc, digest asn1.ObjectIdentifier) (x509.SignatureAlgorithm, error) {
	switch {
	case enc.Equal(pkcs7.OIDDigestAlgorithmECDSASHA256):
		return x509.ECDSAWithSHA256, nil
	case enc.Equal(pkcs7.OIDDigestAlgorithmECDSASHA384):
		return x509.ECDSAWithSHA384, nil
	case enc.Equal(pkcs7.OIDDigestAlgorithmECDSASHA512):
		return x509.ECDSAWithSHA512, nil
	case oidIn(enc, []asn1.ObjectIdentifier{pkcs7.OIDEncryptionAlgorithmRSA, pkcs7.OIDEncryptionAlgorithmRSASHA256,
		pkcs7.OIDEncryptionAlgorithmRSASHA384, pkcs7.OIDEncryptionAlgorithmRSASHA512}):
		switch {
		case digest.Equal(oidSHA256):
			return x509.SHA256WithRSA, nil
		case digest.Equal(oidSHA384):
			return x509.SHA384WithRSA, nil
		case digest.Equal(oidSHA512):
			return x509.SHA512WithRSA, nil
		}
		return -1, fmt.Errorf("pkcs7: unsupported digest %q for encryption algorithm %q", digest.String(), enc.String())
	}
	return -1, fmt.Errorf("pkcs7: unsupported algorithm %q", enc.String())
}

func digestHash(o asn1.ObjectIdentifier) crypto.Hash {
	switch {
	case o.Equal(oidSHA384):
		return crypto.SHA384
	case o.Equal(oidSHA512):
		return crypto.SHA512
	}
	return crypto.SHA256
}

func sigAlgHash(a x509.SignatureAlgorithm) crypto.Hash {
	switch a {
	case x509.SHA384WithRSA, x509.ECDSAWithSHA384:
		return crypto.SHA384
	case x509.SHA512WithRSA, x509.ECDSAWithSHA512:
		return crypto.SHA512
	}
	return crypto.SHA256
}

// checkDigestSignature is x509.Certificate.CheckSignature for a signature
// over content of which only the digest (with h) is given: RSA PKCS #1 v1.5
// or ECDSA, the only kinds okSigAlg lets through.
func checkDigestSignature(cert *x509.Certificate, alg x509.SignatureAlgorithm, h crypto.Hash, digest, sig []byte) error {
	switch pub := cert.PublicKey.(type) {
	case *rsa.PublicKey:
		if alg != x509.SHA256WithRSA && alg != x509.SHA384WithRSA && alg != x509.SHA512WithRSA {
			return x509.ErrUnsupportedAlgorithm
		}
		return rsa.VerifyPKCS1v15(pub, h, digest, sig)
	case *ecdsa.PublicKey:
		if alg != x509.ECDSAWithSHA256 && alg != x509.ECDSAWithSHA384 && alg != x509.ECDSAWithSHA512 {
			return x509.ErrUnsupportedAlgorithm
		}
		if !ecdsa.VerifyASN1(pub, digest, sig) {
			return errors.New("x509: ECDSA verification failure")
		}
		return nil
	}
	return x509.ErrUnsupportedAlgorithm
}
