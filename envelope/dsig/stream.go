package dsig

import (
	"bytes"
	"cmp"
	"context"
	"crypto/sha256"
	"crypto/sha512"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"fmt"
	"hash"
	"io"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/beevik/etree"

	"lienthong/envelope/xmlscan"
)

// StreamOpener returns the document from its first byte, once per pass
// (pass 1: find and check the signature; pass 2: the digest). Both passes
// must see the same bytes: the caller reads a private spool file.
type StreamOpener func(pass int) (io.Reader, error)

// MaxSignatureBytes bounds the ds:Signature element the streaming verifier
// keeps in memory (its text and markup).
const MaxSignatureBytes = 1 << 20

// streamTextChunk is the largest piece of character data held at once.
const streamTextChunk = 64 << 10

// VerifyStream is Verify for a body that is not held in memory (above the
// intake's blob threshold). It reads the document twice through the bounded
// tokenizer of envelope/xmlscan:
//
//  1. pass 1 finds every Signature element, keeps the first ds:Signature
//     with its ancestors (start tags only, for the namespace context), and
//     makes the whole-tree checks of the in-memory path as it goes (one
//     signature, at its location; duplicate id of the root; comment
//     injection; attributes duplicated through two prefixes). The kept
//     signature then goes through the same shape, allow-list, chain,
//     revocation and SignatureValue checks as Verify's;
//  2. pass 2 streams the document, without exactly that element (the
//     enveloped-signature transform), through the canonicaliser the
//     verified Reference names (c14nstream.go) into its digest, and
//     compares.
//
// It returns the Report (nil only for the hub's own failures) and the same
// errors as Verify. Metadata must be read from pass 2's bytes: the caller
// tees the reader it returns for pass 2 into envelope.ParseReader.
//
// Not supported on this path: a second, embedded signature (Options.Embedded;
// a hub envelope carrying a signed AKN payload): it is multiple_signatures.
func (v *Verifier) VerifyStream(ctx context.Context, open StreamOpener, domain string, opts Options) (*Report, error) {
	rep, _, err := v.verifyScanned(ctx, domain, opts, false, func(s *sigScan) error {
		r, err := open(1)
		if err != nil {
			return fmt.Errorf("dsig: stream: open pass 1: %w", err)
		}
		return s.run(ctx, r)
	}, func() (tokenSource, error) {
		r, err := open(2)
		if err != nil {
			return nil, fmt.Errorf("dsig: stream: open pass 2: %w", err)
		}
		return xmlscan.NewReader(r, xmlscan.Options{MaxTextChunk: streamTextChunk, MaxDepth: MaxDepth}), nil
	})
	return rep, err
}

// bytesScan are the tokenizer options of VerifyBytes: those under which
// Verify builds its tree (parse).
var bytesScan = xmlscan.Options{MaxDepth: MaxDepth, MaxAttrs: 1 << 16, MaxNameLen: 1 << 16}

// VerifyBytes is Verify for a document held in memory, without building a
// tree when it need not: raw is tokenized once, in bytes mode (no copy),
// and its tokens are read twice from a record (xmlscan.Tape), as
// VerifyStream reads a spool twice (pass 1 finds and checks the signature,
// pass 2 canonicalises raw without it into the digest), with the same
// checks and codes as Verify.
//
// When the signature is valid and tree is nil, what was verified is raw
// itself: the whole document without exactly its ds:Signature element, read
// by the same tokenizer (envelope/xmlscan, bytes mode) as envelope.Parse
// reads it. Metadata must then be read from raw (envelope.Parse(raw)), as
// VerifyStream's callers read it from the digested pass; VerifyTokens
// verifies the very tokens envelope.Parse read.
//
// Where the token path does not serve, Verify (the tree path) runs instead
// and tree is its verified element: a document with an embedded signed
// document (Options.Embedded and a second ds:Signature, or the only one
// elsewhere than at Options.Location).
func (v *Verifier) VerifyBytes(ctx context.Context, raw []byte, domain string, opts Options) (rep *Report, tree *etree.Element, err error) {
	rec := xmlscan.NewTape()
	defer rec.Release()
	return v.verifyBytes(ctx, raw, nil, rec, domain, opts)
}

// VerifyTokens is VerifyBytes over the tokens tape holds of raw, without
// tokenizing raw again: tape must be the complete record of raw itself
// (xmlscan.Tape.Of; not a copy of it) made by a Scanner whose limits are
// within VerifyBytes' (depth, attributes, name length), as envelope.Parse
// makes it (envelope.ParseRecorded). Both passes then read the very tokens
// the caller read its metadata from. Any other tape (nil, incomplete, of
// other bytes, wider limits) is ignored and VerifyBytes runs. The caller
// keeps ownership of tape.
func (v *Verifier) VerifyTokens(ctx context.Context, raw []byte, tape *xmlscan.Tape, domain string, opts Options) (rep *Report, tree *etree.Element, err error) {
	if !TapeServes(tape, raw) {
		return v.VerifyBytes(ctx, raw, domain, opts)
	}
	return v.verifyBytes(ctx, raw, tape, nil, domain, opts)
}

// TapeServes reports whether VerifyTokens verifies raw over tape's tokens
// (rather than tokenizing raw again).
func TapeServes(tape *xmlscan.Tape, raw []byte) bool {
	if !tape.Complete() || !tape.Of(raw) {
		return false
	}
	o := tape.Options()
	return o.MaxDepth <= bytesScan.MaxDepth && o.MaxAttrs <= bytesScan.MaxAttrs &&
		o.MaxNameLen <= bytesScan.MaxNameLen && !o.KeepSpaceOutsideRoot
}

// verifyBytes is VerifyBytes (recorded nil: pass 1 tokenizes raw into rec)
// and VerifyTokens (recorded: both passes replay it).
func (v *Verifier) verifyBytes(ctx context.Context, raw []byte, recorded, rec *xmlscan.Tape, domain string, opts Options) (*Report, *etree.Element, error) {
	rep, fallback, err := v.verifyScanned(ctx, domain, opts, true, func(s *sigScan) error {
		// As parse: before anything else. A complete tape is of valid
		// UTF-8 already (xmlscan.Tape.Complete).
		if recorded == nil && !utf8.Valid(raw) {
			return verr(CodeBadEncoding, nil, "input is not valid UTF-8")
		}
		s.maxKeep = len(raw) // in memory already: no bound of its own (as Verify)
		if recorded != nil {
			return s.scan(ctx, recorded.Replay())
		}
		sc := xmlscan.NewBytes(raw, bytesScan)
		sc.Record(rec)
		return s.scan(ctx, sc)
	}, func() (tokenSource, error) {
		switch {
		case recorded != nil:
			return recorded.Replay(), nil
		case rec.Complete():
			return rec.Replay(), nil
		}
		return xmlscan.NewBytes(raw, bytesScan), nil // a tape that outgrew its bound
	})
	if fallback {
		return v.Verify(ctx, raw, domain, opts)
	}
	return rep, nil, err
}

// verifyScanned is VerifyStream, VerifyBytes and VerifyTokens: pass1 runs
// the signature scan over the document, pass2 reads its tokens again (from
// the spool, or a record of them) for the digest. With
// mayFallBack, a document the token path does not serve (see VerifyBytes)
// returns fallback true and nothing else.
func (v *Verifier) verifyScanned(ctx context.Context, domain string, opts Options, mayFallBack bool,
	pass1 func(*sigScan) error, pass2 func() (tokenSource, error)) (_ *Report, fallback bool, _ error) {
	if err := ctx.Err(); err != nil {
		return nil, false, err
	}
	d, rep, err := v.begin(domain)
	if err != nil {
		return nil, false, err
	}
	now := rep.VerifiedAt
	fail := func(e *VerifyError) (*Report, bool, error) {
		rep.Outcome, rep.Code, rep.Reason = OutcomeInvalid, e.Code, e.Reason
		return rep, false, e
	}

	sc := newSigScan(opts)
	if err := pass1(sc); err != nil {
		var ve *VerifyError
		if errors.As(err, &ve) {
			return fail(ve)
		}
		return nil, false, err
	}
	if mayFallBack && opts.Embedded != nil && (sc.sigs > 1 || sc.sigs == 1 && !sc.sigAtLocation) {
		return nil, true, nil
	}

	switch {
	case sc.sigs == 0:
		if e := unsigned(d, rep, sc.placeholders > 0); e != nil {
			return fail(e)
		}
		return rep, false, nil
	case sc.sigs > 1 && opts.Embedded != nil:
		return fail(verr(CodeMultiple, nil, "%d ds:Signature elements; a large body is verified in a stream, which checks exactly one (no embedded signed document)", sc.sigs))
	case sc.sigs > 1:
		return fail(verr(CodeMultiple, nil, "%d ds:Signature elements; exactly one is allowed", sc.sigs))
	}
	if !sc.sigAtLocation {
		return fail(verr(CodeMisplaced, nil, "ds:Signature under <%s>, expected at %s", sc.sig.Parent().Tag, opts.Location))
	}
	if sc.placeholders > 0 {
		rep.Warnings = append(rep.Warnings, "a non-XML-DSig Signature element is also present and was ignored")
	}
	idAttr := opts.idAttr()
	treeChecks := func() *VerifyError {
		if uri := rep.Reference; uri != "" {
			m := idRef.FindStringSubmatch(uri)
			if m == nil {
				return verr(CodeNotWholeDoc, nil, "Reference URI %q is neither \"\" nor #id", uri)
			}
			if m[1] == sc.rootID && sc.rootIDCount > 1 {
				return verr(CodeDuplicateID, nil, "id %q is carried by %d elements", m[1], sc.rootIDCount)
			}
			if m[1] != sc.rootID {
				return verr(CodeNotWholeDoc, nil, "Reference URI %q does not point at the document root", uri)
			}
		}
		if sc.injection != "" {
			return verr(CodeCommentInjection, nil, "a comment splits the text of <%s>", sc.injection)
		}
		return nil
	}
	_, err = v.checkSigWith(ctx, d, sc.root, sc.sig, rep, now, treeChecks, func(leaf *x509.Certificate) (*etree.Element, error) {
		ref, err := verifySignedInfo(sc.root, sc.sig, leaf, idAttr)
		if err != nil {
			return nil, err
		}
		if err := streamDigest(ctx, pass2, ref, sc.sigIndex); err != nil {
			return nil, err
		}
		return sc.root, nil
	})
	if err != nil {
		var ve *VerifyError
		if errors.As(err, &ve) {
			return fail(ve)
		}
		return nil, false, err
	}
	rep.Outcome = OutcomeValid
	return rep, false, nil
}

// streamDigest is pass 2: the document without its signature element (the
// sigIndex-th element in document order), canonicalised as the verified
// Reference ref says, must hash to its DigestValue.
func streamDigest(ctx context.Context, pass2 func() (tokenSource, error), ref *etree.Element, sigIndex int) error {
	want, err := base64.StdEncoding.DecodeString(strings.TrimSpace(childDS(ref, "DigestValue").Text()))
	if err != nil {
		return err
	}
	var h hash.Hash
	switch a := algorithm(childDS(ref, "DigestMethod")); a {
	case AlgDigestSHA256:
		h = sha256.New()
	case AlgDigestSHA384:
		h = sha512.New384()
	case AlgDigestSHA512:
		h = sha512.New()
	default:
		return errors.New("unknown digest algorithm: " + a)
	}
	var c14nAlg, prefixes string
	enveloped := false
	if ts := childDS(ref, "Transforms"); ts != nil {
		for _, t := range ts.ChildElements() {
			switch a := algorithm(t); a {
			case AlgEnveloped:
				enveloped = true
			case AlgExcC14N, AlgC14N10, AlgC14N11:
				c14nAlg = a
				for _, c := range t.ChildElements() {
					if c.Tag == "InclusiveNamespaces" {
						prefixes = c.SelectAttrValue("PrefixList", "")
					}
				}
			default:
				return errors.New("unknown transform algorithm: " + a)
			}
		}
	}
	if !enveloped || c14nAlg == "" {
		return errors.New("reference transforms are not enveloped-signature + c14n")
	}
	c, err := newC14NStream(h, c14nAlg, prefixes)
	if err != nil {
		return err
	}
	s, err := pass2()
	if err != nil {
		return err
	}
	n, skip := 0, 0
	for i := 0; ; i++ {
		if i&1023 == 0 {
			if err := ctx.Err(); err != nil {
				return err
			}
		}
		t, err := s.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return fmt.Errorf("dsig: stream: pass 2: %w", err)
		}
		if t.Kind == xmlscan.StartElement {
			n++
			if n == sigIndex {
				if t.Local != "Signature" {
					return errors.New("enveloped-signature transform: signature not found")
				}
				skip = 1
				continue
			}
		}
		if skip > 0 {
			switch t.Kind {
			case xmlscan.StartElement:
				skip++
			case xmlscan.EndElement:
				skip--
			}
			continue
		}
		if err := c.token(t); err != nil {
			return err
		}
	}
	if err := c.flush(); err != nil {
		return err
	}
	if !bytes.Equal(h.Sum(nil), want) {
		return errDigestMismatch
	}
	return nil
}

// sigScan is pass 1.
type sigScan struct {
	opts   Options
	idAttr string

	frames []scanFrame
	ns     []nsBinding
	count  int // elements started so far

	sigs, placeholders int
	root, sig          *etree.Element // the kept signature and its ancestors
	sigIndex           int
	sigAtLocation      bool
	capture            []*etree.Element // open elements of the kept signature
	captured           int              // bytes kept

	rootID      string
	rootIDCount int
	injection   string // the element a comment splits the text of

	maxKeep   int          // bound of captured; 0 means MaxSignatureBytes
	afterRoot bool         // a comment or PI after the root element
	dupAttr   *VerifyError // the first attribute repeated through two prefixes
}

type scanFrame struct {
	prefix, local    string
	attrs            []xmlscan.Attr
	nsN              int
	textBefore       bool // non-whitespace text since the last child element
	commentAfterText bool // a comment followed that text
}

func newSigScan(opts Options) *sigScan { return &sigScan{opts: opts, idAttr: opts.idAttr()} }

// run reads the whole document. As Verify checks UTF-8 before anything
// else, invalid UTF-8 anywhere is bad_encoding whatever else is wrong: the
// bytes are validated as they are read, and after a refusal the rest is
// read (and only validated) to decide.
func (s *sigScan) run(ctx context.Context, r io.Reader) error {
	u := &xmlscan.UTF8Check{}
	tr := io.TeeReader(r, u)
	err := s.scan(ctx, xmlscan.NewReader(tr, xmlscan.Options{MaxTextChunk: streamTextChunk, MaxDepth: MaxDepth}))
	var ve *VerifyError
	if errors.As(err, &ve) {
		if _, cerr := io.Copy(io.Discard, tr); cerr != nil {
			return fmt.Errorf("dsig: stream: read: %w", cerr)
		}
	}
	if (err == nil || ve != nil) && !u.Valid() {
		return verr(CodeBadEncoding, nil, "input is not valid UTF-8")
	}
	return err
}

// As Verify's parse, it refuses a comment or processing instruction after
// the root element (not_xml), and only once the whole document is known to
// be well-formed an attribute repeated through two prefixes.
func (s *sigScan) scan(ctx context.Context, sc tokenSource) error {
	for i := 0; ; i++ {
		if i&1023 == 0 {
			if err := ctx.Err(); err != nil {
				return err
			}
		}
		t, err := sc.Next()
		if errors.Is(err, io.EOF) {
			switch {
			case s.afterRoot:
				return verr(CodeNotXML, nil, "content after the root element")
			case s.dupAttr != nil:
				return s.dupAttr
			}
			return nil
		}
		if err != nil {
			return scanError(err)
		}
		if err := s.token(t); err != nil {
			return err
		}
	}
}

// scanError maps the tokenizer's refusals to this package's codes.
func scanError(err error) error {
	switch {
	case errors.Is(err, xmlscan.ErrDoctype):
		return verr(CodeDoctype, err, "DOCTYPE not allowed")
	case errors.Is(err, xmlscan.ErrNotUTF8):
		return verr(CodeBadEncoding, err, "input is not valid UTF-8")
	case errors.Is(err, xmlscan.ErrDuplicateAttr):
		return verr(CodeDuplicateAttr, err, "duplicate attribute")
	case errors.Is(err, xmlscan.ErrTooDeep):
		return verr(CodeTooDeep, err, "nesting deeper than %d", MaxDepth)
	}
	var se *xmlscan.SyntaxError
	if errors.As(err, &se) {
		return verr(CodeNotXML, err, "not well-formed XML")
	}
	return fmt.Errorf("dsig: stream: read: %w", err)
}

func (s *sigScan) keep(n int) error {
	s.captured += n
	if max := cmp.Or(s.maxKeep, MaxSignatureBytes); s.captured > max {
		return verr(CodeMalformed, nil, "ds:Signature is larger than %d bytes", max)
	}
	return nil
}

func (s *sigScan) token(t xmlscan.Token) error {
	var top *scanFrame
	if len(s.frames) > 0 {
		top = &s.frames[len(s.frames)-1]
	}
	switch t.Kind {
	case xmlscan.StartElement:
		return s.start(t, top)
	case xmlscan.EndElement:
		if len(s.capture) > 0 {
			s.capture = s.capture[:len(s.capture)-1]
		}
		s.ns = s.ns[:top.nsN]
		s.frames = s.frames[:len(s.frames)-1]
	case xmlscan.CharData:
		if top == nil {
			return nil
		}
		if len(bytes.TrimSpace(t.Data)) > 0 {
			if top.commentAfterText && s.injection == "" {
				s.injection = qname(top.prefix, top.local)
			}
			top.textBefore = true
		}
		if len(s.capture) > 0 {
			if err := s.keep(len(t.Data)); err != nil {
				return err
			}
			el := s.capture[len(s.capture)-1]
			if n := len(el.Child); n > 0 {
				if cd, ok := el.Child[n-1].(*etree.CharData); ok {
					cd.Data += string(t.Data)
					return nil
				}
			}
			el.CreateText(string(t.Data))
		}
	case xmlscan.Comment:
		if top == nil && s.count > 0 {
			s.afterRoot = true
		}
		if top != nil && top.textBefore {
			top.commentAfterText = true
		}
		if len(s.capture) > 0 {
			if err := s.keep(len(t.Data)); err != nil {
				return err
			}
			s.capture[len(s.capture)-1].CreateComment(string(t.Data))
		}
	case xmlscan.ProcInst:
		if top == nil && s.count > 0 {
			s.afterRoot = true
		}
		if len(s.capture) > 0 {
			if err := s.keep(len(t.Data) + len(t.Target)); err != nil {
				return err
			}
			s.capture[len(s.capture)-1].CreateProcInst(t.Target, string(t.Data))
		}
	}
	return nil
}

func (s *sigScan) start(t xmlscan.Token, parent *scanFrame) error {
	s.count++
	if parent != nil {
		parent.textBefore, parent.commentAfterText = false, false
	}
	f := scanFrame{prefix: t.Prefix, local: t.Local, attrs: slices.Clone(t.Attrs), nsN: len(s.ns)}
	for _, a := range t.Attrs {
		switch {
		case a.Prefix == "xmlns":
			s.ns = append(s.ns, nsBinding{a.Local, a.Value})
		case a.Prefix == "" && a.Local == "xmlns":
			s.ns = append(s.ns, nsBinding{"", a.Value})
		}
	}
	// An attribute repeated through two prefixes of one namespace (the
	// tokenizer refuses the same prefix twice).
	for i, a := range t.Attrs {
		if a.Prefix == "" || a.Prefix == "xmlns" {
			continue
		}
		ua, _ := lookupNS(s.ns, a.Prefix)
		for _, b := range t.Attrs[i+1:] {
			if b.Prefix == "" || b.Prefix == "xmlns" || b.Local != a.Local {
				continue
			}
			if ub, _ := lookupNS(s.ns, b.Prefix); ub == ua && s.dupAttr == nil {
				s.dupAttr = verr(CodeDuplicateAttr, nil, "duplicate attribute %q on <%s>", qname(b.Prefix, b.Local), qname(t.Prefix, t.Local))
			}
		}
	}
	s.frames = append(s.frames, f)
	if len(s.frames) == 1 {
		for _, a := range t.Attrs {
			if qname(a.Prefix, a.Local) == s.idAttr {
				s.rootID = a.Value
			}
		}
	}
	if s.rootID != "" {
		for _, a := range t.Attrs {
			if a.Value == s.rootID && (a.Local == s.idAttr || strings.EqualFold(a.Local, "id")) {
				s.rootIDCount++
				break
			}
		}
	}
	if len(s.capture) > 0 { // inside the kept signature
		if uri, _ := lookupNS(s.ns, t.Prefix); t.Local == "Signature" && uri == NamespaceDSig {
			s.sigs++
		}
		el := element(f)
		n := len(t.Prefix) + len(t.Local)
		for _, a := range t.Attrs {
			n += len(a.Prefix) + len(a.Local) + len(a.Value)
		}
		if err := s.keep(n); err != nil {
			return err
		}
		s.capture[len(s.capture)-1].AddChild(el)
		s.capture = append(s.capture, el)
		return nil
	}
	if t.Local != "Signature" {
		return nil
	}
	root, parent2 := s.chain()
	uri, _ := lookupNS(s.ns, t.Prefix)
	if uri != NamespaceDSig {
		if s.opts.Location.matches(root, parent2) {
			s.placeholders++
		}
		return nil
	}
	s.sigs++
	if s.sigs > 1 {
		return nil
	}
	el := element(f)
	parent2.AddChild(el)
	s.root, s.sig, s.sigIndex = root, el, s.count
	s.sigAtLocation = s.opts.Location.matches(root, parent2)
	s.capture = []*etree.Element{el}
	return nil
}

// chain returns the open elements above the current one as a fresh tree
// (start tags only) under a document node, as etree parses them: the root
// and the current element's parent.
func (s *sigScan) chain() (root, parent *etree.Element) {
	doc := etree.NewDocument()
	parent = &doc.Element
	for _, f := range s.frames[:len(s.frames)-1] {
		el := element(f)
		parent.AddChild(el)
		if root == nil {
			root = el
		}
		parent = el
	}
	return root, parent
}

func element(f scanFrame) *etree.Element {
	el := etree.NewElement(qname(f.prefix, f.local))
	for _, a := range f.attrs {
		el.CreateAttr(qname(a.Prefix, a.Local), a.Value)
	}
	return el
}

// tokenSource is what the passes read: a tokenizer, or the replay of a
// record of its tokens.
type tokenSource interface {
	Next() (xmlscan.Token, error)
}
